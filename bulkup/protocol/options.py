"""The request model: ``authHeader``, ``uploadPostParam`` and ``UploadPostJob`` (spec §2.3, §3).

Every type is a frozen, keyword-only, slotted dataclass that validates itself on construction and
raises :class:`~bulkup.errors.ProtocolValueError` naming ``<Class>.<field>``. ``None`` means "do not
send this element". Enumerated fields take the :mod:`bulkup.protocol.enums` members; exact-case
strings are accepted at run time and converted. Handle arrays take any iterable of strings and
are stored as tuples, so every object is hashable.

Whether a string can be carried by XML at all is checked when it is encoded
(:mod:`bulkup.protocol.encode`), where the message can name the element path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from bulkup import __version__
from bulkup.protocol import _validate as v
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

__all__ = [
    "AuthHeader",
    "AutoColorCropOptions",
    "AutoSetCreationOptions",
    "AutoTransparentCropOptions",
    "ColorManagementOptions",
    "ElementMap",
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
    "UploadPostJob",
    "UploadPostParam",
]

_LOCALE = re.compile(r"[a-z]{2}(-[A-Z]{2})?\Z")
_LOCALE_WHAT = "<language>[-<COUNTRY>] such as en or en-US"


class ElementMap(Mapping[str, str]):
    """A read-only, hashable, ordered mapping of XML element name to text (``inDesignOptions``)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str]) -> None:
        """Copy ``items``, keeping their order."""
        self._items = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))  # equality ignores order, so must the hash

    def __repr__(self) -> str:
        return f"ElementMap({self._items!r})"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthHeader:
    """The ``auth`` form part (spec §2.3). The password never appears in ``repr``/``str``.

    Attributes:
        user: E-mail address of the IPS user.
        password: That user's password.
        locale: ``en`` or ``en-US`` style locale, or None.
        app_name: Calling application's name (sent by default, as the vendor recommends).
        app_version: Calling application's version.
        gzip_response: Force response compression on/off; None leaves it to ``Accept-Encoding``.
        fault_http_status_code: HTTP status for fault responses (200..599); None means 500.
    """

    user: str
    password: str = field(repr=False)
    locale: str | None = None
    app_name: str | None = "bulkup"
    app_version: str | None = __version__
    gzip_response: bool | None = None
    fault_http_status_code: int | None = None

    def __post_init__(self) -> None:
        v.check_str(self, "user", optional=False, non_empty=True)
        v.check_str(self, "password", optional=False, non_empty=True, secret=True)
        v.check_pattern(self, "locale", _LOCALE, _LOCALE_WHAT)
        v.check_str(self, "app_name")
        v.check_str(self, "app_version")
        v.check_bool(self, "gzip_response")
        v.check_int(self, "fault_http_status_code", 200, 599)


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


_CROP_FIELDS = ("manual_crop_options", "auto_color_crop_options", "auto_transparent_crop_options")
_NESTED: tuple[tuple[str, type[object]], ...] = (
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


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadPostJob:
    """The job's processing options (the ``uploadParams`` child, spec §3.2), in §3.3 wire order.

    ``overwrite``, ``ready_for_publish``, ``create_mask`` and ``email_setting`` are required and
    ``preserve_publish_state`` defaults to True, so the five vendor-required fields are always
    sent (D-19). At most one crop option may be set (D-20). ``in_design_options`` is an opaque
    mapping of element name to text, sent only if given.
    """

    overwrite: bool
    ready_for_publish: bool
    preserve_publish_state: bool = True
    create_mask: bool
    preserve_crop: bool | None = None
    manual_crop_options: ManualCropOptions | None = None
    auto_color_crop_options: AutoColorCropOptions | None = None
    auto_transparent_crop_options: AutoTransparentCropOptions | None = None
    photoshop_options: PhotoshopOptions | None = None
    post_script_options: PostScriptOptions | None = None
    pdf_options: PDFOptions | None = None
    media_options: MediaOptions | None = None
    illustrator_options: IllustratorOptions | None = None
    color_management_options: ColorManagementOptions | None = None
    auto_set_creation_options: AutoSetCreationOptions | None = None
    project_handle_array: tuple[str, ...] | None = None
    email_setting: EmailSetting
    post_http_url: str | None = None
    in_design_options: Mapping[str, str] | None = None
    knockout_background: KnockoutBackgroundOptions | None = None
    unsharp_mask_options: UnsharpMaskOptions | None = None
    un_compress_options: UnCompressOptions | None = None
    xmp_keywords: str | None = None

    def __post_init__(self) -> None:
        for name in ("overwrite", "ready_for_publish", "preserve_publish_state", "create_mask"):
            v.check_bool(self, name, optional=False)
        v.check_bool(self, "preserve_crop")
        for name, cls in _NESTED:
            v.check_instance(self, name, cls)
        v.coerce_handles(self, "project_handle_array")
        v.coerce_enum(self, "email_setting", EmailSetting, optional=False)
        v.check_str(self, "post_http_url")
        elements = v.check_element_map(self, "in_design_options")
        if elements is not None:
            object.__setattr__(self, "in_design_options", ElementMap(elements))
        v.check_str(self, "xmp_keywords")
        self._check_single_crop()

    def _check_single_crop(self) -> None:
        chosen = [name for name in _CROP_FIELDS if getattr(self, name) is not None]
        if len(chosen) > 1:
            v.fail(self, chosen[1], f"at most one crop option may be set, got {', '.join(chosen)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadPostParam:
    """The ``uploadParams`` form part (root ``uploadPostParam``, spec §3.1).

    Exactly one of ``job_name`` (opening POST) and ``job_handle`` (follow-up POSTs) must be given
    (D-05). ``end_job`` is sent only when true. ``upload_params`` belongs on the opening POST.
    """

    company_handle: str
    job_name: str | None = None
    job_handle: str | None = None
    locale: str | None = None
    description: str | None = None
    dest_folder: str | None = None
    file_name: str | None = None
    end_job: bool = False
    upload_params: UploadPostJob | None = None

    def __post_init__(self) -> None:
        v.check_str(self, "company_handle", optional=False, non_empty=True)
        v.check_str(self, "job_name", non_empty=True)
        v.check_str(self, "job_handle", non_empty=True)
        if (self.job_name is None) == (self.job_handle is None):
            v.fail(self, "job_name", "exactly one of job_name and job_handle must be given")
        v.check_pattern(self, "locale", _LOCALE, _LOCALE_WHAT)
        for name in ("description", "dest_folder", "file_name"):
            v.check_str(self, name)
        v.check_bool(self, "end_job", optional=False)
        v.check_instance(self, "upload_params", UploadPostJob)
