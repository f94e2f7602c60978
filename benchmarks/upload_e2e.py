"""bulkup end to end against the emulator (its own process): files/s, MB/s, client CPU seconds
and client peak RSS, for three corpora, with the settings that were used.

Corpora (deterministic bytes): 10,000 files of 16 KiB; 200 files of 4 MiB; one file of 1 GiB.
Each run starts a fresh emulator, runs ``bulkup upload`` as a child process (so its CPU time and
peak RSS are its own, from wait4), checks that the emulator holds every file with the right
size, and stops the emulator. ``--sweep`` runs several settings side by side (interleaved) to
choose defaults; the report gives medians.

usage: python benchmarks/upload_e2e.py [--rounds 3] [--corpora small,large,huge]
       python benchmarks/upload_e2e.py --sweep concurrency=4,8,16 --corpora small
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from local_servers import start_emulator

CORPORA = {
    "small": (10_000, 16 * 1024),
    "large": (200, 4 * 1024 * 1024),
    "huge": (1, 1024 * 1024 * 1024),
}


def cached_corpus(cache: Path, label: str, count: int, size: int) -> Path:
    """The tree of ``count`` files of ``size`` bytes under ``cache/label-COUNTxSIZE``, made
    once (:func:`make_corpus`; a ``.complete`` marker written last) and reused afterwards."""
    where = cache / f"{label}-{count}x{size}"
    if not (where / ".complete").exists():
        shutil.rmtree(where, ignore_errors=True)
        print(f"generating {count:,} x {size:,} B in {where} ...", flush=True)
        make_corpus(where / "tree", count, size)
        (where / ".complete").touch()
    return where / "tree"


def make_corpus(where: Path, count: int, size: int) -> Path:
    where.mkdir(parents=True)
    rng = random.Random(count * 31 + size)
    block = rng.randbytes(min(size, 4 * 1024 * 1024))
    for i in range(count):
        write_file(where / f"d{i % 100:02d}" / f"f{i:06d}.tif", size, block)
    return where


def write_file(path: Path, size: int, block: bytes) -> None:
    """``size`` bytes of ``block`` repeated, its folder created if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            left -= len(piece)


def run_client(url: str, corpus: Path, settings: dict[str, str]) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "bulkup",
        "upload",
        str(corpus),
        "--server",
        url,
        "--user",
        "bench@example.com",
        "--company-handle",
        "c|1",
        "--company-root",
        "Bench/",
        "--log-format",
        "json",
    ]
    for key, value in settings.items():
        cmd += [f"--{key.replace('_', '-')}", value]
    env = {**os.environ, "BULKUP_PASSWORD": "pw"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"bulkup failed: {out}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def check_server(url: str, count: int, size: int) -> None:
    with urllib.request.urlopen(url.replace("/scene7/UploadFile", "/_emulator/jobs")) as answer:
        jobs = json.load(answer)["jobs"]
    good = [f for job in jobs for f in job["files"] if f["outcome"] == "UploadSuccess"]
    assert len(good) == count and all(f["size"] == size for f in good), "emulator disagrees"


def one_run(corpus: Path, count: int, size: int, settings: dict[str, str]) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-e2e-root-"))
    proc, url = start_emulator(root)
    try:
        result = run_client(url, corpus, settings)
        check_server(url, count, size)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    result["files_s"] = count / result["wall_s"]
    result["mb_s"] = count * size / 1e6 / result["wall_s"]
    return result


def parse_sweep(text: str | None) -> list[dict[str, str]]:
    if not text:
        return [{}]
    key, _, values = text.partition("=")
    return [{key: v} for v in values.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpora", default="small,large,huge")
    parser.add_argument("--sweep", help="KEY=V1,V2,... a bulkup flag to compare")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-corpus-"))
    results: list[dict[str, object]] = []
    try:
        for name in args.corpora.split(","):
            count, size = CORPORA[name]
            corpus = make_corpus(work / name, count, size)
            variants = parse_sweep(args.sweep)
            runs: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(variants))}
            for _ in range(args.rounds):
                for i, settings in enumerate(variants):
                    runs[i].append(one_run(corpus, count, size, settings))
            for i, settings in enumerate(variants):
                med = {k: statistics.median(r[k] for r in runs[i]) for k in runs[i][0]}
                results.append({"corpus": name, "settings": settings or "defaults", **med})
            shutil.rmtree(corpus)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; medians of {args.rounds}; emulator on loopback"
    )
    print("| corpus | settings | files/s | MB/s | client CPU s | client peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['corpus']} | {r['settings']} | {r['files_s']:,.0f} | {r['mb_s']:,.0f} | "
            f"{r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
