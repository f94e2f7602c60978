"""Small files for the multipart bodies: read whole and laid out as form parts, in one buffer
per group of files, in process or by the read helper.

:class:`HelperReader` sends groups of files to the read helper process
(:mod:`bulkup.transport.read_helper`), which
answers each with the group's parts ready to send. Until
:meth:`HelperReader.start` has started the helper, and for good if it dies, it builds the parts
in process with :func:`small_parts`. Both read a file with the same function
(:func:`bulkup.transport.read_helper.read_whole`), so a file that vanished, cannot be opened or
changed size
since the walk raises the same :class:`~bulkup.errors.SourceError`, naming it, either way. Both
check each file once its last byte is read (one ``fstat`` on the descriptor read from): a size,
``mtime_ns`` or inode other than the walk's raises
:class:`~bulkup.errors.SourceChangedWhileSent`, and nothing of the group is sent.

With ``direct_to`` (a connection's descriptor from :meth:`bulkup.transport.wire.Wire.hand_over`,
plain TCP only), the helper writes the group's parts straight into the connection, as much as it
takes without waiting, and only the rest comes back; the caller must have nothing unsent on that
connection, and send what comes back before anything else. If the helper dies during such a
request, some of the group may be on the wire: the request fails with
:class:`~bulkup.errors.HelperLost` (the POST is retried on a fresh connection), never with a
silent in-process retry.

Which reader a run uses is the client's choice (:func:`bulkup.transport.client.small_file_reader`):
the helper only on plain HTTP, where it writes into the connection (measured in
``benchmarks/README.md``); over TLS every byte passes through the uploader to be encrypted
anyway, and the helper only costs CPU.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import structlog

from bulkup.errors import (
    HelperLost,
    HelperUnavailable,
    SourceChangedError,
    SourceChangedWhileSent,
    SourceError,
)
from bulkup.models import FileEntry
from bulkup.transport import read_helper as wire

log = structlog.get_logger("bulkup.transport.reader")
HELPER_SCRIPT = Path(wire.__file__)
CLOSE_TIMEOUT_S = 5.0
# The helper pays off where per-file system calls dominate; for bigger files its extra copy
# through the pipe costs more than it saves (benchmarks/README.md, the read_helper sweep).
HELPER_MAX_MEAN_FILE = 64 * 1024


class FilePart(NamedTuple):
    """A file of a POST with its prepared part header (one per file and attempt: a named tuple
    is built in a third of a frozen dataclass's time)."""

    entry: FileEntry
    header: bytes


class SmallFileReader(Protocol):
    """Lays out a group of small files as form parts: header, bytes, CRLF each."""

    @property
    def writes_direct(self) -> bool:
        """Whether :meth:`parts` can write into a connection itself (``direct_to``)."""

    async def parts(
        self, group: Sequence[FilePart], direct_to: int | None = None
    ) -> bytes | bytearray:
        """The group's parts still to be sent (all of them unless ``direct_to`` took some)."""

    async def start(self) -> None:
        """Get ready (before the first :meth:`parts` that should not be read in process)."""

    async def close(self) -> None:
        """Release what :meth:`start` took."""


class InProcessReader:
    """Reads on the calling thread: three system calls a file, no thread hop."""

    writes_direct = False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def parts(self, group: Sequence[FilePart], direct_to: int | None = None) -> bytes:
        return small_parts(group)


class HelperReader:
    """Reads through the read helper process once :meth:`start` has started it; before that,
    and for good once the helper fails, reads in process."""

    def __init__(self, python: str = sys.executable, script: Path = HELPER_SCRIPT) -> None:
        self._argv = (python, "-I", "-S", str(script))
        self._process: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Task[None] | None = None
        self._waiting: collections.deque[tuple[asyncio.Future[bytearray], list[FilePart]]]
        self._waiting = collections.deque()
        self._arrived = asyncio.Event()
        self._broken = False
        self._fd_channel: socket.socket | None = None
        self.helper_groups = 0  # groups the helper answered
        self.direct_groups = 0  # of which it wrote into a connection

    @property
    def writes_direct(self) -> bool:
        return self._process is not None and not self._broken and self._fd_channel is not None

    async def parts(
        self, group: Sequence[FilePart], direct_to: int | None = None
    ) -> bytes | bytearray:
        """The group's parts still to be sent; raises SourceError for the first file that
        cannot be sent, HelperLost if the helper died while writing into ``direct_to``.

        Groups of files averaging over HELPER_MAX_MEAN_FILE bytes are read in process."""
        process = self._process
        if (
            process is None
            or self._broken
            or sum(p.entry.size for p in group) > HELPER_MAX_MEAN_FILE * len(group)
        ):
            return small_parts(group)
        direct = direct_to is not None and self._pass_fd(direct_to)
        try:
            rest = await self._request(process, list(group), direct)
        except HelperUnavailable as exc:
            if direct:
                raise HelperLost(f"the read helper stopped while sending files: {exc}") from None
            return small_parts(group)
        self.direct_groups += direct
        return rest

    def _pass_fd(self, fd: int) -> bool:
        """Hand the helper a copy of the connection's descriptor (for the next request)."""
        if self._fd_channel is None:
            return False
        try:
            socket.send_fds(self._fd_channel, [b"f"], [fd])
        except OSError:  # a full channel cannot happen with a few requests in flight
            return False
        return True

    @property
    def helper_pid(self) -> int | None:
        """The helper's process id while it serves reads."""
        return None if self._process is None or self._broken else self._process.pid

    async def start(self) -> None:
        """Start the helper; when it cannot start, reads stay in process (logged)."""
        if self._process is not None or self._broken:
            return
        read_end, write_end = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                "--fd-channel",
                str(theirs.fileno()),
                stdin=asyncio.subprocess.PIPE,
                stdout=write_end,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except OSError as exc:
            os.close(read_end)
            ours.close()
            self._give_up(f"cannot start: {exc}")
            return
        finally:
            os.close(write_end)
            theirs.close()
        ours.setblocking(False)
        self._fd_channel = ours
        self._process = process
        self._replies = asyncio.get_running_loop().create_task(
            self._read_replies(ReplyPipe(read_end))
        )
        log.debug("read_helper_started", pid=process.pid)

    def _request(
        self, process: asyncio.subprocess.Process, group: list[FilePart], direct: bool
    ) -> asyncio.Future[bytearray]:
        assert process.stdin is not None
        parts = [wire.REQUEST.pack(len(group), wire.TO_SOCKET if direct else wire.TO_PIPE)]
        for part in group:
            path = os.fsencode(part.entry.path)
            entry = part.entry
            parts += (
                wire.FILE.pack(
                    entry.size, entry.mtime_ns, entry.inode, len(path), len(part.header)
                ),
                path,
                part.header,
            )
        future: asyncio.Future[bytearray] = asyncio.get_running_loop().create_future()
        self._waiting.append((future, group))  # replies come in request order
        self._arrived.set()
        process.stdin.write(b"".join(parts))
        return future

    async def _read_replies(self, pipe: ReplyPipe) -> None:
        try:
            while True:
                await self._request_waiting()
                future, group = self._waiting[0]  # stays queued (failed by _give_up) until read
                status, index, length = wire.REPLY.unpack(await pipe.read(wire.REPLY.size))
                payload = await pipe.read(length)
                self._waiting.popleft()
                if future.done():  # its body was cancelled meanwhile
                    continue
                if status == wire.OK:
                    self.helper_groups += 1
                    future.set_result(payload)
                else:
                    future.set_exception(_source_error(status, group[index].entry, payload))
        except Exception as exc:  # EOF, a broken pipe, a garbled reply: stop using it
            self._give_up(f"stopped answering: {type(exc).__name__}")
        finally:
            pipe.close()

    async def _request_waiting(self) -> None:
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()

    def _give_up(self, reason: str) -> None:
        if not self._broken:
            log.warning(
                "read_helper_failed", reason=reason, consequence="files are read in process"
            )
        self._broken = True
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(HelperUnavailable(reason))

    async def close(self) -> None:
        """Stop the helper (EOF on its stdin) and wait for it."""
        self._broken = True
        process = self._process
        if process is None:
            return
        log.debug(
            "read_helper_stopping",
            pid=process.pid,
            groups=self.helper_groups,
            direct=self.direct_groups,
        )
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._replies is not None:
            self._replies.cancel()
            await asyncio.gather(self._replies, return_exceptions=True)
        if self._fd_channel is not None:
            self._fd_channel.close()
        self._give_up("closed")


class ReplyPipe:
    """The read end of the helper's stdout: each read lands straight in the buffer it returns
    (one copy, kernel to final buffer; no stream buffer in between)."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd

    async def read(self, size: int) -> bytearray:
        """Exactly ``size`` bytes; EOFError if the helper is gone first."""
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            try:
                count = os.readv(self._fd, [view[got:]])
            except BlockingIOError:
                await self._readable()
                continue
            if count == 0:
                raise EOFError("the read helper closed its output")
            got += count
        return buffer

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self._fd, ready.set_result, None)
        try:
            await ready
        finally:
            loop.remove_reader(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _source_error(status: int, entry: FileEntry, reason: bytes | bytearray) -> SourceError:
    text = reason.decode("utf-8", "replace")
    if status == wire.CHANGED:
        return SourceChangedError(entry.path, text)
    if status == wire.MODIFIED:
        return SourceChangedWhileSent(entry.path, text)
    return SourceError(entry.path, text)


def restat(entry: FileEntry, max_file_size: int) -> FileEntry | str:
    """The entry as its file is now (size, ``mtime_ns``, inode), for sending it again, or why
    it cannot be sent any more. A path that is now a link is not followed (it may lead out of
    the source roots, which only the walker can tell)."""
    try:
        st = os.stat(entry.path, follow_symlinks=False)
    except FileNotFoundError:
        return "file vanished before it was sent"
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return "changed while being sent: no longer a regular file"
    if st.st_size > max_file_size:
        return f"file too large: {st.st_size} bytes > max_file_size {max_file_size}"
    return entry._replace(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


def small_parts(group: Sequence[FilePart]) -> bytes:
    """Read a group of small files whole, in process, and lay them out as form parts.

    Four system calls a file: open, one read of size + 1 bytes (a longer answer means the file
    grew, a shorter one that it shrank), fstat (the file still is what the walk saw), close.
    """
    pieces: list[bytes] = []
    for part in group:
        entry = part.entry
        status, data = wire.read_whole(
            os.fsencode(entry.path), entry.size, entry.mtime_ns, entry.inode
        )
        if status != wire.OK:
            raise _source_error(status, part.entry, data)
        pieces += (part.header, data, wire.CRLF)
    return b"".join(pieces)
