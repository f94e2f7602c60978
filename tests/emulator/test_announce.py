"""What `bulkup serve` says when it starts."""

from __future__ import annotations

import io
from pathlib import Path

from bulkup.emulator.server import announce
from bulkup.emulator.settings import build_settings


class TestAnnounce:
    def test_demo_beyond_loopback_warns(self, tmp_path: Path) -> None:
        """Bound beyond loopback with the demo user, the emulator warns."""
        out = io.StringIO()
        announce(build_settings(root=tmp_path, host="0.0.0.0"), 8080, out)
        assert "WARNING: the demo user is served beyond loopback" in out.getvalue()

    def test_demo_on_loopback_does_not_warn(self, tmp_path: Path) -> None:
        """On loopback the demo user is printed without a warning."""
        out = io.StringIO()
        announce(build_settings(root=tmp_path), 8080, out)
        assert "demo@example.com / demo" in out.getvalue() and "WARNING" not in out.getvalue()

    def test_real_users_beyond_loopback_do_not_warn(self, tmp_path: Path) -> None:
        """With real users configured there is no demo warning, and no password shown."""
        out = io.StringIO()
        announce(build_settings(root=tmp_path, host="0.0.0.0", users=["a@b.c:s3cr3t-pw"]), 1, out)
        assert "WARNING" not in out.getvalue() and "s3cr3t-pw" not in out.getvalue()
