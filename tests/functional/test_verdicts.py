"""The server's verdict: after endJob the client reads the job log and settles every file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.emulator.app import STATE
from bulkup.journal.store import Journal
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, USER, make_tree


def states(journal_path: Path) -> dict[str, str]:
    journal = Journal(journal_path)
    try:
        return dict(journal._db.execute("SELECT target, state FROM files").fetchall())
    finally:
        journal.close()


class TestVerdicts:
    async def test_refusals_come_back_as_failures(self, emulator: Any, tmp_path: Path) -> None:
        """Unsupported type, 0-byte file and name conflict fail with the server's message."""
        src = make_tree(
            tmp_path / "src",
            {
                "ok.jpg": b"o",
                "odd.xyz": b"x",
                "zero.jpg": b"",
                "a/same.jpg": b"1",
                "b/same.png": b"2",
            },
        )
        journal = tmp_path / "j.journal"
        report = await run_upload(emulator.config(journal=journal, concurrency=1), [str(src)])
        reasons = {Path(f.path).name: f.reason for f in report.failures}
        assert set(reasons) == {"odd.xyz", "zero.jpg", "same.png"}
        assert "unsupported file type" in reasons["odd.xyz"]
        assert "file is empty" in reasons["zero.jpg"]
        assert "name conflict" in reasons["same.png"]
        assert report.exit_code == 1 and report.files_confirmed == 2
        recorded = states(journal)
        assert recorded["Acme/ok.jpg"] == "confirmed" and recorded["Acme/odd.xyz"] == "failed"

    async def test_duplicates_skipped_by_the_server(self, emulator: Any, tmp_path: Path) -> None:
        """With overwrite off, re-uploads come back as skipped by the server (not failed)."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b"})
        await run_upload(emulator.config(no_journal=True), [str(src)])
        params = emulator.config().upload_params
        import dataclasses

        config = emulator.config(
            no_journal=True, upload_params=dataclasses.replace(params, overwrite=False)
        )
        report = await run_upload(config, [str(src)])
        assert report.files_skipped_by_server == 2 and report.files_failed == 0
        assert report.exit_code == 0

    @pytest.mark.blocks_loop(10)  # its 2,500 files are written on the loop's thread first
    async def test_large_job_pages_through_every_detail(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """A 2,500-file job is confirmed completely: three pages of details."""
        src = make_tree(tmp_path / "src", {f"d{i % 7}/f{i:05d}.jpg": b"x" for i in range(2500)})
        report = await run_upload(emulator.config(journal=tmp_path / "j.journal"), [str(src)])
        assert report.files_confirmed == 2500 and report.files_unconfirmed == 0
        assert set(states(tmp_path / "j.journal").values()) == {"confirmed"}

    async def test_server_file_limit_is_respected(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """UploadPostMaxFileSize from the API caps what is sent; larger files fail locally."""
        server = await start_emulator(max_file_size=100)
        src = make_tree(tmp_path / "src", {"small.jpg": b"s" * 100, "big.jpg": b"b" * 101})
        report = await run_upload(server.config(), [str(src)])
        [failure] = report.failures
        assert failure.path.endswith("big.jpg") and "too large" in failure.reason
        assert server.stored_files() == {"small.jpg": b"s" * 100}

    async def test_unreachable_api_leaves_files_posted(self, emulator: Any, tmp_path: Path) -> None:
        """No API: said once, files stay posted, exit 0 — unless confirmation is required."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        config = emulator.config(
            api_url="http://127.0.0.1:9/scene7/services/IpsApiService",
            journal=tmp_path / "j.journal",
        )
        report = await run_upload(config, [str(src)])
        assert report.exit_code == 0 and report.confirmation.startswith("unavailable")
        assert report.files_unconfirmed == 1
        assert states(tmp_path / "j.journal") == {"Acme/a.jpg": "posted"}
        strict = await run_upload(
            config.with_overrides(require_confirmation=True, force=True), [str(src)]
        )
        assert strict.exit_code == 1 and strict.files_failed == 1


class TestStoppedAndMoved:
    async def test_job_stopped_mid_run_is_reported(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """`bulkup job stop` mid-run: the run ends with exit 3 and names the stopped job."""
        stopped: list[str] = []
        posts = 0

        @web.middleware
        async def stop_after_three(request: web.Request, handler: Any) -> Any:
            nonlocal posts
            if request.path.endswith("UploadFile"):
                posts += 1
                if posts == 4 and not stopped:
                    [job] = request.app[STATE].store.jobs()
                    stopped.append(job.handle)
                    done = await _cli(
                        "job",
                        "stop",
                        job.handle,
                        "--server",
                        str(request.url.with_path("/scene7/UploadFile")),
                        "--user",
                        USER,
                        "--company-handle",
                        "c|42",
                    )
                    assert done == 0
            return await handler(request)

        server = await start_emulator(middlewares=(stop_after_three,))
        src = make_tree(tmp_path / "src", {f"f{i:03d}.jpg": b"x" for i in range(60)})
        report = await run_upload(server.config(max_files_per_post=2, concurrency=1), [str(src)])
        assert report.exit_code == 3 and "stopped on the server" in (report.fatal_error or "")
        assert report.jobs_stopped == 1 and stopped[0] in report.job_handles
        assert len(report.job_handles) == 1

    async def test_changed_source_address_is_explained(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """The job refuses our address though it is open: a NAT/egress message, exit 3."""
        posts = 0

        @web.middleware
        async def move_the_job(request: web.Request, handler: Any) -> Any:
            nonlocal posts
            response = await handler(request)
            if request.path.endswith("UploadFile"):
                posts += 1
                if posts == 2:
                    for job in request.app[STATE].store.jobs():
                        job.peer = "192.0.2.7"  # as if opened from another egress address
            return response

        server = await start_emulator(middlewares=(move_the_job,))
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"x" for i in range(20)})
        report = await run_upload(
            server.config(max_files_per_post=2, concurrency=1, no_journal=True), [str(src)]
        )
        assert report.exit_code == 3
        assert "source address changed" in (report.fatal_error or "")
        assert "--source-ip" in (report.fatal_error or "")


async def _cli(*args: str) -> int:
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait()


class TestInterruptedWait:
    async def test_ctrl_c_ends_the_wait_for_the_job_log(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """Ctrl-C while the server still processes: the wait ends at once, files stay posted."""
        stop = asyncio.Event()

        @web.middleware
        async def interrupt_on_poll(request: web.Request, handler: Any) -> Any:
            if "getActiveJobs" in request.headers.get("SOAPAction", ""):
                stop.set()
            return await handler(request)

        server = await start_emulator(middlewares=(interrupt_on_poll,), processing_delay_s=0.05)
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"x" for i in range(40)})
        report = await run_upload(
            server.config(journal=tmp_path / "j.journal"), [str(src)], stop=stop
        )
        assert report.confirmation == "incomplete: interrupted while waiting for the job log"
        assert report.files_uploaded == 40 and report.exit_code == 130
        assert set(states(tmp_path / "j.journal").values()) <= {"posted", "confirmed"}
