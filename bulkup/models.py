"""The records that flow through the pipeline: no I/O, no asyncio.

``FileEntry`` (one walked file and its target) → ``Batch`` (the files of one POST) →
``FileFailure`` (a file that could not be delivered, with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class FileEntry(NamedTuple):
    """One regular file found by the walker, with where it goes on the server.

    A named tuple, not a dataclass: one is built for every file walked, on the event loop, and
    a tuple takes 0.5 µs where a frozen dataclass took 1.15 µs.

    Attributes:
        path: the file's path on disk (as the walker reached it).
        rel_path: its path relative to its source root, ``/``-separated, NFC.
        target: the full target path sent to the server (company root, dest folder, rel_path).
        size: size in bytes at walk time.
        mtime_ns: modification time at walk time.
        inode: inode number at walk time (0 where the platform has none: not checked).
            Once a file's last byte is read, its size, mtime_ns and inode are checked against
            these (what is sent is what was walked); a file that changed is stat'ed again and
            resent with its new values.
        needs_file_name_param: True when the target must travel in ``uploadPostParam/fileName``
            (spec D-17: not printable ASCII, or contains ``"``, ``\\``, ``;``); such a file
            travels alone in its POST.
    """

    path: str
    rel_path: str
    target: str
    size: int
    mtime_ns: int
    inode: int = 0
    needs_file_name_param: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    """The files of one POST (never empty)."""

    entries: tuple[FileEntry, ...]

    @property
    def total_bytes(self) -> int:
        """Sum of the files' sizes (framing aside)."""
        return sum(entry.size for entry in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class FileFailure:
    """A file that was not delivered, and why (path as found on disk)."""

    path: str
    reason: str
    target: str | None = None
