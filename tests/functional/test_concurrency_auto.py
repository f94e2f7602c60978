"""``--concurrency auto`` against an emulator that takes 2 POSTs at a time (``--max-inflight 2``,
503 + ``Retry-After``): every file arrives, none fails, and the limit comes down from 8.

Back-offs are waited out by an injected sleep that returns at once, so a refused POST comes
back immediately; the emulator holds each POST's place for 20 ms of answer delay, so 8 POSTs
sent at once meet refusals on any machine. Nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bulkup.emulator.app import STATE
from bulkup.pipeline.run import RunHooks, run_upload

from .conftest import make_tree

pytestmark = pytest.mark.timeout(60)
FILES = {f"d{i % 3}/f{i:03d}.jpg": bytes([i % 251]) * (1000 + i) for i in range(48)}


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.parametrize("status", [503, 429])
async def test_auto_backs_off_from_a_server_that_pushes_back_and_loses_no_file(
    start_emulator: Callable[..., Any], tmp_path: Path, status: int
) -> None:
    emulator = await start_emulator(
        max_inflight=2, pushback_status=status, retry_after_s=1, response_delay_ms=20
    )
    tree = make_tree(tmp_path / "src", FILES)
    config = emulator.config(
        concurrency="auto",
        max_concurrency=16,
        max_files_per_post=2,
        no_journal=True,
        no_wait=True,
        max_attempts=2,
    )
    with capture_logs() as events:
        report = await run_upload(config, [str(tree)], hooks=RunHooks(sleep=no_wait))
    refused = emulator.app[STATE].pushback.inflight.refused
    assert refused > 0  # the server did push back
    assert report.files_failed == 0 and report.files_uploaded == len(FILES)
    assert report.retries >= refused - 1  # the opening POST is not the sender's to count
    assert emulator.stored_files() == FILES
    changes = [e for e in events if e["event"] == "concurrency_changed"]
    cuts = [e for e in changes if e["reason"] == f"pushback {status}"]
    assert cuts and cuts[0]["old"] == 8 and cuts[0]["new"] < 8
    assert min(e["new"] for e in changes) <= 2
    assert all(e["new"] < e["old"] for e in cuts)


async def test_a_fixed_concurrency_loses_no_file_to_announced_pushback_either(
    start_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    """4 POSTs in flight against a limit of 2, each POST with 2 attempts: refusals the server
    announced use up none of them (they failed files before)."""
    emulator = await start_emulator(max_inflight=2, retry_after_s=1, response_delay_ms=20)
    tree = make_tree(tmp_path / "src", FILES)
    config = emulator.config(
        concurrency=4, max_files_per_post=2, no_journal=True, no_wait=True, max_attempts=2
    )
    with capture_logs() as events:
        report = await run_upload(config, [str(tree)], hooks=RunHooks(sleep=no_wait))
    assert emulator.app[STATE].pushback.inflight.refused > 0
    assert report.files_failed == 0 and report.files_uploaded == len(FILES)
    assert emulator.stored_files() == FILES
    assert not [e for e in events if e["event"] == "concurrency_changed"]
