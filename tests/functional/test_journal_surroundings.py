"""The journal and the job's life (issue 13, rows 6, 7 and 11): never a POST into a job that was
closed, a journal folder that cannot be used is a clear exit 2, and one run per upload target
whichever journal it uses."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from bulkup.emulator import app as app_module
from bulkup.errors import JournalError
from bulkup.journal.recorder import RunRecorder
from bulkup.journal.store import Journal
from bulkup.models import FileEntry
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, USER, make_tree


class PostLog:
    """Every POST the emulator commits or refuses at its job (``ingest.commit``, reached
    once the body is parsed): the job it names (None for an opening) and whether it is an
    endJob; ``on_end_job`` runs once an endJob has been taken."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.posts: list[tuple[str | None, bool]] = []
        self.on_end_job: Any = None
        original = app_module.commit

        def commit(post: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            handle = context.job.handle if context.job is not None else None
            is_end = bool(context.params.end_job)
            self.posts.append((handle, is_end))
            job = original(post, context, *args, **kwargs)
            if is_end and self.on_end_job is not None:
                self.on_end_job()
            return job

        monkeypatch.setattr(app_module, "commit", commit)

    def after_end_of(self, handle: str) -> list[tuple[str | None, bool]]:
        """The POSTs naming ``handle`` after its first endJob."""
        ends = [i for i, (h, end) in enumerate(self.posts) if h == handle and end]
        assert ends, f"no endJob of {handle} was seen"
        return [p for p in self.posts[ends[0] + 1 :] if p[0] == handle]


class ApiSwitch:
    """A middleware that, once ``down``, answers every IPS API call with 503."""

    def __init__(self) -> None:
        self.down = False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> Any:
        if self.down and request.path.endswith("IpsApiService"):
            return web.Response(status=503, text="down for maintenance")
        return await handler(request)


class TestNeverIntoAClosedJob:
    @pytest.mark.parametrize("api", ["answers", "down"])
    async def test_crash_while_end_job_is_answered_does_not_reopen_the_job(
        self, api: str, start_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Row 6: the server closes the job, but the run is gone before it hears the answer
        (as SIGKILL during endJob). The next run opens a new job; nothing is POSTed into the
        closed one, not even a probe. With the API down (getActiveJobs cannot be asked), the
        journal's closing record alone must keep the job closed."""
        switch = ApiSwitch()
        emulator = await start_emulator(middlewares=(switch.middleware,))
        posts = PostLog(monkeypatch)
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        journal = tmp_path / "j.journal"
        stop, abort = asyncio.Event(), asyncio.Event()

        def crash() -> None:
            stop.set()
            abort.set()

        posts.on_end_job = crash
        first = await run_upload(
            emulator.config(journal=journal, no_wait=True), [str(src)], stop=stop, abort=abort
        )
        [closed] = first.job_handles
        (src / "b.jpg").write_bytes(b"b")
        switch.down = api == "down"
        second = await run_upload(emulator.config(journal=journal, no_wait=True), [str(src)])
        assert second.exit_code == 0 and second.files_uploaded == 1
        assert closed not in second.job_handles
        assert posts.after_end_of(closed) == []

    async def test_a_job_the_server_no_longer_has_open_is_not_resumed(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """The journal says open (a journal from before endJob was recorded first, or one
        whose last write was lost); getActiveJobs says Done: a new job, no POST into it."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        journal = tmp_path / "j.journal"
        first = await run_upload(emulator.config(journal=journal), [str(src)])
        [done] = first.job_handles
        with sqlite3.connect(journal) as db:
            db.execute("UPDATE jobs SET closed=0")
        (src / "b.jpg").write_bytes(b"b")
        with capture_logs() as events:
            second = await run_upload(emulator.config(journal=journal, no_wait=True), [str(src)])
        assert second.exit_code == 0 and done not in second.job_handles
        assert [e for e in events if e["event"] == "job_not_resumed"][0]["job_handle"] == done
        assert all(done not in job.handle for job in emulator.jobs()[1:])


class TestJournalSurroundings:
    @pytest.mark.parametrize("where", ["parent is a file", "unwritable folder"])
    def test_unusable_journal_folder_exits_2_naming_it(self, where: str, tmp_path: Path) -> None:
        """Row 7: no traceback, exit 2, the path and what to do; nothing sent."""
        if where == "parent is a file":
            blocker = tmp_path / "not-a-folder"
            blocker.write_text("x")
            journal = blocker / "j.journal"
        else:
            if not os.path.isdir("/sys/kernel"):
                pytest.skip("needs Linux sysfs, where even root cannot create files")
            journal = Path("/sys/kernel/bulkup-test/j.journal")
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bulkup",
                "upload",
                str(src),
                "--server",
                "http://127.0.0.1:9/scene7/UploadFile",
                "--user",
                USER,
                "--company-handle",
                "c|1",
                "--company-root",
                "Acme/",
                "--journal",
                str(journal),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert str(journal) in done.stderr and "--journal" in done.stderr

    def test_default_state_folder_unusable_names_xdg_state_home(self, tmp_path: Path) -> None:
        blocker = tmp_path / "state-is-a-file"
        blocker.write_text("x")
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bulkup",
                "upload",
                str(src),
                "--server",
                "http://127.0.0.1:9/scene7/UploadFile",
                "--user",
                USER,
                "--company-handle",
                "c|1",
                "--company-root",
                "Acme/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "BULKUP_PASSWORD": PASSWORD, "XDG_STATE_HOME": str(blocker)},
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "XDG_STATE_HOME" in done.stderr


def _can_mount() -> bool:
    """Whether ``unshare -m`` may mount here (root, or a user namespace)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and mount")


def upload_in_mount(tmp_path: Path, setup: str, journal: Path, *, copy_out: Path) -> Any:
    """``bulkup upload`` (to a closed port: the journal is opened before any POST) inside a
    private mount namespace prepared by the ``setup`` shell line; the journal is copied out
    afterwards to ``copy_out`` (the mount vanishes with the namespace)."""
    src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
    script = f'{setup} || exit 99; "$@"; rc=$?; cp {journal} {copy_out} 2>/dev/null; exit $rc'
    return subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(src),
            "--server",
            "http://127.0.0.1:9/scene7/UploadFile",
            "--user",
            USER,
            "--company-handle",
            "c|1",
            "--company-root",
            "Acme/",
            "--journal",
            str(journal),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
    )


def a_journal(path: Path) -> bytes:
    """A real journal with one acknowledged file and one run, checkpointed into one file."""
    journal = Journal(path)
    run = journal.begin_run(1)
    journal.record_posted(
        run,
        [
            FileEntry(
                path="/s/a.jpg", rel_path="a.jpg", target="Acme/a.jpg", size=1, mtime_ns=1, inode=1
            )
        ],
        "j|1",
        {},
    )
    journal.end_run(run, {}, True)
    journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    journal._db.execute("PRAGMA journal_mode=DELETE")
    journal.close()
    return path.read_bytes()


@needs_mount
class TestMountedSurroundings:
    """Real read-only and full file systems (root ignores permission bits, not these)."""

    def test_read_only_folder_with_a_journal(self, tmp_path: Path) -> None:
        folder = tmp_path / "ro"
        folder.mkdir()
        before = a_journal(folder / "j.journal")
        done = upload_in_mount(
            tmp_path,
            f"mount --bind -o ro {folder} {folder}",
            folder / "j.journal",
            copy_out=tmp_path / "after.journal",
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and str(folder / "j.journal") in done.stderr
        assert "Read-only file system" in done.stderr and "--journal" in done.stderr
        assert (tmp_path / "after.journal").read_bytes() == before

    def test_full_disk_before_the_journal_exists(self, tmp_path: Path) -> None:
        folder = tmp_path / "full"
        folder.mkdir()
        done = upload_in_mount(
            tmp_path,
            f"mount -t tmpfs -o size=64k none {folder} && "
            f"(dd if=/dev/zero of={folder}/filler bs=4k 2>/dev/null; true)",
            folder / "j.journal",
            copy_out=tmp_path / "after.journal",
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and str(folder / "j.journal") in done.stderr
        assert "free some space" in done.stderr

    def test_full_disk_with_a_journal_leaves_it_intact(self, tmp_path: Path) -> None:
        folder = tmp_path / "full"
        folder.mkdir()
        before = a_journal(tmp_path / "saved.journal")
        done = upload_in_mount(
            tmp_path,
            f"mount -t tmpfs -o size=256k none {folder} && "
            f"cp {tmp_path / 'saved.journal'} {folder}/j.journal && "
            f"(dd if=/dev/zero of={folder}/filler bs=1k 2>/dev/null; true)",
            folder / "j.journal",
            copy_out=tmp_path / "after.journal",
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and str(folder / "j.journal") in done.stderr
        after = tmp_path / "after.journal"
        with sqlite3.connect(after) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT target, state FROM files").fetchall() == [
                ("Acme/a.jpg", "posted")
            ]
        db.close()
        assert before  # the journal copied in was a real one


class TestOneRunPerTarget:
    async def test_second_run_with_another_journal_is_refused(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """Row 11: the lock belongs to the target, wherever the journal lives."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        holder = await RunRecorder.start(
            emulator.config(journal=tmp_path / "one.journal"), [str(src)]
        )
        try:
            with pytest.raises(JournalError, match="upload target .* in use by another run"):
                await run_upload(emulator.config(journal=tmp_path / "two.journal"), [str(src)])
        finally:
            await holder.close()
        assert emulator.jobs() == []
        again = await run_upload(emulator.config(journal=tmp_path / "two.journal"), [str(src)])
        assert again.exit_code == 0

    async def test_clean_runs_leave_no_lock_and_log_no_take_over(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        journal = tmp_path / "j.journal"
        for _ in range(2):
            with capture_logs() as events:
                report = await run_upload(emulator.config(journal=journal), [str(src)])
            assert report.exit_code == 0
            assert "journal_lock_taken_over" not in {e["event"] for e in events}
        state = Path(os.environ["XDG_STATE_HOME"])
        assert list(tmp_path.glob("*.lock")) == [] and list(state.rglob("*.lock")) == []

    async def test_a_dead_holder_is_named_when_its_lock_is_taken_over(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        journal = tmp_path / "j.journal"
        (tmp_path / "j.journal.lock").write_text(json.dumps({"pid": 999_999_999}))
        with capture_logs() as events:
            report = await run_upload(emulator.config(journal=journal), [str(src)])
        assert report.exit_code == 0
        taken = [e for e in events if e["event"] == "journal_lock_taken_over"]
        assert [e["dead_pid"] for e in taken] == [999_999_999]
