"""The command line as a user runs it: exit codes, summary, report, and secrets kept out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bulkup.cli.main import main

from .conftest import PASSWORD, USER, make_tree, upload_argv

CANARY = "canary-Pw-91d3"


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkup", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


class TestMainCommand:
    def test_emulator_sample_run(self, tmp_path: Path) -> None:
        """`bulkup upload --emulator` uploads the sample tree and prints the summary; exit 0."""
        done = run_cli(
            "upload",
            "--emulator",
            "--report",
            str(tmp_path / "r.json"),
            "--emulator-root",
            str(tmp_path / "kept"),
        )
        assert done.returncode == 0, done.stderr
        assert "found 7 files; sent 7 (" in done.stdout and "files landed under" in done.stdout
        report = json.loads((tmp_path / "r.json").read_text())
        landed = Path(report["emulator_root"])
        assert len([p for p in landed.rglob("*") if p.is_file()]) == 7
        for key in (
            "job_handles",
            "files_uploaded",
            "files_failed",
            "files_skipped",
            "bytes_uploaded",
            "posts",
            "retries",
            "duration_s",
            "failures",
        ):
            assert key in report

    def test_emulator_run_leaves_no_temporary_folder(self, tmp_path: Path) -> None:
        """Without --emulator-root the sample tree, the emulator's files and the demo's
        journal live in temporary folders removed at exit (nothing in the state dir)."""
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        done = run_cli("upload", "--emulator", env={"TMPDIR": str(scratch)})
        assert done.returncode == 0, done.stderr
        assert "removed at exit" in done.stderr and "files landed under" not in done.stdout
        assert list(scratch.iterdir()) == []
        assert [p for p in Path(os.environ["XDG_STATE_HOME"]).rglob("*") if p.is_file()] == []

    def test_dry_run_sends_nothing(self, tmp_path: Path) -> None:
        """--dry-run prints files, bytes and POSTs and opens no job."""
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"d" * 1000 for i in range(25)})
        done = run_cli(
            "upload",
            str(src),
            "--server",
            "http://127.0.0.1:9/scene7/UploadFile",
            "--max-files-per-post",
            "10",
            "--dry-run",
            "--concurrency",
            "1",
            env={"BULKUP_PASSWORD": CANARY},
        )
        assert done.returncode == 0, done.stderr
        assert "dry run: 25 files, 25.0 kB, 3 POSTs planned" in done.stdout
        assert CANARY not in done.stdout + done.stderr


class TestExitCodes:
    def test_usage_errors_exit_2(self, tmp_path: Path) -> None:
        """A bad flag value and a bad config key exit 2 and name the culprit."""
        bad = tmp_path / "bad.toml"
        bad.write_text("concurency = 3\n")
        done = run_cli("upload", str(tmp_path), "--config", str(bad))
        assert done.returncode == 2 and "concurency" in done.stderr and "bad.toml" in done.stderr
        done = run_cli("upload", str(tmp_path), "--max-post-bytes", "lots")
        assert done.returncode == 2 and "lots" in done.stderr

    def test_no_source_is_a_usage_error(self) -> None:
        """Without SRC (and without --emulator) the command refuses to run."""
        assert main(["upload"]) == 2

    async def test_wrong_password_exit_3_and_no_canary(self, emulator: Any, tmp_path: Path) -> None:
        """Authentication fails: exit 3, the fault named, the password nowhere in the output."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        report = tmp_path / "r.json"
        done = await _run_async(
            "upload",
            str(src),
            "--server",
            emulator.url,
            "--user",
            USER,
            "--company-handle",
            "c|42",
            "--report",
            str(report),
            "--log-format",
            "json",
            env={"BULKUP_PASSWORD": CANARY},
        )
        assert done.returncode == 3
        assert "authenticationFault 10001" in done.stdout
        assert CANARY not in done.stdout + done.stderr + report.read_text()

    async def test_failed_file_exit_1(self, emulator: Any, tmp_path: Path) -> None:
        """A file the server would refuse fails alone: exit 1 and it is listed."""
        src = make_tree(tmp_path / "src", {"ok.jpg": b"o", "bad:name.jpg": b"b"})
        done = await _run_async(
            "upload",
            str(src),
            "--server",
            emulator.url,
            "--user",
            USER,
            "--company-handle",
            "c|42",
            env={"BULKUP_PASSWORD": PASSWORD},
        )
        assert done.returncode == 1
        assert "FAILED" in done.stdout and "bad:name.jpg" in done.stdout


