"""A nightly sync with nothing to do: a 100,000-file tree synced twice; the second (no-change)
run's wall time and peak RSS beside ``find`` over the same tree (the walk's own limit).

The first run uploads the tree to the emulator (its own process) and fills the journal; then
The no-change run, ``find TREE -type f`` (names only) and ``find -printf '%s %T@ %i'`` (a stat
per file, which is what the walk needs) are timed in interleaved rounds. A no-change run
must send no POST (checked from its JSON report).

usage: python benchmarks/sync_nochange.py [--files 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upload_e2e import start_emulator  # noqa: E402


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"d{i // 1000:03d}" / f"e{(i // 100) % 10}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:06d}.jpg").write_bytes(i.to_bytes(4, "big") * 16)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS MiB and exit code of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    proc = None
    try:
        tree, journal, report = work / "tree", work / "sync.journal", work / "report.json"
        make_tree(tree, args.files)
        proc, url = start_emulator(work / "server")
        env = {**os.environ, "BULKUP_PASSWORD": "pw"}
        upload = [
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(tree),
            "--server",
            url,
            "--user",
            "bench@example.com",
            "--company-handle",
            "c|1",
            "--company-root",
            "Bench/",
            "--journal",
            str(journal),
            "--log-format",
            "json",
            "--report",
            str(report),
        ]
        first_s, _, code = timed(upload, env)
        assert code == 0, "the first sync failed"
        runs: dict[str, list[tuple[float, float]]] = {
            "bulkup no-change sync": [],
            "find -type f": [],
            "find -printf size+mtime": [],
        }
        for _ in range(args.rounds):
            wall, rss, code = timed(upload, env)
            data = json.loads(report.read_text())
            assert code == 0 and data["posts"] == 0 and data["files_skipped"] == args.files
            runs["bulkup no-change sync"].append((wall, rss))
            wall, rss, _ = timed(["find", str(tree), "-type", "f"], env)
            runs["find -type f"].append((wall, rss))
            # what the walk really needs: a stat of every file (size, mtime, inode)
            wall, rss, _ = timed(["find", str(tree), "-type", "f", "-printf", "%s %T@ %i\n"], env)
            runs["find -printf size+mtime"].append((wall, rss))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"tree: {args.files} files; first sync (uploads everything) {first_s:.1f} s; "
        f"medians of {args.rounds} interleaved rounds"
    )
    print("| command | wall s | peak RSS MiB |")
    print("|---|---|---|")
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v))
        for k, v in runs.items()
    }
    for name, (wall, rss) in med.items():
        print(f"| {name} | {wall:.2f} | {rss:.0f} |")
    sync = med["bulkup no-change sync"][0]
    for name in ("find -type f", "find -printf size+mtime"):
        print(f"ratio no-change sync / {name}: {sync / med[name][0]:.1f}x")


if __name__ == "__main__":
    main()
