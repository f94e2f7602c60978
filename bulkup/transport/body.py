"""The multipart body of one POST, streamed from disk with an exact Content-Length.

Layout (spec §2.2, D-04): the ``auth`` part, the ``uploadParams`` part, then ``file1`` …
``fileN``. The length is known before the first byte is sent, so the POST carries a
Content-Length (D-18) and no chunked encoding.

How bytes move (measured in ``benchmarks/``): consecutive small files are grouped up to
``chunk_size`` bytes, and the :class:`~bulkup.transport.reader.SmallFileReader` the client gives
the body hands back each group laid out as form parts in one buffer, the next group read ahead
while this one is sent. Where the connection can take them from another process (plain HTTP on
asyncio's loop, no bandwidth limit: :attr:`Wire.can_hand_over <bulkup.transport.wire.Wire>`)
and the reader is the read helper, the helper writes each group into the connection itself and
hands back only what did not fit; the body then reads no group ahead. A large file goes alone:
by ``sendfile()`` where the wire offers it, else in ``chunk_size`` chunks, one thread hop each.
Everything that touches the socket is in :mod:`bulkup.transport.wire`. aiofiles is not used
here: it costs a thread round trip per read call, which is the very cost this module avoids
(see README, "Why not aiofiles on the hot path").

A file whose size differs from what the walker saw fails the POST with
:class:`SourceChangedError`; aiohttp wraps what a body raises, and the client unwraps it
(:func:`bulkup.transport.client.mapped_errors`), so the sender sees the body's own error.

What is sent is what was walked: once a file's last byte is read (small files by the reader,
large ones here, whichever way they travel), one ``fstat`` on the descriptor read from checks
its size, ``mtime_ns`` and inode against the walk's. A file that no longer matches, or that grew
or shrank while it was sent, raises :class:`SourceChangedWhileSent` before the closing boundary:
the POST is cut short of its Content-Length, which the servlet drops whole (spec D-13), and the
sender resends the batch.

Every byte handed to the connection is counted into :attr:`BatchBody.meter` (the run's
:class:`~bulkup.stats.Stats`, set by the client) as it goes, and paced by :attr:`BatchBody.pace`
(the run's bandwidth limit, set by the client) when there is one.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from bulkup.errors import SourceChangedError, SourceChangedWhileSent, SourceError
from bulkup.models import FileEntry
from bulkup.stats import Stats
from bulkup.transport import read_helper
from bulkup.transport.reader import FilePart, InProcessReader, SmallFileReader
from bulkup.transport.wire import Pace, Wire

CRLF = b"\r\n"
_UNSAFE_IN_HEADER = re.compile('["\\\\;\r\n]')


def new_boundary() -> str:
    """A boundary that cannot plausibly occur in file data."""
    return "bulkup-" + uuid.uuid4().hex


def xml_part(boundary: str, name: str, xml: bytes) -> bytes:
    """One complete XML form part (D-02: text/plain, UTF-8), delimiter line included."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n"
    )
    return head.encode("ascii") + xml + CRLF


def file_part_header(boundary: str, index: int, header_name: str) -> bytes:
    """The delimiter line and headers of file part ``index``.

    ``header_name`` is printable ASCII without ``"``, ``\\`` or ``;`` (D-17 sends every other
    name in ``fileName``), so it cannot break out of its quotes or its header line.
    """
    if _UNSAFE_IN_HEADER.search(header_name) or not header_name.isprintable():
        raise ValueError(f"unsafe file name for a part header: {header_name!r}")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file{index}"; '
        f'filename="{header_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    return head.encode("utf-8")


