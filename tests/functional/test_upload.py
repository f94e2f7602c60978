"""End to end: bulkup uploads trees into the emulator; the server side is checked byte for byte."""

from __future__ import annotations

import asyncio
import os
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.emulator.app import STATE
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, BeforeRead, make_tree

CAP = 64 * 1024


def mixed_tree(root: Path) -> dict[str, bytes]:
    rng = random.Random(3)
    nfd = unicodedata.normalize("NFD", "café-crème.jpg")
    files = {
        "empty/zero.jpg": b"",
        "at-cap.jpg": rng.randbytes(CAP),
        "above-cap.tif": rng.randbytes(CAP + 1),
        "a/b/c/d/e/f/g/h/deep.png": rng.randbytes(1000),
        f"unicode/{nfd}": rng.randbytes(2000),
        "unicode/東京タワー.jpg": rng.randbytes(3000),
        "with space/my photo.jpg": rng.randbytes(500),
        'quotes/say "cheese"/photo.jpg': rng.randbytes(700),
        "quotes/it's;here.jpg": rng.randbytes(800),
        "many/" + "x" * 200 + ".jpg": rng.randbytes(10),
    }
    files.update(
        {f"many/small-{i:03d}.jpg": rng.randbytes(rng.randrange(1, 5000)) for i in range(60)}
    )
    make_tree(root, files)
    return files


class TestMixedTree:
    async def test_every_file_lands_byte_exact(self, emulator: Any, tmp_path: Path) -> None:
        """A mixed tree (0-byte, at/above the cap, deep, NFD/NFC, spaces, quotes) arrives
        exactly."""
        files = mixed_tree(tmp_path / "src")
        config = emulator.config(max_post_bytes=CAP, max_files_per_post=7)
        report = await run_upload(config, [str(tmp_path / "src")])
        assert report.files_uploaded == len(files)
        [refused] = report.failures  # the server's verdict on the 0-byte file (D-25)
        assert (
            refused.reason == "refused by the server: Acme/empty/zero.jpg: file is empty (0 bytes)"
        )
        assert report.files_confirmed == len(files) - 1 and report.confirmation == "complete"
        stored = emulator.stored_files()
        expected = {
            unicodedata.normalize("NFC", rel): data for rel, data in files.items() if data
        }  # the emulator refuses 0-byte files (D-25) after acknowledging
        assert stored == expected
        [job] = emulator.jobs()
        outcomes = {f.target_path: f.outcome for f in job.files}
        assert outcomes["Acme/empty/zero.jpg"] == "UploadError"
        assert not job.open and job.closed_by == "endJob"

    async def test_caps_are_respected(self, emulator: Any, tmp_path: Path) -> None:
        """No POST carries more files or file bytes than the caps, unless one oversize file."""
        mixed_tree(tmp_path / "src")
        config = emulator.config(max_post_bytes=CAP, max_files_per_post=7)
        await run_upload(config, [str(tmp_path / "src")])
        [job] = emulator.jobs()
        for post in job.post_log:
            assert post["files"] <= 7
            assert post["file_bytes"] <= CAP or post["files"] == 1

    async def test_dest_folder_prefixes_targets(self, emulator: Any, tmp_path: Path) -> None:
        """--dest-folder puts the tree under that folder of the company root."""
        make_tree(tmp_path / "src", {"x/one.jpg": b"1" * 10})
        await run_upload(emulator.config(dest_folder="incoming/2026"), [str(tmp_path / "src")])
        assert emulator.stored_files() == {"incoming/2026/x/one.jpg": b"1" * 10}


class TestJobOrdering:
    async def test_opening_first_and_alone_endjob_last(self, emulator: Any, tmp_path: Path) -> None:
        """The opening POST is file-less and first; endJob starts after every other answer."""
        make_tree(tmp_path / "src", {f"f{i}.jpg": bytes([i]) * 100 for i in range(40)})
        await run_upload(emulator.config(max_files_per_post=3), [str(tmp_path / "src")])
        [job] = emulator.jobs()
        log = job.post_log
        assert log[0]["opening"] and log[0]["files"] == 0
        assert all(not p["opening"] for p in log[1:])
        closing = [p for p in log if p["end_job"]]
        assert closing == [log[-1]] and closing[0]["files"] == 0
        others = log[:-1]
        assert max(p["answered_ns"] for p in others) <= closing[0]["received_ns"]
        assert min(p["received_ns"] for p in log[1:]) >= log[0]["answered_ns"]

    async def test_nothing_to_send_opens_no_job(self, emulator: Any, tmp_path: Path) -> None:
        """An empty tree sends no POST at all and exits 0."""
        (tmp_path / "src" / "empty").mkdir(parents=True)
        report = await run_upload(emulator.config(), [str(tmp_path / "src")])
        assert emulator.jobs() == [] and report.posts == 0 and report.exit_code == 0


