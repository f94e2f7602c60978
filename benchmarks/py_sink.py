"""A fallback sink for ``throughput.py`` where nginx is not installed (and for its smoke test):
an aiohttp server that reads every request body whole, then answers 200 with an
``uploadPostReturn`` document, like the bench kit's nginx sink.

Each answered POST appends ``200 <body bytes> <end> <duration>`` (epoch seconds, seconds) to
``DIR/logs/access.log`` (flushed at once), the columns the nginx sink logs (``sinks.py``), so
the harness counts and times both the same way. It is slower
than nginx (one Python process): use it to check the harness, quote nginx figures.

usage: python benchmarks/py_sink.py DIR PORT [TLS_PORT CERT KEY]
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path

from aiohttp import web
from sinks import ANSWER  # the same answer as the nginx sink (this script's folder)


def make_app(log_path: Path) -> web.Application:
    log = log_path.open("a", buffering=1)

    async def upload(request: web.Request) -> web.Response:
        began, received = time.time(), 0
        while chunk := await request.content.read(1024 * 1024):
            received += len(chunk)
        ended = time.time()
        log.write(f"200 {received} {ended:.3f} {ended - began:.3f}\n")
        return web.Response(text=ANSWER, content_type="text/xml")

    app = web.Application(client_max_size=0)
    app.router.add_post("/scene7/UploadFile", upload)
    return app


async def serve(folder: Path, port: int, tls: tuple[int, str, str] | None) -> None:
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    runner = web.AppRunner(make_app(folder / "logs" / "access.log"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls[1], tls[2])
        await web.TCPSite(runner, "127.0.0.1", tls[0], ssl_context=context).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    tls = (int(sys.argv[3]), sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else None
    asyncio.run(serve(folder, port, tls))


if __name__ == "__main__":
    main()
