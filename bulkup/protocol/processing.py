"""The processing options nested in ``UploadPostJob`` (spec §3.3, §3.4): crops, Photoshop,
PostScript, PDF, media, Illustrator, colour management, set creation, background knockout,
unsharp mask and archives.

Same conventions as :mod:`bulkup.protocol.options`: frozen, keyword-only, slotted dataclasses
that validate themselves and raise :class:`~bulkup.errors.ProtocolValueError` naming
``<Class>.<field>``; ``None`` means "do not send this element".

They are kept apart from ``options`` so that a run which sets none of them (the default) never
builds their fifteen classes: dataclass creation is most of bulkup's own import time, and these
were about 10 ms of every start (see benchmarks/README.md). :mod:`bulkup.protocol` and
``UploadPostJob`` import this module the first time one of them is named or set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bulkup.protocol import _validate as v
from bulkup.protocol.enums import (
    Anchor,
    ColorManagementMode,
    Colorspace,
    Corner,
    FillMethod,
    IllustratorProcess,
    LayerNaming,
    PDFProcess,
    PhotoshopProcess,
    PostScriptProcess,
    UnCompressProcess,
)

__all__ = [
    "NESTED",
    "AutoColorCropOptions",
    "AutoSetCreationOptions",
    "AutoTransparentCropOptions",
    "ColorManagementOptions",
    "IllustratorOptions",
    "KnockoutBackgroundOptions",
    "ManualCropOptions",
    "MediaOptions",
    "PDFOptions",
    "PhotoshopLayerOptions",
    "PhotoshopOptions",
    "PostScriptOptions",
    "ThumbnailOptions",
    "UnCompressOptions",
    "UnsharpMaskOptions",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ManualCropOptions:
    """Fixed pixel crop; ``0,0,0,0`` means no crop (spec §3.4)."""

    left: int | None = None
    right: int | None = None
    top: int | None = None
    bottom: int | None = None

    def __post_init__(self) -> None:
        for name in ("left", "right", "top", "bottom"):
            v.check_int(self, name, 0)


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoColorCropOptions:
    """Crop a uniform border whose color is sampled at ``corner``; ``tolerance`` 0..1."""

    corner: Corner | None = None
    tolerance: float | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "corner", Corner)
        v.check_number(self, "tolerance", 0, 1)


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoTransparentCropOptions:
    """Crop transparent borders; ``tolerance`` 0..1."""

    tolerance: float | None = None

    def __post_init__(self) -> None:
        v.check_number(self, "tolerance", 0, 1)


@dataclass(frozen=True, kw_only=True, slots=True)
class PhotoshopLayerOptions:
    """Layer handling of PSD files (``PhotoshopOptions/layerOptions``)."""

    layer_naming: LayerNaming | None = None
    anchor: Anchor | None = None
    create_template: bool | None = None
    extract_text: bool | None = None
    extend_layers: bool | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "layer_naming", LayerNaming)
        v.coerce_enum(self, "anchor", Anchor)
        for name in ("create_template", "extract_text", "extend_layers"):
            v.check_bool(self, name)


@dataclass(frozen=True, kw_only=True, slots=True)
class PhotoshopOptions:
    """PSD processing: keep flat or maintain layers."""

    process: PhotoshopProcess | None = None
    layer_options: PhotoshopLayerOptions | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "process", PhotoshopProcess)
        v.check_instance(self, "layer_options", PhotoshopLayerOptions)


@dataclass(frozen=True, kw_only=True, slots=True)
class PostScriptOptions:
    """EPS/PostScript processing; ``resolution`` must be positive."""

    process: PostScriptProcess | None = None
    resolution: float | None = None
    colorspace: Colorspace | None = None
    alpha: bool | None = None
    extract_search_words: bool | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "process", PostScriptProcess)
        v.check_number(self, "resolution", 0, lo_exclusive=True)
        v.coerce_enum(self, "colorspace", Colorspace)
        v.check_bool(self, "alpha")
        v.check_bool(self, "extract_search_words")


@dataclass(frozen=True, kw_only=True, slots=True)
class PDFOptions:
    """PDF processing; ``resolution`` must be positive."""

    process: PDFProcess | None = None
    resolution: float | None = None
    colorspace: Colorspace | None = None
    pdf_catalog: bool | None = None
    extract_search_words: bool | None = None
    extract_links: bool | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "process", PDFProcess)
        v.check_number(self, "resolution", 0, lo_exclusive=True)
        v.coerce_enum(self, "colorspace", Colorspace)
        for name in ("pdf_catalog", "extract_search_words", "extract_links"):
            v.check_bool(self, name)


@dataclass(frozen=True, kw_only=True, slots=True)
class ThumbnailOptions:
    """Video thumbnail frame: ``thumbnail_time`` in milliseconds from the start (>= 0)."""

    thumbnail_time: int | None = None

    def __post_init__(self) -> None:
        v.check_int(self, "thumbnail_time", 0, v.XSD_LONG_MAX)


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaOptions:
    """Video options: encoding preset handles and thumbnail choice."""

    video_encoding_presets_array: tuple[str, ...] | None = None
    generate_thumbnail: bool | None = None
    thumbnail_options: ThumbnailOptions | None = None

    def __post_init__(self) -> None:
        v.coerce_handles(self, "video_encoding_presets_array")
        v.check_bool(self, "generate_thumbnail")
        v.check_instance(self, "thumbnail_options", ThumbnailOptions)


@dataclass(frozen=True, kw_only=True, slots=True)
class IllustratorOptions:
    """Illustrator (.ai) processing; ``color_space`` is free text (not enumerated by the vendor)."""

    process: IllustratorProcess | None = None
    resolution: int | None = None
    color_space: str | None = None
    alpha: bool | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "process", IllustratorProcess)
        v.check_int(self, "resolution", 1)
        v.check_str(self, "color_space", non_empty=True)
        v.check_bool(self, "alpha")


@dataclass(frozen=True, kw_only=True, slots=True)
class ColorManagementOptions:
    """Color-management mode and ICC profile handles."""

    color_management: ColorManagementMode | None = None
    source_profile_handle: str | None = None
    output_profile_handle: str | None = None

    def __post_init__(self) -> None:
        v.coerce_enum(self, "color_management", ColorManagementMode)
        v.check_str(self, "source_profile_handle", non_empty=True)
        v.check_str(self, "output_profile_handle", non_empty=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoSetCreationOptions:
    """Set-generation scripts: ``PropertySet`` handles sent as repeated ``items``."""

    auto_sets_array: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        v.coerce_handles(self, "auto_sets_array")


@dataclass(frozen=True, kw_only=True, slots=True)
class KnockoutBackgroundOptions:
    """Make the background transparent; ``corner`` and ``fill_method`` are required."""

    corner: Corner
    tolerance: float | None = None
    fill_method: FillMethod

    def __post_init__(self) -> None:
        v.coerce_enum(self, "corner", Corner, optional=False)
        v.check_number(self, "tolerance", 0, 1)
        v.coerce_enum(self, "fill_method", FillMethod, optional=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class UnsharpMaskOptions:
    """Sharpening: amount 0..5, radius 0..250, threshold 0..255, monochrome 0 or 1."""

    amount: float | None = None
    radius: float | None = None
    threshold: int | None = None
    monochrome: int | None = None

    def __post_init__(self) -> None:
        v.check_number(self, "amount", 0, 5)
        v.check_number(self, "radius", 0, 250)
        v.check_int(self, "threshold", 0, 255)
        v.check_int(self, "monochrome", 0, 1)


@dataclass(frozen=True, kw_only=True, slots=True)
class UnCompressOptions:
    """ZIP/TAR handling: keep the archive (``None``) or extract it (``UnCompress``)."""

    process: UnCompressProcess

    def __post_init__(self) -> None:
        v.coerce_enum(self, "process", UnCompressProcess, optional=False)


NESTED: Final[tuple[tuple[str, type[object]], ...]] = (
    ("manual_crop_options", ManualCropOptions),
    ("auto_color_crop_options", AutoColorCropOptions),
    ("auto_transparent_crop_options", AutoTransparentCropOptions),
    ("photoshop_options", PhotoshopOptions),
    ("post_script_options", PostScriptOptions),
    ("pdf_options", PDFOptions),
    ("media_options", MediaOptions),
    ("illustrator_options", IllustratorOptions),
    ("color_management_options", ColorManagementOptions),
    ("auto_set_creation_options", AutoSetCreationOptions),
    ("knockout_background", KnockoutBackgroundOptions),
    ("unsharp_mask_options", UnsharpMaskOptions),
    ("un_compress_options", UnCompressOptions),
)
"""Each ``UploadPostJob`` field that holds a processing option, and that option's class."""
