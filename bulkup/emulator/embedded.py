"""``bulkup upload --emulator``: run against the embedded emulator on a free loopback port.

The emulator runs in this process, on this event loop; it is started only here and by
``bulkup serve`` (the client's modules never import it). With no source given, a small sample
tree is made so a newcomer sees a real upload.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bulkup.emulator import build_settings, make_app
from bulkup.emulator.settings import DEMO_EMAIL, DEMO_PASSWORD

SAMPLE_FILES = {
    "catalog/shoes/red-sneaker.jpg": 48_000,
    "catalog/shoes/blue-boot.jpg": 52_000,
    "catalog/bags/tote bag.png": 31_000,
    "catalog/bags/été-2026.jpg": 12_000,
    "catalog/manuals/care-guide.pdf": 210_000,
    "banners/home/hero-wide.tif": 1_500_000,
    "banners/home/hero-narrow.tif": 900_000,
}


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """Where the embedded emulator listens and stores files, and how to log in."""

    url: str
    root: Path
    user: str
    password: str
    company_handle: str
    company_root: str


@contextlib.asynccontextmanager
async def embedded_emulator(root: Path | None = None) -> AsyncIterator[EmbeddedServer]:
    """Serve the demo company on 127.0.0.1 (a free port) for the duration of the block."""
    root = root or Path(tempfile.mkdtemp(prefix="bulkup-emulator-"))
    settings = build_settings(root=root)
    runner = web.AppRunner(make_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    company = settings.companies[0]
    try:
        yield EmbeddedServer(
            url=f"http://127.0.0.1:{port}/scene7/UploadFile",
            root=root,
            user=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            company_handle=company.handle,
            company_root=company.root_path,
        )
    finally:
        await runner.cleanup()


def make_sample_tree(where: Path | None = None) -> Path:
    """A small tree of sample assets (deterministic bytes)."""
    where = where or Path(tempfile.mkdtemp(prefix="bulkup-sample-"))
    rng = random.Random(2026)
    for rel, size in SAMPLE_FILES.items():
        path = where / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return where
