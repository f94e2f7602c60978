"""What a run's progress looks like, from stats snapshots only: the figures (bytes sent as they
go to the wire, what the server acknowledged, a moving-average rate, an ETA), the lines the
terminal display shows, and the periodic ``stats`` event.

Pure functions and small classes, no terminal code: the display itself is
:mod:`bulkup.cli.progress_display` (rich), imported only when stderr is a terminal, so a run in a
pipe or under a service manager never imports rich.

Time is the snapshot's ``elapsed_s`` (the run's injected clock), so every figure is
deterministic in tests.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from bulkup.stats import StatsSnapshot

log = structlog.get_logger("bulkup.cli.progress")
RATE_WINDOW_S = 20.0
"""The rate is the bytes sent over about this many seconds (the whole run, while shorter)."""


def hms(seconds: float | None) -> str:
    """A duration as h:mm:ss (``1:02:03``, ``0:04:10``); ``-`` when there is none."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class MovingRate:
    """Bytes per second over the last ``window_s`` seconds, from (time, running total) samples.

    Keeps the samples of one window (a few dozen at one a half second): the rate is the
    growth from the oldest kept sample to the newest, over the time between them.
    """

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at_s: float, total: int) -> float:
        """Record ``total`` at ``at_s``; returns the rate (0.0 until time has passed)."""
        samples = self._samples
        samples.append((at_s, total))
        while len(samples) > 2 and samples[1][0] <= at_s - self._window_s:
            samples.popleft()
        first_s, first_total = samples[0]
        if at_s <= first_s:
            return 0.0
        return max(total - first_total, 0) / (at_s - first_s)


@dataclass(frozen=True, slots=True)
class Figures:
    """What the display and the ``stats`` event show at one instant."""

    files_found: int
    walk_done: bool
    files_acknowledged: int
    files_failed: int
    files_skipped: int
    bytes_found: int
    bytes_sent: int
    bytes_acknowledged: int
    bytes_skipped: int
    rate_bytes_per_s: float
    posts_in_flight: int
    posts: int
    retries: int
    elapsed_s: float

    @property
    def bytes_left(self) -> int:
        """Bytes found and neither acknowledged nor skipped (those of POSTs in flight too)."""
        return max(self.bytes_found - self.bytes_acknowledged - self.bytes_skipped, 0)

    @property
    def eta_s(self) -> float | None:
        """Seconds to go at the moving rate; None while the walk goes on or nothing moves."""
        if not self.walk_done or self.rate_bytes_per_s <= 0:
            return None
        return self.bytes_left / self.rate_bytes_per_s


def figures(snap: StatsSnapshot, rate_bytes_per_s: float) -> Figures:
    """The figures of ``snap``, with the rate measured over the last snapshots."""
    return Figures(
        files_found=snap.files_found,
        walk_done=snap.walk_done,
        files_acknowledged=snap.files_uploaded,
        files_failed=snap.files_failed,
        files_skipped=snap.files_skipped,
        bytes_found=snap.bytes_found,
        bytes_sent=snap.bytes_sent,
        bytes_acknowledged=snap.bytes_uploaded,
        bytes_skipped=snap.bytes_skipped,
        rate_bytes_per_s=rate_bytes_per_s,
        posts_in_flight=snap.posts_in_flight,
        posts=snap.posts,
        retries=snap.retries,
        elapsed_s=snap.elapsed_s,
    )


def progress_lines(fig: Figures) -> tuple[str, str]:
    """The display's two lines: the wire (sent, rate, ETA, time), then the files (acknowledged
    out of found, POSTs in flight, retries, failures)."""
    found = f"{fig.files_found:,}" + ("" if fig.walk_done else "+")
    wire = (
        f"sent {_mb(fig.bytes_sent)} MB, {_mb(fig.rate_bytes_per_s)} MB/s "
        f"({RATE_WINDOW_S:.0f} s avg), ETA {hms(fig.eta_s)}, "
        f"elapsed {hms(fig.elapsed_s)}"
    )
    files = (
        f"acknowledged {fig.files_acknowledged:,}/{found} files, "
        f"{_mb(fig.bytes_acknowledged)}/{_mb(fig.bytes_found)} MB{_percent(fig)}; "
        f"{_count(fig.posts_in_flight, 'POST')} in flight, "
        f"{_count(fig.retries, 'retry', 'retries')}, {fig.files_failed:,} failed"
    )
    if fig.files_skipped:
        files += f", {fig.files_skipped:,} unchanged"
    return wire, files


def progress_line(fig: Figures) -> str:
    """Both display lines as one (tests, plain logs)."""
    return "; ".join(progress_lines(fig))


def stats_fields(fig: Figures) -> dict[str, Any]:
    """The ``stats`` event's fields: the display's figures, as numbers."""
    eta = fig.eta_s
    return {
        "files_found": fig.files_found,
        "walk_done": fig.walk_done,
        "files_acknowledged": fig.files_acknowledged,
        "files_failed": fig.files_failed,
        "files_skipped": fig.files_skipped,
        "bytes_found": fig.bytes_found,
        "bytes_sent": fig.bytes_sent,
        "bytes_acknowledged": fig.bytes_acknowledged,
        "rate_bytes_per_s": round(fig.rate_bytes_per_s),
        "eta_s": None if eta is None else round(eta),
        "posts_in_flight": fig.posts_in_flight,
        "posts": fig.posts,
        "retries": fig.retries,
        "elapsed_s": round(fig.elapsed_s, 1),
    }


class Display(Protocol):
    """Where the figures are shown (a terminal's live area)."""

    def __call__(self, fig: Figures) -> None: ...

    def close(self) -> None: ...


class ProgressReporter:
    """Fed a snapshot every half second by the run: updates the display (if any) and logs a
    ``stats`` event every ``stats_interval_s`` of the run (0: never)."""

    def __init__(
        self,
        *,
        display: Display | None = None,
        stats_interval_s: float = 0.0,
        window_s: float = RATE_WINDOW_S,
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._display = display
        self._interval = stats_interval_s
        self._next_stats = stats_interval_s
        self._rate = MovingRate(window_s)
        self._emit = emit or _log_stats

    @property
    def active(self) -> bool:
        """Whether the run needs to feed it at all."""
        return self._display is not None or self._interval > 0

    def __call__(self, snap: StatsSnapshot) -> None:
        fig = figures(snap, self._rate.add(snap.elapsed_s, snap.bytes_sent))
        if self._display is not None:
            self._display(fig)
        if self._interval > 0 and snap.elapsed_s >= self._next_stats:
            self._emit(stats_fields(fig))
            while self._next_stats <= snap.elapsed_s:  # on the interval's grid, none twice
                self._next_stats += self._interval

    def finish(self) -> None:
        """Close the display (the summary follows on a clean line); idempotent."""
        if self._display is not None:
            display, self._display = self._display, None
            display.close()


def _log_stats(fields: dict[str, Any]) -> None:
    log.info("stats", **fields)


def _mb(size: float) -> str:
    return f"{size / 1e6:,.1f}"


def _percent(fig: Figures) -> str:
    if not fig.walk_done or not fig.bytes_found:
        return ""
    done = fig.bytes_acknowledged + fig.bytes_skipped
    return f" ({min(done / fig.bytes_found, 1.0):.0%})"


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number:,} {one if number == 1 else many or one + 's'}"
