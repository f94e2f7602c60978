"""A test fails when one callback holds its event loop longer than :data:`BLOCK_LIMIT_S`: a
blocking call (a file read, ``time.sleep``, a subprocess waited for, heavy CPU) in code that
should await. The whole run then stalls on that callback: no other POST, timer or stop gets in.

How: every ``asyncio.Handle._run`` (each callback and each step of each task runs as one) is
timed, as asyncio's debug mode times them for ``slow_callback_duration``, without the rest of
debug mode (a stack captured for every ``call_soon``, thread checks on every call). Only
loops on the main thread, where pytest-asyncio runs the tests, are judged: a loop a test starts
in a thread (the command line run in a thread) shares the GIL with the test and may be stalled
by it. uvloop's own handles are not seen (the suite's loops are asyncio's).

A test that blocks on purpose, or needs more time in one callback, says so::

    @pytest.mark.blocks_loop          # not checked
    @pytest.mark.blocks_loop(3.0)     # checked against 3 s instead

The limit is generous for a shared 2-core machine, where the same step of a test took 0.3 s
idle and 1.1 s under other sessions' load (writing 2,500 files); ``BULKUP_TEST_BLOCK_LIMIT_S``
changes it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from asyncio.base_events import _format_handle  # type: ignore[attr-defined]
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

BLOCK_LIMIT_S = float(os.environ.get("BULKUP_TEST_BLOCK_LIMIT_S", "2.0"))
RECORD_FROM_S = 0.1
"""Callbacks are noted from this long on (a marker may set a limit down to it)."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """One callback that held the loop."""

    callback: str
    seconds: float


class LoopGuard:
    """Times the callbacks of main-thread loops; keeps those of ``RECORD_FROM_S`` or more."""

    def __init__(self) -> None:
        self.blocked: list[Blocked] = []
        self._original: Any = None
        self._installs = 0  # a pytester run inside a test installs it again

    def install(self) -> None:
        self._installs += 1
        if self._original is not None:
            return
        original = self._original = asyncio.Handle._run
        main, noted, clock = threading.main_thread(), self.blocked, time.perf_counter

        def timed_run(handle: asyncio.Handle) -> None:
            started = clock()
            try:
                original(handle)
            finally:
                took = clock() - started
                if took >= RECORD_FROM_S and threading.current_thread() is main:
                    noted.append(Blocked(_describe(handle), took))

        asyncio.Handle._run = timed_run  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        self._installs -= 1
        if self._installs == 0 and self._original is not None:
            asyncio.Handle._run = self._original  # type: ignore[method-assign]
            self._original = None

    def take(self) -> list[Blocked]:
        """The callbacks noted since the last take."""
        taken = list(self.blocked)
        self.blocked.clear()
        return taken


def _describe(handle: asyncio.Handle) -> str:
    try:
        return str(_format_handle(handle))
    except Exception:  # a description is not worth failing over
        return repr(handle)


GUARD = LoopGuard()


def limit_of(item: pytest.Item) -> float | None:
    """The longest a callback of this test may take (None: not checked)."""
    marker = item.get_closest_marker("blocks_loop")
    if marker is None:
        return BLOCK_LIMIT_S
    return float(marker.args[0]) if marker.args else None


def verdict(limit: float | None, blocked: list[Blocked], phase: str) -> str | None:
    """Why the phase fails (a callback took longer than ``limit``), or None."""
    over = [b for b in blocked if limit is not None and b.seconds > limit]
    if not over:
        return None
    lines = "\n".join(f"  {b.seconds:.2f} s: {b.callback}" for b in over)
    return (
        f"the event loop was blocked for more than {limit:g} s during {phase} "
        f"(a blocking call in async code?):\n{lines}\n"
        "Mark a test that blocks on purpose with @pytest.mark.blocks_loop "
        "or @pytest.mark.blocks_loop(SECONDS)."
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "blocks_loop(seconds=None): the test's callbacks may hold the event loop "
        "(longer than the guard's limit; without seconds: not checked)",
    )
    GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    GUARD.uninstall()


def _guarded(item: pytest.Item, phase: str) -> Generator[None, Any, Any]:
    GUARD.take()
    result = yield
    reason = verdict(limit_of(item), GUARD.take(), phase)
    if reason is not None:
        pytest.fail(reason, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item, "the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _guarded(item, "teardown"))
