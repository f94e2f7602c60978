"""The baseline server: the usual aiohttp handler that writes each multipart part to disk.

It is what a quick in-house fake of the servlet looks like (``request.multipart()``, one file
per part, ``read_chunk``), with no validation, no jobs and no hashing; the emulator's ingest rate
is reported as a ratio against it. usage: naive_server.py --port P --root DIR
"""

import argparse
import os
import uuid

import uvloop
from aiohttp import web

REPLY = (
    '<uploadPostReturn xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03">'
    "<jobHandle>j|1||naive|1</jobHandle></uploadPostReturn>"
)


async def upload(request: web.Request) -> web.Response:
    root = request.app["root"]
    reader = await request.multipart()
    async for part in reader:
        if part.filename is None:
            await part.read()
            continue
        with open(os.path.join(root, uuid.uuid4().hex), "wb") as out:
            while chunk := await part.read_chunk(256 * 1024):
                out.write(chunk)
    return web.Response(text=REPLY, content_type="text/xml")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    os.makedirs(args.root, exist_ok=True)
    app = web.Application()
    app["root"] = args.root
    app.router.add_post("/scene7/UploadFile", upload)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
