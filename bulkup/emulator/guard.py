"""Keeping a hostile client from holding the server: a connection cap and a body idle watchdog.

The third guard, the header timeout, is aiohttp's own keep-alive timer: armed when a connection
opens and again after each answer, it closes a connection still waiting for a complete request
head when it fires, however many bytes trickled in meanwhile; server.py sets it to
``header_timeout_s``. (Tomcat's ``connectionTimeout`` works the same way and is also its
keep-alive timeout.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import cast

import structlog

log = structlog.get_logger("bulkup.emulator")
# Sent to a connection over the cap before it is closed; clients retry a 503 (spec §4.5).
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 38\r\nConnection: close\r\n\r\n"
    b"Too many connections; try again later\n"
)


class ConnectionCap:
    """A protocol factory around aiohttp's: at most ``limit`` connections served at once.

    A connection over the cap gets :data:`BUSY` and is closed at once, without an aiohttp
    handler (nothing is allocated for it). One ``connection_limit_reached`` line is logged when
    the cap is first hit and one ``connection_limit_cleared`` line (with the number refused)
    once a connection is free again, so an attack does not flood the log.
    """

    def __init__(self, factory: Callable[[], asyncio.Protocol], limit: int) -> None:
        self._factory = factory
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._refused_at_cap = 0
        self._at_cap = False

    def __call__(self) -> asyncio.Protocol:
        return _Counted(self)

    def admit(self) -> asyncio.Protocol | None:
        """The handler for a new connection, or None when it must be refused."""
        if self.open >= self.limit:
            self._refuse()
            return None
        self.open += 1
        return self._factory()

    def release(self) -> None:
        """An admitted connection ended."""
        self.open -= 1
        if self._at_cap and self.open < self.limit:
            self._at_cap = False
            log.info(
                "connection_limit_cleared",
                max_connections=self.limit,
                open_connections=self.open,
                refused=self._refused_at_cap,
            )

    def _refuse(self) -> None:
        self.refused += 1
        self._refused_at_cap += 1
        if not self._at_cap:
            self._at_cap, self._refused_at_cap = True, 1
            log.warning(
                "connection_limit_reached",
                max_connections=self.limit,
                open_connections=self.open,
                action="new connections answered 503 and closed",
            )


class _Counted(asyncio.Protocol):
    """One connection: handed to aiohttp's handler when admitted, else answered 503."""

    def __init__(self, cap: ConnectionCap) -> None:
        self._cap = cap
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner = self._cap.admit()
        if self._inner is None:
            # a stream transport (uvloop's is not an asyncio.WriteTransport subclass)
            cast(asyncio.Transport, transport).write(BUSY)
            transport.close()
            return
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._inner.connection_lost(exc)
            self._inner = None
            self._cap.release()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class IdleWatchdog:
    """Aborts a request's connection when its body sends nothing for ``timeout_s``.

    ``touch`` (one clock read) is called for every chunk; the timer fires at most about once
    per ``timeout_s`` and re-arms itself while bytes keep coming. The loop's clock drives it.
    Use as a context manager around the reading of one body.
    """

    def __init__(
        self, transport: asyncio.Transport | None, timeout_s: float, peer: str | None
    ) -> None:
        self._transport = transport
        self._timeout = timeout_s
        self._peer = peer
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False

    def __enter__(self) -> IdleWatchdog:
        self._handle = self._loop.call_at(self._last + self._timeout, self._check)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def touch(self) -> None:
        """Bytes arrived."""
        self._last = self._loop.time()

    def _check(self) -> None:
        idle = self._loop.time() - self._last
        if idle < self._timeout:
            self._handle = self._loop.call_at(self._last + self._timeout, self._check)
            return
        self._handle = None
        self.expired = True
        log.info(
            "body_idle_timeout", peer=self._peer, idle_s=round(idle, 3), timeout_s=self._timeout
        )
        if self._transport is not None:
            self._transport.abort()
