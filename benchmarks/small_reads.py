"""Reading many small files from an event loop: aiofiles (a thread round trip per call) beside
one ``asyncio.to_thread`` hop per group of files, reads on the loop's own thread, and bulkup's
read helper process (what ``bulkup/transport/body.py`` uses by default).

All read the same 10,000 files of 16 KiB from the page cache, interleaved, several rounds; the
report gives medians and ratios. The loop has nothing else to do here, so this measures the cost
of reading alone; the read helper's gain, taking reads off a loop that is busy sending, shows in
``throughput.py --sweep read_helper=false``. usage: python benchmarks/small_reads.py [--rounds 5]
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

from bulkup.models import FileEntry
from bulkup.transport.body import file_part_header
from bulkup.transport.reader import FilePart, HelperReader, InProcessReader, SmallFileReader

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
        total += await asyncio.to_thread(_read_group, paths[i : i + per_group])
    return total


async def with_reader(reader: SmallFileReader, paths: list[Path], size: int) -> int:
    """Whole groups laid out as form parts, as the body asks for them."""
    per_group = max(1, GROUP_BYTES // size)
    parts = [
        FilePart(
            FileEntry(
                path=str(p),
                rel_path=p.name,
                target=p.name,
                size=size,
                mtime_ns=p.stat().st_mtime_ns,
            ),
            file_part_header("b", 1, p.name),
        )
        for p in paths
    ]
    total = 0
    for i in range(0, len(parts), per_group):
        group = parts[i : i + per_group]
        total += len(await reader.parts(group)) - sum(len(p.header) + 2 for p in group)
    return total


async def measure(paths: list[Path], size: int, rounds: int) -> dict[str, list[float]]:
    helper = HelperReader()
    await helper.start()
    ways = {
        "aiofiles": lambda: with_aiofiles(paths),
        "grouped to_thread": lambda: with_grouped_hops(paths, size),
        "in process": lambda: with_reader(InProcessReader(), paths, size),
        "read helper": lambda: with_reader(helper, paths, size),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            got = await way()
            times[name].append(time.perf_counter() - start)
            assert got == len(paths) * size
    await helper.close()
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
    for name in ("grouped to_thread", "in process", "read helper"):
        print(f"{name} is {medians['aiofiles'] / medians[name]:.1f}x faster than aiofiles")


if __name__ == "__main__":
    main()
