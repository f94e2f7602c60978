"""The journal file: schema checks, receipts, skip decisions' inputs, jobs, locks, pruning."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bulkup.errors import JournalError
from bulkup.journal import store as journal_module
from bulkup.journal.session import RunLock
from bulkup.journal.store import Journal
from bulkup.models import FileEntry, FileFailure


def entry(name: str, size: int = 10, mtime_ns: int = 1, inode: int = 7) -> FileEntry:
    return FileEntry(
        path=f"/src/{name}",
        rel_path=name,
        target=f"Acme/{name}",
        size=size,
        mtime_ns=mtime_ns,
        inode=inode,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TestFile:
    def test_created_with_schema_version(self, tmp_path: Path) -> None:
        """A new journal is in WAL mode and records its schema version."""
        journal = Journal(tmp_path / "j.journal")
        journal.close()
        db = sqlite3.connect(tmp_path / "j.journal")
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
            journal_module.SCHEMA_VERSION
        )

    def test_newer_schema_refused(self, tmp_path: Path) -> None:
        """A journal from a newer bulkup is refused with a clear message, not rewritten."""
        Journal(tmp_path / "j.journal").close()
        db = sqlite3.connect(tmp_path / "j.journal")
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
        db.commit()
        db.close()
        with pytest.raises(JournalError, match="schema 99, newer"):
            Journal(tmp_path / "j.journal")

    def test_truncated_file_refused(self, tmp_path: Path) -> None:
        """A truncated journal gives a clear error naming the file, never silent loss."""
        path = tmp_path / "j.journal"
        journal = Journal(path)
        journal.record_posted(journal.begin_run(1), [entry(f"f{i}") for i in range(500)], "j|1", {})
        journal.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        with pytest.raises(JournalError, match="damaged") as caught:
            Journal(path)
        assert str(path) in str(caught.value)

    def test_garbage_file_refused(self, tmp_path: Path) -> None:
        """A file that is not SQLite at all is refused as damaged."""
        path = tmp_path / "j.journal"
        path.write_bytes(b"this is not a database" * 100)
        with pytest.raises(JournalError, match="damaged"):
            Journal(path)

    def test_foreign_sqlite_refused(self, tmp_path: Path) -> None:
        """Some other program's SQLite file is not taken for a journal."""
        db = sqlite3.connect(tmp_path / "other.db")
        db.execute("CREATE TABLE x (y)")
        db.commit()
        db.close()
        with pytest.raises(JournalError, match="not a bulkup journal"):
            Journal(tmp_path / "other.db")


