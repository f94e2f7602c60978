"""``bulkup job``: list, an unknown handle, numbers in --json, and the connection flags that
``upload`` has (a private CA over TLS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import PASSWORD, USER, Emulator, make_tree, upload_argv
from .test_cli import _run_async

ENV = {"BULKUP_PASSWORD": PASSWORD}


async def _upload(emulator: Emulator, tmp_path: Path, *extra: str) -> str:
    src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b"})
    report = tmp_path / "r.json"
    done = await _run_async(
        *upload_argv(src, emulator.url),
        "--report",
        str(report),
        "--no-journal",
        *extra,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    [handle] = json.loads(report.read_text())["job_handles"]
    return str(handle)


def common(emulator: Emulator) -> tuple[str, ...]:
    return ("--server", emulator.url, "--user", USER, "--company-handle", "c|42")


async def test_list_shows_the_jobs_and_json_has_numbers(emulator: Any, tmp_path: Path) -> None:
    handle = await _upload(emulator, tmp_path)
    listed = await _run_async("job", "list", *common(emulator), env=ENV)
    assert listed.returncode == 0 and handle in listed.stdout and "Done" in listed.stdout
    as_json = await _run_async("job", "list", "--json", *common(emulator), env=ENV)
    [job] = json.loads(as_json.stdout)
    assert job["handle"] == handle and job["state"] == "Done"
    status = await _run_async("job", "status", handle, "--json", *common(emulator), env=ENV)
    log = json.loads(status.stdout)["log"]
    assert log["fileSuccessCount"] == 2 and log["totalFileCount"] == 2


async def test_unknown_handle_exits_1(emulator: Any) -> None:
    for action in ("status", "log"):
        done = await _run_async("job", action, "j|42||nope|9", *common(emulator), env=ENV)
        assert done.returncode == 1, (action, done.stdout, done.stderr)
        assert "no " in done.stderr and "j|42||nope|9" in done.stderr


async def test_job_takes_the_tls_flags(
    tls_emulator: Emulator, ca: dict[str, Path], tmp_path: Path
) -> None:
    handle = await _upload(tls_emulator, tmp_path, "--ca-bundle", str(ca["ca"]))
    refused = await _run_async("job", "status", handle, *common(tls_emulator), env=ENV)
    assert refused.returncode == 3 and "--ca-bundle" in refused.stderr
    trusted = await _run_async(
        "job", "status", handle, *common(tls_emulator), "--ca-bundle", str(ca["ca"]), env=ENV
    )
    assert trusted.returncode == 0 and f"job {handle}: Done" in trusted.stdout
