"""Incremental sync and resume: the journal decides what is sent again, and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.journal.store import Journal
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, make_tree, upload_argv


def sent_targets(server: Any) -> list[str]:
    """Every file target the emulator received, in order, over all jobs."""
    return [f.target_path for job in server.jobs() for f in job.files]


class TestIncremental:
    async def test_second_run_sends_nothing(self, emulator: Any, tmp_path: Path) -> None:
        """No change: no POST, no job, exit 0, every file counted as skipped."""
        src = make_tree(tmp_path / "src", {f"d/f{i}.jpg": bytes([i]) * 50 for i in range(20)})
        config = emulator.config(journal=tmp_path / "j.journal")
        first = await run_upload(config, [str(src)])
        assert first.files_uploaded == 20
        jobs_before = len(emulator.jobs())
        second = await run_upload(config, [str(src)])
        assert second.exit_code == 0 and second.posts == 0 and second.files_uploaded == 0
        assert second.files_skipped == 20 and second.job_handles == ()
        assert len(emulator.jobs()) == jobs_before

    async def test_changes_between_runs(self, emulator: Any, tmp_path: Path) -> None:
        """Modified, added and touched files are sent; deleted ones are reported as gone."""
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": bytes([i]) * 50 for i in range(6)})
        config = emulator.config(journal=tmp_path / "j.journal")
        await run_upload(config, [str(src)])
        already = len(sent_targets(emulator))
        (src / "f0.jpg").write_bytes(b"changed content")
        (src / "new.jpg").write_bytes(b"new")
        stat = (src / "f1.jpg").stat()
        os.utime(src / "f1.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        (src / "f2.jpg").unlink()
        report = await run_upload(config, [str(src)])
        assert sorted(sent_targets(emulator)[already:]) == [
            "Acme/f0.jpg",
            "Acme/f1.jpg",
            "Acme/new.jpg",
        ]
        assert report.files_skipped == 3 and report.files_gone == 1
        assert report.gone == (str(src / "f2.jpg"),)
        assert emulator.stored_files()["f0.jpg"] == b"changed content"

    async def test_checksum_skips_touched_files(self, emulator: Any, tmp_path: Path) -> None:
        """With --checksum a touched file (same bytes, new mtime) is not sent again."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a" * 100, "b.jpg": b"b" * 100})
        config = emulator.config(journal=tmp_path / "j.journal", checksum=True)
        await run_upload(config, [str(src)])
        already = len(sent_targets(emulator))
        stat = (src / "a.jpg").stat()
        os.utime(src / "a.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        (src / "b.jpg").write_bytes(b"B" * 100)  # same size, new content
        report = await run_upload(config, [str(src)])
        assert sent_targets(emulator)[already:] == ["Acme/b.jpg"]
        assert report.files_skipped == 1

    async def test_force_and_retry_failed(self, emulator: Any, tmp_path: Path) -> None:
        """--force sends everything again; --retry-failed only what failed last time."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b", "c.jpg": b"c" * 500})
        config = emulator.config(journal=tmp_path / "j.journal", max_file_size=100)
        first = await run_upload(config, [str(src)])
        assert first.files_failed == 1  # c.jpg is too large
        already = len(sent_targets(emulator))
        retry = await run_upload(
            config.with_overrides(retry_failed=True, max_file_size=1000), [str(src)]
        )
        assert sent_targets(emulator)[already:] == ["Acme/c.jpg"] and retry.exit_code == 0
        already = len(sent_targets(emulator))
        await run_upload(config.with_overrides(force=True, max_file_size=1000), [str(src)])
        assert sorted(sent_targets(emulator)[already:]) == [
            "Acme/a.jpg",
            "Acme/b.jpg",
            "Acme/c.jpg",
        ]

    async def test_no_journal_sends_everything(self, emulator: Any, tmp_path: Path) -> None:
        """--no-journal keeps nothing: every run sends every file."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        config = emulator.config(no_journal=True)
        await run_upload(config, [str(src)])
        await run_upload(config, [str(src)])
        assert sent_targets(emulator) == ["Acme/a.jpg", "Acme/a.jpg"]

    async def test_open_job_of_a_crashed_run_is_continued(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """A job left open by an earlier run (recently active) is continued, then closed."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b"})
        journal_path = tmp_path / "j.journal"
        config = emulator.config(journal=journal_path, job_name="nightly")
        await run_upload(config, [str(src)])
        [job] = emulator.jobs()
        journal = Journal(journal_path)  # pretend the run died before its endJob
        journal._db.execute("UPDATE jobs SET closed=0")
        journal.close()
        job.open, job.closed_by = True, None
        (src / "c.jpg").write_bytes(b"c")
        report = await run_upload(config, [str(src)])
        assert report.job_handles == (job.handle,) and len(emulator.jobs()) == 1
        assert [f.target_path for f in job.files][-1] == "Acme/c.jpg" and not job.open


class TestCrashResume:
    @pytest.mark.parametrize("seed", range(5))
    async def test_sigkill_then_resume(
        self, start_emulator: Any, tmp_path: Path, seed: int
    ) -> None:
        """SIGKILL at a seeded POST (before or after the server took it), then the same
        command again: every file lands byte-exact and nothing acknowledged is sent twice."""
        rng = random.Random(seed)
        kill_at, after = rng.randint(2, 25), rng.random() < 0.5
        victim: dict[str, int] = {}
        seen = 0

        @web.middleware
        async def killer(request: web.Request, handler: Any) -> Any:
            nonlocal seen
            seen += 1
            number = seen  # others may arrive while this one is handled
            if number == kill_at and not after:
                os.kill(victim["pid"], signal.SIGKILL)
            response = await handler(request)
            if number == kill_at and after:
                os.kill(victim["pid"], signal.SIGKILL)
            return response

        server = await start_emulator(middlewares=(killer,))
        files = {f"d{i % 4}/f{i:03d}.jpg": rng.randbytes(rng.randrange(1, 4000)) for i in range(90)}
        src = make_tree(tmp_path / "src", files)
        journal_path = tmp_path / "j.journal"
        args = (
            *upload_argv(src, server.url),
            "--journal",
            str(journal_path),
            "--max-files-per-post",
            "3",
            "--concurrency",
            "2",
        )
        first = await _spawn(args, victim)
        assert first == -signal.SIGKILL
        acknowledged = _posted_targets(journal_path)
        assert len(acknowledged) < len(files)  # killed mid-run
        before = {job.handle: len(job.files) for job in server.jobs()}
        second = await _spawn(args, {})
        assert second == 0
        resent = [
            f.target_path for job in server.jobs() for f in job.files[before.get(job.handle, 0) :]
        ]
        assert not set(resent) & acknowledged
        assert server.stored_files() == files


def _posted_targets(path: Path) -> set[str]:
    journal = Journal(path)
    try:
        rows = journal._db.execute("SELECT target FROM files WHERE state='posted'").fetchall()
    finally:
        journal.close()
    return {row[0] for row in rows}


async def _spawn(args: tuple[str, ...], victim: dict[str, int]) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    victim["pid"] = proc.pid
    return await proc.wait()
