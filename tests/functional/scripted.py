"""A scripted servlet stand-in for hostile-server tests: it tells the opening POST
(``jobName``), a follow-up and endJob apart by the ``uploadParams`` part, answers each with the
test's ``reply``, and records every request it gets. SOAP calls get a 404 (no monitoring API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

JOB = "j|1||hostile|1"
OTHER_JOB = "j|9||somebody-else|7"
Reply = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def answer(handle: str = JOB) -> web.Response:
    return web.Response(
        text=f"<uploadPostReturn><jobHandle>{handle}</jobHandle></uploadPostReturn>",
        content_type="text/xml",
    )


def kind_of(path: str, body: bytes) -> str:
    if "IpsApiService" in path:
        return "soap"
    if b"<jobName>" in body:
        return "open"
    return "end" if b"<endJob>true</endJob>" in body else "follow-up"


@dataclass
class Scripted:
    """A servlet stand-in: ``reply(request, kind)`` answers each POST; every request is kept
    as (method, kind, body)."""

    url: str
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.seen]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[Scripted]]]:
    runners: list[web.AppRunner] = []

    async def start(reply: Reply, host: str = "127.0.0.1") -> Scripted:
        server = Scripted(url="")

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            kind = kind_of(request.path, body)
            if kind == "soap":  # no monitoring API here
                return web.Response(status=404)
            server.seen.append((request.method, kind, body))
            return await reply(request, kind)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, 0).start()
        runners.append(runner)
        server.url = f"http://{host}:{runner.addresses[0][1]}/scene7/UploadFile"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()
