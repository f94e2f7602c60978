"""Hostile names and links, end to end against the emulator (issue 13, rows 4 and 10).

Row 4: one file name with invalid UTF-8 bytes stopped the whole run ("internal error:
UnicodeEncodeError", exit 3), the report said 0 uploaded while the journal held the files, and
the ``--report`` file was left at 0 bytes. Row 10: ``--follow-symlinks`` uploaded a link to a
file out of the tree (``/etc/shadow``). Bytes names are made with ``os.open(bytes)``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bulkup.errors import ConfigError, ReportError
from bulkup.journal.store import Journal
from bulkup.models import FileFailure
from bulkup.pipeline.run import run_upload
from bulkup.report import UploadReport

from .conftest import PASSWORD, USER, make_tree

GOOD = {"a.jpg": b"a" * 10, "b.jpg": b"b" * 20, "sub/c.jpg": b"c" * 30}


def _bad_name_tree(root: Path) -> Path:
    make_tree(root, GOOD)
    fd = os.open(os.fsencode(root) + b"/caf\xe9.jpg", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"bad")
    os.close(fd)
    return root


async def _cli(*args: str, max_file_bytes: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a subprocess (this test's loop keeps serving the emulator). Its stdout is
    strict UTF-8: a raw surrogate escape printed to the terminal would crash it.
    ``max_file_bytes`` limits the size of any file it writes (a full disk, for it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={
            **os.environ,
            "BULKUP_PASSWORD": PASSWORD,
            "PYTHONIOENCODING": "utf-8:strict",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=None if max_file_bytes is None else lambda: _limit_files(max_file_bytes),
    )
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode or 0, out, err)


def _limit_files(size: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def _upload_args(emulator: Any, *more: str) -> list[str]:
    return [
        "upload",
        "--server",
        emulator.url,
        "--user",
        USER,
        "--company-handle",
        "c|42",
        "--company-root",
        "Acme/",
        "--log-format",
        "json",
        *more,
    ]


def _journal_counts(path: Path) -> dict[str, int]:
    """What the journal itself holds for its last run: receipts and failures, by table."""
    db = sqlite3.connect(path)
    try:
        (run,) = db.execute("SELECT max(id) FROM runs").fetchone()
        (posted,) = db.execute(
            "SELECT count(*) FROM files WHERE run_id=? AND state IN ('posted', 'confirmed')", (run,)
        ).fetchone()
        (failed,) = db.execute("SELECT count(*) FROM failures WHERE run_id=?", (run,)).fetchone()
    finally:
        db.close()
    return {"posted": posted, "failed": failed}


class TestBadNameFailsAlone:
    async def test_cli_run_goes_on_and_every_count_agrees(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """Row 4 as a user meets it: exit 1, the good files on the server, the bad one failed
        with its bytes escaped; the report is valid UTF-8 JSON and its counts equal the
        summary's, `bulkup status`'s and the journal's own tables."""
        src = _bad_name_tree(tmp_path / "src")
        report_path, journal = tmp_path / "r.json", tmp_path / "j.journal"
        done = await _cli(
            *_upload_args(
                emulator, str(src), "--report", str(report_path), "--journal", str(journal)
            )
        )
        stdout, stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
        assert done.returncode == 1, stderr
        assert "internal error" not in stdout + stderr and "Traceback" not in stderr
        assert emulator.stored_files() == GOOD

        report = json.loads(report_path.read_bytes().decode("utf-8"))
        assert report["failures"] == [
            {
                "path": f"{src}/caf\\xe9.jpg",
                "reason": "file name is not valid UTF-8: caf\\xe9.jpg",
                "target": "Acme/caf\\xe9.jpg",
            }
        ]
        assert (
            report["files_uploaded"],
            report["files_failed"],
            report["exit_code"],
            report["fatal_error"],
        ) == (3, 1, 1, None)
        assert "sent 3 (" in stdout and "failed locally 1, skipped 0" in stdout
        assert f"FAILED {src}/caf\\xe9.jpg: file name is not valid UTF-8" in stdout

        status = await _cli("status", "--json", "--journal", str(journal))
        (run,) = json.loads(status.stdout)[0]["runs"]
        for key in ("files_uploaded", "files_failed", "files_skipped", "exit_code", "posts"):
            assert run[key] == report[key], key
        assert _journal_counts(journal) == {"posted": 3, "failed": 1}
        failed = await _cli("report", "--failed", "--json", "--journal", str(journal))
        assert [f["reason"] for f in json.loads(failed.stdout)["failures"]] == [
            "file name is not valid UTF-8: caf\\xe9.jpg"
        ]

    async def test_bad_directory_and_bad_root(self, emulator: Any, tmp_path: Path) -> None:
        """A directory with a bad name fails each file under it; a root with a bad name (as
        argv hands it over) fails its files; the other root uploads; counts agree."""
        good = make_tree(tmp_path / "good", {"g.jpg": b"g"})
        bad_root = os.fsencode(tmp_path) + b"/r\xe9p"
        os.makedirs(bad_root + b"/ok-dir")
        os.makedirs(os.fsencode(good) + b"/d\xff")
        for name in (
            bad_root + b"/x.jpg",
            bad_root + b"/ok-dir/y.jpg",
            os.fsencode(good) + b"/d\xff/z.jpg",
        ):
            fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        journal = tmp_path / "j.journal"
        report = await run_upload(
            emulator.config(journal=journal), [os.fsdecode(bad_root), str(good)]
        )
        assert report.exit_code == 1 and report.fatal_error is None
        assert (report.files_uploaded, report.files_failed) == (1, 3)
        assert sorted(f.reason for f in report.failures) == [
            "directory name is not valid UTF-8: d\\xff",
            "directory name is not valid UTF-8: r\\xe9p",
            "directory name is not valid UTF-8: r\\xe9p",
        ]
        assert emulator.stored_files() == {"g.jpg": b"g"}
        json.dumps(report.as_json(), ensure_ascii=False).encode("utf-8")
        assert _journal_counts(journal) == {"posted": 1, "failed": 3}

    async def test_journal_error_midway_report_agrees_with_journal(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An error in the journal mid-run (here writing the failures, which is what row 4's
        UnicodeEncodeError hit) ends the run, and the report's uploaded count is what the
        journal holds: the receipt is the last write of an acknowledged POST, so it is never
        in the journal uncounted (it was: report 0, journal 3)."""
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"f" * 10 for i in range(6)})
        make_tree(src, {"huge.jpg": b"h" * 100})  # fails: above max_file_size

        def broken(*args: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(Journal, "record_failed", broken)
        journal = tmp_path / "j.journal"
        report = await run_upload(
            emulator.config(journal=journal, max_file_size=50, max_files_per_post=1, concurrency=1),
            [str(src)],
        )
        assert report.fatal_error is not None and "disk I/O error" in report.fatal_error
        assert report.files_uploaded == _journal_counts(journal)["posted"]
        (run,) = Journal(journal).recent_runs()
        assert run["files_uploaded"] == report.files_uploaded


class TestReportFile:
    def _report(self, failures: tuple[FileFailure, ...] = ()) -> UploadReport:
        return UploadReport(
            job_handles=("j|1",),
            files_found=3,
            files_uploaded=2,
            files_failed=len(failures),
            files_skipped=0,
            bytes_uploaded=20,
            posts=2,
            retries=0,
            duration_s=1.0,
            failures=failures,
        )

    def test_raw_name_never_breaks_the_json(self, tmp_path: Path) -> None:
        """A failure that still holds a surrogate escape (however it got there) is written
        escaped, as valid UTF-8 JSON, over the previous report; the summary is clean too."""
        path = tmp_path / "r.json"
        path.write_text('{"old": true}\n')
        raw = FileFailure(os.fsdecode(b"/t/caf\xe9.jpg"), "odd\udcff", None)
        report = self._report((raw,))
        report.write_json(path)
        written = json.loads(path.read_bytes().decode("utf-8"))
        assert written["failures"] == [
            {"path": "/t/caf\\xe9.jpg", "reason": "odd\\xff", "target": None}
        ]
        "\n".join(report.summary_lines()).encode("utf-8")

    def test_a_failed_write_leaves_the_old_report_whole(self, tmp_path: Path) -> None:
        """The file system refuses the write part-way (a file size limit here, a full disk
        in life): ReportError names the path, the previous report is left as it was, and no
        temporary file stays behind."""
        path = tmp_path / "r.json"
        path.write_text('{"old": true}\n')
        report = self._report(tuple(FileFailure(f"/t/{i}.jpg", "x") for i in range(50)))
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, limits[1]))
        try:
            with pytest.raises(ReportError, match=r"cannot write the report to .*r\.json"):
                report.write_json(path)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, old_handler)
        assert path.read_text() == '{"old": true}\n'
        assert os.listdir(tmp_path) == ["r.json"]

    async def test_cli_report_write_fails_exits_2_and_says_so(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """The report cannot be written at the end (the disk is full, for the process): the
        upload happened and its summary is printed, then one line naming the path, exit 2; no
        traceback, and the previous report is still whole (it was left half-written)."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        target = tmp_path / "r.json"
        target.write_text('{"old": true}\n')
        done = await _cli(
            *_upload_args(emulator, str(src), "--report", str(target), "--no-journal"),
            max_file_bytes=300,
        )
        stderr = done.stderr.decode()
        assert done.returncode == 2 and "Traceback" not in stderr, stderr
        assert f"bulkup: cannot write the report to {target}: File too large" in stderr
        assert "sent 1 (" in done.stdout.decode()
        assert emulator.stored_files() == {"a.jpg": b"a"}
        assert target.read_text() == '{"old": true}\n'
        assert sorted(os.listdir(tmp_path)) == ["r.json", "server0", "src"]  # no temporary


class TestLinksStayInside:
    def _tree(self, tmp_path: Path) -> tuple[Path, Path]:
        src = make_tree(tmp_path / "src", {"real.jpg": b"real"})
        secret = make_tree(tmp_path / "etc", {"shadow.jpg": b"root:$6$secret"}) / "shadow.jpg"
        (src / "leak.jpg").symlink_to(secret)
        (src / "etc").symlink_to(secret.parent)
        (src / "again.jpg").symlink_to(src / "real.jpg")
        return src, secret

    async def test_cli_follow_symlinks_never_sends_what_is_outside(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """Row 10: a link to a file out of the tree, and one to a directory, are skipped with
        a warning naming where they lead; the inside link is sent; nothing fails (exit 0)."""
        src, secret = self._tree(tmp_path)
        done = await _cli(*_upload_args(emulator, str(src), "--follow-symlinks", "--no-journal"))
        assert done.returncode == 0, done.stderr.decode()
        assert emulator.stored_files() == {"again.jpg": b"real", "real.jpg": b"real"}
        skips = [
            json.loads(line)
            for line in done.stderr.decode().splitlines()
            if '"walk_skipped"' in line
        ]
        assert sorted((s["path"], s["leads_to"], s["level"]) for s in skips) == [
            (str(src / "etc"), str(secret.parent), "warning"),
            (str(src / "leak.jpg"), str(secret), "warning"),
        ]

    async def test_cli_follow_external_symlinks_when_asked(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        src, _ = self._tree(tmp_path)
        done = await _cli(
            *_upload_args(
                emulator,
                str(src),
                "--follow-symlinks",
                "--follow-external-symlinks",
                "--no-journal",
            )
        )
        assert done.returncode == 0, done.stderr.decode()
        assert set(emulator.stored_files()) == {
            "again.jpg",
            "real.jpg",
            "leak.jpg",
            "etc/shadow.jpg",
        }

    async def test_config_key_and_environment(self, emulator: Any, tmp_path: Path) -> None:
        """follow_external_symlinks as a config key and as BULKUP_FOLLOW_EXTERNAL_SYMLINKS."""
        from bulkup.config.load import load_config

        config_file = tmp_path / "bulkup.toml"
        config_file.write_text("follow_symlinks = true\nfollow_external_symlinks = true\n")
        assert load_config(path=config_file, environ={}, overrides={}).follow_external_symlinks
        from_env = load_config(
            path=None,
            environ={"BULKUP_FOLLOW_EXTERNAL_SYMLINKS": "yes", "BULKUP_FOLLOW_SYMLINKS": "yes"},
            overrides={},
        )
        assert from_env.follow_external_symlinks
        with pytest.raises(ConfigError, match="follow_external_symlinks needs follow_symlinks"):
            load_config(path=None, environ={"BULKUP_FOLLOW_EXTERNAL_SYMLINKS": "yes"}, overrides={})
        src, _ = self._tree(tmp_path)
        report = await run_upload(
            emulator.config(follow_symlinks=True, no_journal=True), [str(src)]
        )
        assert report.exit_code == 0 and "leak.jpg" not in emulator.stored_files()
