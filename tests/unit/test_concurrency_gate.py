"""The gate of ``--concurrency auto`` (Limiter): places in turn, outcomes fed to the controller,
every change logged; and pushback the server announced, which never uses up a POST's attempts.
"""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from bulkup.errors import RequestTimeout, RunStopping, ServerUnavailable, TransportError
from bulkup.pipeline.concurrency import AutoSettings, ConcurrencyController, Limiter
from bulkup.retry import PUSHBACK_BUDGET_S, Attempts, RetryPolicy, call_with_retry, is_pushback


def gate(initial: int, **settings: object) -> Limiter:
    return Limiter(
        ConcurrencyController(
            AutoSettings(initial=initial, **settings),  # type: ignore[arg-type]
            lambda: 0.0,
        )
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_at_most_limit_in_flight_the_others_in_turn() -> None:
    limiter = gate(2)
    first, second = await limiter.enter(), await limiter.enter()
    order: list[int] = []

    async def third(n: int) -> None:
        await limiter.enter()
        order.append(n)

    waiting = [asyncio.create_task(third(n)) for n in (3, 4)]
    await settle()
    assert limiter.in_flight == 2 and limiter.waiting == 2 and order == []
    limiter.acknowledged(first, 100)
    await settle()
    assert order == [3] and limiter.in_flight == 2
    limiter.failed(second, TransportError("reset"))
    await settle()
    assert order == [3, 4]
    await asyncio.gather(*waiting)


async def test_a_cut_holds_new_posts_until_enough_have_returned() -> None:
    limiter = gate(4)
    tickets = [await limiter.enter() for _ in range(4)]
    with capture_logs() as events:
        limiter.failed(tickets[0], ServerUnavailable("busy", http_status=503, retry_after_s=1))
    assert limiter.limit == 3 and limiter.in_flight == 3
    assert events == [
        {
            "event": "concurrency_changed",
            "old": 4,
            "new": 3,
            "reason": "pushback 503",
            "mb_s": None,
            "latency_ms": None,
            "in_flight": 3,
            "log_level": "info",
        }
    ]
    entering = asyncio.create_task(limiter.enter())
    await settle()
    assert not entering.done()  # 3 in flight: at the limit
    limiter.acknowledged(tickets[1], 1)
    await settle()
    assert entering.done() and limiter.in_flight == 3


async def test_a_waiter_cancelled_after_it_was_let_in_passes_its_place_on() -> None:
    limiter = gate(1)
    held = await limiter.enter()
    first = asyncio.create_task(limiter.enter())
    second = asyncio.create_task(limiter.enter())
    await settle()
    limiter.acknowledged(held, 1)  # hands the place to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    await settle()
    assert first.cancelled() and second.done() and limiter.in_flight == 1


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = gate(1)
    await limiter.enter()
    waiter = asyncio.create_task(limiter.enter())
    await settle()
    waiter.cancel()
    await settle()
    assert limiter.waiting == 0 and limiter.in_flight == 1


async def test_once_stopping_no_place_is_taken() -> None:
    limiter = gate(1)
    stop = asyncio.Event()
    held = await limiter.enter(stop)
    waiter = asyncio.create_task(limiter.enter(stop))
    await settle()
    stop.set()
    limiter.acknowledged(held, 1)
    with pytest.raises(RunStopping):
        await waiter
    assert limiter.in_flight == 0
    with pytest.raises(RunStopping):
        await limiter.enter(stop)


async def test_a_failure_that_is_no_signal_changes_nothing() -> None:
    limiter = gate(4)
    ticket = await limiter.enter()
    with capture_logs() as events:
        limiter.failed(ticket, TransportError("reset"))
    assert limiter.limit == 4 and events == []
    ticket = await limiter.enter()
    limiter.failed(ticket, RequestTimeout("slow"))
    assert limiter.limit == 3


# --- pushback the server announced never uses up a POST's attempts ---------------------------


def refusals(count: int, exc: Exception) -> tuple[object, list[int]]:
    calls: list[int] = []

    async def send() -> str:
        calls.append(1)
        if len(calls) <= count:
            raise exc
        return "handle"

    return send, calls


async def test_announced_pushback_is_retried_beyond_max_attempts() -> None:
    waits: list[float] = []

    async def sleep(wait_s: float) -> None:
        waits.append(wait_s)

    busy = ServerUnavailable("HTTP 503", http_status=503, retry_after_s=1)
    send, calls = refusals(30, busy)
    record = Attempts()
    assert (
        await call_with_retry(
            send,
            RetryPolicy(max_attempts=5),
            sleep=sleep,  # type: ignore[arg-type]
            rng=lambda: 0.99,
            record=record,
        )
        == "handle"
    )
    assert len(calls) == 31 and record.pushbacks == 30 and record.retries == 30
    assert waits == [1.0] * 30  # the Retry-After, not a back-off grown with the refusals


async def test_pushback_then_failures_still_get_their_own_attempts() -> None:
    busy = ServerUnavailable("HTTP 429", http_status=429, retry_after_s=2)
    broken = TransportError("reset")
    outcomes: list[Exception] = [busy, busy, busy, broken, broken, broken, broken, broken]
    calls: list[int] = []

    async def send() -> None:
        calls.append(1)
        raise outcomes[len(calls) - 1]

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(TransportError):
        await call_with_retry(send, RetryPolicy(max_attempts=5), sleep=sleep)
    assert len(calls) == 8  # 3 refusals, then the 5 attempts of the failures


async def test_pushback_has_a_budget_of_time() -> None:
    busy = ServerUnavailable("HTTP 503", http_status=503, retry_after_s=600)
    send, calls = refusals(1000, busy)

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(ServerUnavailable):
        await call_with_retry(send, RetryPolicy(max_attempts=5), sleep=sleep)  # type: ignore[arg-type]
    assert len(calls) == PUSHBACK_BUDGET_S // 600 + 1


async def test_a_503_without_retry_after_counts_as_an_attempt() -> None:
    unannounced = ServerUnavailable("HTTP 503", http_status=503)
    send, calls = refusals(10, unannounced)

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(ServerUnavailable):
        await call_with_retry(send, RetryPolicy(max_attempts=5), sleep=sleep)  # type: ignore[arg-type]
    assert len(calls) == 5


@pytest.mark.parametrize(
    ("exc", "announced"),
    [
        (ServerUnavailable("x", http_status=503, retry_after_s=1), True),
        (ServerUnavailable("x", http_status=429, retry_after_s=0), True),
        (ServerUnavailable("x", http_status=503), False),
        (ServerUnavailable("x", http_status=502, retry_after_s=1), False),
        (TransportError("x"), False),
    ],
)
def test_what_is_announced_pushback(exc: Exception, announced: bool) -> None:
    assert is_pushback(exc) is announced


async def test_batches_are_filled_by_no_more_workers_than_the_limit_and_two() -> None:
    """So 500 files are not spread over 64 workers' batches (66 POSTs instead of 40)."""
    limiter = gate(2)
    for _ in range(4):
        await limiter.start_batch()
    fifth = asyncio.create_task(limiter.start_batch())
    await settle()
    assert not fifth.done()
    limiter.end_batch()
    await settle()
    assert fifth.done()
    ticket = await limiter.enter()
    limiter.failed(ticket, RequestTimeout("slow"))  # 2 -> 1: room for 3 batches
    for _ in range(4):
        limiter.end_batch()
    waiting = [asyncio.create_task(limiter.start_batch()) for _ in range(4)]
    await settle()
    assert [t.done() for t in waiting] == [True, True, True, False]
    for task in waiting:
        task.cancel()
