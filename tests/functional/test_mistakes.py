"""The routine mistakes of a new user, each through the real command line: a message that names
the culprit, exit 2, no traceback, nothing sent (the server URL here answers nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PASSWORD

NOWHERE = "http://127.0.0.1:9/scene7/UploadFile"  # the discard port: nothing may be sent


def bulkup(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "BULKUP_PASSWORD"}
    return subprocess.run(
        [sys.executable, "-m", "bulkup", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"a")
    return folder


def upload(
    src: Path, *extra: str, password: str | None = PASSWORD, user: bool = True
) -> subprocess.CompletedProcess[str]:
    args = [
        "upload",
        str(src),
        "--server",
        NOWHERE,
        "--company-handle",
        "c|1",
        "--no-wait",
        "--no-journal",
        *extra,
    ]
    if user:
        args += ["--user", "u@x.y"]
    env = {"BULKUP_PASSWORD": password} if password is not None else {}
    return bulkup(*args, env=env)


MISTAKES = {
    "no password": ({"password": None}, [], "BULKUP_PASSWORD"),
    "empty password": ({"password": ""}, [], "BULKUP_PASSWORD"),
    "no user": ({"user": False}, [], "--user"),
    "missing CA bundle": ({}, ["--ca-bundle", "{tmp}/nope.pem"], "ca_bundle: {tmp}/nope.pem"),
    "CA bundle not PEM": ({}, ["--ca-bundle", "{src}/a.jpg"], "holds no PEM certificate"),
    "report into a missing folder": (
        {},
        ["--report", "{tmp}/no/such/r.json"],
        "folder {tmp}/no/such does not exist",
    ),
    "source address not on this host": (
        {},
        ["--source-ip", "192.0.2.77"],
        "192.0.2.77 is not an address of this host",
    ),
    "log file into a missing folder": ({}, ["--log-file", "{tmp}/no/such/log"], "log_file"),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_exits_2_naming_the_culprit(name: str, src: Path, tmp_path: Path) -> None:
    kwargs, extra, expected = MISTAKES[name]
    fill = {"tmp": str(tmp_path), "src": str(src)}
    done = upload(src, *[a.format(**fill) for a in extra], **kwargs)  # type: ignore[arg-type]
    assert done.returncode == 2, done.stderr
    assert expected.format(**fill) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_missing_source_exits_2(tmp_path: Path, src: Path) -> None:
    done = bulkup(
        "upload",
        str(tmp_path / "not-there"),
        str(src),
        "--server",
        NOWHERE,
        "--user",
        "u@x.y",
        "--company-handle",
        "c|1",
        env={"BULKUP_PASSWORD": "x"},
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'not-there'}: no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_dry_run_needs_no_credentials(src: Path) -> None:
    done = upload(src, "--dry-run", password=None, user=False)
    assert done.returncode == 0, done.stderr


class TestLogLevels:
    def test_quiet_logs_no_info_events(self, tmp_path: Path) -> None:
        done = bulkup(
            "upload", "--emulator", "--no-journal", "-q", "--log-format", "json", cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        levels = {
            json.loads(line)["level"] for line in done.stderr.splitlines() if line.startswith("{")
        }
        assert levels <= {"warning", "error"}

    def test_verbose_logs_debug_events_into_the_log_file(self, tmp_path: Path) -> None:
        log_file = tmp_path / "run.log"
        done = bulkup(
            "upload", "--emulator", "--no-journal", "-v", "--log-file", str(log_file), cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert {"job_opened", "job_closed"} <= {e["event"] for e in events}
        assert "debug" in {e["level"] for e in events}
        assert "job_opened" not in done.stderr  # the log went to the file instead

    def test_verbose_and_quiet_together_are_a_usage_error(self, src: Path) -> None:
        done = upload(src, "-v", "-q")
        assert done.returncode == 2 and "not allowed with" in done.stderr


class TestBrokenPipes:
    def test_status_into_a_closed_pipe_ends_quietly(self, tmp_path: Path) -> None:
        """``bulkup status | head`` with head gone: exit 141 as a shell says it, quietly."""
        journal = str(tmp_path / "j.journal")
        assert bulkup("upload", "--emulator", "--journal", journal).returncode == 0
        code, err = closed_stdout("status", "--journal", journal)
        assert code == 141
        assert "Traceback" not in err and "BrokenPipe" not in err

    def test_summary_into_a_closed_pipe_ends_quietly(self, src: Path) -> None:
        """The summary cannot be printed: no traceback, the run's own exit code."""
        code, err = closed_stdout("upload", str(src), "--dry-run")
        assert code == 0
        assert "Traceback" not in err and "BrokenPipe" not in err

    def test_log_into_a_closed_pipe_does_not_stop_the_run(self, tmp_path: Path) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bulkup",
                "upload",
                "--emulator",
                "--no-journal",
                "--report",
                str(tmp_path / "r.json"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0
        assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 0


def closed_stdout(*args: str) -> tuple[int, str]:
    """Run the CLI with a standard output whose reader has already left."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkup", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err


def test_report_dash_is_stdout_and_the_summary_goes_to_stderr(tmp_path: Path) -> None:
    """``--report -`` prints the JSON report on stdout (nothing named ``-`` is written); the
    human summary moves to stderr."""
    done = bulkup("upload", "--emulator", "--no-journal", "--report", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["exit_code"] == 0 and report["files_uploaded"] == 7
    assert "sent 7 (" in done.stderr
    assert not (tmp_path / "-").exists()
