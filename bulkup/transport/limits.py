"""Caps a user sets: ``bwlimit`` (bytes of request bodies a second, or a timetable of such
limits) and ``tpslimit`` (POSTs started a second, ``tpslimit_burst`` at once).

Each is one token bucket for the whole run, shared by every connection: the byte bucket is
taken from where body bytes are handed to the connection (:class:`~bulkup.transport.wire.Wire`:
every write, every ``sendfile()`` piece; the read helper then sends nothing itself), the POST
bucket where a POST starts (:meth:`~bulkup.transport.client.UploadClient.post`). A take waits
its turn (first come, first served) and never holds data of its own, so a limited run holds no
more memory than an unlimited one.

SIGUSR2 toggles the bandwidth limit off and on while running (as rclone's does):
:data:`BWLIMIT_SWITCH`, flipped by the command line's signal handler.

Clock, wall time and sleep are injected, so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from bulkup.config.model import UploadConfig
from bulkup.config.timetable import Timetable, parse_bwlimit

log = structlog.get_logger("bulkup.transport.limits")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Now = Callable[[], datetime]
MAX_WAIT_S = 1.0
"""Longest single sleep of a take: a waiter looks at the rate again at least this often, so a
timetable change or a SIGUSR2 reaches it within a second."""
BURST_S = 0.25
"""Bytes an idle byte bucket saves up: this many seconds at its rate."""
PIECE_S = 0.125
"""Largest piece a body hands on at once under a limit: this many seconds at the rate (64 KiB
at most, 1 KiB at least), so no second carries much more than the limit."""
MAX_PIECE = 64 * 1024
MIN_PIECE = 1024
TIMETABLE_CHECK_S = 1.0
ROUNDING = 1e-6


class LimitSwitch:
    """The SIGUSR2 toggle: while suspended, the bandwidth limit is off."""

    def __init__(self) -> None:
        self.suspended = False

    def toggle(self) -> None:
        """Flip the limit off or back on (the signal handler's whole work); logs it."""
        self.suspended = not self.suspended
        log.info("bwlimit_toggled", limit="off" if self.suspended else "on", signal="SIGUSR2")


BWLIMIT_SWITCH = LimitSwitch()


class TokenBucket:
    """``rate()`` tokens a second (None: unlimited) up to ``burst_s`` seconds' worth.

    A take larger than what is saved waits for the rest (the bucket goes into debt), one
    waiter at a time, in order."""

    def __init__(
        self,
        rate: Callable[[], float | None],
        *,
        burst: Callable[[float], float],
        full: bool = False,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._rate, self._burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        first = rate()
        self._tokens = burst(first) if full and first else 0.0
        self._turn = asyncio.Lock()

    async def take(self, amount: float) -> None:
        async with self._turn:
            rate = self._refill()
            if rate is None:
                return
            self._tokens -= amount
            while self._tokens < -ROUNDING:  # float sums may leave a few ulps short
                await self._sleep(min(-self._tokens / rate, MAX_WAIT_S))
                rate = self._refill()
                if rate is None:
                    return

    def _refill(self) -> float | None:
        """The rate now, with the tokens earned since the last look; unlimited forgets them."""
        now, rate = self._clock(), self._rate()
        if rate is None:
            self._tokens = 0.0
        else:
            earned = self._tokens + (now - self._last) * rate
            self._tokens = min(earned, self._burst(rate))
        self._last = now
        return rate


class BandwidthLimit:
    """The run's byte bucket: the timetable's rate at the local time (looked at once a second),
    unless SIGUSR2 suspended it."""

    def __init__(
        self,
        timetable: Timetable,
        *,
        switch: LimitSwitch = BWLIMIT_SWITCH,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        now: Now = datetime.now,
    ) -> None:
        self._timetable, self._switch = timetable, switch
        self._clock, self._now = clock, now
        self._scheduled: int | None = None
        self._checked_at: float | None = None
        self._bucket = TokenBucket(
            self.rate, burst=lambda rate: rate * BURST_S, clock=clock, sleep=sleep
        )

    def rate(self) -> float | None:
        """Bytes a second now; None: no limit."""
        if self._switch.suspended:
            return None
        clock = self._clock()
        if self._checked_at is None or clock - self._checked_at >= TIMETABLE_CHECK_S:
            rate = self._timetable.rate_at(self._now())
            if self._checked_at is not None and rate != self._scheduled:
                log.info("bwlimit_changed", rate=rate if rate is not None else "off")
            self._scheduled, self._checked_at = rate, clock
        return self._scheduled

    def piece_bytes(self) -> int:
        rate = self.rate()
        if rate is None:
            return MAX_PIECE
        return int(min(MAX_PIECE, max(MIN_PIECE, rate * PIECE_S)))

    async def take(self, amount: int) -> None:
        await self._bucket.take(amount)


class PostLimit:
    """The run's POST bucket: ``per_second`` POSTs started a second, ``burst`` at once (as
    rclone's ``--tpslimit``, the bucket starts full)."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._bucket = TokenBucket(
            lambda: per_second, burst=lambda _: float(burst), full=True, clock=clock, sleep=sleep
        )

    async def take(self) -> None:
        await self._bucket.take(1)


def bandwidth_limit(
    config: UploadConfig,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    now: Now = datetime.now,
    switch: LimitSwitch = BWLIMIT_SWITCH,
) -> BandwidthLimit | None:
    """The run's byte limit, or None when ``bwlimit`` never limits."""
    if config.bwlimit is None:
        return None
    timetable = parse_bwlimit(config.bwlimit)
    if not timetable.ever_limited:
        return None
    return BandwidthLimit(timetable, switch=switch, clock=clock, sleep=sleep, now=now)


def post_limit(
    config: UploadConfig, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
) -> PostLimit | None:
    """The run's POST limit, or None without ``tpslimit``."""
    if not config.tpslimit:
        return None
    return PostLimit(config.tpslimit, config.tpslimit_burst, clock=clock, sleep=sleep)
