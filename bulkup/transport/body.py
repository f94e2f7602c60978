"""The multipart body of one POST, streamed from disk with an exact Content-Length.

Layout (spec §2.2, D-04): the ``auth`` part, the ``uploadParams`` part, then ``file1`` …
``fileN``. The length is known before the first byte is sent, so the POST carries a
Content-Length (D-18) and no chunked encoding.

How bytes move (measured in ``benchmarks/``): consecutive small files are grouped up to
``chunk_size`` bytes, and a :class:`~bulkup.transport.reader.SmallFileReader` hands back each group
laid out as form parts in one buffer (by default the read helper process reads them on another
core; see :mod:`bulkup.transport.reader`), the next group read ahead while this one is sent. On
plain TCP on asyncio's loop the helper writes each group into the connection itself and hands back
only what did not fit; the body then waits until the connection has taken everything before each
group, and reads no group ahead. A large file goes alone: ``sendfile()`` on plain HTTP on asyncio's
loop, else ``chunk_size`` chunks, one thread hop each. Part headers and other small writes are
merged into ~64 KiB writes; big buffers pass through uncopied. aiofiles is not used here: it costs
a thread round trip per read call, which is the very cost this module avoids (see README, "Why not
aiofiles on the hot path").

A file whose size differs from what the walker saw fails the POST with
:class:`SourceChangedError`, recorded in :attr:`BatchBody.source_failure` (aiohttp may wrap
exceptions raised while it writes a body).

What is sent is what was walked: once a file's last byte is read (small files by the reader,
large ones here, whichever way they travel), one ``fstat`` on the descriptor read from checks
its size, ``mtime_ns`` and inode against the walk's. A file that no longer matches, or that grew
or shrank while it was sent, raises :class:`SourceChangedWhileSent` before the closing boundary:
the POST is cut short of its Content-Length, which the servlet drops whole (spec D-13), and the
sender resends the batch.

Every byte handed to the connection is counted into :attr:`BatchBody.meter` (the run's
:class:`~bulkup.stats.Stats`, set by the client) as it goes: one integer add per write, per
group the helper wrote directly, per ``sendfile()`` piece (large files go in
:data:`SENDFILE_PIECE` pieces so the count moves during them too).
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

MERGE_BYTES = 64 * 1024
SENDFILE_PIECE = 8 * 1024 * 1024
CRLF = b"\r\n"
_UNSAFE_IN_HEADER = re.compile('["\\\\;\r\n]')


def new_boundary() -> str:
    """A boundary that cannot plausibly occur in file data."""
    return "bulkup-" + uuid.uuid4().hex


def xml_part(boundary: str, name: str, xml: bytes) -> bytes:
    """One complete XML form part (D-02: text/plain, UTF-8), delimiter line included."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\n")
    return head.encode("ascii") + xml + CRLF


def file_part_header(boundary: str, index: int, header_name: str) -> bytes:
    """The delimiter line and headers of file part ``index``.

    ``header_name`` is printable ASCII without ``"``, ``\\`` or ``;`` (D-17 sends every other
    name in ``fileName``), so it cannot break out of its quotes or its header line.
    """
    if _UNSAFE_IN_HEADER.search(header_name) or not header_name.isprintable():
        raise ValueError(f"unsafe file name for a part header: {header_name!r}")
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file{index}\"; "
            f"filename=\"{header_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
    return head.encode("utf-8")


