"""What a whole-process run costs before the first byte moves: the interpreter, asyncio,
aiohttp and bulkup's own start, beside curl-peer's start (Python, then curl).

Each command runs as a child process in interleaved rounds; the report gives median wall
seconds. ``bulkup upload --dry-run`` of an empty folder is bulkup's start and finish with
nothing to send (imports, config, the walk of nothing, the report); the rest isolate the layers
under it. curl-peer on an empty folder is the peer's fixed cost. The difference between a
corpus run and these is the part that scales with the files.

usage: python benchmarks/startup.py [--rounds 15] [--bench-kit ../shared/bench-kit]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commands(empty: Path, kit: Path) -> dict[str, list[str]]:
    python = sys.executable
    found = {
        "python -c pass": [python, "-c", "pass"],
        "python: import asyncio": [python, "-c", "import asyncio"],
        "python: import asyncio, aiohttp": [python, "-c", "import asyncio, aiohttp"],
        "python: asyncio + aiohttp as bulkup imports it": [
            python,
            "-c",
            "import asyncio; from bulkup.cli.runtime import import_aiohttp; import_aiohttp()",
        ],
        "bulkup upload --dry-run (empty folder)": [
            python,
            "-m",
            "bulkup",
            "upload",
            str(empty),
            "--dry-run",
            "--server",
            "http://127.0.0.1:9/scene7/UploadFile",
            "--no-journal",
            "--log-format",
            "json",
        ],
    }
    if (kit / "curl-peer.py").exists():
        found["curl-peer.py (empty folder)"] = [
            python,
            str(kit / "curl-peer.py"),
            str(empty),
            "http://127.0.0.1:9/scene7/UploadFile",
            "50",
            "8",
        ]
    return found


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "BULKUP_PASSWORD": "pw"},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--bench-kit", type=Path, default=HERE.parent.parent / "shared" / "bench-kit"
    )
    args = parser.parse_args()
    import bulkup

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(bulkup.__file__).parent)], check=True
    )
    with tempfile.TemporaryDirectory() as empty:
        cmds = commands(Path(empty), args.bench_kit)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.rounds):
            for name, cmd in cmds.items():
                times[name].append(wall(cmd))
    print(f"medians of {args.rounds} interleaved rounds, whole process, wall seconds")
    print("| command | wall s |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
