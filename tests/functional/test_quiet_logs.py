"""Quiet by default: per-file name warnings become one count, a failed file is one event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bulkup.pipeline.run import run_upload

from .conftest import make_tree


async def test_name_warnings_are_one_count_and_a_failure_one_event(
    emulator: Any, tmp_path: Path
) -> None:
    files = {f"with space {i}.jpg": b"x" for i in range(40)}
    files['quote"name.jpg'] = b"q"  # refused locally: the one failure
    src = make_tree(tmp_path / "src", files)
    with capture_logs() as events:
        report = await run_upload(emulator.config(no_journal=True, no_wait=True), [str(src)])
    assert report.files_uploaded == 40 and report.files_failed == 1
    loud = [e for e in events if e["log_level"] in ("warning", "error")]
    assert [e["event"] for e in loud].count("target_names_warned") == 1
    [counted] = [e for e in loud if e["event"] == "target_names_warned"]
    assert counted["files"] == 40
    assert [e["event"] for e in loud if "name.jpg" in str(e.get("path"))] == ["file_failed"]
    # each file's own warning is at debug level (whether captured depends on the level that
    # an earlier in-process configure_logging left), never louder
    assert {e["log_level"] for e in events if e["event"] == "target_name_warning"} <= {"debug"}