class TestSourceAddress:
    async def test_source_ip_is_what_the_server_sees(self, emulator: Any, tmp_path: Path) -> None:
        """--source-ip 127.0.0.2 binds every connection; the job's peer is 127.0.0.2."""
        make_tree(tmp_path / "src", {f"f{i}.jpg": b"z" * 50 for i in range(10)})
        report = await run_upload(
            emulator.config(source_ip="127.0.0.2", max_files_per_post=2), [str(tmp_path / "src")]
        )
        assert report.files_uploaded == 10
        [job] = emulator.jobs()
        assert job.peer == "127.0.0.2"


class TestFaults:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    async def test_fault_plan_every_file_arrives(
        self, start_emulator: Any, tmp_path: Path, seed: int
    ) -> None:
        """Under 503s, cut connections and 30000s every file arrives exactly, with the default
        retry budget (5 attempts, 2 retries of a 30000); retries counted.

        One worker: the plan draws a fault per POST in arrival order, so with one POST at a
        time the seed alone decides which POST gets which fault (with several workers the
        scheduler would, and a budget would only make failure unlikely). These seeds need at
        most 4 attempts for a POST and one 30000 each: the budget holds on every run.
        """
        server = await start_emulator(faults=f"seed={seed},http503=0.15,drop=0.1,fault30000=0.05")
        rng = random.Random(seed)
        files = make_tree(
            tmp_path / "src",
            {f"d{i % 5}/f{i}.jpg": rng.randbytes(rng.randrange(1, 9000)) for i in range(150)},
        )
        config = server.config(max_files_per_post=5, concurrency=1)
        assert (config.max_attempts, config.fault30000_retries) == (5, 2)  # the defaults
        report = await run_upload(config, [str(files)])
        assert report.files_failed == 0, report.failures
        stored = server.stored_files()
        assert len(stored) == 150
        for rel, data in stored.items():
            assert (files / rel).read_bytes() == data
        injected = server.app[STATE].faults.counts
        assert report.retries == injected["http503"] + injected["drop"] + injected["fault30000"] > 0

    async def test_wrong_password_is_fatal_at_once(self, emulator: Any, tmp_path: Path) -> None:
        """A wrong password stops the run with exit 3, names the fault, never retries."""
        make_tree(tmp_path / "src", {"a.jpg": b"a"})
        report = await run_upload(emulator.config(password="wrong-canary"), [str(tmp_path / "src")])
        assert report.exit_code == 3
        assert "authenticationFault 10001" in (report.fatal_error or "")
        assert report.retries == 0 and "wrong-canary" not in str(report.as_json())

    async def test_unreachable_server_is_fatal(self, tmp_path: Path) -> None:
        """Nobody listening: the opening POST gives up after its retries; exit 3."""
        from bulkup.config.model import UploadConfig

        make_tree(tmp_path / "src", {"a.jpg": b"a"})
        config = UploadConfig(
            server_url="http://127.0.0.1:9/scene7/UploadFile",
            user="u",
            password=PASSWORD,
            company_handle="c|1",
            company_root="Acme/",
            max_attempts=2,
            backoff_base_s=0.001,
            backoff_cap_s=0.01,
        )
        report = await run_upload(config, [str(tmp_path / "src")])
        assert report.exit_code == 3 and "cannot open an upload job" in report.fatal_error

    async def test_lost_job_is_replaced(self, start_emulator: Any, tmp_path: Path) -> None:
        """The server forgets the job mid-run (30001): a new job gets the rest; nothing lost."""
        posts = 0

        @web.middleware
        async def forget_jobs(request: web.Request, handler: Any) -> web.StreamResponse:
            nonlocal posts
            posts += 1
            if posts == 4:  # as if the server restarted
                for job in request.app[STATE].store.jobs():
                    job.close("restart")
            return await handler(request)

        server = await start_emulator(middlewares=(forget_jobs,))
        files = make_tree(tmp_path / "src", {f"f{i}.jpg": bytes([i]) * 300 for i in range(30)})
        report = await run_upload(server.config(max_files_per_post=2, concurrency=1), [str(files)])
        assert report.files_failed == 0 and report.files_uploaded == 30
        assert len(report.job_handles) == 2
        assert len(server.stored_files()) == 30


