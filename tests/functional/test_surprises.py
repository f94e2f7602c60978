"""Server surprises: odd answers are classified, never hang and never eat memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.config.model import UploadConfig
from bulkup.pipeline.run import run_upload
from bulkup.transport.client import stall_limited_sockets

from .conftest import PASSWORD, make_tree

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OK = (
    '<uploadPostReturn xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><jobHandle>'
    "j|1||x|1</jobHandle></uploadPostReturn>"
)


@pytest.fixture
async def serve(unused_tcp_port_factory: Any) -> AsyncIterator[Callable[[Handler], Any]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/scene7/UploadFile", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/scene7/UploadFile"

    yield start
    for runner in runners:
        await runner.cleanup()


def config(url: str, **changes: Any) -> UploadConfig:
    base: dict[str, Any] = dict(
        server_url=url,
        user="u@x.y",
        password=PASSWORD,
        company_handle="c|1",
        company_root="Acme/",
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
        max_attempts=3,
        no_journal=True,
        no_wait=True,
    )
    base.update(changes)
    return UploadConfig(**base)


async def answer_after_body(request: web.Request, response: web.StreamResponse) -> Any:
    await request.read()
    return response


class TestOddAnswers:
    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
            (503, ""),
            (500, "<uploadPostReturn><jobHandle>j|1"),
        ],
        ids=["html-502", "empty-503", "truncated-xml-500"],
    )
    async def test_retried_then_fatal_when_opening(
        self, serve: Any, tmp_path: Path, status: int, body: str
    ) -> None:
        """5xx pages without a fault document are retried; the opening never succeeds: exit 3."""
        calls = 0

        async def handler(request: web.Request) -> web.StreamResponse:
            nonlocal calls
            calls += 1
            return await answer_after_body(request, web.Response(status=status, text=body))

        url = await serve(handler)
        report = await run_upload(config(url), [str(make_tree(tmp_path / "s", {"a.jpg": b"a"}))])
        assert calls == 3 and report.exit_code == 3
        assert f"HTTP {status}" in (report.fatal_error or "")

    async def test_huge_body_is_cut(self, serve: Any, tmp_path: Path) -> None:
        """A 100 MB answer is read only up to the 1 MiB limit and classified."""

        async def handler(request: web.Request) -> web.StreamResponse:
            await request.read()
            response = web.StreamResponse(status=200)
            response.content_length = 100 * 1024 * 1024
            await response.prepare(request)
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(100):
                    await response.write(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return response

        url = await serve(handler)
        report = await run_upload(
            config(url, max_attempts=1), [str(make_tree(tmp_path / "s", {"a.jpg": b"a"}))]
        )
        assert report.exit_code == 3 and "larger than" in (report.fatal_error or "")

    async def test_stalled_server_hits_read_timeout_and_is_retried(
        self, serve: Any, tmp_path: Path
    ) -> None:
        """A server that takes the body and then says nothing: read timeout, then a retry.

        The timeout covers every answer of the run, so it is long enough that a loaded
        machine's pause cannot time out a POST that the server does answer (0.3 s could)."""
        calls = 0
        release = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            nonlocal calls
            calls += 1
            await request.read()
            if calls == 2:  # the first follow-up stalls until the test ends
                await release.wait()
            return web.Response(text=OK, content_type="text/xml")

        url = await serve(handler)
        src = make_tree(tmp_path / "s", {"a.jpg": b"a"})
        try:
            report = await run_upload(config(url, read_timeout_s=1.0), [str(src)])
        finally:
            release.set()
        assert report.exit_code == 0 and report.retries == 1 and report.files_uploaded == 1

    @pytest.mark.skipif(
        not hasattr(socket, "TCP_USER_TIMEOUT"),
        reason="stall_timeout_s needs TCP_USER_TIMEOUT (Linux)",
    )
    async def test_server_that_stops_reading_a_body_is_dropped(self, tmp_path: Path) -> None:
        """A server that stops reading in the middle of a body (its receive window stays at
        zero): the connection is dropped after stall_timeout_s, the POST retried, the file
        reported failed with the reason; the run ends instead of waiting forever."""
        release = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            if (request.content_length or 0) > 1_000_000:
                await release.wait()  # never reads this body
            else:
                await request.read()
            return web.Response(text=OK, content_type="text/xml")

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no window autotuning
        listener.bind(("127.0.0.1", 0))
        app = web.Application(client_max_size=0)
        app.router.add_post("/scene7/UploadFile", handler)
        runner = web.AppRunner(app, access_log=None, lingering_time=0)  # no waiting at the end
        await runner.setup()
        await web.SockSite(runner, listener).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/scene7/UploadFile"
        src = make_tree(tmp_path / "s", {"big.bin": bytes(12 * 1024 * 1024), "a.jpg": b"a"})
        try:
            report = await asyncio.wait_for(
                run_upload(
                    config(
                        url, stall_timeout_s=0.3, max_attempts=2, max_post_bytes=4 * 1024 * 1024
                    ),
                    [str(src)],
                ),
                timeout=30,
            )
        finally:
            release.set()
            await runner.cleanup()
        assert report.retries == 1 and report.files_uploaded == 1
        [failure] = report.failures
        assert failure.path.endswith("big.bin") and "stopped taking the upload" in failure.reason

    @pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux only")
    def test_connections_carry_the_stall_timeout(self) -> None:
        """The sockets aiohttp gets from bulkup give up after stall_timeout_s (in ms)."""
        make = stall_limited_sockets(2.5)
        with make((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 1))) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500

    async def test_entity_tricks_are_refused_safely(self, serve: Any, tmp_path: Path) -> None:
        """An answer with entity expansion or an external entity is not trusted."""
        bomb = (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            "<uploadPostReturn><jobHandle>&b;&e;</jobHandle></uploadPostReturn>"
        )

        async def handler(request: web.Request) -> web.StreamResponse:
            return await answer_after_body(
                request, web.Response(text=bomb, content_type="text/xml")
            )

        url = await serve(handler)
        report = await run_upload(
            config(url, max_attempts=2), [str(make_tree(tmp_path / "s", {"a.jpg": b"a"}))]
        )
        assert report.exit_code == 3 and "DTD" in (report.fatal_error or "")
