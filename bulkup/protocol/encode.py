"""Encode the two XML form parts of an UploadFile POST (spec §2.3, §2.4, §2.7, §3).

Output: UTF-8 bytes, no XML declaration, the root carries a default ``xmlns`` and children are
unprefixed, in schema order (§3.1, §3.3, §3.4). Escaping is left entirely to ``xmltodict``;
this module only refuses strings that XML 1.0 cannot carry or that would not survive a parse
unchanged (C0 controls other than TAB and LF, CR included; U+FFFE, U+FFFF; lone surrogates).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from enum import Enum
from typing import Final

import xmltodict  # type: ignore[import-untyped, unused-ignore]

from bulkup.errors import ProtocolValueError
from bulkup.protocol.namespaces import KNOWN_NAMESPACES, NS_2014_04_03
from bulkup.protocol.options import AuthHeader, UploadPostJob, UploadPostParam

__all__ = ["ELEMENT_ORDER", "element_order", "encode_auth_header", "encode_upload_post_param"]

_Table = tuple[tuple[str, str], ...]

ELEMENT_ORDER: Final[Mapping[type[object], _Table]] = {
    AuthHeader: (
        ("user", "user"),
        ("password", "password"),
        ("locale", "locale"),
        ("app_name", "appName"),
        ("app_version", "appVersion"),
        ("gzip_response", "gzipResponse"),
        ("fault_http_status_code", "faultHttpStatusCode"),
    ),
    UploadPostParam: (
        ("company_handle", "companyHandle"),
        ("job_name", "jobName"),
        ("job_handle", "jobHandle"),
        ("locale", "locale"),
        ("description", "description"),
        ("dest_folder", "destFolder"),
        ("file_name", "fileName"),
        ("end_job", "endJob"),
        ("upload_params", "uploadParams"),
    ),
    UploadPostJob: (
        ("overwrite", "overwrite"),
        ("ready_for_publish", "readyForPublish"),
        ("preserve_publish_state", "preservePublishState"),
        ("create_mask", "createMask"),
        ("preserve_crop", "preserveCrop"),
        ("manual_crop_options", "manualCropOptions"),
        ("auto_color_crop_options", "autoColorCropOptions"),
        ("auto_transparent_crop_options", "autoTransparentCropOptions"),
        ("photoshop_options", "photoshopOptions"),
        ("post_script_options", "postScriptOptions"),
        ("pdf_options", "pdfOptions"),
        ("media_options", "mediaOptions"),
        ("illustrator_options", "illustratorOptions"),
        ("color_management_options", "colorManagementOptions"),
        ("auto_set_creation_options", "autoSetCreationOptions"),
        ("project_handle_array", "projectHandleArray"),
        ("email_setting", "emailSetting"),
        ("post_http_url", "postHttpUrl"),
        ("in_design_options", "inDesignOptions"),
        ("knockout_background", "knockoutBackground"),
        ("unsharp_mask_options", "unsharpMaskOptions"),
        ("un_compress_options", "unCompressOptions"),
        ("xmp_keywords", "xmpKeywords"),
    ),
}
"""For each request type, its ``(attribute, element)`` pairs in wire order (the processing
options' tables: :func:`element_order`)."""


def element_order(cls: type[object]) -> _Table:
    """The ``(attribute, element)`` pairs of a request type or processing option, in wire order.

    Raises:
        KeyError: ``cls`` is neither.
    """
    table = ELEMENT_ORDER.get(cls)
    return table if table is not None else _processing_order()[cls]


@functools.cache
def _processing_order() -> Mapping[type[object], _Table]:
    """The processing options' tables, built with their classes (which load on first use)."""
    from bulkup.protocol import processing as p

    return {
        p.ManualCropOptions: (
            ("left", "left"),
            ("right", "right"),
            ("top", "top"),
            ("bottom", "bottom"),
        ),
        p.AutoColorCropOptions: (("corner", "corner"), ("tolerance", "tolerance")),
        p.AutoTransparentCropOptions: (("tolerance", "tolerance"),),
        p.PhotoshopOptions: (("process", "process"), ("layer_options", "layerOptions")),
        p.PhotoshopLayerOptions: (
            ("layer_naming", "layerNaming"),
            ("anchor", "anchor"),
            ("create_template", "createTemplate"),
            ("extract_text", "extractText"),
            ("extend_layers", "extendLayers"),
        ),
        p.PostScriptOptions: (
            ("process", "process"),
            ("resolution", "resolution"),
            ("colorspace", "colorspace"),
            ("alpha", "alpha"),
            ("extract_search_words", "extractSearchWords"),
        ),
        p.PDFOptions: (
            ("process", "process"),
            ("resolution", "resolution"),
            ("colorspace", "colorspace"),
            ("pdf_catalog", "pdfCatalog"),
            ("extract_search_words", "extractSearchWords"),
            ("extract_links", "extractLinks"),
        ),
        p.MediaOptions: (
            ("video_encoding_presets_array", "videoEncodingPresetsArray"),
            ("generate_thumbnail", "generateThumbnail"),
            ("thumbnail_options", "thumbnailOptions"),
        ),
        p.ThumbnailOptions: (("thumbnail_time", "thumbnailTime"),),
        p.IllustratorOptions: (
            ("process", "process"),
            ("resolution", "resolution"),
            ("color_space", "colorSpace"),
            ("alpha", "alpha"),
        ),
        p.ColorManagementOptions: (
            ("color_management", "colorManagement"),
            ("source_profile_handle", "sourceProfileHandle"),
            ("output_profile_handle", "outputProfileHandle"),
        ),
        p.AutoSetCreationOptions: (("auto_sets_array", "autoSetsArray"),),
        p.KnockoutBackgroundOptions: (
            ("corner", "corner"),
            ("tolerance", "tolerance"),
            ("fill_method", "fillMethod"),
        ),
        p.UnsharpMaskOptions: (
            ("amount", "amount"),
            ("radius", "radius"),
            ("threshold", "threshold"),
            ("monochrome", "monochrome"),
        ),
        p.UnCompressOptions: (("process", "process"),),
    }


_UNREPRESENTABLE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
_SECRET_PATHS = frozenset({"authHeader/password"})


def encode_auth_header(auth: AuthHeader, *, namespace: str = NS_2014_04_03) -> bytes:
    """Encode the ``auth`` form part.

    Args:
        auth: The credentials and client identification.
        namespace: Default namespace of the root (D-02: the versioned one, or
            :data:`~bulkup.protocol.namespaces.NS_UNVERSIONED`).

    Returns:
        ``<authHeader xmlns="…">…</authHeader>`` as UTF-8 bytes.

    Raises:
        ProtocolValueError: A string holds a character XML cannot carry (for the password the
            message does not show it), or ``namespace`` is not a §2.6 namespace.
    """
    return _document("authHeader", auth, namespace)


def encode_upload_post_param(param: UploadPostParam, *, namespace: str = NS_2014_04_03) -> bytes:
    """Encode the ``uploadParams`` form part (root ``uploadPostParam``).

    The result depends only on its arguments: the follow-up POSTs of a job may reuse it.

    Args:
        param: The POST's parameters.
        namespace: Default namespace of the root.

    Returns:
        ``<uploadPostParam xmlns="…">…</uploadPostParam>`` as UTF-8 bytes.

    Raises:
        ProtocolValueError: A string holds a character XML cannot carry (the message names the
            element path), or ``namespace`` is not a §2.6 namespace.
    """
    return _document("uploadPostParam", param, namespace)


def _document(root: str, obj: object, namespace: str) -> bytes:
    if namespace not in KNOWN_NAMESPACES:
        raise ProtocolValueError(f"namespace: {namespace!r} is not an IPS API namespace")
    body: dict[str, object] = {"@xmlns": namespace}
    body.update(_children(obj, root))
    if body.get("endJob") == "false":
        del body["endJob"]
    text: str = xmltodict.unparse({root: body}, full_document=False)
    return text.encode("utf-8")


def _children(obj: object, path: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for attribute, element in element_order(type(obj)):
        value = getattr(obj, attribute)
        if value is not None:
            out[element] = _node(value, f"{path}/{element}")
    return out


def _node(value: object, path: str) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return _checked(value, path)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, tuple):
        return {"items": [_checked(item, f"{path}/items") for item in value]}
    if isinstance(value, Mapping):
        return {key: _checked(text, f"{path}/{key}") for key, text in value.items()}
    return _children(value, path)


def _checked(text: str, path: str) -> str:
    match = _UNREPRESENTABLE.search(text)
    if match is None:
        return text
    if path in _SECRET_PATHS:
        raise ProtocolValueError(f"{path} contains a character XML cannot carry")
    raise ProtocolValueError(
        f"{path} contains U+{ord(match.group()):04X} at index {match.start()}, "
        "which XML 1.0 cannot carry unchanged"
    )


def _double(value: float) -> str:
    """``xsd:double`` text; whole numbers without a fraction (valid as xsd:int too)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
