"""Settings shared by every test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# A test fails when a callback blocks its event loop for more than 2 s (see loop_guard).
pytest_plugins = ["loop_guard"]

# Deterministic by default: the same examples on every run (no seed drawn at random, no example
# database carried between runs), so CI passes or fails the same way each time. Set
# HYPOTHESIS_PROFILE=explore to search wider, with fresh random examples. No per-example
# deadline: it is a wall-clock limit, and a pause on a loaded machine is not a failure (speed is
# measured in benchmarks/, never asserted by a test).
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=1000, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(autouse=True)
def _private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Journals go to a folder of the test's own, never the user's ~/.local/state."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


PROXY_VARIABLES = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "BULKUP_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback tests talk to loopback: a proxy set on the developer's machine is not used
    (tests about proxies set their own)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
