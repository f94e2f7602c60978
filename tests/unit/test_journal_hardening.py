"""The journal's side of issue 13 (rows 6, 7, 11): a job whose endJob was sent is never resumed
(the closing state, schema 2 and the migration of schema 1 journals), the endJob POST waits for
the journal to say so, a folder or disk that cannot hold the journal or a lock is a
JournalError naming the path and what to do, and lock files do not outlive a clean holder."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import JournalError
from bulkup.journal import session as journal_run
from bulkup.journal import store as journal_module
from bulkup.journal.session import RunLock
from bulkup.journal.store import JOB_CLOSED, JOB_CLOSING, JOB_OPEN, Journal
from bulkup.pipeline.coordinator import Deps, JobCoordinator, JobLinks, JobSettings
from bulkup.stats import Stats

from .test_job import FakeClient, FakeTime

HANDLE = "j|1||a|1"

SCHEMA_1_JOBS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    handle TEXT PRIMARY KEY, run_id INTEGER NOT NULL, name TEXT NOT NULL, source_ip TEXT,
    params_digest TEXT NOT NULL, opened_at REAL NOT NULL, last_activity REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO jobs VALUES ('open', 1, 'a', NULL, 'd', 0, 100, 0);
INSERT INTO jobs VALUES ('done', 1, 'b', NULL, 'd', 0, 50, 1);
"""


def open_job(path: Path, clock: Any = None) -> Journal:
    journal = Journal(path, clock=clock or (lambda: 1000.0))
    journal.record_job_opened(journal.begin_run(1), HANDLE, "a", None, "digest")
    return journal


