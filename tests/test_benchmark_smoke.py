"""Tiny runs of the benchmark scripts that double as reliability checks, so they do not rot.
Speed is not asserted here; only that the scripts run and their own checks pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench  # not in the default run: `pytest -m bench` (.ci/run runs both)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_fault_soak_short() -> None:
    """Two seeds of the fault soak on 150 files: every file lands, counts reconcile."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "fault_soak.py"), "--files", "150", "--seeds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 files lost, 2/2 seeds fully reconciled" in done.stdout


def test_small_reads_runs() -> None:
    """The aiofiles comparison runs on a few files and prints its ratio."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "small_reads.py"), "--files", "50", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "faster than aiofiles" in done.stdout


def test_throughput_harness_smoke(tmp_path: Path) -> None:
    """The throughput harness end to end on a few files: corpora, a sink that counts what it
    received (the Python one: nginx is not a test dependency), bulkup with a sweep beside
    it, the emulator run, and the JSON and Markdown it writes."""
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "throughput.py"),
            "--smoke",
            "--sink",
            "python",
            "--clients",
            "bulkup",
            "--rounds",
            "1",
            "--corpora",
            "small,large",
            "--sweep",
            "concurrency=2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    medians = json.loads((out / "results.json").read_text())["medians"]
    assert {(m["target"], m["corpus"], m["client"]) for m in medians} == {
        ("sink", "small", "bulkup"),
        ("sink", "small", "bulkup concurrency=2"),
        ("sink", "large", "bulkup"),
        ("sink", "large", "bulkup concurrency=2"),
        ("emulator", "small", "bulkup"),
        ("emulator", "large", "bulkup"),
    }
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert all(
        r["sink_bytes"] >= 40 * 16 * 1024
        for r in runs
        if r["target"] == "sink" and r["corpus"] == "small"
    )
    assert all(0 < r["transfer_s"] < r["wall_s"] for r in runs if r["target"] == "sink")
    assert all(
        0 < r["first_byte_s"] < r["wall_s"] - r["transfer_s"] + 0.01
        for r in runs
        if r["target"] == "sink"
    )
    assert "| sink | no | small | bulkup concurrency=2 |" in (out / "results.md").read_text()


def test_throughput_corpora_cached(tmp_path: Path) -> None:
    """Corpora are generated once into the cache, found again by their manifest (written
    last), and generated again when the manifest does not match; the requests script's subset
    is hard links to the first files."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import throughput
    finally:
        sys.path.remove(str(BENCHMARKS))
    spec = throughput.CorpusSpec("small", (100,) * 30, per_folder=10, subset=12)
    specs = {"smoke": {"small": spec}}
    original = throughput.corpus_specs
    throughput.corpus_specs = lambda scale: specs[scale]
    try:
        (first,) = throughput.make_corpora(tmp_path, ["small"], "smoke")
        manifest = first.path.parent / "MANIFEST.json"
        stamp = manifest.stat().st_mtime_ns
        (again,) = throughput.make_corpora(tmp_path, ["small"], "smoke")
        assert again == first and manifest.stat().st_mtime_ns == stamp
        manifest.write_text("{}")  # as if interrupted, or another spec
        throughput.make_corpora(tmp_path, ["small"], "smoke")
        assert json.loads(manifest.read_text())["key"] == spec.key
    finally:
        throughput.corpus_specs = original
    files = sorted(first.path.rglob("*.tif"))
    assert len(files) == 30 and {f.parent.name for f in files} == {"d000", "d001", "d002"}
    assert all(f.stat().st_size == 100 for f in files)
    subset = sorted(p for p in first.subset.rglob("*.tif")) if first.subset else []
    assert len(subset) == first.subset_files == 12 and all(p.stat().st_nlink == 2 for p in subset)


def test_startup_runs() -> None:
    """The start-up cost table runs (one round) and lists bulkup's own start."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "startup.py"), "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "| bulkup upload --dry-run (empty folder) |" in done.stdout
