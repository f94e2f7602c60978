"""glibc's allocator settings for an upload (bulkup/cli/malloc_tuning.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bulkup.cli import malloc_tuning
from bulkup.cli.malloc_tuning import tune_malloc


def test_glibc_accepts_every_setting() -> None:
    """On glibc each mallopt() call must succeed (0 would mean a wrong parameter or a value out
    of range); elsewhere nothing is tried. Run in a child so this process keeps its defaults."""
    code = "from bulkup.cli.malloc_tuning import tune_malloc; print(tune_malloc())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = os.confstr("CS_GNU_LIBC_VERSION") if sys.platform.startswith("linux") else ""
    assert done.stdout.strip() == str(bool(expected and expected.startswith("glibc")))


@pytest.mark.parametrize("version", ["", "musl 1.2.4"])
def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(malloc_tuning.sys, "platform", "linux")
    monkeypatch.setattr(malloc_tuning.os, "confstr", lambda name: version)
    assert tune_malloc() is False


def test_a_system_without_the_name_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(malloc_tuning.sys, "platform", "linux")
    monkeypatch.setattr(malloc_tuning.os, "confstr", unknown)
    assert tune_malloc() is False


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc_tuning.sys, "platform", "darwin")
    assert tune_malloc() is False