class BatchBody(Payload):
    """A streaming ``multipart/form-data`` payload for aiohttp with an exact size."""

    def __init__(
        self,
        *,
        boundary: str,
        head: bytes,
        files: Sequence[FilePart],
        chunk_size: int,
        reader: SmallFileReader | None = None,
    ) -> None:
        self.boundary = boundary
        self._head = head
        self._files = tuple(files)
        self._chunk_size = chunk_size
        self._closing = f"--{boundary}--\r\n".encode("ascii")
        content_type = f"multipart/form-data; boundary={boundary}"
        super().__init__(None, content_type=content_type)
        self._size = (
            len(head)
            + len(self._closing)
            + sum(len(p.header) + p.entry.size + 2 for p in self._files)
        )
        # Set by the client for each POST: how small files are read, what counts and paces.
        self.reader: SmallFileReader = reader or InProcessReader()
        self.meter: Stats | None = None
        self.pace: Pace | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed upload body cannot be decoded")

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        await self.write(writer)

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send the whole body; raises SourceChangedError if a file changed on disk."""
        wire = Wire(writer, self.meter, self.pace)
        await wire.write(self._head)
        groups = list(_groups(self._files, self._chunk_size))
        if self.reader.writes_direct and wire.can_hand_over:
            await self._write_direct(wire, groups)
        else:
            await self._write_read_ahead(wire, groups)
        await wire.write(self._closing)
        await wire.flush()

    async def _write_read_ahead(self, wire: Wire, groups: list[list[FilePart]]) -> None:
        """Each small group read (the next one ahead) while the one before is written. The
        reads are tasks owned here: whatever way the write ends, those still running are
        cancelled and awaited before it returns."""
        reads: dict[int, asyncio.Task[bytes | bytearray]] = {}
        try:
            for index, group in enumerate(groups):
                if self._is_large(group):
                    await self._write_large(wire, group[0])
                    continue
                if index not in reads:
                    reads[index] = self._start_read(group)
                if index + 1 < len(groups) and not self._is_large(groups[index + 1]):
                    reads[index + 1] = self._start_read(groups[index + 1])  # read ahead
                data = await reads[index]
                del reads[index]
                await wire.write(data)
        finally:
            for task in reads.values():
                task.cancel()
            if reads:
                await asyncio.wait(reads.values())

    async def _write_direct(self, wire: Wire, groups: list[list[FilePart]]) -> None:
        """Each small group written into the connection by the reader, the rest by us."""
        for group in groups:
            if self._is_large(group):
                await self._write_large(wire, group[0])
                continue
            rest = await self.reader.parts(group, direct_to=await wire.hand_over())
            wire.count(_group_bytes(group) - len(rest))  # what the helper wrote itself
            await wire.write(rest)

    def _is_large(self, group: list[FilePart]) -> bool:
        return len(group) == 1 and group[0].entry.size > self._chunk_size

    def _start_read(self, group: list[FilePart]) -> asyncio.Task[bytes | bytearray]:
        task = asyncio.get_running_loop().create_task(self.reader.parts(group))
        task.add_done_callback(_consume_outcome)
        return task

    async def _write_large(self, wire: Wire, part: FilePart) -> None:
        await wire.write(part.header)
        handle = await asyncio.to_thread(_open_checked, part.entry)
        try:
            if wire.can_sendfile:
                sent = await wire.sendfile(handle, 0, part.entry.size)
                if sent != part.entry.size:
                    raise SourceChangedWhileSent(
                        part.entry.path, "file shrank while it was being sent"
                    )
            else:
                await self._copy_in_chunks(wire, handle, part.entry)
            await asyncio.to_thread(_check_at_end, handle, part.entry)
        finally:
            handle.close()
        await wire.write(CRLF)

    async def _copy_in_chunks(self, wire: Wire, handle: Any, entry: FileEntry) -> None:
        """The file in ``chunk_size`` reads, the next one read (on a thread) while this one is
        written (over TLS: encrypted on the loop's thread), so the two overlap."""
        sizes = _chunk_sizes(entry.size, self._chunk_size)
        reading = _start_thread_read(handle, next(sizes, 0), entry)
        try:
            while reading is not None:
                chunk = await reading
                size = next(sizes, 0)
                reading = _start_thread_read(handle, size, entry) if size else None
                await wire.write(chunk)
        finally:
            if reading is not None:  # the write failed: let the read end before the file closes
                await asyncio.wait([reading])


def _groups(files: Sequence[FilePart], chunk_size: int) -> Iterator[list[FilePart]]:
    """Consecutive small files up to ``chunk_size`` bytes together; a large file alone."""
    group: list[FilePart] = []
    total = 0
    for part in files:
        size = part.entry.size
        if size > chunk_size:
            if group:
                yield group
                group, total = [], 0
            yield [part]
            continue
        if group and total + size > chunk_size:
            yield group
            group, total = [], 0
        group.append(part)
        total += size
    if group:
        yield group


def _group_bytes(group: list[FilePart]) -> int:
    """The bytes of a group's parts: headers, data and each part's closing CRLF."""
    return sum(len(p.header) + p.entry.size + 2 for p in group)


def _open_checked(entry: FileEntry) -> Any:
    try:
        handle = open(entry.path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise SourceError(entry.path, "file vanished before it was sent") from None
    except OSError as exc:
        raise SourceError(entry.path, f"cannot open: {exc.strerror or exc}") from None
    size = os.fstat(handle.fileno()).st_size
    if size != entry.size:
        handle.close()
        raise SourceChangedError(
            entry.path, f"size changed from {entry.size} to {size} bytes since the walk"
        )
    return handle


def _chunk_sizes(total: int, chunk_size: int) -> Iterator[int]:
    while total > 0:
        size = min(chunk_size, total)
        yield size
        total -= size


def _start_thread_read(handle: Any, size: int, entry: FileEntry) -> asyncio.Future[bytes] | None:
    if not size:
        return None
    reading = asyncio.ensure_future(asyncio.to_thread(_read_exact, handle, size, entry))
    reading.add_done_callback(_consume_outcome)
    return reading


def _read_exact(handle: Any, size: int, entry: FileEntry) -> bytes:
    data = handle.read(size) if size else b""
    while data is not None and len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            raise SourceChangedWhileSent(entry.path, "file shrank while it was being sent")
        data += more
    return bytes(data or b"")


def _check_at_end(handle: Any, entry: FileEntry) -> None:
    """After the last byte: nothing more to read, and the file still is what the walk saw."""
    if handle.read(1):
        raise SourceChangedWhileSent(entry.path, "file grew while it was being sent")
    changed = read_helper.changed_since_walk(
        os.fstat(handle.fileno()), entry.size, entry.mtime_ns, entry.inode
    )
    if changed:
        raise SourceChangedWhileSent(entry.path, changed)


def _consume_outcome(task: asyncio.Task[bytes | bytearray]) -> None:
    """A read-ahead that is never awaited (its body failed first) leaves no loose error."""
    if not task.cancelled():
        task.exception()
