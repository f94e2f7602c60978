"""Running the emulator as a server: bind, announce, serve until SIGINT or SIGTERM.

The listening socket is guarded (issue 13 rule 9): at most ``max_connections`` connections at
once (guard.ConnectionCap), a request head must be complete ``header_timeout_s`` after the
connection opened or after its previous answer (aiohttp's keep-alive timer, see guard.py); the
body idle timeout is enforced where bodies are read (app.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import ssl
import sys
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web

from bulkup.emulator.app import JOBS_ROUTE, SOAP_ROUTE, UPLOAD_ROUTE, make_app
from bulkup.emulator.guard import ConnectionCap
from bulkup.emulator.settings import DEMO_PASSWORD, EmulatorSettings


def tls_context(settings: EmulatorSettings) -> ssl.SSLContext | None:
    """A server TLS context when a certificate and key are configured."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


@dataclass(frozen=True, slots=True)
class Running:
    """A started emulator: its runner (``cleanup`` stops it), bound port and connection cap."""

    runner: web.AppRunner
    port: int
    connections: ConnectionCap


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass through a :class:`ConnectionCap`."""

    def __init__(self, runner: web.AppRunner, settings: EmulatorSettings) -> None:
        super().__init__(runner, ssl_context=tls_context(settings))
        assert runner.server is not None  # the runner is set up
        self.connections = ConnectionCap(runner.server, settings.max_connections)
        self._host, self._port = settings.host, settings.port

    @property
    def name(self) -> str:
        return f"{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.connections,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
        )


async def start(settings: EmulatorSettings, app: web.Application | None = None) -> Running:
    """Set up the app (``make_app(settings)`` unless given) and listen, guarded."""
    runner = web.AppRunner(
        app or make_app(settings),
        access_log=None,
        handle_signals=False,
        keepalive_timeout=settings.header_timeout_s,
    )
    await runner.setup()
    try:
        site = GuardedSite(runner, settings)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return Running(runner, _bound_port(runner, settings.port), site.connections)


async def serve(settings: EmulatorSettings, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly."""
    running = await start(settings)
    try:
        announce(settings, running.port, out)
        await _wait_for_stop_signal()
    finally:
        await running.runner.cleanup()
    print("bulkup emulator stopped", file=out, flush=True)


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked


async def _wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def announce(settings: EmulatorSettings, port: int, out: TextIO) -> None:
    """Say where the emulator listens, where files land, and (demo only) how to log in."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    scheme = "https" if settings.tls_cert else "http"
    base = f"{scheme}://{host}:{port}"
    print(f"bulkup emulator listening on {base}{UPLOAD_ROUTE}", file=out)
    print(f"  SOAP API: {base}{SOAP_ROUTE}", file=out)
    print(f"  inspection: {base}{JOBS_ROUTE}", file=out)
    print(f"  files land under: {settings.root.resolve()}", file=out)
    for company in settings.companies:
        print(
            f"  company {company.name!r}: handle {company.handle}, root folder {company.root_path}",
            file=out,
        )
    if settings.demo:
        print(f"  demo user: {settings.users[0].email} / {DEMO_PASSWORD}", file=out)
        if not _is_loopback(settings.host):
            print(
                "  WARNING: the demo user is served beyond loopback; anyone who can reach "
                "this address can upload. Pass --user to set real credentials.",
                file=out,
            )
    else:
        for user in settings.users:
            print(f"  user: {user.email} ({user.role})", file=out)
    out.flush()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
