"""When to send a request again, and how long to wait first (spec D-14).

Exponential backoff with full jitter (base 1 s, cap 60 s), bounded in attempts, never shorter
than the server's ``Retry-After``; ``ipsApiFault`` 30000 has its own, smaller budget, and an
answer that is no valid document (:class:`~bulkup.errors.ProtocolError`) is sent once more at
most (spec §4.5). Pushback the server announced (503 or 429 with ``Retry-After``,
:func:`is_pushback`) uses up no attempt: the request waits as told and goes again, for up to
:data:`PUSHBACK_BUDGET_S` of such waits in all. Once the run is asked to stop (``stop``), no
failed request is retried and no back-off is waited out: :class:`~bulkup.errors.RunStopping` is
raised instead. Sleep and randomness are injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bulkup.errors import (
    IpsApiFault,
    ProtocolError,
    RunStopping,
    ServerUnavailable,
    is_fatal,
    is_retryable,
)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER_S = 600.0
PUSHBACK_BUDGET_S = 3600.0
"""The longest one request waits out announced pushback (the sum of its ``Retry-After`` waits)
before the refusals count as a failure."""


def is_pushback(exc: BaseException) -> bool:
    """Whether ``exc`` is pushback the server announced: 503 or 429 with ``Retry-After``."""
    return (
        isinstance(exc, ServerUnavailable)
        and exc.retry_after_s is not None
        and exc.http_status in (429, 503)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many attempts a request gets and how the waits between them grow."""

    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0
    fault30000_retries: int = 2
    protocol_error_retries: int = 1

    def delay_s(self, attempt: int, exc: BaseException, rng: Callable[[], float]) -> float:
        """The wait before attempt ``attempt + 1`` (full jitter, Retry-After honoured)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        wait = rng() * ceiling
        retry_after = (
            getattr(exc, "retry_after_s", None) if isinstance(exc, ServerUnavailable) else None
        )
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER_S))
        return float(wait)

    def may_retry(self, exc: BaseException, attempt: int, record: Attempts) -> bool:
        """Whether a request that failed with ``exc`` on attempt ``attempt`` may go again."""
        if is_fatal(exc) or not is_retryable(exc):
            return False
        if is_pushback(exc):
            return record.pushback_s < PUSHBACK_BUDGET_S
        if attempt - record.pushbacks >= self.max_attempts:
            return False
        if isinstance(exc, IpsApiFault):
            return record.faults_30000 <= self.fault30000_retries
        if isinstance(exc, ProtocolError):
            return record.protocol_errors <= self.protocol_error_retries
        return True


@dataclass(slots=True)
class Attempts:
    """What happened to one request across its attempts."""

    attempts: int = 0
    retries: int = 0
    faults_30000: int = 0
    protocol_errors: int = 0
    pushbacks: int = 0
    pushback_s: float = 0.0

    def count(self, exc: BaseException) -> None:
        """Note a failed attempt against the budgets that have their own limit."""
        if isinstance(exc, IpsApiFault) and exc.retryable:
            self.faults_30000 += 1
        elif isinstance(exc, ProtocolError):
            self.protocol_errors += 1
        elif is_pushback(exc):
            self.pushbacks += 1


async def call_with_retry(
    send: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    record: Attempts | None = None,
    stop: asyncio.Event | None = None,
) -> T:
    """Await ``send()`` until it succeeds or the policy gives up; then re-raise the last error.

    ``send`` must build a fresh request each time (a sent body cannot be replayed). Once
    ``stop`` is set, a failure is not retried and a back-off under way is cut short: both raise
    :class:`RunStopping` (from the last error).
    """
    record = record if record is not None else Attempts()
    while True:
        record.attempts += 1
        try:
            return await send()
        except Exception as exc:
            record.count(exc)
            if not policy.may_retry(exc, record.attempts, record):
                raise
            _unless_stopping(stop, exc)
            wait = policy.delay_s(record.attempts - record.pushbacks, exc, rng)
            record.retries += 1
            if is_pushback(exc):
                record.pushback_s += wait
            if on_retry is not None:
                on_retry(exc, record.attempts, wait)
            await _back_off(sleep, wait, stop, exc)


def _unless_stopping(stop: asyncio.Event | None, exc: BaseException) -> None:
    if stop is not None and stop.is_set():
        raise RunStopping(f"not retried, the run is stopping (last error: {exc})") from exc


async def _back_off(
    sleep: Sleep, wait_s: float, stop: asyncio.Event | None, exc: BaseException
) -> None:
    """Sleep ``wait_s``, or less when the run is asked to stop meanwhile."""
    if stop is None:
        await sleep(wait_s)
        return
    try:
        await unless_stopped(sleep(wait_s), stop)
    except RunStopping as stopping:
        raise RunStopping(f"{stopping} (last error: {exc})") from exc


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """``work``'s result; when ``stop`` is set first, ``work`` is cancelled (and awaited) and
    :class:`RunStopping` raised."""
    task = asyncio.ensure_future(work)  # both owned here: cancelled and awaited below
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await asyncio.wait((stopping,))
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    if task.cancelled() and stop.is_set():
        raise RunStopping("the run is stopping: not waited for")
    return task.result()
