"""Fixtures: the emulator in-process on 127.0.0.1:0, a fake clock, and a tiny raw HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest
from aiohttp import web

from bulkup.emulator import build_settings, make_app

from .wire import Part, Reply, auth_xml, body, content_type, files, params_xml, xml_part

USER, PASSWORD = "uploader@example.com", "s3cret"
TIMEOUT = aiohttp.ClientTimeout(total=15)

# Several companies, roles and a disabled user (spec D-21 rows 6, 11, 12; D-11).
CONFIG = """
[serve]
[[serve.companies]]
name = "Acme"
handle = "c|42"
{acme_extra}

[[serve.companies]]
name = "Other"
handle = "c|43"

[[serve.users]]
email = "uploader@example.com"
password = "s3cret"
companies = ["c|42", "c|43"]

[[serve.users]]
email = "second@example.com"
password = "pw-second"
companies = ["c|42"]

[[serve.users]]
email = "outsider@example.com"
password = "pw-outsider"
companies = ["c|43"]

[[serve.users]]
email = "viewer@example.com"
password = "pw-viewer"
role = "ImagePortalUser"
companies = ["c|42"]

[[serve.users]]
email = "gone@example.com"
password = "pw-gone"
disabled = true
companies = ["c|42"]
"""


class FakeClock:
    """The emulator's clock (idle timeout, linger, dates) and its sleep, moved by hand."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, delay: float) -> None:
        """Return once the clock has moved ``delay`` past now (polled every 2 ms)."""
        deadline = self.now + delay
        while self.now < deadline:
            await asyncio.sleep(0.002)


@dataclass
class Emulator:
    """A running emulator and helpers to talk to it."""

    host: str
    port: int
    root: Path
    clock: FakeClock
    app: web.Application

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/scene7/UploadFile"

    @property
    def soap_url(self) -> str:
        return f"http://{self.host}:{self.port}/scene7/services/IpsApiService"

    @property
    def staging(self) -> Path:
        return self.root / ".bulkup-emulator" / "staging"

    def company_dir(self, name: str = "Acme") -> Path:
        return self.root / name

    async def post_raw(
        self,
        data: bytes,
        *,
        ctype: str | None = None,
        headers: dict[str, str] | None = None,
        local_addr: tuple[str, int] | None = None,
    ) -> Reply:
        """POST bytes exactly as given (aiohttp adds only Host, Content-Length, ...)."""
        sent = {"Content-Type": ctype or content_type()}
        sent.update(headers or {})
        connector = aiohttp.TCPConnector(local_addr=local_addr, force_close=True)
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
            timeout=TIMEOUT,
        )
        async with session, session.post(self.url, data=data, headers=sent) as response:
            raw = await response.read()
            got = {k.lower(): v for k, v in response.headers.items()}
            return Reply(response.status, got, raw)

    async def post(self, parts: list[Part], **kwargs: Any) -> Reply:
        return await self.post_raw(body(parts), **kwargs)

    async def send(
        self,
        params: str,
        file_parts: list[Part] | None = None,
        *,
        user: str = USER,
        password: str = PASSWORD,
        auth_extra: str = "",
        **kwargs: Any,
    ) -> Reply:
        """auth + uploadParams (+ files), in that order."""
        parts = [
            xml_part("auth", auth_xml(user, password, extra=auth_extra)),
            xml_part("uploadParams", params),
            *(file_parts or []),
        ]
        return await self.post(parts, **kwargs)

    async def open_job(
        self, name: str = "job", *, company: str = "c|42", options: str | None = None, **kwargs: Any
    ) -> str:
        """An opening POST without files; returns the job handle."""
        extra = {} if options is None else {"options": options}
        reply = await self.send(params_xml(company, job_name=name, **extra), **kwargs)
        return reply.job_handle()

    async def upload(
        self, handle: str, named: dict[str, bytes], *, company: str = "c|42", **kwargs: Any
    ) -> Reply:
        """A follow-up POST with these files."""
        return await self.send(params_xml(company, job_handle=handle), files(named), **kwargs)

    async def end_job(self, handle: str, **kwargs: Any) -> Reply:
        return await self.send(params_xml(job_handle=handle, end_job="true"), **kwargs)

    async def jobs(self) -> list[dict[str, Any]]:
        url = f"http://{self.host}:{self.port}/_emulator/jobs"
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(url) as response:
            assert response.status == 200
            jobs: list[dict[str, Any]] = (await response.json())["jobs"]
            return jobs

    async def job(self, handle: str) -> dict[str, Any]:
        found = [job for job in await self.jobs() if job["handle"] == handle]
        assert len(found) == 1, found
        return found[0]

    def stored(self, company: str = "Acme") -> dict[str, bytes]:
        """Every file under the company folder: relative path → bytes."""
        base = self.company_dir(company)
        out = {}
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                path = Path(dirpath, name)
                out[path.relative_to(base).as_posix()] = path.read_bytes()
        return out

    def staged(self) -> list[str]:
        return sorted(os.listdir(self.staging))


StartEmulator = Callable[..., Awaitable[Emulator]]


@pytest.fixture
async def start_emulator(tmp_path: Path) -> AsyncIterator[StartEmulator]:
    """Factory: start an emulator with knobs (``build_settings`` keywords)."""
    runners: list[web.AppRunner] = []

    async def start(
        *,
        root: Path | None = None,
        acme_extra: str = "",
        config: Path | None | str = "default",
        clock: FakeClock | None = None,
        **knobs: Any,
    ) -> Emulator:
        root = root or tmp_path / "root"
        if config == "default":
            config = tmp_path / f"emulator-{len(runners)}.toml"
            config.write_text(CONFIG.format(acme_extra=acme_extra), encoding="utf-8")
        assert not isinstance(config, str)
        knobs.setdefault("idle_timeout_s", 60.0)
        settings = build_settings(root=root, config=config, **knobs)
        clock = clock or FakeClock()
        app = make_app(settings, clock=clock, sleep=clock.sleep)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return Emulator("127.0.0.1", port, root, clock, app)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> Emulator:
    """The default emulator: companies Acme (c|42) and Other (c|43), several users."""
    return await start_emulator()


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5.0
) -> None:
    """Poll ``predicate`` (sync or async) every 10 ms until true (fails after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def check() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


class RawPost:
    """One POST over a bare asyncio stream: head and body sent in pieces, by hand."""

    def __init__(self, emu: Emulator, content_length: int, *, ctype: str | None = None) -> None:
        self.emu = emu
        self.head = (
            f"POST /scene7/UploadFile HTTP/1.1\r\nHost: {emu.host}:{emu.port}\r\n"
            f"Content-Type: {ctype or content_type()}\r\n"
            f"Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Self:
        self.reader, self.writer = await asyncio.open_connection(self.emu.host, self.emu.port)
        self.writer.write(self.head)
        await self.writer.drain()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
            self.writer = None

    async def response(self) -> Reply:
        """Read the status line, headers and a Content-Length body."""
        assert self.reader is not None
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 15)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await asyncio.wait_for(
            self.reader.readexactly(int(headers.get("content-length", "0"))), 15
        )
        return Reply(status, headers, raw)
