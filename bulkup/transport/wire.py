"""The connection a body is written into, as the body sees it: every socket, descriptor and
event-loop detail of sending a body lives here, so :mod:`bulkup.transport.body` only lays out
the form and reads the files.

A :class:`Wire` wraps aiohttp's writer for one POST. It merges small writes into ~64 KiB ones and
passes big buffers through uncopied, counts every byte it hands on (the run's ``bytes_sent``),
and, under a bandwidth limit, takes each piece from the run's byte bucket first
(:mod:`bulkup.transport.limits`). It offers two shortcuts, each only where it applies:

- :meth:`Wire.sendfile`: zero-copy from the page cache, on plain TCP on asyncio's own event loop
  (uvloop has no ``loop.sendfile``; TLS needs the bytes in user space). Under a bandwidth limit
  it goes in small paced pieces.
- :meth:`Wire.hand_over`: the connection's descriptor, for the read helper to write a group of
  small files into it itself (plain TCP, no bandwidth limit: the helper's writes cannot be paced),
  once everything written before has left the process.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp.abc import AbstractStreamWriter

from bulkup.stats import Stats

MERGE_BYTES = 64 * 1024
SENDFILE_PIECE = 8 * 1024 * 1024


class Pace(Protocol):
    """What a writer needs of a bandwidth limit (:mod:`bulkup.transport.limits`)."""

    def piece_bytes(self) -> int:
        """How many bytes to hand on at most before the next take."""

    async def take(self, amount: int) -> None:
        """Wait until ``amount`` more bytes may go."""


class Wire:
    """aiohttp's writer for one body: merged, counted, paced writes and the two shortcuts."""

    def __init__(
        self, writer: AbstractStreamWriter, meter: Stats | None = None, pace: Pace | None = None
    ) -> None:
        self._writer = writer
        self._buffer = bytearray()
        self._meter = meter
        self._pace = pace
        self._transport = _plain_socket_transport(writer)

    @property
    def can_sendfile(self) -> bool:
        return self._transport is not None

    @property
    def can_hand_over(self) -> bool:
        """Whether another process may write into the connection (plain TCP, no limit)."""
        return self._transport is not None and self._pace is None

    def count(self, size: int) -> None:
        """``size`` more bytes went to the connection (written by the read helper)."""
        if self._meter is not None:
            self._meter.bytes_sent += size

    async def write(self, data: bytes | bytearray) -> None:
        if len(data) >= MERGE_BYTES:
            await self.flush()
            await self._send(data)
            return
        self._buffer += data
        if len(self._buffer) >= MERGE_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            # hand the filled buffer over and start a new one: no copy, and the transport may
            # keep a reference to what it was given, so a given buffer is never written again
            data, self._buffer = self._buffer, bytearray()
            await self._send(data)

    async def _send(self, data: bytes | bytearray) -> None:
        if self._pace is None:
            await self._writer.write(data)
            self.count(len(data))
            return
        view, offset = memoryview(data), 0
        while offset < len(data):
            piece = view[offset : offset + self._pace.piece_bytes()]
            await self._pace.take(len(piece))
            await self._writer.write(piece)
            self.count(len(piece))
            offset += len(piece)

    async def sendfile(self, handle: Any, offset: int, size: int) -> int:
        """Send ``size`` bytes of ``handle`` from ``offset`` (after what was written before);
        returns how many the file had (fewer: it shrank). Needs :attr:`can_sendfile`."""
        assert self._transport is not None
        await self.flush()
        loop = asyncio.get_running_loop()
        done = 0
        while done < size:
            piece = min(SENDFILE_PIECE, size - done)
            if self._pace is not None:
                piece = min(piece, self._pace.piece_bytes())
                await self._pace.take(piece)
            sent = await loop.sendfile(self._transport, handle, offset + done, piece)
            self.count(sent)
            done += sent
            if sent != piece:
                break
        return done

    async def hand_over(self) -> int:
        """The connection's descriptor, once every byte written before has left the process,
        for a writer outside it; nothing else may be written until that writer is done.

        Read again after every await: once the transport has closed, its number may already
        belong to another connection."""
        transport = self._transport
        assert transport is not None and self._pace is None
        await self.flush()
        if transport.get_write_buffer_size():
            low, high = transport.get_write_buffer_limits()
            transport.set_write_buffer_limits(high=0)  # the protocol stays paused until empty
            try:
                await self._writer.drain()
            finally:
                transport.set_write_buffer_limits(high=high, low=low)
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None and not transport.is_closing() else -1
        if fd < 0:
            raise ConnectionResetError("the connection closed while the body was being sent")
        return int(fd)


def _plain_socket_transport(writer: AbstractStreamWriter) -> asyncio.Transport | None:
    """The socket transport when it is plain TCP on asyncio's own loop (whose
    ``loop.sendfile`` uses ``os.sendfile``); None over TLS or on another loop (uvloop)."""
    transport = getattr(writer, "transport", None)
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    if not isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
        return None
    return transport  # type: ignore[no-any-return]