class TestLocalProblems:
    async def test_too_large_and_vanished_files_fail_alone(
        self, emulator: Any, tmp_path: Path, before_read: BeforeRead
    ) -> None:
        """A file over max_file_size and one that vanishes before its POST fail; others land."""
        src = make_tree(
            tmp_path / "src", {"big.jpg": b"b" * 5000, "ok.jpg": b"o" * 10, "gone.jpg": b"g" * 10}
        )
        before_read(lambda path: path.unlink() if path.name == "gone.jpg" else None)
        report = await run_upload(emulator.config(max_file_size=1000), [str(src)])
        reasons = {Path(f.path).name: f.reason for f in report.failures}
        assert set(reasons) == {"big.jpg", "gone.jpg"}
        assert "vanished" in reasons["gone.jpg"]
        assert report.exit_code == 1
        assert emulator.stored_files() == {"ok.jpg": b"o" * 10}

    async def test_name_the_server_refuses_fails_locally(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """A file name with a character IPS refuses (D-25) fails locally, named, exit 1."""
        src = make_tree(tmp_path / "src", {'say "cheese".jpg': b"c" * 5, "ok.jpg": b"o"})
        report = await run_upload(emulator.config(), [str(src)])
        [failure] = report.failures
        assert failure.path.endswith('say "cheese".jpg') and '"' in failure.reason
        assert report.exit_code == 1 and emulator.stored_files() == {"ok.jpg": b"o"}

    async def test_odd_tree(self, emulator: Any, tmp_path: Path) -> None:
        """Symlink loop, FIFO and empty directory are skipped; the rest uploads; exit 0."""
        src = make_tree(tmp_path / "src", {"real/a.jpg": b"a" * 10})
        (src / "emptydir").mkdir()
        os.mkfifo(src / "pipe.jpg")
        os.symlink(src, src / "real" / "loop")
        report = await run_upload(emulator.config(follow_symlinks=True), [str(src)])
        assert report.exit_code == 0, report.failures
        assert emulator.stored_files() == {"real/a.jpg": b"a" * 10}


class TestInterrupt:
    async def test_stop_drains_and_closes_the_job(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """First Ctrl-C: no new batches, those in flight finish, endJob is sent, exit 130."""
        stop = asyncio.Event()
        seen = 0

        @web.middleware
        async def interrupt_after_three(request: web.Request, handler: Any) -> Any:
            nonlocal seen
            seen += 1
            if seen == 3:
                stop.set()
            return await handler(request)

        server = await start_emulator(middlewares=(interrupt_after_three,))
        src = make_tree(tmp_path / "src", {f"f{i:03d}.jpg": b"x" * 100 for i in range(200)})
        report = await run_upload(
            server.config(max_files_per_post=2, concurrency=2), [str(src)], stop=stop
        )
        assert report.interrupted and report.exit_code == 130
        [job] = server.jobs()
        assert job.closed_by == "endJob" and job.post_log[-1]["end_job"]
        sent = sum(p["files"] for p in job.post_log)
        assert report.files_uploaded == sent < 200
        assert len(server.stored_files()) == sent


class TestUnexpected:
    async def test_internal_error_is_reported_not_raised(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug inside the pipeline ends the run with exit 3 and a reason, not a traceback."""
        from bulkup.pipeline.walker import Walker

        async def broken(self: Any, out: Any) -> None:
            raise RuntimeError("walker bug")

        monkeypatch.setattr(Walker, "run", broken)
        report = await run_upload(emulator.config(), [str(tmp_path)])
        assert report.exit_code == 3 and "walker bug" in (report.fatal_error or "")


class TestLargeFiles:
    async def test_large_files_stream_byte_exact(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Files above the read chunk go out by sendfile() on asyncio's loop (plain HTTP) and
        arrive byte for byte, in one POST and across POSTs."""
        from bulkup.transport.wire import Wire

        sent: list[int] = []
        real = Wire.sendfile

        async def spy(self: Wire, handle: Any, offset: int, size: int) -> int:
            sent.append(size)
            return await real(self, handle, offset, size)

        monkeypatch.setattr(Wire, "sendfile", spy)
        rng = random.Random(11)
        files = {
            "big/a.tif": rng.randbytes(3 * 1024 * 1024 + 17),
            "big/b.tif": rng.randbytes(5 * 1024 * 1024),
            "small.jpg": b"s" * 10,
        }
        src = make_tree(tmp_path / "src", files)
        report = await run_upload(emulator.config(chunk_size=1024 * 1024), [str(src)])
        assert report.exit_code == 0 and emulator.stored_files() == files
        assert sorted(sent) == [3 * 1024 * 1024 + 17, 5 * 1024 * 1024]

    def test_event_loop_choice(self, emulator: Any) -> None:
        """auto: asyncio's loop (sendfile) on plain HTTP, uvloop on HTTPS."""
        assert not emulator.config().use_uvloop
        assert emulator.config(
            server_url="https://upload.example.test/scene7/UploadFile", api_url=None
        ).use_uvloop
        assert emulator.config(event_loop="uvloop").use_uvloop
