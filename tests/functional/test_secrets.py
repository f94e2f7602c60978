"""The password never appears in any output: logs, summary, report, journal, dry run, errors,
the process's command line, or the emulator's own output."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from .conftest import USER, make_tree

CANARY = "Canary-Secret-4b9e1f"


async def run_cli(*args: str, password: str = CANARY) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={
            **os.environ,
            "BULKUP_PASSWORD": password,
            "BULKUP_BACKOFF_BASE_S": "0.01",
            "BULKUP_BACKOFF_CAP_S": "0.05",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def everything_written(root: Path) -> bytes:
    """Every byte of every file under ``root`` (reports, journals, lock files, logs)."""
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


class TestCanary:
    async def test_no_output_ever_holds_the_password(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """Success, wrong password, dry run and an unreachable server: the canary is nowhere."""
        from . import conftest as conf

        server = await start_emulator()
        src = make_tree(tmp_path / "src", {"a.jpg": b"a", "bad:name.jpg": b"b"})
        out_dir = tmp_path / "out"
        out_dir.mkdir()
        common = ("--user", USER, "--company-handle", "c|42", "--log-format", "json")
        outputs = []
        code, text = await run_cli(
            "upload",
            str(src),
            "--server",
            server.url,
            *common,
            "--report",
            str(out_dir / "ok.json"),
            "--journal",
            str(out_dir / "ok.journal"),
            password=conf.PASSWORD,
        )
        assert code == 1  # bad:name.jpg fails; the rest is a normal run
        outputs.append(text)
        for name, extra in (
            ("wrong", ("--server", server.url)),
            ("dry", ("--server", server.url, "--dry-run")),
            ("down", ("--server", "http://127.0.0.1:9/scene7/UploadFile")),
        ):
            code, text = await run_cli(
                "upload",
                str(src),
                *extra,
                *common,
                "--report",
                str(out_dir / f"{name}.json"),
                "--journal",
                str(out_dir / f"{name}.journal"),
            )
            outputs.append(text)
        blob = "\n".join(outputs).encode() + everything_written(out_dir)
        assert CANARY.encode() not in blob
        assert conf.PASSWORD.encode() not in blob
        assert b"authenticationFault 10001" in blob  # the wrong-password run said why

    async def test_command_line_holds_no_password(self, tmp_path: Path) -> None:
        """While a run is under way, its command line shows no password."""
        release = asyncio.Event()
        seen: list[bytes] = []

        async def slow(request: web.Request) -> web.Response:
            await request.read()
            await release.wait()
            return web.Response(status=503)

        app = web.Application()
        app.router.add_post("/scene7/UploadFile", slow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/scene7/UploadFile"
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(src),
            "--server",
            url,
            "--user",
            USER,
            "--company-handle",
            "c|1",
            "--no-journal",
            "--max-file-size",
            "1MiB",
            env={**os.environ, "BULKUP_PASSWORD": CANARY},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                if b"upload" in cmdline:
                    seen.append(cmdline)
                    break
                await asyncio.sleep(0.01)
        finally:
            proc.kill()
            await proc.wait()
            release.set()
            await runner.cleanup()
        assert seen and CANARY.encode() not in seen[0]

    async def test_emulator_never_prints_a_real_password(self, tmp_path: Path) -> None:
        """`bulkup serve --user a@b:<secret>` names the user, never the password."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "serve",
            "--port",
            "0",
            "--root",
            str(tmp_path / "root"),
            "--user",
            f"ops@example.com:{CANARY}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert proc.stdout is not None
        lines = []
        try:
            while not any("user:" in line for line in lines):
                lines.append((await asyncio.wait_for(proc.stdout.readline(), 30)).decode())
        finally:
            proc.terminate()
            rest = await proc.stdout.read()
            await proc.wait()
        text = "".join(lines) + rest.decode()
        assert "ops@example.com" in text and CANARY not in text
