"""The retry policy on its own: the back-off (full jitter, growing, capped; Retry-After honoured
and capped), the budgets per error class, and ``unless_stopped``. Randomness and sleep are
injected: every wait is asserted as recorded, nothing waits. (``test_retry.py`` has the
protocol-error budget, redirects and the stop cutting a back-off short.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import pytest

from bulkup.errors import (
    AuthenticationFault,
    ConnectError,
    IpsApiFault,
    ProtocolError,
    RunStopping,
    ServerUnavailable,
)
from bulkup.retry import MAX_RETRY_AFTER_S, Attempts, RetryPolicy, call_with_retry, unless_stopped


class Sleeps:
    """A sleep that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def answers(*outcomes: BaseException | str) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """A request that fails with each exception in turn, or returns a string."""
    pending, calls = list(outcomes), []

    async def send() -> str:
        calls.append(1)
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return send, calls


def unavailable(retry_after_s: float | None = None) -> ServerUnavailable:
    return ServerUnavailable("HTTP 503", http_status=503, retry_after_s=retry_after_s)


def fault(code: int) -> IpsApiFault:
    return IpsApiFault(
        code, "Internal error" if code == 30000 else "Invalid parameter", http_status=500
    )


class TestBackOff:
    @pytest.mark.parametrize(
        ("attempt", "ceiling"),
        [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0), (7, 60.0), (12, 60.0)],
    )
    def test_full_jitter_between_zero_and_a_doubling_capped_ceiling(
        self, attempt: int, ceiling: float
    ) -> None:
        policy = RetryPolicy(base_s=1.0, cap_s=60.0)
        failure = ConnectError("refused")
        assert policy.delay_s(attempt, failure, lambda: 0.0) == 0.0
        assert policy.delay_s(attempt, failure, lambda: 0.5) == ceiling / 2
        assert policy.delay_s(attempt, failure, lambda: 0.999) == pytest.approx(ceiling * 0.999)

    async def test_the_waits_of_a_request_are_the_policy_s(self) -> None:
        """Each retry waits rng() x its ceiling: the waits follow the draws, one per retry."""
        draws = iter([0.25, 1.0, 0.5, 0.1])
        sleeps = Sleeps()
        send, calls = answers(*[ConnectError("refused")] * 4, "j|1")
        seen: list[tuple[int, float]] = []
        result = await call_with_retry(
            send,
            RetryPolicy(max_attempts=5, base_s=2.0, cap_s=10.0),
            sleep=sleeps,
            rng=lambda: next(draws),
            on_retry=lambda exc, n, wait: seen.append((n, wait)),
        )
        assert result == "j|1" and len(calls) == 5
        assert sleeps.waits == [0.5, 4.0, 4.0, 1.0]  # ceilings 2, 4, 8, 10 (capped)
        assert seen == [(1, 0.5), (2, 4.0), (3, 4.0), (4, 1.0)]

    @pytest.mark.parametrize(
        ("retry_after", "draw", "expected"),
        [
            (7.0, 0.0, 7.0),  # longer than the jitter: the server's wait
            (0.2, 0.9, 0.9),  # shorter: the jitter's
            (300.0, 0.5, 300.0),  # above cap_s: the server's word still wins
            (10_000.0, 0.5, MAX_RETRY_AFTER_S),  # but never more than 10 minutes
            (None, 0.5, 0.5),
        ],
    )
    def test_retry_after_is_a_floor_capped_at_ten_minutes(
        self, retry_after: float | None, draw: float, expected: float
    ) -> None:
        policy = RetryPolicy(base_s=1.0, cap_s=60.0)
        assert policy.delay_s(1, unavailable(retry_after), lambda: draw) == expected

    def test_retry_after_counts_only_on_a_server_that_is_unavailable(self) -> None:
        """An attribute of that name on another error is not the server's Retry-After."""
        other = ConnectError("refused")
        other.retry_after_s = 50.0  # type: ignore[attr-defined]
        assert RetryPolicy().delay_s(1, other, lambda: 0.5) == 0.5

    async def test_retry_after_reaches_the_sleep(self) -> None:
        sleeps = Sleeps()
        send, _ = answers(unavailable(12.0), "ok")
        assert await call_with_retry(send, RetryPolicy(), sleep=sleeps, rng=lambda: 0.5) == "ok"
        assert sleeps.waits == [12.0]


async def attempts_until_given_up(
    outcomes: Iterable[BaseException],
    policy: RetryPolicy,
) -> tuple[BaseException, Attempts]:
    """Run a request failing with ``outcomes`` to the end; the error it gave up with."""
    send, _ = answers(*outcomes)
    record = Attempts()
    with pytest.raises(Exception) as caught:
        await call_with_retry(send, policy, sleep=Sleeps(), rng=lambda: 0.5, record=record)
    return caught.value, record


