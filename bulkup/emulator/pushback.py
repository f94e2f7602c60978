"""A server that pushes back (issue 17): a cap on upload POSTs in flight per company, a delay
before every answer, and a paced intake of body bytes. Each is off by default.

- :class:`InflightLimit` counts upload POSTs in flight per company. A POST takes its
  :class:`Slot` as soon as its company is known and keeps it until its answer is sent; one
  beyond the limit is refused: its body is read and dropped like a faulted POST's (so the
  client can send its next request on the same connection) and it is answered
  :func:`refusal` (503 or 429 with ``Retry-After``).
- :class:`IngestBucket` is one token bucket shared by every request body: each chunk read
  from a socket is paid for, and the reader sleeps off any debt before reading on. While it
  sleeps, aiohttp's buffer fills, the socket is no longer read and TCP's window closes, so the
  senders slow down to the rate.
- The answer delay is a plain sleep before the answer is returned.

Every wait goes through the emulator's injected ``clock`` and ``sleep`` (tests pass fakes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from bulkup.emulator.settings import EmulatorSettings

log = structlog.get_logger("bulkup.emulator")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# What an idle bucket may save up: one burst of this many bytes goes unpaced.
BURST_BYTES = 64 * 1024
REFUSAL_REASONS = {503: "Service Unavailable", 429: "Too Many Requests"}


class IngestBucket:
    """One token bucket for the server's intake of body bytes (``rate`` bytes per second).

    :meth:`take` records the bytes at once (the level may go below zero: a debt shared by
    every reader) and then sleeps until the debt is paid, so readers are served in turn and
    the total is paced to ``rate`` whatever the number of bodies read at once. An idle bucket
    fills up to :data:`BURST_BYTES`; a new bucket starts empty.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        burst: int = BURST_BYTES,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._level = 0.0
        self._at = clock()
        self.taken = 0

    async def take(self, size: int) -> None:
        """Pay for ``size`` bytes just read; returns once the bucket is out of debt."""
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate) - size
        self._at = now
        self.taken += size
        if self._level < 0:
            await self._sleep(-self._level / self.rate)


@dataclass(slots=True)
class InflightLimit:
    """Upload POSTs in flight per company handle; ``limit`` 0 means no limit."""

    limit: int
    counts: dict[str, int] = field(default_factory=dict)
    refused: int = 0

    def take(self, company: str) -> bool:
        """A place for one more POST of ``company``, if there is one."""
        held = self.counts.get(company, 0)
        if self.limit and held >= self.limit:
            self.refused += 1
            log.debug("post_refused_busy", company=company, in_flight=held, limit=self.limit)
            return False
        self.counts[company] = held + 1
        return True

    def give_back(self, company: str) -> None:
        """A POST of ``company`` was answered."""
        left = self.counts[company] - 1
        if left:
            self.counts[company] = left
        else:
            del self.counts[company]

    @contextlib.contextmanager
    def slot(self) -> Iterator[Slot]:
        """One POST's slot, given back (if it was taken) when the block ends."""
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.release()


@dataclass(slots=True)
class Slot:
    """One POST's place among its company's POSTs in flight."""

    limit: InflightLimit
    company: str | None = None  # the company whose place is held
    refused: str | None = None  # the company that had no place left

    def take(self, company: str) -> bool:
        """Take a place for ``company`` (once; later calls say whether it was taken)."""
        if self.company is not None:
            return True
        if self.refused is not None:
            return False
        if self.limit.take(company):
            self.company = company
            return True
        self.refused = company
        return False

    def release(self) -> None:
        """Give the place back (no-op when none was taken)."""
        if self.company is not None:
            self.limit.give_back(self.company)
            self.company = None


@dataclass(slots=True)
class Pushback:
    """What the handlers need: the in-flight limit, the intake bucket and the answer delay."""

    settings: EmulatorSettings
    sleep: Sleep
    inflight: InflightLimit
    bucket: IngestBucket | None

    @classmethod
    def from_settings(cls, settings: EmulatorSettings, *, clock: Clock, sleep: Sleep) -> Pushback:
        """Built from the settings, with the emulator's clock and sleep."""
        bucket = (
            IngestBucket(settings.ingest_rate, clock=clock, sleep=sleep)
            if settings.ingest_rate
            else None
        )
        return cls(settings, sleep, InflightLimit(settings.max_inflight), bucket)

    @property
    def pace(self) -> Callable[[int], Awaitable[None]] | None:
        """What a body reader awaits after each chunk (None when intake is unpaced)."""
        return self.bucket.take if self.bucket is not None else None

    async def delay_answer(self) -> None:
        """Wait ``response_delay_ms`` before an answer is sent."""
        if self.settings.response_delay_ms > 0:
            await self.sleep(self.settings.response_delay_ms / 1000)

    def refusal(self, company: str) -> web.Response:
        """The answer to a POST beyond ``max_inflight``: 503 (or 429) with ``Retry-After``.

        The body is plain text, not an IPS fault document: under spec §4.5 a fault document is
        a fault whatever the status, and the client honours ``Retry-After`` only for a 5xx or
        429 without one (a transport failure, D-14), as it does for the emulator's other 503s.
        """
        settings = self.settings
        status = settings.pushback_status
        text = (
            f"{REFUSAL_REASONS[status]}: more than {settings.max_inflight} uploads in "
            f"flight for company {company}; retry after {settings.retry_after_s} s\n"
        )
        return web.Response(
            status=status, text=text, headers={"Retry-After": str(settings.retry_after_s)}
        )
