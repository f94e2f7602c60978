"""Start the local servers the benchmarks run against, on ports nothing else can take.

The emulator is started with ``--port 0`` and its port read from its "listening on" line, so no
other program can take the port between choosing and binding it, and no start-up probe can
connect to itself. Servers that cannot announce a port take one from ``free_ports``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

ANNOUNCEMENT = re.compile(r"listening on (http://127\.0\.0\.1:\d+/\S+)")


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (all held while they are picked)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def start_emulator(
    root: Path, *extra: str, timeout_s: float = 30.0
) -> tuple[subprocess.Popen[str], str]:
    """``python -m bulkup.emulator`` on a port of its own choosing; the process and its
    UploadFile URL. ``extra`` are more command-line arguments (users, companies, faults)."""
    cmd = [
        sys.executable,
        "-m",
        "bulkup.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--root",
        str(root),
        *extra,
    ]
    if "--user" not in extra:
        cmd += ["--user", "bench@example.com:pw", "--company", "Bench:c|1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(timeout_s, proc.kill)  # a silent emulator ends readline with ""
    watchdog.start()
    try:
        url = _read_announcement(proc)
    finally:
        watchdog.cancel()
    threading.Thread(target=_drain, args=(proc,), daemon=True).start()
    return proc, url


def _read_announcement(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := ANNOUNCEMENT.search(line):
            return match.group(1)
    proc.wait()
    raise RuntimeError(f"the emulator did not start (exit code {proc.returncode})")


def _drain(proc: subprocess.Popen[str]) -> None:
    """Read the rest of stdout, so that its last line never meets a closed pipe."""
    assert proc.stdout is not None
    with proc.stdout:
        for _ in proc.stdout:
            pass


def bulkup_upload(
    source: Path, url: str, journal: Path, *extra: str, user: str, company: str
) -> list[str]:
    """The ``bulkup upload`` command line every benchmark runs: one source into ``url`` under
    the company root ``Bench/``, with its own journal (a fresh path: a first upload) and the
    log as JSON; ``extra`` follows."""
    return [
        sys.executable,
        "-m",
        "bulkup",
        "upload",
        str(source),
        "--server",
        url,
        "--user",
        user,
        "--company-handle",
        company,
        "--company-root",
        "Bench/",
        "--journal",
        str(journal),
        "--log-format",
        "json",
        *extra,
    ]
