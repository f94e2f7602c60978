"""The client's codec for the UploadFile servlet: request model, XML encoder, response decoder.

Encode the two XML form parts with :func:`encode_auth_header` and
:func:`encode_upload_post_param`; classify a response with :func:`parse_upload_response`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bulkup.protocol.decode import MAX_RESPONSE_BYTES, parse_retry_after, parse_upload_response
from bulkup.protocol.encode import (
    ELEMENT_ORDER,
    element_order,
    encode_auth_header,
    encode_upload_post_param,
)
from bulkup.protocol.enums import (
    Anchor,
    ColorManagementMode,
    Colorspace,
    Corner,
    EmailSetting,
    FillMethod,
    IllustratorProcess,
    LayerNaming,
    PDFProcess,
    PhotoshopProcess,
    PostScriptProcess,
    UnCompressProcess,
)
from bulkup.protocol.namespaces import (
    KNOWN_NAMESPACES,
    NS_2008_01_15,
    NS_2008_09_10,
    NS_2009_07_31,
    NS_2010_01_31,
    NS_2012_02_14,
    NS_2013_02_15,
    NS_2014_04_03,
    NS_LEGACY_AUTH,
    NS_UNVERSIONED,
)
from bulkup.protocol.options import AuthHeader, ElementMap, UploadPostJob, UploadPostParam
from bulkup.protocol.results import UploadPostReturn

if TYPE_CHECKING:
    from bulkup.protocol.processing import (
        AutoColorCropOptions,
        AutoSetCreationOptions,
        AutoTransparentCropOptions,
        ColorManagementOptions,
        IllustratorOptions,
        KnockoutBackgroundOptions,
        ManualCropOptions,
        MediaOptions,
        PDFOptions,
        PhotoshopLayerOptions,
        PhotoshopOptions,
        PostScriptOptions,
        ThumbnailOptions,
        UnCompressOptions,
        UnsharpMaskOptions,
    )

__all__ = [
    "ELEMENT_ORDER",
    "element_order",
    "KNOWN_NAMESPACES",
    "MAX_RESPONSE_BYTES",
    "NS_2008_01_15",
    "NS_2008_09_10",
    "NS_2009_07_31",
    "NS_2010_01_31",
    "NS_2012_02_14",
    "NS_2013_02_15",
    "NS_2014_04_03",
    "NS_LEGACY_AUTH",
    "NS_UNVERSIONED",
    "Anchor",
    "AuthHeader",
    "AutoColorCropOptions",
    "AutoSetCreationOptions",
    "AutoTransparentCropOptions",
    "ColorManagementMode",
    "ColorManagementOptions",
    "Colorspace",
    "Corner",
    "ElementMap",
    "EmailSetting",
    "FillMethod",
    "IllustratorOptions",
    "IllustratorProcess",
    "KnockoutBackgroundOptions",
    "LayerNaming",
    "ManualCropOptions",
    "MediaOptions",
    "PDFOptions",
    "PDFProcess",
    "PhotoshopLayerOptions",
    "PhotoshopOptions",
    "PhotoshopProcess",
    "PostScriptOptions",
    "PostScriptProcess",
    "ThumbnailOptions",
    "UnCompressOptions",
    "UnCompressProcess",
    "UnsharpMaskOptions",
    "UploadPostJob",
    "UploadPostParam",
    "UploadPostReturn",
    "encode_auth_header",
    "encode_upload_post_param",
    "parse_retry_after",
    "parse_upload_response",
]


def __getattr__(name: str) -> Any:
    """The processing options (:mod:`bulkup.protocol.processing`), imported on first use."""
    if name[:1].isupper():  # a class name; never a submodule's, so no import loop
        processing = importlib.import_module("bulkup.protocol.processing")
        if name in processing.__all__:
            return getattr(processing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
