"""The request model: ``authHeader``, ``uploadPostParam`` and ``UploadPostJob`` (spec §2.3, §3).

The processing options nested in ``UploadPostJob`` are in :mod:`bulkup.protocol.processing`.

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
from typing import TYPE_CHECKING

from bulkup import __version__
from bulkup.protocol import _validate as v
from bulkup.protocol.enums import EmailSetting

if TYPE_CHECKING:
    from bulkup.protocol import processing

__all__ = [
    "AuthHeader",
    "ElementMap",
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


_CROP_FIELDS = ("manual_crop_options", "auto_color_crop_options", "auto_transparent_crop_options")
# The fields that hold a class of bulkup.protocol.processing (its NESTED, by name only).
_PROCESSING_FIELDS = (
    *_CROP_FIELDS,
    "photoshop_options",
    "post_script_options",
    "pdf_options",
    "media_options",
    "illustrator_options",
    "color_management_options",
    "auto_set_creation_options",
    "knockout_background",
    "unsharp_mask_options",
    "un_compress_options",
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
    manual_crop_options: processing.ManualCropOptions | None = None
    auto_color_crop_options: processing.AutoColorCropOptions | None = None
    auto_transparent_crop_options: processing.AutoTransparentCropOptions | None = None
    photoshop_options: processing.PhotoshopOptions | None = None
    post_script_options: processing.PostScriptOptions | None = None
    pdf_options: processing.PDFOptions | None = None
    media_options: processing.MediaOptions | None = None
    illustrator_options: processing.IllustratorOptions | None = None
    color_management_options: processing.ColorManagementOptions | None = None
    auto_set_creation_options: processing.AutoSetCreationOptions | None = None
    project_handle_array: tuple[str, ...] | None = None
    email_setting: EmailSetting
    post_http_url: str | None = None
    in_design_options: Mapping[str, str] | None = None
    knockout_background: processing.KnockoutBackgroundOptions | None = None
    unsharp_mask_options: processing.UnsharpMaskOptions | None = None
    un_compress_options: processing.UnCompressOptions | None = None
    xmp_keywords: str | None = None

    def __post_init__(self) -> None:
        for name in ("overwrite", "ready_for_publish", "preserve_publish_state", "create_mask"):
            v.check_bool(self, name, optional=False)
        v.check_bool(self, "preserve_crop")
        self._check_processing_options()
        v.coerce_handles(self, "project_handle_array")
        v.coerce_enum(self, "email_setting", EmailSetting, optional=False)
        v.check_str(self, "post_http_url")
        elements = v.check_element_map(self, "in_design_options")
        if elements is not None:
            object.__setattr__(self, "in_design_options", ElementMap(elements))
        v.check_str(self, "xmp_keywords")
        self._check_single_crop()

    def _check_processing_options(self) -> None:
        """Each set processing option has its class (:mod:`~bulkup.protocol.processing`,
        imported only when one is set)."""
        if all(getattr(self, name) is None for name in _PROCESSING_FIELDS):
            return
        from bulkup.protocol.processing import NESTED

        for name, cls in NESTED:
            v.check_instance(self, name, cls)

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