class TestClosingState:
    def test_a_job_whose_end_job_was_sent_is_never_resumed(self, tmp_path: Path) -> None:
        journal = open_job(tmp_path / "j.journal")
        assert (
            journal.resumable_job(source_ip=None, params_digest="digest", within_s=1200) is not None
        )
        journal.record_job_closing(HANDLE)
        assert journal.job_state(HANDLE) == JOB_CLOSING
        assert journal.resumable_job(source_ip=None, params_digest="digest", within_s=1200) is None
        journal.record_job_closed(HANDLE)
        assert journal.job_state(HANDLE) == JOB_CLOSED

    def test_closing_survives_reopening_and_keeps_its_files_acknowledged(
        self, tmp_path: Path
    ) -> None:
        """The state is committed at once (a SIGKILL right after loses nothing), and the
        files posted to the job stay acknowledged, waiting for the job log's verdicts."""
        from .test_journal import entry

        path = tmp_path / "j.journal"
        journal = open_job(path)
        journal.record_posted(1, [entry("a.jpg")], HANDLE, {})
        journal.record_job_closing(HANDLE)
        del journal  # no close: as a killed process
        again = Journal(path)
        assert again.job_state(HANDLE) == JOB_CLOSING
        assert again.lookup(["Acme/a.jpg"])["Acme/a.jpg"].state == "posted"
        assert again.jobs_with_unconfirmed() == [HANDLE]

    def test_schema_1_journal_is_migrated_keeping_its_jobs(self, tmp_path: Path) -> None:
        path = tmp_path / "old.journal"
        with sqlite3.connect(path) as db:
            db.executescript(SCHEMA_1_JOBS)
        db.close()
        journal = Journal(path, clock=lambda: 200.0)
        assert (journal.job_state("open"), journal.job_state("done")) == (JOB_OPEN, JOB_CLOSED)
        found = journal.resumable_job(source_ip=None, params_digest="d", within_s=1200)
        assert found is not None and found.handle == "open"
        journal.close()
        with sqlite3.connect(path) as db:
            version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        db.close()
        assert version == (str(journal_module.SCHEMA_VERSION),) and version == ("2",)

    def test_old_closing_jobs_are_pruned_like_closed_ones(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(journal_module, "KEEP_RUNS", 1)
        journal = open_job(tmp_path / "j.journal")
        journal.record_job_closing(HANDLE)
        for _ in range(3):
            journal.end_run(journal.begin_run(1), {}, True)
        assert journal.job_state(HANDLE) is None


class Recorder:
    """A JobRecorder that notes each call next to the POSTs of a FakeClient."""

    def __init__(self, client: FakeClient, fail_closing: bool = False) -> None:
        self.client, self.fail_closing = client, fail_closing
        self.events: list[tuple[str, int]] = []

    async def job_opened(self, handle: str, name: str) -> None:
        self.events.append(("opened", len(self.client.params)))

    async def job_active(self, handle: str) -> None:
        self.events.append(("active", len(self.client.params)))

    async def job_closing(self, handle: str) -> None:
        if self.fail_closing:
            raise JournalError("cannot use /x/j.journal (disk full)")
        self.events.append(("closing", len(self.client.params)))

    async def job_closed(self, handle: str) -> None:
        self.events.append(("closed", len(self.client.params)))


def coordinator_with(recorder: Recorder, client: FakeClient) -> JobCoordinator:
    time = FakeTime()
    config = UploadConfig(
        server_url="http://127.0.0.1:1/scene7/UploadFile",
        user="u@x.y",
        password="pw",
        company_handle="c|1",
    )
    deps = Deps(
        client=client, stats=Stats(clock=time), clock=time, sleep=time.sleep, rng=lambda: 0.5
    )
    return JobCoordinator(
        JobSettings.from_config(config), deps=deps, links=JobLinks(recorder=recorder)
    )


class TestEndJobOrder:
    async def test_closing_is_recorded_before_end_job_is_sent(self) -> None:
        client = FakeClient()
        recorder = Recorder(client)
        job = coordinator_with(recorder, client)
        await job.current_handle()
        await job.end_job()
        assert "<endJob>true</endJob>" in client.params[-1]
        # the endJob POST is the second one: closing noted with 1 POST sent, closed with 2
        assert recorder.events[-2:] == [("closing", 1), ("closed", 2)]

    async def test_a_journal_that_cannot_record_closing_stops_the_close(self) -> None:
        """The job stays open on the server (it times out) and in the journal: resumable
        and true, rather than closed on the server while the journal says open."""
        client = FakeClient()
        job = coordinator_with(Recorder(client, fail_closing=True), client)
        await job.current_handle()
        with pytest.raises(JournalError):
            await job.end_job()
        assert len(client.params) == 1 and "endJob" not in client.params[0]


class FullDisk(sqlite3.Connection):
    """A connection whose every write fails as SQLite fails on a full disk."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        if sql.lstrip().upper().startswith(("BEGIN", "PRAGMA JOURNAL_MODE")):
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


class TestUnusableFolders:
    def test_a_full_disk_at_opening_names_the_path_and_leaves_the_journal_alone(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "j.journal"
        open_job(path).close()
        before = path.read_bytes()
        real_connect = sqlite3.connect
        monkeypatch.setattr(
            journal_module.sqlite3,
            "connect",
            lambda *a, **k: real_connect(*a, **k, factory=FullDisk),
        )
        with pytest.raises(JournalError) as caught:
            Journal(path)
        message = str(caught.value)
        assert str(path) in message and "disk full" in message
        assert "free some space" in message and "damaged" not in message
        assert path.read_bytes() == before

    def test_a_file_in_the_way_of_the_journal_folder(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("x")
        with pytest.raises(JournalError, match="--journal PATH in a writable folder") as caught:
            Journal(tmp_path / "file" / "j.journal")
        assert str(tmp_path / "file" / "j.journal") in str(caught.value)

    @pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
    def test_a_lock_that_cannot_be_created(
        self, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse(*args: Any, **kwargs: Any) -> int:
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(journal_run.os, "open", refuse)
        with pytest.raises(JournalError) as caught:
            RunLock(tmp_path / "j.journal").acquire()
        message = str(caught.value)
        assert str(tmp_path / "j.journal.lock") in message and os.strerror(code) in message

    def test_target_lock_moves_to_the_temporary_folder_when_state_cannot_be_written(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The target lock must be shared by every run on the target, so it never lives
        beside one journal; with no writable state folder it goes to a per-user folder of
        the temporary directory (the same for every run of this user)."""
        (tmp_path / "state").write_text("a file, not a folder")
        monkeypatch.setattr(journal_run.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
        config = UploadConfig(
            server_url="http://127.0.0.1:1/scene7/UploadFile",
            user="u@x.y",
            password="pw",
            company_handle="c|1",
        )
        environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
        path = journal_run.target_lock_path(config, ["/src"], environ)
        assert path.parent == tmp_path / "tmp" / f"bulkup-{os.getuid()}-locks"
        assert path == journal_run.target_lock_path(config, ["/src"], environ)


class TestLockFiles:
    def test_release_removes_the_lock_file(self, tmp_path: Path) -> None:
        lock = RunLock(tmp_path / "j.journal")
        lock.acquire()
        assert lock.path.exists()
        lock.release()
        assert not lock.path.exists()

    def test_a_run_that_opened_a_released_file_takes_the_new_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A holder removes its file as another run opens it: that run must not hold a lock
        on a file no path names (a third run would then lock the new file too)."""
        holder = RunLock(tmp_path / "j.journal")
        holder.acquire()
        real_flock = journal_run.fcntl.flock
        released = []

        def flock(fd: int, op: int) -> None:
            if not released and op & journal_run.fcntl.LOCK_NB:
                released.append(True)
                holder.release()  # between the other run's open and its flock
            real_flock(fd, op)

        monkeypatch.setattr(journal_run.fcntl, "flock", flock)
        other = RunLock(tmp_path / "j.journal")
        other.acquire()
        monkeypatch.setattr(journal_run.fcntl, "flock", real_flock)
        with pytest.raises(JournalError, match="in use by another run"):
            RunLock(tmp_path / "j.journal").acquire()
        other.release()
