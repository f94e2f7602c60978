"""The real command: ``python -m bulkup serve`` in a subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from .wire import auth_xml, body, content_type, files, params_xml, xml_part

pytestmark = pytest.mark.timeout(60)


async def _line(stream: asyncio.StreamReader) -> str:
    line = await asyncio.wait_for(stream.readline(), 20)
    assert line, "the server closed its stdout before announcing itself"
    return line.decode("utf-8", "replace")


class TestServeCommand:
    """``bulkup serve`` as a real process."""

    async def test_serve_upload_and_sigterm(self, tmp_path: Path) -> None:
        """``bulkup serve`` announces its port, stores an upload, exits 0 on SIGTERM."""
        root = tmp_path / "served"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--root",
            str(root),
            "--user",
            "a@b.c:pw",
            "--company",
            "Acme:c|42",
            "--idle-timeout-s",
            "5",
            "--faults",
            "seed=1",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            while "listening on" not in (line := await _line(proc.stdout)):
                pass
            match = re.search(r"http://127\.0\.0\.1:(\d+)/scene7/UploadFile", line)
            assert match, line
            url = f"http://127.0.0.1:{match.group(1)}/scene7/UploadFile"
            params = params_xml("c|42", job_name="cli", end_job="true")
            data = body(
                [
                    xml_part("auth", auth_xml("a@b.c", "pw")),
                    xml_part("uploadParams", params),
                    *files({"Acme/cli/one.jpg": b"\x00served\xff"}),
                ]
            )
            headers = {"Content-Type": content_type()}
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, data=data, headers=headers) as response,
            ):
                text = await response.text()
                assert response.status == 200, text
                assert "<jobHandle>j|42||cli|" in text
            assert (root / "Acme" / "cli" / "one.jpg").read_bytes() == b"\x00served\xff"
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 5)
            rest = (await proc.stdout.read()).decode()
            assert code == 0, (await proc.stderr.read()).decode()
            assert "stopped" in rest
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    @pytest.mark.parametrize("module", ["bulkup", "bulkup.emulator"])
    def test_bad_faults_exit_2(self, tmp_path: Path, module: str) -> None:
        """``serve --faults bogus=1`` exits 2 and names the key on stderr."""
        command = [sys.executable, "-m", module]
        if module == "bulkup":
            command.append("serve")
        done = subprocess.run(
            [*command, "--root", str(tmp_path / "r"), "--faults", "bogus=1"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2
        assert "bogus" in done.stderr
        assert not (tmp_path / "r").exists()
