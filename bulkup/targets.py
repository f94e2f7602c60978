"""Target paths on the server: derivation, refusal checks, warnings (pure, no I/O).

A target is ``<company_root>/<dest_folder>/<rel_path>``, ``/``-separated and NFC (spec D-16).
:func:`target_problem` says why the server would refuse one (D-16 step 5, D-25),
:func:`needs_file_name_param` whether it must travel in ``uploadPostParam/fileName`` (D-17), and
:func:`header_file_name` the placeholder ``filename`` sent in the part header in that case.

Names read from disk are ``str`` with surrogate escapes where their bytes were not UTF-8.
:func:`undecodable_problem` says which segment of a path is such a name, and :func:`escaped`
turns any text into one that is safe to store, write as JSON and print: every undecodable byte
shown as ``\\xNN`` (``caf\\xe9.jpg``), every control character as ``\\xNN``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "MAX_PATH_BYTES",
    "MAX_SEGMENT_BYTES",
    "build_target",
    "escaped",
    "header_file_name",
    "name_warnings",
    "needs_file_name_param",
    "target_problem",
    "undecodable_problem",
]

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096

_SLASHES = re.compile(r"/{2,}")
_FORBIDDEN_IN_FILE_NAME = '\\:*?"<>|'
_URL_TROUBLE = "#%&+,;= "
_HEADER_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
# one C-speed search each, instead of a Python loop over characters (the walk's hot path)
_NEEDS_FILE_NAME_PARAM = re.compile(r'[^\x20-\x7e]|["\\;]')
_PROBLEM_IN_NAME = re.compile(r'[^\x20-\x7e]|[\\:*?"<>|]')  # what the name checks look at
_URL_TROUBLE_IN_NAME = re.compile("[#%&+,;= ]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc exactly
_UNSHOWABLE = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")
_UNSTORABLE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTES = range(0xDC80, 0xDD00)  # surrogateescape's stand-ins for bytes 0x80-0xFF


def build_target(rel_path: str, *, company_root: str | None, dest_folder: str | None) -> str:
    """Join the company root, the destination folder and a relative path into a target.

    Args:
        rel_path: the file's path relative to its source root, already ``/``-separated.
        company_root: the company root folder (``Acme`` or ``Acme/``), or None/empty.
        dest_folder: a folder under the company root, or None/empty.

    Returns:
        The NFC-normalised target with runs of ``/`` collapsed and no leading ``/``.
    """
    joined = "/".join(part for part in (company_root, dest_folder, rel_path) if part)
    normalised = unicodedata.normalize("NFC", joined)
    return _SLASHES.sub("/", normalised).lstrip("/")


def needs_file_name_param(target: str) -> bool:
    """Whether the target must travel in ``uploadPostParam/fileName`` (spec D-17).

    True when the target holds anything outside printable ASCII (0x20-0x7E), or one of
    ``"``, ``\\``, ``;`` (characters that multipart header parsers mangle).
    """
    return _NEEDS_FILE_NAME_PARAM.search(target) is not None


def target_problem(target: str) -> str | None:
    """The reason the server would refuse this target, or None when it is acceptable.

    Checks, in order: undecodable names, control characters, the path length, then each
    segment (empty, ``.``/``..``, too long, characters D-25 forbids in the file name, and a ``\\``
    in a folder name, which the server would turn into ``/``, D-16 step 3).

    Args:
        target: a target as built by :func:`build_target`.

    Returns:
        A short, specific message such as ``"file name contains ':'"``, or None.
    """
    return _encoding_problem(target) or _length_problem(target) or _segments_problem(target)


def folder_problem(folder: str) -> str | None:
    """:func:`target_problem` for the folder part of targets (``""``: no folder); the walker
    checks it once per directory and :func:`name_problem` once per file."""
    if not folder:
        return None
    return _encoding_problem(folder) or _folders_problem(folder.split("/"))


def name_problem(name: str, target: str) -> str | None:
    """The file-name and whole-path checks of :func:`target_problem` for one file.

    ``name`` is one path segment (a directory entry's name, so never with ``/``) and
    ``target`` the full target ending in it."""
    if (
        name
        and len(name) <= MAX_SEGMENT_BYTES
        and name not in (".", "..")
        and _PROBLEM_IN_NAME.search(name) is None
        and len(target) <= MAX_PATH_BYTES
        and target.isascii()
    ):
        return None  # the usual name, cleared by one search (once per file walked)
    return (
        _encoding_problem(name)
        or _length_problem(target)
        or _segment_problem(name, "file name")
        or _file_name_problem(name)
    )


def name_warnings(target: str) -> list[str]:
    """Client warnings for a file name that works but troubles Image Serving URLs (spec D-25).

    Returns:
        One message per troublesome character (``# % & + , ; =`` or a space) in the file name.
    """
    name = target.rpartition("/")[2]
    if _URL_TROUBLE_IN_NAME.search(name) is None:
        return []
    return [f"file name contains {_shown(char)}" for char in _URL_TROUBLE if char in name]


def header_file_name(index: int, target: str) -> str:
    """The placeholder ``filename`` of a part whose target travels in ``fileName`` (D-17).

    Args:
        index: the part's number, from 1 (``file1``).
        target: the real target; only its extension is kept, and only when it is 1-10 ASCII
            letters or digits.

    Returns:
        ``file<index>.<ext>``, or ``file<index>`` when the extension is absent or unusual.

    Raises:
        ValueError: when ``index`` is below 1.
    """
    if index < 1:
        raise ValueError(f"part index must be 1 or more, got {index}")
    stem, dot, extension = target.rpartition("/")[2].rpartition(".")
    if dot and stem and _HEADER_EXTENSION.fullmatch(extension):
        return f"file{index}.{extension}"
    return f"file{index}"


def escaped(text: str) -> str:
    """``text`` safe for SQLite, JSON and a terminal: an undecodable byte (a surrogate escape)
    becomes ``\\xNN`` with the byte's value, another lone surrogate ``\\uNNNN``, a control
    character ``\\xNN``; everything else, backslashes included, is kept as it is."""
    if text.isascii() and text.isprintable():
        return text  # the usual name: one C-speed check
    return _UNSHOWABLE.sub(_escape_char, text)


def storable(text: str) -> str:
    """``text`` as UTF-8 can carry it, exact wherever it can be: only an undecodable byte (a
    surrogate escape) becomes ``\\xNN`` (another lone surrogate ``\\uNNNN``). For JSON, whose
    encoder escapes control characters itself, so that they stay exact."""
    if text.isascii():
        return text
    return _UNSTORABLE.sub(_escape_char, text)


def undecodable_problem(path: str, sep: str = "/") -> str | None:
    """Why a path read from disk cannot be sent or recorded: its first segment whose bytes
    are not UTF-8, shown escaped; None when every segment decodes.

    Args:
        path: a path as ``os`` returns it (surrogate escapes for undecodable bytes).
        sep: the separator of ``path``'s segments.

    Returns:
        ``"file name is not valid UTF-8: caf\\xe9.jpg"`` when the last segment is the bad one,
        ``"directory name is not valid UTF-8: caf\\xe9"`` when a directory above it is.
    """
    if path.isascii():
        return None
    try:
        path.encode("utf-8")  # 0.1 us for a 70-character path; the regex search took 0.4
        return None
    except UnicodeEncodeError:
        pass
    *folders, name = path.split(sep)
    bad = next((segment for segment in folders if _SURROGATE.search(segment)), None)
    if bad is None:
        return f"file name is not valid UTF-8: {escaped(name)}"
    return f"directory name is not valid UTF-8: {escaped(bad)}"


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _encoding_problem(target: str) -> str | None:
    if target.isascii() and target.isprintable():
        return None
    surrogate, control = _SURROGATE.search(target), _CONTROL.search(target)
    first = min((m for m in (surrogate, control) if m), key=lambda m: m.start(), default=None)
    if first is None:
        return None
    if first is surrogate:
        return "path is not valid UTF-8"
    return f"path contains control character U+{ord(first.group()):04X}"


def _length_problem(target: str) -> str | None:
    size = len(target.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes ({size})"
    return None


def _segments_problem(target: str) -> str | None:
    *folders, name = target.split("/")
    return (
        _folders_problem(folders) or _segment_problem(name, "file name") or _file_name_problem(name)
    )


def _folders_problem(folders: list[str]) -> str | None:
    for folder in folders:
        problem = _segment_problem(folder, "folder name")
        if problem is None and "\\" in folder:
            problem = "folder name contains '\\'"
        if problem:
            return problem
    return None


def _segment_problem(segment: str, what: str) -> str | None:
    if not segment:
        return f"empty {what}"
    if segment in (".", ".."):
        return f"path contains a '{segment}' segment"
    size = len(segment.encode("utf-8"))
    if size > MAX_SEGMENT_BYTES:
        return f"{what} longer than {MAX_SEGMENT_BYTES} bytes ({size})"
    return None


def _file_name_problem(name: str) -> str | None:
    for char in _FORBIDDEN_IN_FILE_NAME:
        if char in name:
            return f"file name contains '{char}'"
    return None


def _shown(char: str) -> str:
    return "a space" if char == " " else f"'{char}'"
