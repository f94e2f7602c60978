"""aiohttp imported for the command line: no CA bundle loaded at import time, and every TLS
context bulkup builds afterwards still trusts the system's CAs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bulkup.config.model import UploadConfig
from bulkup.transport.client import ssl_context

PROBE = textwrap.dedent("""
    import json, os, ssl, sys
    if sys.argv[1] == "lean":
        from bulkup.cli.runtime import import_aiohttp
        import_aiohttp()
    else:
        import aiohttp
    from aiohttp import connector
    print(json.dumps({
        "module_context_cas": connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
        "later_context_cas": ssl.create_default_context().cert_store_stats()["x509_ca"],
        "env": os.environ.get("SSL_CERT_FILE"),
    }))
""")


def probe(mode: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_import_skips_the_bundle_and_restores_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    plain, lean = probe("plain", env), probe("lean", env)
    assert lean["module_context_cas"] == 0  # aiohttp's own contexts: never used by bulkup
    assert lean["later_context_cas"] == plain["later_context_cas"]  # the system CAs, as usual
    assert lean["env"] is None


def test_a_caller_s_own_ca_file_is_kept(tmp_path: Path) -> None:
    own = tmp_path / "own-cas.pem"
    own.write_text("")
    assert probe("lean", {**os.environ, "SSL_CERT_FILE": str(own)})["env"] == str(own)


def test_https_always_gets_bulkup_s_own_verifying_context() -> None:
    """Never ``True`` (aiohttp's import-time default): a context that verifies."""
    config = UploadConfig(
        server_url="https://ips.example.com/scene7/UploadFile",
        user="u@example.com",
        password="pw",
        company_handle="c|1",
    )
    context = ssl_context(config)
    assert not isinstance(context, bool)
    assert context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
