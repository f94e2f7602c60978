"""``--bwlimit`` on an unshaped link: the body bytes a sink receives each second.

Starts a sink on loopback (an aiohttp server that reads every body and counts the bytes it
received in each whole second since the first one), runs ``bulkup upload --bwlimit RATE`` as a
whole process against it on a corpus of small and large files (small files through the read
helper's pipe, large ones by paced ``sendfile()``), and prints the average over the first
``--seconds`` seconds and the highest single second, against the limit. The target: the average
within ±5% of the limit, no second above 2x.

usage: python benchmarks/bwlimit.py [--rate 5M] [--seconds 20] [--tls]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bulkup.config.timetable import parse_bwlimit  # noqa: E402

ANSWER = (
    '<uploadPostReturn xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03">'
    "<jobHandle>j|1||sink|1</jobHandle></uploadPostReturn>"
)


def make_corpus(root: Path, total: int) -> None:
    """Half the bytes in 16 KiB files, half in 4 MiB ones."""
    small, large = os.urandom(16 * 1024), os.urandom(4 * 1024 * 1024)
    (root / "small").mkdir(parents=True)
    (root / "large").mkdir()
    for index in range(total // 2 // len(small)):
        (root / "small" / f"s{index:05d}.bin").write_bytes(small)
    for index in range(total // 2 // len(large)):
        (root / "large" / f"l{index:03d}.bin").write_bytes(large)


async def serve(per_second: Counter[int], started: list[float]) -> web.AppRunner:
    async def upload(request: web.Request) -> web.Response:
        try:
            while chunk := await request.content.readany():
                now = time.monotonic()
                if not started:
                    started.append(now)
                per_second[int(now - started[0])] += len(chunk)
        except ConnectionResetError:  # the client killed once the window is measured
            return web.Response(status=499)
        return web.Response(text=ANSWER, content_type="text/xml")

    app = web.Application(client_max_size=0)
    app.router.add_post("/scene7/UploadFile", upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


async def measure(args: argparse.Namespace, corpus: Path) -> Counter[int]:
    per_second: Counter[int] = Counter()
    started: list[float] = []
    runner = await serve(per_second, started)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    cmd = [
        sys.executable,
        "-m",
        "bulkup",
        "upload",
        str(corpus),
        "--server",
        f"http://127.0.0.1:{port}/scene7/UploadFile",
        "--user",
        "b@example.com",
        "--company-handle",
        "c|1",
        "--company-root",
        "Bench/",
        "--no-journal",
        "--no-wait",
        "--log-format",
        "json",
        "--bwlimit",
        args.rate,
    ]
    child = subprocess.Popen(
        cmd,
        env=dict(os.environ, BULKUP_PASSWORD="pw"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        while not started or time.monotonic() - started[0] < args.seconds + 1:
            if child.poll() is not None:
                break
            await asyncio.sleep(0.2)
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
        await runner.cleanup()
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="5M")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    rate = parse_bwlimit(args.rate).slots[0].rate
    assert rate is not None, "give a limit, not off"
    with tempfile.TemporaryDirectory(prefix="bulkup-bwlimit-") as where:
        corpus = Path(where) / "corpus"
        make_corpus(corpus, int(rate * (args.seconds + 5)))
        per_second = asyncio.run(measure(args, corpus))
    seconds = [per_second[s] for s in range(args.seconds)]
    average = sum(seconds) / len(seconds)
    print(f"--bwlimit {args.rate} ({rate:,} bytes/s), {args.seconds} s at the sink:")
    print(f"  average {average:,.0f} bytes/s ({average / rate - 1:+.2%} of the limit)")
    print(
        f"  highest second {max(seconds):,} bytes ({max(seconds) / rate:.2f}x), "
        f"lowest {min(seconds):,} ({min(seconds) / rate:.2f}x)"
    )
    print("  per second:", " ".join(f"{s / 1e6:.2f}" for s in seconds), "MB")


if __name__ == "__main__":
    main()
