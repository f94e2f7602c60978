"""Small files on disk and their form parts, for the body and reader tests."""

from __future__ import annotations

from pathlib import Path

from bulkup.body import file_part_header
from bulkup.models import FileEntry
from bulkup.reader import FilePart


def file_parts(folder: Path, sizes: list[int], prefix: str = "f",
               boundary: str = "b") -> list[FilePart]:
    """One file per size (``<prefix><n>.bin``, each byte ``n % 256``), with its part header."""
    parts = []
    for i, size in enumerate(sizes, 1):
        path = folder / f"{prefix}{i}.bin"
        path.write_bytes(bytes([i % 256]) * size)
        entry = FileEntry(path=str(path), rel_path=path.name, target=f"Acme/{path.name}",
                          size=size, mtime_ns=0)
        parts.append(FilePart(entry, file_part_header(boundary, i, entry.target)))
    return parts
