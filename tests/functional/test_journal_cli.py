"""``bulkup status`` says what each journal is for; ``journal prune`` tidies old journals;
``job ... --last`` takes the handle from the journal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORD, USER, make_tree, upload_argv
from .test_cli import _run_async, run_cli

ENV = {"BULKUP_PASSWORD": PASSWORD}


async def _upload(emulator: Any, tmp_path: Path) -> str:
    src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b"})
    report = tmp_path / "r.json"
    done = await _run_async(
        *upload_argv(src, emulator.url),
        "--dest-folder",
        "in",
        "--report",
        str(report),
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(report.read_text())["job_handles"][0])


@pytest.mark.blocks_loop  # the CLI run with subprocess.run, on purpose
async def test_status_names_server_destination_sources_and_counts(
    emulator: Any, tmp_path: Path
) -> None:
    await _upload(emulator, tmp_path)
    status = run_cli("status")
    assert status.returncode == 0, status.stderr
    assert f"{emulator.url} company c|42 into Acme/in from {tmp_path / 'src'}" in status.stdout
    assert "files: 2 confirmed" in status.stdout
    [listed] = json.loads(run_cli("status", "--json").stdout)
    assert listed["target"]["dest_folder"] == "in" and listed["files"] == {"confirmed": 2}


async def test_job_status_last_takes_the_handle_from_the_journal(
    emulator: Any, tmp_path: Path
) -> None:
    handle = await _upload(emulator, tmp_path)
    done = await _run_async(
        "job",
        "status",
        "--last",
        "--server",
        emulator.url,
        "--user",
        USER,
        "--company-handle",
        "c|42",
        env=ENV,
    )
    assert done.returncode == 0 and f"job {handle}: Done" in done.stdout
    both = await _run_async("job", "status", handle, "--last", "--server", emulator.url, env=ENV)
    assert both.returncode == 2 and "HANDLE or --last" in both.stderr


@pytest.mark.blocks_loop  # the CLI run with subprocess.run, on purpose
async def test_prune_removes_old_journals_only(emulator: Any, tmp_path: Path) -> None:
    await _upload(emulator, tmp_path)
    state = Path(os.environ["XDG_STATE_HOME"]) / "bulkup"
    [journal] = list(state.glob("*.journal"))
    kept = run_cli("journal", "prune", "--older-than", "30d")
    assert kept.returncode == 0 and journal.exists() and "0 journal(s) removed" in kept.stdout
    old = time.time() - 40 * 86400
    for part in state.glob(journal.name + "*"):
        os.utime(part, (old, old))
    dry = run_cli("journal", "prune", "--older-than", "30d", "--dry-run")
    assert "would remove" in dry.stdout and journal.exists()
    gone = run_cli("journal", "prune", "--older-than", "30d")
    assert gone.returncode == 0 and not journal.exists()
    assert list(state.glob(journal.name + "*")) == []
    bad = run_cli("journal", "prune", "--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
