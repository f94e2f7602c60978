"""The guard against a blocked event loop (``tests/loop_guard.py``) catches what it is for: a
callback that holds the loop fails its test, named, unless the test says it blocks on purpose;
a loop on another thread is not judged."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from loop_guard import BLOCK_LIMIT_S, GUARD, RECORD_FROM_S, Blocked, verdict

pytest_plugins = ["pytester"]
HELD_S = RECORD_FROM_S + 0.05


async def hold_the_loop() -> None:
    time.sleep(HELD_S)  # the blocking call the guard is for


@pytest.mark.blocks_loop
async def test_a_blocking_callback_is_noted_by_name() -> None:
    GUARD.take()
    await asyncio.create_task(hold_the_loop())
    blocked = GUARD.take()
    assert [b.callback for b in blocked if "hold_the_loop" in b.callback], blocked
    assert all(b.seconds >= HELD_S for b in blocked if "hold_the_loop" in b.callback)


def test_the_verdict_names_what_blocked_and_how_long() -> None:
    blocked = [Blocked("<Task coro=<upload() at run.py:12>>", 1.25), Blocked("fine", 0.2)]
    reason = verdict(1.0, blocked, "the test")
    assert reason is not None and "more than 1 s during the test" in reason
    assert "1.25 s: <Task coro=<upload() at run.py:12>>" in reason and "fine" not in reason
    assert verdict(1.0, [Blocked("fine", 0.2)], "setup") is None
    assert verdict(None, blocked, "the test") is None  # @pytest.mark.blocks_loop


def test_a_loop_on_another_thread_is_not_judged() -> None:
    """The command line run in a thread shares the GIL with the test: its stalls say
    nothing about the code under test's own loop."""
    GUARD.take()
    thread = threading.Thread(target=asyncio.run, args=(hold_the_loop(),))
    thread.start()
    thread.join()
    assert GUARD.take() == []


@pytest.mark.blocks_loop  # the tests run inside this one block the loop, as they should
def test_a_test_that_blocks_fails_and_one_marked_passes(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest('pytest_plugins = ["loop_guard"]\n')
    pytester.makepyfile(
        test_blocking=f"""
        import time
        import pytest

        @pytest.mark.blocks_loop({RECORD_FROM_S})
        async def test_blocks():
            time.sleep({HELD_S})

        @pytest.mark.blocks_loop
        async def test_blocks_on_purpose():
            time.sleep({HELD_S})

        async def test_within_the_default_limit():
            time.sleep({HELD_S})

        @pytest.fixture
        async def slow_fixture():
            yield
            time.sleep({HELD_S})

        @pytest.mark.blocks_loop({RECORD_FROM_S})
        async def test_blocking_teardown(slow_fixture):
            pass
    """
    )
    assert HELD_S < BLOCK_LIMIT_S
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_blocking_teardown*",
            f"*event loop was blocked for more than {RECORD_FROM_S:g} s during teardown*",
            "*_ test_blocks _*",
            f"*event loop was blocked for more than {RECORD_FROM_S:g} s during the test*",
            "*s: <Task*coro=<test_blocks()*",
        ]
    )
