"""Concurrency that finds its level (``--concurrency auto``, issue 17 item 3).

Under ``auto`` the run starts ``max_concurrency`` workers, and every POST attempt passes a
gate, a :class:`Limiter`, whose limit a :class:`ConcurrencyController` moves; the number of
POSTs in flight changes without starting or stopping tasks. A worker waits at the gate with
its packed batch (a list of entries: no file data is held); a POST that is refused and waits
out its ``Retry-After`` gives its place up and queues again. The job's opening POST and its
keep-alives do not pass the gate (the coordinator sends them before and between the others).

The scheme: additive-increase/multiplicative-decrease (AIMD), where the moves up are steered
by the measured throughput (a hill climb in steps of a quarter of the limit) and the moves
down come from pushback, timeouts and latency:

- **Measure.** A window is ``limit`` acknowledged POSTs (at least
  :attr:`AutoSettings.min_window_posts`), all sent under the current limit; it starts at the
  first such answer, so POSTs sent under the previous limit are not counted (one round trip
  of settling). Its throughput is the bytes acknowledged over its span; its latency the mean
  POST time. A level is *steady* when its last two windows agree within
  :attr:`AutoSettings.steady_within`; only a steady level is probed from, so a run that
  speeds up or slows down by itself (its start, another program on the machine) is not read
  as the limit's doing.
- **Grow while throughput grows.** From a steady level at which the limit was the
  bottleneck (workers were waiting at the gate), the limit grows by a quarter (at least 1).
  The step *paid* when the POSTs above the lower limit brought at least
  :attr:`AutoSettings.gain_share` of what they would have if each did as well as the average
  POST below them (a far server or a thin link grows in proportion, a busy CPU not at all).
  While steps pay the climb goes on; a step that does not is taken back, and the level holds
  for a number of windows that doubles with every probe that changed nothing (4, 8, ... 64).
- **Probe down too.** Above the start (8), probes alternate: a step down by a fifth that
  loses less than that share is kept (and the descent goes on), one that loses more is taken
  back. So the limit settles where its top POSTs still pay, and an overshoot (a lucky
  window) is undone; probes never go below the start (pushback does).
- **Back off on pushback.** A 503 or 429 (announced or not) or a timeout cuts the limit to
  ``limit × 0.75`` and, for pushback, below the POSTs that were in flight when it came: once
  per round of POSTs (one sent before the last cut does not cut again), as TCP halves once
  per round trip. After pushback the limit recovers by 1 a window up to one below the level
  that was refused, and probes that level only after a hold that doubles with each pushback
  (8, 16, ... 64 windows): a server that takes 4 sees 4, and a fifth now and then.
- **Back off on rising latency.** At a level, a window whose mean POST time is more than
  :attr:`AutoSettings.latency_rise` times the level's first, without more throughput, means
  queueing somewhere (the server or the link slowed down): the limit is cut to three
  quarters.

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

__all__ = ["AutoSettings", "Change", "ConcurrencyController", "Limiter", "Ticket", "signal_of"]

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
    steady_within: float = 0.25
    """Two windows at one limit agree when their throughputs differ by less than this."""
    min_window_posts: int = 8
    first_hold: int = 4
    longest_hold: int = 64

    @classmethod
    def from_config(cls, config: UploadConfig) -> AutoSettings | None:
        """The settings for ``--concurrency auto``; None for a fixed concurrency."""
        if config.concurrency != "auto":
            return None
        return cls(initial=min(INITIAL, config.max_concurrency), maximum=config.max_concurrency)


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


def _worth(low: Measure, high: Measure) -> float:
    """What the POSTs above ``low``'s limit brought, as a share of what they would have
    brought if each did as well as the average POST at ``low`` (1: in proportion, 0: none)."""
    if low.throughput <= 0:
        return 1.0
    return (high.throughput / low.throughput - 1) / (high.limit / low.limit - 1)


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
        self._epoch = 0  # bumped by every cut: one cut per round of POSTs
        self._window = _Window()
        self._plateau: list[Measure] = []  # the windows measured at this limit, newest last
        self._probe: Measure | None = None  # the plateau a probe left, while it is measured
        self._last_probe = "down"  # so that the first one goes up
        self._hold_windows = 0  # windows left before the next probe
        self._hold_length = settings.first_hold
        self._ceiling: int | None = None  # POSTs in flight when the server last pushed back
        self._ceiling_windows = 0  # windows left before a probe may reach the ceiling
        self._ceiling_length = settings.first_hold
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
        measure = Measure(
            self.limit,
            window.bytes / span,
            window.latency / window.posts,
            window.saturated * 2 >= window.posts,
        )
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
            self._ceiling = max(in_flight, self.settings.minimum + 1)
            self._ceiling_length = min(self._ceiling_length * 2, self.settings.longest_hold)
            self._ceiling_windows = self._ceiling_length
        return self._cut(target, reason, None)

    # --- decisions at the end of a window -------------------------------------------------

    def _after(self, measure: Measure) -> Change | None:
        left = self._probe
        if left is not None:
            self._probe = None
            return self._judge(left, measure)
        plateau = self._plateau
        if (
            plateau
            and measure.latency > plateau[0].latency * self.settings.latency_rise
            and measure.throughput < plateau[0].throughput * (1 + self.settings.min_gain)
        ):
            return self._cut(
                math.floor(self.limit * self.settings.backoff), "latency rose", measure
            )
        plateau.append(measure)
        del plateau[1:-2]  # the first (the latency reference) and the last two
        self._ceiling_windows = max(self._ceiling_windows - 1, 0)
        if self._ceiling is not None and self.limit < self._ceiling - 1:
            return self._set(self.limit + 1, "recovery", measure)
        if self._hold_windows > 0:
            self._hold_windows -= 1
            return None
        if not self._steady():
            return None
        if self._last_probe == "up" and self.limit > self.settings.initial:
            return self._go("down", "probe")
        return self._go("up", "probe")

    def _steady(self) -> bool:
        """The last two windows at this limit agree (so a probe is judged against a level,
        not against a run that is speeding up or slowing down for other reasons)."""
        if len(self._plateau) < 2:
            return False
        a, b = self._plateau[-2].throughput, self._plateau[-1].throughput
        return max(a, b) <= min(a, b) * (1 + self.settings.steady_within)

    def _judge(self, left: Measure, probe: Measure) -> Change | None:
        """A probe from the plateau ``left`` measured ``probe``: keep going the same way
        while the POSTs above the lower limit pull their weight (up) or do not (down), else
        go back and hold longer."""
        low, high = (left, probe) if probe.limit > left.limit else (probe, left)
        paid = _worth(low, high) >= self.settings.gain_share
        up = probe.limit > left.limit
        if up and not probe.saturated:
            self._settle(probe)  # the limit was not what held the run back: no verdict
            return None
        if up == paid:  # the higher limit paid and it was climbed to, or did not and was left
            if up and self._ceiling is not None and probe.limit >= self._ceiling:
                self._ceiling = None  # taken without pushback: the server's level moved
            self._hold_length = self.settings.first_hold
            self._plateau = [probe]
            return self._go(self._last_probe, "throughput grew" if up else "no loss")
        self._hold_length = min(self._hold_length * 2, self.settings.longest_hold)
        change = self._set(left.limit, "no gain" if up else "loss", probe)
        self._settle(left)
        return change

    def _settle(self, measure: Measure) -> None:
        """Stay at ``measure``'s level for a while before the next probe."""
        self._plateau = [measure]
        self._hold_windows = self._hold_length

    def _go(self, way: str, reason: str) -> Change | None:
        """Probe one step ``way`` from this plateau (down never below ``initial``)."""
        plateau = self._plateau[-1]
        self._last_probe = way
        if way == "up":
            target = self.limit + max(1, math.floor(self.limit * self.settings.growth_step))
            target = min(target, self.settings.maximum, self._below_ceiling())
            saturated = plateau.saturated
        else:
            target = max(
                math.ceil(self.limit / (1 + self.settings.growth_step)), self.settings.initial
            )
            saturated = True
        if target == self.limit or not saturated:
            self._settle(plateau)
            return None
        self._probe = plateau
        return self._set(target, reason, plateau)

    def _below_ceiling(self) -> int:
        """The highest limit a probe up may reach: below the level of the last pushback
        until that has been left alone for a while (a hold that doubles with each pushback),
        then one above it."""
        if self._ceiling is None:
            return self.settings.maximum
        if self._ceiling_windows > 0:
            return self._ceiling - 1
        return self._ceiling

    def _cut(self, target: int, reason: str, measure: Measure | None) -> Change | None:
        self._epoch += 1
        self._probe = None
        self._plateau = []
        self._last_probe = "down"
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
        return Change(
            old, new, reason, round(measure.throughput / 1e6, 2), round(measure.latency * 1000, 1)
        )


