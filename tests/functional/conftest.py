"""The whole uploader against the emulator, in-process, over real TCP on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.config.model import UploadConfig
from bulkup.emulator import build_settings, make_app
from bulkup.emulator.app import STATE

PASSWORD = "s3cret-canary-7f"
USER = "uploader@example.com"


@dataclass
class Emulator:
    """A running emulator: its URL, root, app (for its state) and a config factory."""

    url: str
    root: Path
    app: web.Application

    @property
    def company_dir(self) -> Path:
        return self.root / "Acme"

    def jobs(self) -> list[Any]:
        return self.app[STATE].store.jobs()

    def config(self, **changes: Any) -> UploadConfig:
        base: dict[str, Any] = dict(
            server_url=self.url,
            user=USER,
            password=PASSWORD,
            company_handle="c|42",
            company_root="Acme/",
            concurrency=4,
            backoff_base_s=0.001,
            backoff_cap_s=0.01,
        )
        base.update(changes)
        return UploadConfig(**base)

    def stored_files(self) -> dict[str, bytes]:
        """Every file under the company folder, by path relative to it."""
        return {
            p.relative_to(self.company_dir).as_posix(): p.read_bytes()
            for p in self.company_dir.rglob("*")
            if p.is_file()
        }


@pytest.fixture
async def start_emulator(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    runners: list[web.AppRunner] = []

    async def start(middlewares: tuple[Any, ...] = (), **knobs: Any) -> Emulator:
        root = tmp_path / f"server{len(runners)}"
        settings = build_settings(
            root=root, users=[f"{USER}:{PASSWORD}"], companies=["Acme:c|42"], **knobs
        )
        app = make_app(settings)
        app.middlewares.extend(middlewares)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Emulator(url=f"http://127.0.0.1:{port}/scene7/UploadFile", root=root, app=app)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def emulator(start_emulator: Callable[..., Any]) -> Emulator:
    return await start_emulator()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_argv(source: Path | str, url: str) -> list[str]:
    """``bulkup upload SOURCE`` into ``url`` as the test user of company ``c|42`` under
    ``Acme/`` (the CLI tests' common start; the password goes in the environment)."""
    return [
        "upload",
        str(source),
        "--server",
        url,
        "--user",
        USER,
        "--company-handle",
        "c|42",
        "--company-root",
        "Acme/",
    ]


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


BeforeRead = Callable[[Callable[[Path], None]], None]


@pytest.fixture
def before_read(monkeypatch: pytest.MonkeyPatch) -> BeforeRead:
    """``before_read(change)``: ``change(path)`` runs on each small file just before its
    group is read, whichever reader reads it (in process or the read helper), so a test can
    change a file between the walk and the send."""
    from bulkup.transport.reader import HelperReader, InProcessReader

    def install(change: Callable[[Path], None]) -> None:
        for cls in (InProcessReader, HelperReader):
            original = cls.parts

            async def parts(
                self: Any, group: Any, direct_to: int | None = None, _original: Any = original
            ) -> Any:
                for part in group:
                    change(Path(part.entry.path))
                return await _original(self, group, direct_to)

            monkeypatch.setattr(cls, "parts", parts)

    return install


from .scripted import scripted  # noqa: E402, F401  (a fixture: a scripted servlet)
from .tls_fixtures import ca, tls_emulator  # noqa: E402, F401  (fixtures: TLS)
