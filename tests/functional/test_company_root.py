"""The company root: from the config, else the server's getCompanyInfo; a clear error (exit 2)
when neither can tell, exit 3 when the server cannot be asked right now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.config.model import UploadConfig
from bulkup.errors import ConfigError
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, make_tree
from .scripted import answer


async def test_root_taken_from_get_company_info(emulator: Any, tmp_path: Path) -> None:
    """No company_root given: files land under the company's root all the same."""
    src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
    report = await run_upload(emulator.config(company_root=None, no_journal=True), [str(src)])
    assert report.exit_code == 0 and report.files_confirmed == 1
    assert emulator.stored_files() == {"a.jpg": b"a"}  # under Acme/


def _config(url: str) -> UploadConfig:
    return UploadConfig(
        server_url=url,
        user="u@x.y",
        password=PASSWORD,
        company_handle="c|1",
        no_journal=True,
        max_attempts=2,
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
    )


async def test_no_api_and_no_root_is_a_config_error(scripted: Any, tmp_path: Path) -> None:
    """The servlet works but there is no API (404): nothing is sent; the message says to give
    --company-root."""
    servlet = await scripted(lambda request, kind: _async(answer()))
    with pytest.raises(ConfigError, match="company_root: not given.*--company-root"):
        await run_upload(_config(servlet.url), [str(make_tree(tmp_path / "s", {"a.jpg": b"a"}))])
    assert servlet.seen == []


async def test_api_down_and_no_root_is_fatal(tmp_path: Path) -> None:
    """Everything answers 503: the lookup cannot be made now; exit 3, nothing sent."""
    calls: list[str] = []

    async def down(request: web.Request) -> web.StreamResponse:
        calls.append(request.path)
        await request.read()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/scene7/UploadFile"
        report = await run_upload(_config(url), [str(make_tree(tmp_path / "s", {"a": b"a"}))])
    finally:
        await runner.cleanup()
    assert report.exit_code == 3 and "company root" in (report.fatal_error or "")
    assert all("IpsApiService" in path for path in calls)  # no POST to the servlet


async def _async(response: web.StreamResponse) -> web.StreamResponse:
    return response
