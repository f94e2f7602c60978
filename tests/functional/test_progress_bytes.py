"""Bytes are counted as they go to the wire, not when the server answers: a servlet stand-in
reads the whole body and then holds its answer; meanwhile the run's snapshots show every body
byte sent, the POST in flight and nothing acknowledged. Each way bytes travel is covered: the
read helper writing into the connection, in-process reads, sendfile() pieces, chunked copies
(uvloop has no sendfile), and a retried POST counting its bytes again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.config.model import UploadConfig
from bulkup.pipeline.run import RunHooks, run_upload
from bulkup.report import UploadReport
from bulkup.stats import StatsSnapshot
from bulkup.transport import wire as wire_module

from .conftest import make_tree
from .scripted import answer

pytestmark = pytest.mark.timeout(30)
SMALL = {f"small/f{i:02d}.bin": bytes([i]) * 20_000 for i in range(30)}
LARGE = {"large/big.bin": b"L" * 900_017}  # over chunk_size: sent alone (the stand-in takes 1 MiB)


def config_for(url: str, **changes: Any) -> UploadConfig:
    return UploadConfig(
        server_url=url,
        user="u@example.com",
        password="pw",
        company_handle="c|1",
        company_root="Acme/",
        no_journal=True,
        no_wait=True,
        concurrency=1,
        chunk_size=256 * 1024,
        backoff_base_s=0.001,
        backoff_cap_s=0.001,
        **changes,
    )


class Watch:
    """The run's snapshots as they come (every 5 ms); waits for one that meets a condition."""

    def __init__(self) -> None:
        self.latest: StatsSnapshot | None = None
        self._changed = asyncio.Event()

    def __call__(self, snap: StatsSnapshot) -> None:
        self.latest = snap
        self._changed.set()

    async def until(self, condition: Callable[[StatsSnapshot], bool]) -> StatsSnapshot:
        """The first snapshot that meets ``condition`` (or the latest after 3 s)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait(condition), 3)
        assert self.latest is not None
        return self.latest

    async def _wait(self, condition: Callable[[StatsSnapshot], bool]) -> None:
        while self.latest is None or not condition(self.latest):
            self._changed.clear()
            await self._changed.wait()


async def held_upload(
    scripted: Any, tmp_path: Path, files: dict[str, bytes], **changes: Any
) -> None:
    """Upload ``files`` in one POST whose answer is held; check the snapshots meanwhile."""
    held, release = asyncio.Event(), asyncio.Event()

    async def reply(request: web.Request, kind: str) -> web.Response:
        if kind == "follow-up":
            held.set()
            await release.wait()
        return answer()

    server = await scripted(reply)
    source = make_tree(tmp_path / "src", files)
    watch = Watch()
    run = asyncio.ensure_future(
        run_upload(
            config_for(server.url, **changes),
            [str(source)],
            hooks=RunHooks(progress=watch, progress_interval_s=0.005),
        )
    )
    try:
        await asyncio.wait_for(held.wait(), 10)
        on_the_wire = sum(len(body) for _, _, body in server.seen)  # opening POST + held one
        during = await watch.until(lambda s: s.bytes_sent >= on_the_wire)
        assert during.bytes_sent == on_the_wire
        assert on_the_wire > sum(map(len, files.values()))
        assert during.posts_in_flight == 1
        assert during.files_uploaded == 0 and during.bytes_uploaded == 0  # none acknowledged
    finally:
        release.set()
    report: UploadReport = await asyncio.wait_for(run, 10)
    after = watch.latest
    assert report.files_uploaded == len(files)
    assert report.bytes_uploaded == sum(map(len, files.values()))
    assert after is not None and after.posts_in_flight <= 1  # the endJob POST, if under way


@pytest.mark.parametrize("read_helper", [True, False], ids=["helper", "in-process"])
async def test_small_files_count_as_sent_before_the_answer(
    scripted: Any, tmp_path: Path, read_helper: bool
) -> None:
    await held_upload(scripted, tmp_path, SMALL, read_helper=read_helper)


async def test_a_large_file_counts_as_sent_before_the_answer(scripted: Any, tmp_path: Path) -> None:
    await held_upload(scripted, tmp_path, LARGE)  # sendfile() on asyncio's loop


async def test_a_large_file_sent_in_chunks_counts_too(
    scripted: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sendfile (uvloop, TLS): the chunked copy through the merging writer."""
    monkeypatch.setattr(wire_module.Wire, "can_sendfile", property(lambda self: False))
    await held_upload(scripted, tmp_path, LARGE)


async def test_the_count_moves_during_a_large_sendfile(
    scripted: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file goes in sendfile() pieces, each counted once the kernel took it: the server
    sees the count grow while the body is still coming in."""
    monkeypatch.setattr(wire_module, "SENDFILE_PIECE", 64 * 1024)
    counts: list[int] = []

    async def reply(request: web.Request, kind: str) -> web.Response:
        return answer()

    server = await scripted(reply)
    source = make_tree(tmp_path / "src", LARGE)

    def record(snap: StatsSnapshot) -> None:
        counts.append(snap.bytes_sent)

    report = await run_upload(
        config_for(server.url),
        [str(source)],
        hooks=RunHooks(progress=record, progress_interval_s=0.0),
    )
    assert report.files_uploaded == 1
    size = len(LARGE["large/big.bin"])
    partial = {c for c in counts if 0 < c < size}
    assert len(partial) >= 3, sorted(partial)  # seen between pieces, not in one jump


async def test_a_retried_post_s_bytes_count_again(scripted: Any, tmp_path: Path) -> None:
    """Sent twice, counted twice, acknowledged once: while the retry's answer is held, every
    byte of both attempts counts as sent and nothing as acknowledged."""
    follow_ups = 0
    held, release = asyncio.Event(), asyncio.Event()

    async def reply(request: web.Request, kind: str) -> web.Response:
        nonlocal follow_ups
        if kind != "follow-up":
            return answer()
        follow_ups += 1
        if follow_ups == 1:
            return web.Response(status=503)
        held.set()
        await release.wait()
        return answer()

    server = await scripted(reply)
    source = make_tree(tmp_path / "src", SMALL)
    watch = Watch()
    run = asyncio.ensure_future(
        run_upload(
            config_for(server.url),
            [str(source)],
            hooks=RunHooks(progress=watch, progress_interval_s=0.005),
        )
    )
    try:
        await asyncio.wait_for(held.wait(), 10)
        bodies = [len(body) for _, kind, body in server.seen if kind == "follow-up"]
        assert len(bodies) == 2 and bodies[0] == bodies[1]
        on_the_wire = sum(len(body) for _, _, body in server.seen)
        during = await watch.until(lambda s: s.bytes_sent >= on_the_wire)
        assert during.bytes_sent == on_the_wire
        assert during.bytes_uploaded == 0 and during.posts_in_flight == 1
    finally:
        release.set()
    report = await asyncio.wait_for(run, 10)
    assert report.retries == 1 and report.files_uploaded == len(SMALL)
    assert report.bytes_uploaded == sum(map(len, SMALL.values()))  # acknowledged once
