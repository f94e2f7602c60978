"""SIGTERM as Kubernetes (or a user's Ctrl-C) sends it, to the real ``bulkup upload`` process:
one signal stops and closes the job, a second one leaves at once; both write the report and
exit 130, with no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import PASSWORD, make_tree
from .scripted import answer


async def _upload_until_held(
    server_url: str, tmp_path: Path, held: asyncio.Event, *extra: str
) -> asyncio.subprocess.Process:
    src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"x" * 10 for i in range(3)})
    env = {**os.environ, "BULKUP_PASSWORD": PASSWORD, "XDG_STATE_HOME": str(tmp_path / "st")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        "upload",
        str(src),
        "--server",
        server_url,
        "--user",
        "u@x.y",
        "--company-handle",
        "c|1",
        "--company-root",
        "Acme/",
        "--no-wait",
        "--concurrency",
        "1",
        "--report",
        str(tmp_path / "report.json"),
        "--log-format",
        "json",
        *extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        await held.wait()
    return proc


async def _held_server(scripted: Any) -> tuple[Any, asyncio.Event, asyncio.Event]:
    held, release = asyncio.Event(), asyncio.Event()

    async def reply(request: Any, kind: str) -> Any:
        if kind == "follow-up":
            held.set()
            await release.wait()
        return answer()

    return await scripted(reply), held, release


async def _signalled(
    scripted: Any, tmp_path: Path, grace_s: str, signals: int
) -> tuple[int, bytes, Any, dict[str, Any]]:
    """Upload until the server holds a follow-up POST, send SIGTERM ``signals`` times (0.2 s
    apart); the exit code, stderr, the server and the JSON report."""
    server, held, release = await _held_server(scripted)
    try:
        proc = await _upload_until_held(server.url, tmp_path, held, "--stop-grace", grace_s)
        for sent in range(signals):
            if sent:
                await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, err = await proc.communicate()
    finally:
        release.set()
    report = json.loads((tmp_path / "report.json").read_text())
    return proc.returncode or 0, err, server, report


async def test_one_sigterm_stops_closes_the_job_and_reports(scripted: Any, tmp_path: Path) -> None:
    """A POST held by the server when SIGTERM comes: after stop_grace_s it is abandoned,
    endJob is sent, the report is written (interrupted), exit 130."""
    code, err, server, report = await _signalled(scripted, tmp_path, "0.3", signals=1)
    assert code == 130, err.decode()[-2000:]
    assert server.kinds() == ["open", "follow-up", "end"]
    assert report["interrupted"] is True and report["files_uploaded"] == 0
    assert b"Traceback" not in err and b"posts_abandoned" in err


async def test_second_sigterm_leaves_without_end_job_and_still_reports(
    scripted: Any, tmp_path: Path
) -> None:
    """The second signal leaves at once (stop_grace_s is 120 s here), without endJob; the
    report is still written."""
    code, err, server, report = await _signalled(scripted, tmp_path, "120", signals=2)
    assert code == 130, err.decode()[-2000:]
    assert server.kinds() == ["open", "follow-up"]
    assert report["interrupted"] is True
    assert b"Traceback" not in err and b"run_aborted" in err
