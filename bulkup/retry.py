"""When to send a request again, and how long to wait first (spec D-14).

Exponential backoff with full jitter (base 1 s, cap 60 s), bounded in attempts, never shorter
than the server's ``Retry-After``; ``ipsApiFault`` 30000 has its own, smaller budget. Sleep and
randomness are injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bulkup.errors import IpsApiFault, ServerUnavailable, is_fatal, is_retryable

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
MAX_RETRY_AFTER_S = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many attempts a request gets and how the waits between them grow."""

    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0
    fault30000_retries: int = 2

    def delay_s(self, attempt: int, exc: BaseException, rng: Callable[[], float]) -> float:
        """The wait before attempt ``attempt + 1`` (full jitter, Retry-After honoured)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        wait = rng() * ceiling
        retry_after = getattr(exc, "retry_after_s", None) if isinstance(
            exc, ServerUnavailable) else None
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER_S))
        return float(wait)

    def may_retry(self, exc: BaseException, attempt: int, faults_30000: int) -> bool:
        """Whether a request that failed with ``exc`` on attempt ``attempt`` may go again."""
        if is_fatal(exc) or not is_retryable(exc) or attempt >= self.max_attempts:
            return False
        if isinstance(exc, IpsApiFault):
            return faults_30000 <= self.fault30000_retries
        return True


@dataclass(slots=True)
class Attempts:
    """What happened to one request across its attempts."""

    attempts: int = 0
    retries: int = 0
    faults_30000: int = 0


async def call_with_retry(
    send: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    record: Attempts | None = None,
) -> T:
    """Await ``send()`` until it succeeds or the policy gives up; then re-raise the last error.

    ``send`` must build a fresh request each time (a sent body cannot be replayed).
    """
    record = record if record is not None else Attempts()
    while True:
        record.attempts += 1
        try:
            return await send()
        except Exception as exc:
            if isinstance(exc, IpsApiFault) and exc.retryable:
                record.faults_30000 += 1
            if not policy.may_retry(exc, record.attempts, record.faults_30000):
                raise
            wait = policy.delay_s(record.attempts, exc, rng)
            record.retries += 1
            if on_retry is not None:
                on_retry(exc, record.attempts, wait)
            await sleep(wait)