class TestFiles:
    def test_posted_then_lookup(self, tmp_path: Path) -> None:
        """A receipt records size, mtime and job; lookup returns it; unchanged is detected."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        journal.record_posted(run, [entry("a.jpg", 10, 5)], "j|1||x|1", {"Acme/a.jpg": "ab"})
        known = journal.lookup(["Acme/a.jpg", "Acme/none.jpg"])
        assert set(known) == {"Acme/a.jpg"}
        assert known["Acme/a.jpg"].unchanged_since_ack(entry("a.jpg", 10, 5))
        assert not known["Acme/a.jpg"].unchanged_since_ack(entry("a.jpg", 11, 5))
        assert not known["Acme/a.jpg"].unchanged_since_ack(entry("a.jpg", 10, 6))
        assert known["Acme/a.jpg"].acked_sha256 == "ab"

    def test_failed_is_not_acknowledged(self, tmp_path: Path) -> None:
        """A failure recorded after a receipt makes the file not acknowledged any more."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        journal.record_posted(run, [entry("a.jpg")], "j|1", {})
        journal.record_failed(run, [FileFailure("/src/a.jpg", "boom", "Acme/a.jpg")])
        known = journal.lookup(["Acme/a.jpg"])["Acme/a.jpg"]
        assert known.state == "failed" and not known.unchanged_since_ack(entry("a.jpg"))
        journal.end_run(run, {"exit_code": 1}, True)
        assert journal.last_run_failures() == [
            {"path": "/src/a.jpg", "target": "Acme/a.jpg", "reason": "boom"}
        ]

    def test_lookup_of_many(self, tmp_path: Path) -> None:
        """More targets than SQLite takes parameters (999) in one lookup."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        entries = [entry(f"f{i}.jpg") for i in range(1200)]
        journal.record_posted(run, entries, "j|1", {})
        assert len(journal.lookup([e.target for e in entries])) == 1200

    def test_gone_lists_acknowledged_files_not_seen(self, tmp_path: Path) -> None:
        """Files acknowledged before but not walked by this run are listed as gone."""
        journal = Journal(tmp_path / "j.journal")
        first = journal.begin_run(1)
        assert not journal.has_files()
        journal.record_posted(first, [entry("a"), entry("b")], "j|1", {})
        assert journal.has_files()
        second = journal.begin_run(1)
        journal.record_walked(second, [entry("a")], {})
        assert journal.gone(second) == ["/src/b"]

    def test_walked_changed_decides_in_sqlite(self, tmp_path: Path) -> None:
        """walked_changed: new, failed, resized and touched files are sent (by index), the
        unchanged one is not; every known walked file is marked seen, so only the unwalked
        one is gone."""
        journal = Journal(tmp_path / "j.journal")
        first = journal.begin_run(1)
        known = [
            entry("same"),
            entry("resized"),
            entry("touched"),
            entry("failed"),
            entry("unwalked"),
            entry('q"uote\\ü'),
        ]
        journal.record_posted(first, known, "j|1", {})
        journal.record_failed(first, [FileFailure("/src/failed", "boom", "Acme/failed")])
        second = journal.begin_run(1)
        walked = [
            entry("same"),
            entry("resized", size=11),
            entry("touched", mtime_ns=2),
            entry("failed"),
            entry("new"),
            entry('q"uote\\ü'),
        ]
        assert journal.walked_changed(second, walked) == [1, 2, 3, 4]
        assert journal.gone(second) == ["/src/unwalked"]

    def test_walked_changed_agrees_with_lookup(self, tmp_path: Path) -> None:
        """The SQL decision is the one Known.unchanged_since_ack makes, file by file."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        journal.record_posted(
            run, [entry(f"f{i}", size=i, mtime_ns=i) for i in range(40)], "j|1", {}
        )
        walked = [
            entry(f"f{i}", size=i + (i % 3 == 0), mtime_ns=i + (i % 5 == 0)) for i in range(45)
        ]
        known = journal.lookup([e.target for e in walked])
        expected = [
            i
            for i, e in enumerate(walked)
            if e.target not in known or not known[e.target].unchanged_since_ack(e)
        ]
        assert journal.walked_changed(journal.begin_run(1), walked) == expected

    def test_hash_cache(self, tmp_path: Path) -> None:
        """A hash is reused only while size, mtime and inode all match."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        journal.record_posted(run, [entry("a")], "j|1", {"Acme/a": "h1"})
        known = journal.lookup(["Acme/a"])["Acme/a"]
        assert known.cached_sha256(entry("a")) == "h1" and known.acked_sha256 == "h1"
        assert known.cached_sha256(entry("a", inode=8)) is None
        assert known.cached_sha256(entry("a", mtime_ns=2)) is None
        journal.record_walked(journal.begin_run(1), [entry("a", mtime_ns=2)], {"Acme/a": "h2"})
        known = journal.lookup(["Acme/a"])["Acme/a"]
        assert known.cached_sha256(entry("a", mtime_ns=2)) == "h2"
        assert known.acked_sha256 == "h1"  # what the server got is unchanged

    def test_names_survive_the_json_batches(self, tmp_path: Path) -> None:
        """Targets with quotes, backslashes, non-BMP and combining characters round-trip."""
        journal = Journal(tmp_path / "j.journal")
        run = journal.begin_run(1)
        names = ['q"uote', "back\\slash", "emoji\U0001f600", "e\u0301", "tab\tx", "ü"]
        journal.record_posted(run, [entry(n) for n in names], "j|1", {})
        assert set(journal.lookup([f"Acme/{n}" for n in names])) == {f"Acme/{n}" for n in names}
        assert journal.posted_sources("j|1", [f"Acme/{n}" for n in names]) == {
            f"Acme/{n}": f"/src/{n}" for n in names
        }


class TestRunsAndJobs:
    def test_resumable_job_rules(self, tmp_path: Path) -> None:
        """An open job is resumable only if recent, same address and same options."""
        clock = FakeClock()
        journal = Journal(tmp_path / "j.journal", clock=clock)
        run = journal.begin_run(1)
        journal.record_job_opened(run, "j|1||a|1", "a", None, "digest")
        clock.now += 60
        found = journal.resumable_job(source_ip=None, params_digest="digest", within_s=1200)
        assert found is not None and found.handle == "j|1||a|1"
        assert (
            journal.resumable_job(source_ip="127.0.0.2", params_digest="digest", within_s=1200)
            is None
        )
        assert journal.resumable_job(source_ip=None, params_digest="other", within_s=1200) is None
        clock.now += 1200
        assert journal.resumable_job(source_ip=None, params_digest="digest", within_s=1200) is None
        journal.record_job_active("j|1||a|1")
        journal.record_job_closed("j|1||a|1")
        assert journal.resumable_job(source_ip=None, params_digest="digest", within_s=1200) is None

    def test_old_runs_pruned(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only the newest KEEP_RUNS runs (and their failures) are kept."""
        monkeypatch.setattr(journal_module, "KEEP_RUNS", 3)
        journal = Journal(tmp_path / "j.journal")
        for _ in range(6):
            run = journal.begin_run(1)
            journal.record_failed(run, [FileFailure("/x", "r", None)])
            journal.end_run(run, {}, True)
        assert [r["run"] for r in journal.recent_runs(10)] == [6, 5, 4]
        count = journal._db.execute("SELECT count(*) FROM failures").fetchone()[0]
        assert count == 3


HOLDER = """
import signal, sys
from pathlib import Path
from bulkup.journal.session import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
signal.pause()  # hold the lock until the test kills this process
"""


class TestLock:
    def test_second_run_refused_then_lock_taken_over(self, tmp_path: Path) -> None:
        """A held lock names its PID; once that process is killed the lock is taken over."""
        path = tmp_path / "j.journal"
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(JournalError, match=f"PID {holder.pid}, started"):
                RunLock(path).acquire()
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait()
            holder.stdout.close()
        lock = RunLock(path)
        lock.acquire()
        lock.release()

    def test_release_allows_the_next_run(self, tmp_path: Path) -> None:
        """A released lock can be taken again (acquire never waits: it would raise)."""
        first = RunLock(tmp_path / "j.journal")
        first.acquire()
        first.release()
        second = RunLock(tmp_path / "j.journal")
        second.acquire()
        assert '"pid"' in second.path.read_text()
        second.release()
