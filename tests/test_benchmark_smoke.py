"""Tiny runs of the benchmark scripts that double as reliability checks, so they do not rot.
Speed is not asserted here; only that the scripts run and their own checks pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_fault_soak_short() -> None:
    """Two seeds of the fault soak on 150 files: every file lands, counts reconcile."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "fault_soak.py"), "--files", "150",
                           "--seeds", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 files lost, 2/2 seeds fully reconciled" in done.stdout


def test_small_reads_runs() -> None:
    """The aiofiles comparison runs on a few files and prints its ratio."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / "small_reads.py"), "--files", "50",
                           "--rounds", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "faster than aiofiles" in done.stdout