class TestBudgets:
    async def test_transport_failures_get_max_attempts(self) -> None:
        last, record = await attempts_until_given_up(
            [ConnectError(f"refused {n}") for n in range(10)], RetryPolicy(max_attempts=4)
        )
        assert str(last) == "refused 3" and (record.attempts, record.retries) == (4, 3)

    async def test_one_attempt_means_no_retry(self) -> None:
        last, record = await attempts_until_given_up(
            [unavailable()] * 3, RetryPolicy(max_attempts=1)
        )
        assert isinstance(last, ServerUnavailable) and record.attempts == 1

    @pytest.mark.parametrize(("retries", "attempts"), [(0, 1), (1, 2), (2, 3), (5, 6)])
    async def test_fault_30000_has_its_own_smaller_budget(
        self, retries: int, attempts: int
    ) -> None:
        """fault30000_retries, whatever max_attempts leaves."""
        last, record = await attempts_until_given_up(
            [fault(30000)] * 10, RetryPolicy(max_attempts=9, fault30000_retries=retries)
        )
        assert isinstance(last, IpsApiFault) and last.code == 30000
        assert (record.attempts, record.faults_30000) == (attempts, attempts)

    async def test_30000s_count_across_other_failures(self) -> None:
        """503, 30000, 503, 30000, 30000: the third 30000 is past a budget of 2, though the
        request has attempts left."""
        last, record = await attempts_until_given_up(
            [unavailable(), fault(30000), unavailable(), fault(30000), fault(30000), unavailable()],
            RetryPolicy(max_attempts=9, fault30000_retries=2),
        )
        assert isinstance(last, IpsApiFault) and record.attempts == 5

    async def test_30000s_also_spend_max_attempts(self) -> None:
        last, record = await attempts_until_given_up(
            [unavailable(), fault(30000), unavailable()] * 3,
            RetryPolicy(max_attempts=3, fault30000_retries=5),
        )
        assert isinstance(last, ServerUnavailable) and record.attempts == 3

    async def test_a_protocol_error_budget_of_one_across_other_failures(self) -> None:
        """One invalid answer is sent again; the second stops the request, even after 503s in
        between; with a budget of 0 the first does."""
        last, record = await attempts_until_given_up(
            [
                ProtocolError("not XML"),
                unavailable(),
                unavailable(),
                ProtocolError("not XML"),
                unavailable(),
            ],
            RetryPolicy(max_attempts=9),
        )
        assert isinstance(last, ProtocolError) and record.attempts == 4
        assert record.protocol_errors == 2
        last, record = await attempts_until_given_up(
            [ProtocolError("not XML"), unavailable()],
            RetryPolicy(max_attempts=9, protocol_error_retries=0),
        )
        assert isinstance(last, ProtocolError) and record.attempts == 1

    @pytest.mark.parametrize(
        "error",
        [
            fault(30001),  # the job may be lost: the sender decides, not the retry loop
            AuthenticationFault(10001, "Invalid username/password", http_status=500),
            ValueError("a bug"),
        ],
    )
    async def test_not_retried(self, error: Exception) -> None:
        last, record = await attempts_until_given_up([error, unavailable()], RetryPolicy())
        assert last is error and (record.attempts, record.retries) == (1, 0)
        assert record.faults_30000 == 0

    async def test_success_after_failures_is_returned_with_its_count(self) -> None:
        send, calls = answers(unavailable(), fault(30000), ConnectError("x"), "j|7")
        record = Attempts()
        got = await call_with_retry(
            send, RetryPolicy(), sleep=Sleeps(), rng=lambda: 0.0, record=record
        )
        assert got == "j|7" and len(calls) == 4
        assert (record.attempts, record.retries, record.faults_30000) == (4, 3, 1)


class TestStop:
    async def test_a_stop_during_the_attempt_means_no_retry_and_no_wait(self) -> None:
        stop, sleeps = asyncio.Event(), Sleeps()

        async def send() -> str:
            stop.set()  # the stop comes while the POST is out
            raise unavailable()

        with pytest.raises(RunStopping, match="not retried") as caught:
            await call_with_retry(send, RetryPolicy(), sleep=sleeps, stop=stop)
        assert sleeps.waits == [] and isinstance(caught.value.__cause__, ServerUnavailable)

    async def test_a_set_stop_does_not_hide_a_final_error(self) -> None:
        """A failure that would not be retried anyway keeps its own error."""
        stop = asyncio.Event()
        stop.set()
        send, _ = answers(AuthenticationFault(10001, "Invalid", http_status=500))
        with pytest.raises(AuthenticationFault):
            await call_with_retry(send, RetryPolicy(), sleep=Sleeps(), stop=stop)


class TestUnlessStopped:
    async def test_the_work_s_result_when_it_ends_first(self) -> None:
        async def work() -> int:
            return 42

        assert await unless_stopped(work(), asyncio.Event()) == 42

    async def test_the_work_s_error_when_it_fails_first(self) -> None:
        async def work() -> int:
            raise ConnectError("refused")

        with pytest.raises(ConnectError):
            await unless_stopped(work(), asyncio.Event())

    async def test_a_stop_cancels_the_work_and_waits_for_its_cleanup(self) -> None:
        stop, started, cleaned = asyncio.Event(), asyncio.Event(), []

        async def work() -> int:
            started.set()
            try:
                await asyncio.Event().wait()  # never ends by itself
            finally:
                await asyncio.sleep(0)  # a cleanup that itself awaits
                cleaned.append(True)
            return 1

        async def stop_once_started() -> None:
            await started.wait()
            stop.set()

        stopper = asyncio.create_task(stop_once_started())
        with pytest.raises(RunStopping):
            await unless_stopped(work(), stop)
        await stopper
        assert cleaned == [True]  # cancelled, and awaited before unless_stopped returned

    async def test_a_stop_set_before_ends_waiting_work_at_once(self) -> None:
        stop, cancelled = asyncio.Event(), []
        stop.set()

        async def work() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with pytest.raises(RunStopping):
            await unless_stopped(work(), stop)
        assert cancelled == [True]

    async def test_work_done_when_the_stop_comes_keeps_its_result(self) -> None:
        """Finished work is not thrown away because a stop came meanwhile."""
        stop = asyncio.Event()

        async def work() -> str:
            stop.set()
            return "acknowledged"

        assert await unless_stopped(work(), stop) == "acknowledged"
