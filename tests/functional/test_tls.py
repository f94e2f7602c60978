"""TLS: verified by default, a private CA through --ca-bundle, --insecure that warns, and the
emulator serving HTTPS; all with a throwaway CA."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bulkup.emulator import build_settings
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, USER, Emulator, make_tree


class TestTls:
    async def test_private_ca_via_ca_bundle(
        self, tls_emulator: Emulator, ca: dict[str, Path], tmp_path: Path
    ) -> None:
        """With the CA in --ca-bundle the upload and its verdict go over verified TLS."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a" * 100})
        report = await run_upload(tls_emulator.config(ca_bundle=ca["ca"]), [str(src)])
        assert report.exit_code == 0 and report.files_confirmed == 1
        assert tls_emulator.stored_files() == {"a.jpg": b"a" * 100}

    async def test_untrusted_certificate_is_fatal_at_once(
        self, tls_emulator: Emulator, tmp_path: Path
    ) -> None:
        """Without the CA the certificate is refused: exit 3, no retries, nothing sent."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        report = await run_upload(tls_emulator.config(), [str(src)])
        assert report.exit_code == 3 and report.retries == 0
        assert "not trusted" in (report.fatal_error or "")
        assert tls_emulator.stored_files() == {}

    async def test_insecure_works_and_warns(self, tls_emulator: Emulator, tmp_path: Path) -> None:
        """--insecure skips verification and says so on stderr."""
        src = make_tree(tmp_path / "src", {"a.jpg": b"a"})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(src),
            "--server",
            tls_emulator.url,
            "--user",
            USER,
            "--company-handle",
            "c|42",
            "--insecure",
            "--no-wait",
            env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "TLS certificates are not verified" in err.decode()


class TestServeHttps:
    async def test_serve_announces_https(self, ca: dict[str, Path], tmp_path: Path) -> None:
        """`bulkup serve --tls-cert --tls-key` serves HTTPS and says so."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "serve",
            "--port",
            "0",
            "--root",
            str(tmp_path / "root"),
            "--tls-cert",
            str(ca["cert"]),
            "--tls-key",
            str(ca["key"]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line.startswith("bulkup emulator listening on https://127.0.0.1:")
        finally:
            proc.terminate()
            await proc.wait()

    def test_cert_without_key_refused(self, ca: dict[str, Path], tmp_path: Path) -> None:
        """--tls-cert alone is a settings error naming both flags."""
        from bulkup.emulator.settings import SettingsError

        with pytest.raises(SettingsError, match="--tls-cert and --tls-key"):
            build_settings(root=tmp_path, tls_cert=ca["cert"])
