"""Proxies: an HTTPS upload through a CONNECT proxy on loopback, as a corporate network
needs it; the proxy's credentials, and a proxy that refuses."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bulkup.pipeline.run import run_upload

from .conftest import Emulator, make_tree


@dataclass
class ConnectProxy:
    """A CONNECT-only HTTP proxy: it records each tunnel's target and Proxy-Authorization,
    answers 407 when ``required_auth`` is set and not given, and pipes the bytes."""

    url: str = ""
    required_auth: str | None = None
    tunnels: list[tuple[str, str | None]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        auth = fields.get("Proxy-Authorization")
        self.tunnels.append((target, auth))
        if method != "CONNECT" or (self.required_auth and auth != self.required_auth):
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def connect_proxy() -> AsyncIterator[ConnectProxy]:
    proxy = ConnectProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield proxy
    server.close()


async def test_https_upload_goes_through_the_environment_proxy(
    tls_emulator: Emulator,
    ca: dict[str, Path],
    connect_proxy: ConnectProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTPS_PROXY set, every connection is a CONNECT tunnel through the proxy, and the
    files land byte-exact."""
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    src = make_tree(tmp_path / "src", {f"f{i}.jpg": bytes([i]) * 5000 for i in range(20)})
    report = await run_upload(tls_emulator.config(ca_bundle=ca["ca"], no_journal=True), [str(src)])
    assert report.exit_code == 0 and report.files_uploaded == 20
    assert len(tls_emulator.stored_files()) == 20
    port = tls_emulator.url.split(":")[2].split("/")[0]
    assert connect_proxy.tunnels and all(t == f"127.0.0.1:{port}" for t, _ in connect_proxy.tunnels)


async def test_no_proxy_flag_goes_direct(
    tls_emulator: Emulator,
    ca: dict[str, Path],
    connect_proxy: ConnectProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
    report = await run_upload(
        tls_emulator.config(ca_bundle=ca["ca"], no_journal=True, proxy="direct"), [str(src)]
    )
    assert report.exit_code == 0 and connect_proxy.tunnels == []


async def test_proxy_credentials_travel_in_the_header_and_a_refusal_is_fatal(
    tls_emulator: Emulator, ca: dict[str, Path], connect_proxy: ConnectProxy, tmp_path: Path
) -> None:
    """The proxy URL's user:password becomes Proxy-Authorization; a proxy that answers 407
    ends the run at once (exit 3) without the password in the message."""
    connect_proxy.required_auth = "Basic " + base64.b64encode(b"alice:pw-canary").decode()
    src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
    host = connect_proxy.url.removeprefix("http://")
    good = await run_upload(
        tls_emulator.config(
            ca_bundle=ca["ca"], no_journal=True, proxy=f"http://alice:pw-canary@{host}"
        ),
        [str(src)],
    )
    assert good.exit_code == 0
    assert {auth for _, auth in connect_proxy.tunnels} == {connect_proxy.required_auth}
    bad = await run_upload(
        tls_emulator.config(
            ca_bundle=ca["ca"], no_journal=True, proxy=f"http://alice:wrong-canary@{host}"
        ),
        [str(src)],
    )
    assert bad.exit_code == 3
    assert "HTTP 407" in (bad.fatal_error or "") and "canary" not in (bad.fatal_error or "")
