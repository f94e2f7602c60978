"""Small files on disk, their form parts, and a running read helper, for the body and reader
tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bulkup.models import FileEntry
from bulkup.transport.body import file_part_header
from bulkup.transport.reader import FilePart, HelperReader


def file_parts(
    folder: Path, sizes: list[int], prefix: str = "f", boundary: str = "b"
) -> list[FilePart]:
    """One file per size (``<prefix><n>.bin``, each byte ``n % 256``), with its part header."""
    parts = []
    for i, size in enumerate(sizes, 1):
        path = folder / f"{prefix}{i}.bin"
        data = bytes([i % 256]) * size
        if not path.is_file() or path.read_bytes() != data:  # a second body: files as they are
            path.write_bytes(data)
        st = path.stat()  # as the walker saw it: the body checks size, mtime and inode
        entry = FileEntry(
            path=str(path),
            rel_path=path.name,
            target=f"Acme/{path.name}",
            size=size,
            mtime_ns=st.st_mtime_ns,
            inode=st.st_ino,
        )
        parts.append(FilePart(entry, file_part_header(boundary, i, entry.target)))
    return parts


@contextlib.asynccontextmanager
async def started_helper() -> AsyncIterator[HelperReader]:
    """A read helper that is up and serving, closed on the way out."""
    helper = HelperReader()
    await helper.start()
    assert helper.helper_pid is not None
    try:
        yield helper
    finally:
        await helper.close()
