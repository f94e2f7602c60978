"""Pack walked files into the batches of one POST each (pure, sync, no I/O).

A batch holds at most ``max_files_per_post`` files and at most ``max_post_bytes`` in the sum of
its file sizes. Two kinds of file travel alone: one larger than the byte cap, and one whose target
must go in ``uploadPostParam/fileName`` (spec D-17, one file per POST).

:class:`PlanListing` numbers the batches of a dry run and prints ``--list``'s lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from bulkup.models import Batch, FileEntry
from bulkup.targets import escaped

__all__ = ["BatchPacker", "PlanListing"]


class BatchPacker:
    """Accumulates entries into batches, in order of arrival.

    Every entry added comes out exactly once: in a batch returned by :meth:`add`, or in the
    one :meth:`flush` returns. A batch is never empty. A batch is handed out as soon as it is
    known to be complete: when the next file would break a cap, when the file cap is reached,
    or when a file that travels alone arrives.

    Args:
        max_post_bytes: cap on the sum of file sizes in one batch (at least 1).
        max_files_per_post: cap on the number of files in one batch (at least 1).

    Raises:
        ValueError: when a cap is below 1.
    """

    def __init__(self, max_post_bytes: int, max_files_per_post: int) -> None:
        if max_post_bytes < 1:
            raise ValueError(f"max_post_bytes must be 1 or more, got {max_post_bytes}")
        if max_files_per_post < 1:
            raise ValueError(f"max_files_per_post must be 1 or more, got {max_files_per_post}")
        self._max_bytes = max_post_bytes
        self._max_files = max_files_per_post
        self._open: list[FileEntry] = []
        self._open_bytes = 0

    @property
    def pending(self) -> int:
        """How many entries the open batch holds."""
        return len(self._open)

    def room(self) -> tuple[int, int]:
        """How many more files, and bytes of them, the open batch takes (each at least 1)."""
        return (
            max(self._max_files - len(self._open), 1),
            max(self._max_bytes - self._open_bytes, 1),
        )

    def add(self, entry: FileEntry) -> list[Batch]:
        """Add one entry.

        Returns:
            The batches this entry completed, oldest first: none, one, or two (the open batch,
            then the entry alone, when the entry must travel alone).
        """
        if entry.needs_file_name_param or entry.size > self._max_bytes:
            return [*self._take_open(), Batch((entry,))]
        done = [] if self._fits(entry) else self._take_open()
        self._open.append(entry)
        self._open_bytes += entry.size
        if len(self._open) >= self._max_files:
            done.extend(self._take_open())
        return done

    def flush(self) -> Batch | None:
        """Close the open batch and return it (None when no entry is waiting)."""
        if not self._open:
            return None
        batch = Batch(tuple(self._open))
        self._open = []
        self._open_bytes = 0
        return batch

    def _fits(self, entry: FileEntry) -> bool:
        return self._open_bytes + entry.size <= self._max_bytes

    def _take_open(self) -> list[Batch]:
        batch = self.flush()
        return [] if batch is None else [batch]


class PlanListing:
    """Counts a plan's POSTs and, given a stream, writes one line per file as each batch is
    complete: ``<POST number>\t<target>\t<size in bytes>\t<source path>``, the names escaped
    for a terminal (a tab or newline in a name shows as ``\x09``/``\x0a``, so a line is
    always four fields). Nothing is kept: memory is the packer's one open batch.

    Args:
        out: where the lines go; None counts only.
    """

    def __init__(self, out: TextIO | None) -> None:
        self._out = out
        self.posts = 0

    def add(self, batches: Iterable[Batch | None]) -> None:
        """Number the batches (a None, from an empty flush, is skipped) and list their files."""
        for batch in batches:
            if batch is None:
                continue
            self.posts += 1
            if self._out is not None:
                post = self.posts
                self._out.write(
                    "".join(
                        f"{post}\t{escaped(e.target)}\t{e.size}\t{escaped(e.path)}\n"
                        for e in batch.entries
                    )
                )
