"""How long ``bulkup upload`` takes from SIGTERM to exit, in the worst cases a stop can meet.

A scripted servlet (in this process) answers the opening POST and then holds what the scenario
says; ``bulkup upload`` runs with its defaults (stop_grace_s 30) as a separate process; once a
follow-up POST is held, SIGTERM is sent and the time to the process's exit is taken.

Scenarios:
  held-posts        every follow-up is held for ever; endJob is answered at once
  held-all          every follow-up and endJob are held for ever (the worst case)
  second-signal     as held-all, with a second SIGTERM 1 s after the first
  503-backoff       every follow-up is answered 503 (back-off in progress at the signal)

Usage: python benchmarks/stop_time.py [--rounds N] [--stop-grace S] [--scenarios a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

SCENARIOS = ("held-posts", "held-all", "second-signal", "503-backoff")
ANSWER = "<uploadPostReturn><jobHandle>j|1||stop|1</jobHandle></uploadPostReturn>"


def servlet(scenario: str, held: asyncio.Event, never: asyncio.Event) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if "IpsApiService" in request.path:
            return web.Response(status=404)
        if b"<jobName>" in body:
            return web.Response(text=ANSWER, content_type="text/xml")
        is_end = b"<endJob>true</endJob>" in body
        if scenario == "503-backoff" and not is_end:
            held.set()
            return web.Response(status=503)
        if not is_end or scenario in ("held-all", "second-signal"):
            held.set()
            await never.wait()
        return web.Response(text=ANSWER, content_type="text/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def one_round(scenario: str, tree: Path, stop_grace: str | None) -> tuple[float, int]:
    held, never = asyncio.Event(), asyncio.Event()
    runner = web.AppRunner(servlet(scenario, held, never), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/scene7/UploadFile"
    extra = ["--stop-grace", stop_grace] if stop_grace else []
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "BULKUP_PASSWORD": "pw", "XDG_STATE_HOME": state}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(tree),
            "--server",
            url,
            "--user",
            "u@x.y",
            "--company-handle",
            "c|1",
            "--company-root",
            "Acme/",
            "--no-wait",
            *extra,
            "--log-format",
            "json",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        await asyncio.wait_for(held.wait(), 60)
        await asyncio.sleep(0.2)  # every worker's POST under way
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        if scenario == "second-signal":
            await asyncio.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
        code = await proc.wait()
        elapsed = time.perf_counter() - started
    never.set()
    await runner.cleanup()
    return elapsed, code


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stop-grace", default=None, help="--stop-grace for bulkup")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "src"
        tree.mkdir()
        for i in range(200):
            (tree / f"f{i}.jpg").write_bytes(b"x" * 1024)
        print("| scenario | rounds | exit codes | SIGTERM to exit, s: min / median / max |")
        print("|---|---|---|---|")
        for scenario in args.scenarios.split(","):
            results = [await one_round(scenario, tree, args.stop_grace) for _ in range(args.rounds)]
            times = [t for t, _ in results]
            codes = sorted({c for _, c in results})
            print(
                f"| {scenario} | {args.rounds} | {codes} | {min(times):.2f} / "
                f"{statistics.median(times):.2f} / {max(times):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