async def _run_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess while this test's event loop keeps serving the emulator."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


class TestJournalCommands:
    @pytest.mark.blocks_loop  # the CLI run with subprocess.run, on purpose
    async def test_status_and_failed_report(self, emulator: Any, tmp_path: Path) -> None:
        """`bulkup status` shows the run's counts; `report --failed --json` lists the failure."""
        src = make_tree(tmp_path / "src", {"ok.jpg": b"o", "bad:name.jpg": b"b"})
        journal = tmp_path / "j.journal"
        done = await _run_async(
            "upload",
            str(src),
            "--server",
            emulator.url,
            "--user",
            USER,
            "--company-handle",
            "c|42",
            "--journal",
            str(journal),
            env={"BULKUP_PASSWORD": PASSWORD},
        )
        assert done.returncode == 1
        status = run_cli("status", "--journal", str(journal))
        assert status.returncode == 0
        assert "exit 1, uploaded 1, failed 1, skipped 0" in status.stdout
        failed = run_cli("report", "--failed", "--journal", str(journal), "--json")
        [failure] = json.loads(failed.stdout)["failures"]
        assert failure["path"].endswith("bad:name.jpg") and ":" in failure["reason"]

    async def test_second_run_on_a_locked_journal_exits_2(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """While another run holds the journal, a second run exits 2 naming its PID."""
        from bulkup.journal.session import RunLock

        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        lock = RunLock(tmp_path / "j.journal")
        lock.acquire()
        try:
            done = await _run_async(
                "upload",
                str(src),
                "--server",
                emulator.url,
                "--user",
                USER,
                "--company-handle",
                "c|42",
                "--journal",
                str(tmp_path / "j.journal"),
                env={"BULKUP_PASSWORD": PASSWORD},
            )
        finally:
            lock.release()
        assert done.returncode == 2 and f"PID {os.getpid()}" in done.stderr
        assert emulator.jobs() == []

    def test_status_without_journals(self) -> None:
        """With no journal yet, status says so and exits 2."""
        done = run_cli("status")
        assert done.returncode == 2 and "no journal" in done.stderr


class TestJobCommands:
    async def test_status_and_log(self, emulator: Any, tmp_path: Path) -> None:
        """`bulkup job status` shows a finished job's counts; `job log --json` every line."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.jpg": b"b", "zero.jpg": b""})
        report_path = tmp_path / "r.json"
        done = await _run_async(
            *upload_argv(src, emulator.url),
            "--report",
            str(report_path),
            env={"BULKUP_PASSWORD": PASSWORD},
        )
        assert done.returncode == 1  # the 0-byte file is refused by the server
        [handle] = json.loads(report_path.read_text())["job_handles"]
        common = ("--server", emulator.url, "--user", USER, "--company-handle", "c|42")
        status = await _run_async(
            "job", "status", handle, *common, env={"BULKUP_PASSWORD": PASSWORD}
        )
        assert status.returncode == 0 and f"job {handle}: Done" in status.stdout
        assert "fileErrorCount: 1" in status.stdout and "fileSuccessCount: 2" in status.stdout
        log = await _run_async(
            "job", "log", handle, "--json", *common, env={"BULKUP_PASSWORD": PASSWORD}
        )
        lines = json.loads(log.stdout)["details"]
        types = [line["logType"] for line in lines]
        assert types[0] == "BeginUpload" and types[-1] == "EndUpload"
        assert types.count("UploadSuccess") == 2 and types.count("UploadError") == 1

    async def test_job_command_needs_a_server(self) -> None:
        """Without a server, region or API URL the job commands exit 2."""
        done = await _run_async("job", "status", "j|1", env={"BULKUP_PASSWORD": PASSWORD})
        assert done.returncode == 2 and "--server" in done.stderr