class BatchBody(Payload):
    """A streaming ``multipart/form-data`` payload for aiohttp with an exact size."""

    def __init__(self, *, boundary: str, head: bytes, files: Sequence[FilePart],
                 chunk_size: int, reader: SmallFileReader | None = None) -> None:
        self.boundary = boundary
        self._reader = reader or InProcessReader()
        self._head = head
        self._files = tuple(files)
        self._chunk_size = chunk_size
        self._closing = f"--{boundary}--\r\n".encode("ascii")
        content_type = f"multipart/form-data; boundary={boundary}"
        super().__init__(None, content_type=content_type)
        self._size = (len(head) + len(self._closing)
                      + sum(len(p.header) + p.entry.size + 2 for p in self._files))
        self.source_failure: SourceError | None = None
        self.meter: Stats | None = None  # counts bytes_sent; set by the client per POST

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed upload body cannot be decoded")

    async def write_with_length(self, writer: AbstractStreamWriter,
                                content_length: int | None) -> None:
        await self.write(writer)

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send the whole body; raises SourceChangedError if a file changed on disk."""
        out = _MergingWriter(writer, self.meter)
        await out.write(self._head)
        groups = list(_groups(self._files, self._chunk_size))
        transport = out.sendfile_transport() if self._reader.writes_direct else None
        if transport is not None:
            await self._write_direct(out, transport, groups)
        else:
            await self._write_read_ahead(out, groups)
        await out.write(self._closing)
        await out.flush()

    async def _write_read_ahead(self, out: _MergingWriter,
                                groups: list[list[FilePart]]) -> None:
        reads: dict[int, asyncio.Task[bytes | bytearray]] = {}
        try:
            for index, group in enumerate(groups):
                if self._is_large(group):
                    await self._write_large(out, group[0])
                    continue
                reading = reads.pop(index, None) or self._start_read(group)
                if index + 1 < len(groups) and not self._is_large(groups[index + 1]):
                    reads[index + 1] = self._start_read(groups[index + 1])  # read ahead
                await out.write(await self._guarded(reading))
        finally:
            for task in reads.values():
                task.cancel()

    async def _write_direct(self, out: _MergingWriter, transport: asyncio.Transport,
                            groups: list[list[FilePart]]) -> None:
        """Each small group written into the connection by the reader, the rest by us."""
        for group in groups:
            if self._is_large(group):
                await self._write_large(out, group[0])
                continue
            await out.until_sent(transport)
            fd = _open_connection_fd(transport)  # read again after every await (see there)
            rest = await self._guarded(self._reader.parts(group, direct_to=fd))
            out.count(_group_bytes(group) - len(rest))  # what the helper wrote itself
            await out.write(rest)

    def _is_large(self, group: list[FilePart]) -> bool:
        return len(group) == 1 and group[0].entry.size > self._chunk_size

    def _start_read(self, group: list[FilePart]) -> asyncio.Task[bytes | bytearray]:
        task = asyncio.get_running_loop().create_task(self._reader.parts(group))
        task.add_done_callback(_consume_outcome)
        return task

    async def _write_large(self, out: _MergingWriter, part: FilePart) -> None:
        await out.write(part.header)
        handle = await self._guarded(asyncio.to_thread(_open_checked, part.entry))
        try:
            transport = out.sendfile_transport()
            if transport is not None:
                await out.flush()
                await self._sendfile(transport, handle, part.entry)
            else:
                await self._copy_in_chunks(out, handle, part.entry)
            await self._guarded(asyncio.to_thread(_check_at_end, handle, part.entry))
        finally:
            handle.close()
        await out.write(CRLF)

    async def _copy_in_chunks(self, out: _MergingWriter, handle: Any, entry: FileEntry) -> None:
        """The file in ``chunk_size`` reads, the next one read (on a thread) while this one is
        written (over TLS: encrypted on the loop's thread), so the two overlap."""
        sizes = _chunk_sizes(entry.size, self._chunk_size)
        reading = _start_thread_read(handle, next(sizes, 0), entry)
        try:
            while reading is not None:
                chunk = await self._guarded(reading)
                size = next(sizes, 0)
                reading = _start_thread_read(handle, size, entry) if size else None
                await out.write(chunk)
        finally:
            if reading is not None:  # the write failed: let the read end before the file closes
                await asyncio.wait([reading])

    async def _sendfile(self, transport: asyncio.Transport, handle: Any,
                        entry: FileEntry) -> None:
        """Zero-copy from the page cache to the socket (plain HTTP on asyncio's loop), in
        :data:`SENDFILE_PIECE` pieces, each counted as sent once the kernel took it."""
        loop = asyncio.get_running_loop()
        offset = 0
        while offset < entry.size:
            piece = min(SENDFILE_PIECE, entry.size - offset)
            sent = await loop.sendfile(transport, handle, offset, piece)
            if self.meter is not None:
                self.meter.bytes_sent += sent
            offset += sent
            if sent != piece:
                self.source_failure = SourceChangedWhileSent(entry.path, "file shrank while it "
                                                                         "was being sent")
                raise self.source_failure

    async def _guarded(self, work: Any) -> Any:
        try:
            return await work
        except SourceError as exc:
            self.source_failure = exc
            raise


class _MergingWriter:
    """Merges small writes into ~64 KiB ones; passes big chunks through uncopied; counts what
    it hands to the connection into ``meter``."""

    def __init__(self, writer: AbstractStreamWriter, meter: Stats | None = None) -> None:
        self._writer = writer
        self._buffer = bytearray()
        self._meter = meter

    def count(self, size: int) -> None:
        """``size`` more bytes went to the connection (not through :meth:`write`)."""
        if self._meter is not None:
            self._meter.bytes_sent += size

    def sendfile_transport(self) -> asyncio.Transport | None:
        """The socket transport when the loop can sendfile() on it (plain TCP on asyncio's
        own loop; uvloop has no sendfile and TLS needs the bytes in user space)."""
        transport = getattr(self._writer, "transport", None)
        loop = asyncio.get_running_loop()
        if transport is None or transport.get_extra_info("sslcontext") is not None:
            return None
        if type(loop).__module__.startswith("uvloop"):
            return None
        return transport  # type: ignore[no-any-return]

    async def until_sent(self, transport: asyncio.Transport) -> None:
        """Flush, then wait until the transport has handed every byte to the kernel."""
        await self.flush()
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=0)  # the protocol stays paused until empty
        try:
            await self._writer.drain()
        finally:
            transport.set_write_buffer_limits(high=high, low=low)

    async def write(self, data: bytes | bytearray) -> None:
        if len(data) >= MERGE_BYTES:
            await self.flush()
            await self._writer.write(data)
            if self._meter is not None:
                self._meter.bytes_sent += len(data)
            return
        self._buffer += data
        if len(self._buffer) >= MERGE_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            # hand the filled buffer over and start a new one: no copy, and the transport may
            # keep a reference to what it was given, so a given buffer is never written again
            data, self._buffer = self._buffer, bytearray()
            await self._writer.write(data)
            if self._meter is not None:
                self._meter.bytes_sent += len(data)


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
        raise SourceChangedError(entry.path, f"size changed from {entry.size} to {size} bytes "
                                             "since the walk")
    return handle


def _open_connection_fd(transport: asyncio.Transport) -> int:
    """The connection's descriptor, taken with no await before it is handed on: once the
    transport has closed, its number may already belong to another connection."""
    sock = transport.get_extra_info("socket")
    fd = sock.fileno() if sock is not None and not transport.is_closing() else -1
    if fd < 0:
        raise ConnectionResetError("the connection closed while the body was being sent")
    return fd


def _chunk_sizes(total: int, chunk_size: int) -> Iterator[int]:
    while total > 0:
        size = min(chunk_size, total)
        yield size
        total -= size


def _start_thread_read(handle: Any, size: int,
                       entry: FileEntry) -> asyncio.Future[bytes] | None:
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
    changed = read_helper.changed_since_walk(os.fstat(handle.fileno()), entry.size,
                                             entry.mtime_ns, entry.inode)
    if changed:
        raise SourceChangedWhileSent(entry.path, changed)


def _consume_outcome(task: asyncio.Task[bytes | bytearray]) -> None:
    """A read-ahead that is never awaited (its body failed first) leaves no loose error."""
    if not task.cancelled():
        task.exception()
