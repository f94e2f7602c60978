"""The retry loop's budgets and its stop: fake sleeps, no waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import (
    HandleMismatch,
    ProtocolError,
    RedirectRefused,
    RunStopping,
    ServerUnavailable,
)
from bulkup.retry import Attempts, RetryPolicy, call_with_retry
from bulkup.transport.client import POST_MIN_RATE, post_deadline_s


def failing(exc: Exception, calls: list[int]) -> Callable[[], Awaitable[None]]:
    async def send() -> None:
        calls.append(1)
        raise exc

    return send


async def no_sleep(_: float) -> None:
    return None


@pytest.mark.parametrize(
    "exc", [ProtocolError("HTTP 200: not XML"), HandleMismatch("the answer named job 'j|9'")]
)
async def test_a_protocol_error_is_sent_once_more_only(exc: Exception) -> None:
    calls: list[int] = []
    record = Attempts()
    with pytest.raises(type(exc)):
        await call_with_retry(
            failing(exc, calls), RetryPolicy(max_attempts=9), sleep=no_sleep, record=record
        )
    assert len(calls) == 2 and record.retries == 1


async def test_a_redirect_is_never_retried() -> None:
    calls: list[int] = []
    with pytest.raises(RedirectRefused, match="HTTP 307.*'elsewhere.example'"):
        await call_with_retry(
            failing(RedirectRefused("u", 307, "elsewhere.example"), calls),
            RetryPolicy(max_attempts=9),
            sleep=no_sleep,
        )
    assert len(calls) == 1


async def test_a_stop_cuts_the_back_off_short_and_retries_nothing() -> None:
    """The stop comes during a 600 s back-off: the wait ends at once, no further attempt."""
    stop = asyncio.Event()
    calls: list[int] = []
    waited: list[float] = []

    async def long_sleep(wait_s: float) -> None:
        waited.append(wait_s)
        stop.set()
        await asyncio.Event().wait()  # would never end by itself

    unavailable = ServerUnavailable("HTTP 503", http_status=503, retry_after_s=1000)
    with pytest.raises(RunStopping) as caught:
        await call_with_retry(
            failing(unavailable, calls), RetryPolicy(max_attempts=5), sleep=long_sleep, stop=stop
        )
    assert len(calls) == 1 and waited == [600.0]  # Retry-After, capped at 600 s
    assert caught.value.__cause__ is unavailable


async def test_once_stopped_a_failure_is_not_retried() -> None:
    stop = asyncio.Event()
    stop.set()
    calls: list[int] = []
    with pytest.raises(RunStopping):
        await call_with_retry(
            failing(ServerUnavailable("HTTP 503", http_status=503), calls),
            RetryPolicy(max_attempts=5),
            sleep=no_sleep,
            stop=stop,
        )
    assert len(calls) == 1


def test_the_post_deadline_grows_with_the_body() -> None:
    config = UploadConfig(read_timeout_s=300)
    assert post_deadline_s(config, 0) == 300
    assert post_deadline_s(config, 16 * 1024 * 1024) == 300 + 16 * 1024 * 1024 / POST_MIN_RATE
    assert post_deadline_s(UploadConfig(post_timeout_s=42), 10**12) == 42
