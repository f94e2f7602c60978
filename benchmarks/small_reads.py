"""Reading many small files from an event loop: aiofiles (a thread round trip per call) beside
one ``asyncio.to_thread`` hop per group of files (what ``bulkup/body.py`` does).

Both read the same 10,000 files of 16 KiB from the page cache, interleaved, several rounds;
the report gives medians and the ratio. usage: python benchmarks/small_reads.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiofiles
import uvloop

GROUP_BYTES = 1024 * 1024


async def with_aiofiles(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        async with aiofiles.open(path, "rb") as handle:
            total += len(await handle.read())
    return total


def _read_group(group: list[Path]) -> int:
    total = 0
    for path in group:
        with open(path, "rb", buffering=0) as handle:
            total += len(handle.read())
    return total


async def with_grouped_hops(paths: list[Path], size: int) -> int:
    per_group = max(1, GROUP_BYTES // size)
    total = 0
    for i in range(0, len(paths), per_group):
        total += await asyncio.to_thread(_read_group, paths[i:i + per_group])
    return total


async def measure(paths: list[Path], size: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"aiofiles": [], "grouped to_thread": []}
    for _ in range(rounds):
        for name in times:
            start = time.perf_counter()
            got = await (with_aiofiles(paths) if name == "aiofiles"
                         else with_grouped_hops(paths, size))
            times[name].append(time.perf_counter() - start)
            assert got == len(paths) * size
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        data = os.urandom(args.size)
        for i in range(args.files):
            path = Path(tmp) / f"f{i:06d}"
            path.write_bytes(data)
            paths.append(path)
        times = uvloop.run(measure(paths, args.size, args.rounds))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:>18}: {args.files / median:10,.0f} files/s (median of {args.rounds})")
    print(f"grouped to_thread is {medians['aiofiles'] / medians['grouped to_thread']:.1f}x "
          "faster than aiofiles")


if __name__ == "__main__":
    main()
