"""TLS fixtures: a throwaway CA (``ca``: its PEM, a server certificate and key for 127.0.0.1)
and the emulator serving HTTPS with it (``tls_emulator``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from bulkup.emulator import build_settings, make_app
from bulkup.emulator.server import tls_context

from .conftest import PASSWORD, USER, Emulator


@pytest.fixture
def ca(tmp_path: Path) -> dict[str, Path]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    return paths


@pytest.fixture
async def tls_emulator(ca: dict[str, Path], tmp_path: Path) -> AsyncIterator[Emulator]:
    settings = build_settings(
        root=tmp_path / "server",
        users=[f"{USER}:{PASSWORD}"],
        companies=["Acme:c|42"],
        tls_cert=ca["cert"],
        tls_key=ca["key"],
    )
    app = make_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_context(settings)).start()
    port = runner.addresses[0][1]
    yield Emulator(url=f"https://127.0.0.1:{port}/scene7/UploadFile", root=settings.root, app=app)
    await runner.cleanup()