BATCH_SLACK = 2
"""Batches that may be packed beyond the POSTs allowed in flight (ready when a place frees)."""


class _Places:
    """A counted set of places, handed out first come, first served."""

    def __init__(self) -> None:
        self.held = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def take(self, capacity: Callable[[], int]) -> None:
        if not self.waiters and self.held < capacity():
            self.held += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give_back(capacity())  # the place was handed over already: pass it on
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise

    def give_back(self, capacity: int) -> None:
        self.held -= 1
        self.hand_over(capacity)

    def hand_over(self, capacity: int) -> None:
        """Give free places to the waiters, in turn."""
        while self.waiters and self.held < capacity:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.held += 1
                waiter.set_result(None)


class Limiter:
    """The gate every POST attempt passes under ``--concurrency auto``: at most the
    controller's limit in flight; the others wait in turn (first come, first served).

    Workers also take a batch place before they start filling a batch (:meth:`start_batch`),
    at most :data:`BATCH_SLACK` more than the limit: so the files are packed into as few
    batches as with that many workers (not spread thin over ``max_concurrency`` of them,
    each waiting at the gate with a part of a batch)."""

    def __init__(self, controller: ConcurrencyController) -> None:
        self.controller = controller
        self._posts = _Places()
        self._batches = _Places()

    @property
    def limit(self) -> int:
        return self.controller.limit

    @property
    def in_flight(self) -> int:
        return self._posts.held

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._posts.waiters if not w.done())

    def _batch_room(self) -> int:
        return self.limit + BATCH_SLACK

    async def start_batch(self) -> None:
        """Wait for a place to fill a batch in (given back with :meth:`end_batch`)."""
        await self._batches.take(self._batch_room)

    def end_batch(self) -> None:
        """The worker's batches are sent (or given up): its batch place is free."""
        self._batches.give_back(self._batch_room())

    async def enter(self, stop: asyncio.Event | None = None) -> Ticket:
        """Wait for a place; raises :class:`RunStopping` when ``stop`` is set before or
        while waiting (a waiter is woken by a place coming free: every POST in flight ends,
        answered or cancelled, within the stop's grace period)."""
        _unless_stopping(stop)
        await self._posts.take(lambda: self.limit)
        try:
            _unless_stopping(stop)
        except RunStopping:
            self._leave()
            raise
        return self.controller.start()

    def acknowledged(self, ticket: Ticket, size: int) -> None:
        """The POST through ``ticket`` was answered; its place is free."""
        saturated = bool(self._posts.waiters)
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
        self._posts.give_back(self.limit)

    def _apply(self, change: Change | None) -> None:
        if change is None:
            return
        log.info(
            "concurrency_changed",
            old=change.old,
            new=change.new,
            reason=change.reason,
            mb_s=change.mb_s,
            latency_ms=change.latency_ms,
            in_flight=self.in_flight,
        )
        self._posts.hand_over(self.limit)
        self._batches.hand_over(self._batch_room())


def _unless_stopping(stop: asyncio.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise RunStopping("the run is stopping: the POST was not sent")
