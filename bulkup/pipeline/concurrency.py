"""Concurrency that finds its level (``--concurrency auto``, issue 17 item 3).

Under ``auto`` the run starts ``max_concurrency`` workers, and every POST attempt passes a
gate, a :class:`Limiter`, whose limit a :class:`ConcurrencyController` moves; the number of
POSTs in flight changes without starting or stopping tasks. A worker waits at the gate with
its packed batch (a list of entries: no file data is held); a POST that is refused and waits
out its ``Retry-After`` gives its place up and queues again. The job's opening POST and its
keep-alives do not pass the gate (the coordinator sends them before and between the others).

The scheme: additive-increase/multiplicative-decrease (AIMD), where the increase is steered by
the measured throughput (a hill climb on throughput, in steps of a quarter of the limit) and
the decrease comes from pushback:

- **Measure.** A window is ``limit`` acknowledged POSTs (at least :attr:`AutoSettings.
  min_window_posts`), all sent under the current limit; it starts at the first such answer,
  so POSTs sent under the previous limit are not counted (one round trip of settling). Its
  throughput is the bytes acknowledged over its span; its latency the mean POST time.
- **Grow while throughput grows.** After a window in which the limit was the bottleneck
  (workers were waiting at the gate), the limit grows by a quarter (at least 1). If the next
  window's throughput grew by at least :attr:`AutoSettings.gain_share` of what the extra POSTs
  would bring if each did as well as the average one (Little's law: a link-bound or far
  server grows in proportion), the climb goes on; otherwise the limit goes back to where it
  was and holds for a number of windows that doubles with every probe that gained nothing
  (4, 8, ... 64), then probes a step higher again.
- **Back off on pushback.** A 503 or 429 (announced or not) or a timeout cuts the limit to
  ``limit × 0.75`` and, for pushback, below the POSTs that were in flight when it came: once
  for every round of POSTs (one sent before the last decrease does not cut again), as TCP
  halves once per round trip. After pushback the hold doubles, so the server's level is
  probed rarely.
- **Back off on rising latency.** While holding, a window whose mean POST time is more than
  :attr:`AutoSettings.latency_rise` times the plateau's own, without more throughput, means
  queueing somewhere (the server or the link slowed down): the limit is cut by the same
  factor.

Why AIMD on throughput rather than a latency gradient (Netflix's Gradient2, TCP Vegas)
alone: a POST's time here depends on its size (16 KiB × 100 or one 2 GiB file) and, on a
loaded machine, on the client's own CPU, so "latency above the minimum seen" is no clean
queueing signal; throughput is what the user wants more of, and a climb that stops where it
stops paying also stops before the server or the link queues. Latency is kept as the second
signal, relative to the plateau's own latency, where batch sizes match.

Every change is a structured log event ``concurrency_changed`` (``old``, ``new``, ``reason``
and the window's figures). :class:`ConcurrencyController` is pure (an injected clock, fed
outcomes); :class:`Limiter` is the asyncio side.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bulkup.config.model import UploadConfig
from bulkup.errors import RequestTimeout, RunStopping, ServerUnavailable

__all__ = ["AutoSettings", "Change", "ConcurrencyController", "Limiter", "Ticket",
           "signal_of"]

log = structlog.get_logger("bulkup.pipeline.concurrency")
Clock = Callable[[], float]
INITIAL = 8
"""Where ``auto`` starts: the old fixed default, so a run is never worse off at its start."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoSettings:
    """The controller's knobs (only ``initial`` and ``maximum`` come from the config)."""

    initial: int = INITIAL
    maximum: int = 64
    minimum: int = 1
    backoff: float = 0.75
    """The multiplicative decrease on pushback, timeouts and rising latency."""
    growth_step: float = 0.25
    """A climb step, as a share of the limit (at least 1)."""
    gain_share: float = 0.4
    """How much of the step's proportional gain counts as "throughput grew"."""
    min_gain: float = 0.05
    """A gain below this share of the throughput never counts (noise)."""
    latency_rise: float = 2.0
    min_window_posts: int = 4
    first_hold: int = 4
    longest_hold: int = 64

    @classmethod
    def from_config(cls, config: UploadConfig) -> AutoSettings | None:
        """The settings for ``--concurrency auto``; None for a fixed concurrency."""
        if config.concurrency != "auto":
            return None
        return cls(initial=min(INITIAL, config.max_concurrency),
                   maximum=config.max_concurrency)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One POST attempt through the gate: when it started and under which limit."""

    started: float
    generation: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Change:
    """A move of the limit, and why (the ``concurrency_changed`` event's fields)."""

    old: int
    new: int
    reason: str
    mb_s: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Measure:
    """What one window saw."""

    limit: int
    throughput: float  # bytes a second
    latency: float  # mean seconds a POST took
    saturated: bool  # the limit was the bottleneck (workers waited at the gate)


@dataclass(slots=True)
class _Window:
    started: float | None = None
    posts: int = 0
    bytes: int = 0
    latency: float = 0.0
    saturated: int = 0


def signal_of(exc: BaseException) -> str | None:
    """The back-off reason a failed POST gives, if any: pushback (503 or 429, with or
    without ``Retry-After``) or a timeout."""
    if isinstance(exc, ServerUnavailable) and exc.http_status in (429, 503):
        return f"pushback {exc.http_status}"
    if isinstance(exc, RequestTimeout):
        return "timeout"
    return None


class ConcurrencyController:
    """Decides how many POSTs may be in flight, from their outcomes (pure: no I/O, no tasks).

    Feed it :meth:`start` before each POST, then :meth:`acknowledged` or :meth:`refused`;
    each returns a :class:`Change` when the limit moved.
    """

    def __init__(self, settings: AutoSettings, clock: Clock) -> None:
        self.settings = settings
        self.limit = max(settings.minimum, min(settings.initial, settings.maximum))
        self._clock = clock
        self._generation = 0  # bumped by every change: a window counts only its own POSTs
        self._epoch = 0  # bumped by every decrease: one cut per round of POSTs
        self._window = _Window()
        self._base: Measure | None = None  # the plateau (or the step climbed from)
        self._climbing_from: Measure | None = None
        self._hold_windows = 0  # windows left before the next probe
        self._hold_length = settings.first_hold
        self.windows = 0  # windows measured so far

    def start(self) -> Ticket:
        """A POST is about to be sent."""
        return Ticket(self._clock(), self._generation, self._epoch)

    def acknowledged(self, ticket: Ticket, size: int, *, saturated: bool) -> Change | None:
        """A POST of ``size`` bytes was answered; ``saturated``: others waited for a place."""
        if ticket.generation != self._generation:
            return None  # sent under another limit
        now = self._clock()
        window = self._window
        if window.started is None:
            window.started = now  # the fencepost: the span starts with this answer
            return None
        window.posts += 1
        window.bytes += size
        window.latency += now - ticket.started
        window.saturated += saturated
        if window.posts < max(self.limit, self.settings.min_window_posts):
            return None
        span = max(now - window.started, 1e-9)
        measure = Measure(self.limit, window.bytes / span, window.latency / window.posts,
                          window.saturated * 2 >= window.posts)
        self._window = _Window(started=now)
        self.windows += 1
        return self._after(measure)

    def refused(self, ticket: Ticket, reason: str, in_flight: int) -> Change | None:
        """A POST met pushback or timed out (``reason``); ``in_flight`` POSTs were out,
        itself included."""
        if ticket.epoch != self._epoch:
            return None  # sent before the last cut: that round was answered already
        target = math.floor(self.limit * self.settings.backoff)
        if reason.startswith("pushback"):
            target = min(target, in_flight - 1)
        self._hold_length = min(self._hold_length * 2, self.settings.longest_hold)
        return self._decrease(target, reason, None)

    # --- decisions at the end of a window -------------------------------------------------

    def _after(self, measure: Measure) -> Change | None:
        climbed_from = self._climbing_from
        if climbed_from is not None:
            return self._judge_climb(climbed_from, measure)
        base = self._base
        if base is None or base.limit != measure.limit:
            self._base = measure
            base = measure
            if self._hold_windows == 0:
                return self._climb(measure, "probe")
            return None
        if (measure.latency > base.latency * self.settings.latency_rise
                and measure.throughput < base.throughput * (1 + self.settings.min_gain)):
            return self._decrease(math.floor(self.limit * self.settings.backoff),
                                  "latency rose", measure)
        self._hold_windows = max(self._hold_windows - 1, 0)
        if self._hold_windows == 0:
            return self._climb(measure, "probe")
        return None

    def _judge_climb(self, before: Measure, after: Measure) -> Change | None:
        """A climb from ``before`` to ``after``: go on while it paid, else step back."""
        self._climbing_from = None
        step = after.limit - before.limit
        wanted = max(self.settings.min_gain,
                     self.settings.gain_share * step / before.limit)
        if after.throughput >= before.throughput * (1 + wanted):
            self._hold_length = self.settings.first_hold
            self._base = after
            return self._climb(after, "throughput grew")
        if not after.saturated:
            self._base = after  # the limit was not what held it back: stay, no verdict
            self._hold_windows = self._hold_length
            return None
        self._hold_windows = self._hold_length
        self._hold_length = min(self._hold_length * 2, self.settings.longest_hold)
        self._base = before
        return self._set(before.limit, "no gain", after)

    def _climb(self, measure: Measure, reason: str) -> Change | None:
        if not measure.saturated or self.limit >= self.settings.maximum:
            self._hold_windows = self._hold_length
            return None
        step = max(1, math.floor(self.limit * self.settings.growth_step))
        self._climbing_from = measure
        return self._set(min(self.limit + step, self.settings.maximum), reason, measure)

    def _decrease(self, target: int, reason: str, measure: Measure | None) -> Change | None:
        self._epoch += 1
        self._climbing_from = None
        self._base = None
        self._hold_windows = self._hold_length
        return self._set(max(target, self.settings.minimum), reason, measure)

    def _set(self, new: int, reason: str, measure: Measure | None) -> Change | None:
        new = max(self.settings.minimum, min(new, self.settings.maximum))
        if new == self.limit:
            return None
        old, self.limit = self.limit, new
        self._generation += 1
        self._window = _Window()
        if measure is None:
            return Change(old, new, reason)
        return Change(old, new, reason, round(measure.throughput / 1e6, 2),
                      round(measure.latency * 1000, 1))


class Limiter:
    """The gate every POST attempt passes under ``--concurrency auto``: at most the
    controller's limit in flight; the others wait in turn (first come, first served)."""

    def __init__(self, controller: ConcurrencyController) -> None:
        self.controller = controller
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self.controller.limit

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def enter(self, stop: asyncio.Event | None = None) -> Ticket:
        """Wait for a place; raises :class:`RunStopping` when ``stop`` is set before or
        while waiting (a waiter is woken by a place coming free: every POST in flight ends,
        answered or cancelled, within the stop's grace period)."""
        _unless_stopping(stop)
        if not self._waiters and self.in_flight < self.limit:
            self.in_flight += 1
            return self.controller.start()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # the place was handed over already: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        try:
            _unless_stopping(stop)
        except RunStopping:
            self._leave()
            raise
        return self.controller.start()

    def acknowledged(self, ticket: Ticket, size: int) -> None:
        """The POST through ``ticket`` was answered; its place is free."""
        saturated = bool(self._waiters)
        self._leave()
        self._apply(self.controller.acknowledged(ticket, size, saturated=saturated))

    def failed(self, ticket: Ticket, exc: BaseException) -> None:
        """The POST through ``ticket`` failed with ``exc``; its place is free."""
        reason = signal_of(exc)
        in_flight = self.in_flight
        self._leave()
        if reason is not None:
            self._apply(self.controller.refused(ticket, reason, in_flight))

    def _leave(self) -> None:
        self.in_flight -= 1
        self._hand_over()

    def _apply(self, change: Change | None) -> None:
        if change is None:
            return
        log.info("concurrency_changed", old=change.old, new=change.new, reason=change.reason,
                 mb_s=change.mb_s, latency_ms=change.latency_ms, in_flight=self.in_flight)
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free places to the waiters, in turn."""
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)


def _unless_stopping(stop: asyncio.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise RunStopping("the run is stopping: the POST was not sent")
