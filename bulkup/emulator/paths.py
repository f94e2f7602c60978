"""Target paths (spec D-16) and file-name checks (D-25), with the root as a hard wall.

``target_path`` turns what a POST said (``fileName`` or the part's ``filename``, and
``destFolder``) into a path relative to the company's root folder, or a reason to refuse that
file. Nothing it accepts can leave the company folder: no ``.``/``..`` segments, no absolute
paths, no backslashes (they become ``/``), no control characters, no NUL, and every segment fits
the file system.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 3800
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode Cc: C0, DEL and C1
_BAD_NAME_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f-\x9f]')
_SLASHES = re.compile(r"/+")

ASSET_TYPES = {
    **dict.fromkeys(
        ("jpg", "jpeg", "png", "gif", "tif", "tiff", "bmp", "psd", "webp"), "MasterImage"
    ),
    "pdf": "Pdf",
    "ai": "Illustrator",
    "eps": "PostScript",
    "ps": "PostScript",
    **dict.fromkeys(("mp4", "mov", "avi", "m4v", "wmv", "flv", "mpg", "mpeg", "webm"), "Video"),
    **dict.fromkeys(("zip", "tar"), "Zip"),
    "svg": "Svg",
    "xml": "Xml",
    "css": "NoType",
    "js": "NoType",
    "txt": "NoType",
    "icc": "IccProfile",
    "icm": "IccProfile",
    "ttf": "Font",
    "otf": "Font",
    "xsl": "Xsl",
    "vnt": "Vignette",
    "doc": "NoType",
    "xls": "NoType",
    "ppt": "NoType",
    "rtf": "NoType",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a file goes, relative to its company root folder."""

    folder: str  # "" or "a/b/" (with a trailing slash)
    name: str  # the last segment

    @property
    def path(self) -> str:
        """Folder and name joined."""
        return self.folder + self.name

    @property
    def asset_name(self) -> str:
        """The IPS asset name: the file name without its last extension (D-15)."""
        stem, dot, _ = self.name.rpartition(".")
        return stem if dot and stem else self.name

    @property
    def extension(self) -> str:
        """The last extension, lower-case, or ``""``."""
        stem, dot, ext = self.name.rpartition(".")
        return ext.lower() if dot and stem else ""


class TargetRefused(ValueError):
    """A per-file ``UploadError``: the message says why."""


def target_path(base: str, dest_folder: str | None, company_root_folder: str) -> Target:
    """Derive a file's target (D-16 steps 2-5); raises TargetRefused with the reason."""
    path = base
    if dest_folder is not None and dest_folder != "":
        path = (dest_folder if dest_folder.endswith("/") else dest_folder + "/") + base
    path = _SLASHES.sub("/", path.replace("\\", "/")).lstrip("/")
    segments = path.split("/")
    if len(segments) > 1 and segments[0] == company_root_folder:
        segments = segments[1:]
    _check_segments(segments)
    return Target(folder="".join(s + "/" for s in segments[:-1]), name=segments[-1])


def _check_segments(segments: list[str]) -> None:
    if not segments[-1]:
        raise TargetRefused("file name is empty")
    for segment in segments:
        if segment in (".", ".."):
            raise TargetRefused(f"path segment {segment!r} is not allowed")
        if _CONTROL.search(segment):
            raise TargetRefused("path contains control characters")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise TargetRefused(f"path segment longer than {MAX_SEGMENT_BYTES} bytes")
    if sum(len(s.encode("utf-8", "surrogatepass")) + 1 for s in segments) > MAX_PATH_BYTES:
        raise TargetRefused(f"path longer than {MAX_PATH_BYTES} bytes")


def file_type_problem(target: Target, size: int, *, javascript_enabled: bool) -> str | None:
    """D-25 checks on a received file; returns the UploadError message or None."""
    if _BAD_NAME_CHARS.search(target.name):
        return "file name contains a character IPS does not allow"
    if size == 0:
        return "file is empty (0 bytes)"
    ext = target.extension
    if ext not in ASSET_TYPES or (ext == "js" and not javascript_enabled):
        return f"unsupported file type: .{ext}" if ext else "unsupported file type (no extension)"
    return None


def asset_type(target: Target) -> str:
    """The Job Log File Type for this file's extension."""
    return ASSET_TYPES.get(target.extension, "NoType")


def inside(root: str, candidate: str) -> bool:
    """Whether ``candidate`` lies strictly inside ``root`` (both absolute, normalised)."""
    root_norm = os.path.normpath(root)
    cand_norm = os.path.normpath(candidate)
    return os.path.commonpath([root_norm, cand_norm]) == root_norm and cand_norm != root_norm
