"""The progress line as a run feeds it: the run's Stats on a fake clock, a snapshot per tick
into the reporter, the line the display gets. The rate follows the bytes going to the wire over
the last window, the ETA the bytes left at that rate, and the figures stay sane when the counts
do odd things (a file grew, a retried POST sent its bytes twice, the loop was blocked).
(``test_progress_display.py`` has the formatting pieces, the ``stats`` cadence and the
terminal.)"""

from __future__ import annotations

import pytest

from bulkup.cli.progress import (
    Figures,
    MovingRate,
    ProgressReporter,
    figures,
    progress_line,
    progress_lines,
)
from bulkup.stats import Stats, StatsSnapshot

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0  # not zero: elapsed is measured from the run's start

    def __call__(self) -> float:
        return self.now


class Screen:
    """A display that keeps what it was shown."""

    def __init__(self) -> None:
        self.shown: list[Figures] = []
        self.closed = 0

    def __call__(self, fig: Figures) -> None:
        self.shown.append(fig)

    def close(self) -> None:
        self.closed += 1

    @property
    def line(self) -> str:
        return progress_line(self.shown[-1])


class Run:
    """A run's counters, its clock and its reporter, ticked every half second."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.stats = Stats(clock=self.clock)
        self.screen = Screen()
        self.reporter = ProgressReporter(display=self.screen)

    def tick(self, seconds: float = 0.5, *, sent: int = 0, acknowledged: int = 0) -> None:
        self.clock.now += seconds
        self.stats.bytes_sent += sent
        self.stats.bytes_uploaded += acknowledged
        self.reporter(self.stats.snapshot())

    def walked(self, files: int, size: int) -> None:
        self.stats.files_found, self.stats.bytes_found, self.stats.walk_done = files, size, True


def test_rate_and_eta_follow_the_wire_at_a_steady_pace() -> None:
    """100 MB found, 2 MB/s for 10 s: 20 MB sent, 18 acknowledged; 82 MB left at 2 MB/s."""
    run = Run()
    run.walked(10, 100 * MB)
    run.tick(0.0)
    for _ in range(20):
        run.tick(sent=MB, acknowledged=int(0.9 * MB))
    wire, files = progress_lines(run.screen.shown[-1])
    assert wire == "sent 20.0 MB, 2.0 MB/s (20 s avg), ETA 0:00:41, elapsed 0:00:10"
    assert "18.0/100.0 MB (18%)" in files


def test_the_eta_goes_when_the_wire_stalls_and_comes_back_with_it() -> None:
    run = Run()
    run.walked(10, 100 * MB)
    run.tick(0.0)
    for _ in range(20):
        run.tick(sent=MB, acknowledged=MB)
    assert "ETA 0:00:40" in run.screen.line
    for _ in range(41):  # more than the 20 s window without a byte
        run.tick()
    assert "0.0 MB/s" in run.screen.line and "ETA -," in run.screen.line
    for _ in range(10):  # 5 s at 4 MB/s
        run.tick(sent=2 * MB, acknowledged=2 * MB)
    fig = run.screen.shown[-1]
    # the window (20 s) now holds 15 s of nothing and 5 s at 4 MB/s
    assert fig.rate_bytes_per_s == pytest.approx(1 * MB)
    assert "ETA 0:01:00" in run.screen.line  # 100 - 20 - 20 = 60 MB left at 1 MB/s


def test_no_eta_while_the_walk_goes_on() -> None:
    run = Run()
    run.stats.files_found, run.stats.bytes_found = 5, 10 * MB
    run.tick(0.0)
    run.tick(sent=MB)
    assert "ETA -," in run.screen.line and "/5+ files" in run.screen.line
    run.walked(5, 10 * MB)
    run.tick(sent=MB, acknowledged=2 * MB)
    assert "ETA 0:00:04" in run.screen.line and "/5 files" in run.screen.line


def test_a_retried_post_counts_on_the_wire_not_twice_as_acknowledged() -> None:
    """A POST of 10 MB cut and sent again: 20 MB went to the wire (the rate says so), 10 MB
    were acknowledged (the share done says so)."""
    run = Run()
    run.walked(1, 10 * MB)
    run.tick(0.0)
    run.tick(5.0, sent=10 * MB)
    run.stats.retries += 1
    run.tick(5.0, sent=10 * MB, acknowledged=10 * MB)
    fig = run.screen.shown[-1]
    assert fig.bytes_sent == 20 * MB and fig.rate_bytes_per_s == pytest.approx(2 * MB)
    assert fig.bytes_left == 0 and fig.eta_s == 0.0
    assert "(100%)" in run.screen.line and "1 retry" in run.screen.line


def test_the_share_done_never_passes_100_percent_nor_the_bytes_left_below_0() -> None:
    """A file that grew after the walk was acknowledged at its new size."""
    run = Run()
    run.walked(2, 10 * MB)
    run.stats.bytes_skipped = 4 * MB
    run.tick(0.0)
    run.tick(1.0, sent=7 * MB, acknowledged=7 * MB)
    fig = run.screen.shown[-1]
    assert fig.bytes_left == 0 and fig.eta_s == 0.0
    assert "(100%)" in progress_lines(fig)[1]


def test_a_blocked_loop_gives_one_late_sample_and_the_rate_stays_true() -> None:
    """No tick for 30 s (the loop was busy), then one: the rate is the bytes over the time
    that really passed, not over the half second a tick should have taken."""
    run = Run()
    run.walked(1, 100 * MB)
    run.tick(0.0)
    run.tick(30.0, sent=30 * MB)
    assert run.screen.shown[-1].rate_bytes_per_s == pytest.approx(1 * MB)
    assert "elapsed 0:00:30" in run.screen.line


def test_the_rate_never_goes_negative() -> None:
    rate = MovingRate(window_s=20.0)
    rate.add(0.0, 5 * MB)
    assert rate.add(1.0, 4 * MB) == 0.0  # a counter that went back (never expected)


def test_large_counts_keep_their_separators() -> None:
    fig = figures(
        StatsSnapshot(
            files_found=1_234_567,
            bytes_found=5_000_000 * MB,
            walk_done=True,
            files_uploaded=1_000_000,
            bytes_uploaded=4_000_000 * MB,
            files_failed=12_345,
            files_skipped=0,
            posts=10,
            retries=1_500,
            elapsed_s=3 * 3600.0 + 5,
            bytes_sent=4_100_000 * MB,
            posts_in_flight=16,
        ),
        400 * MB,
    )
    wire, files = progress_lines(fig)
    assert wire == ("sent 4,100,000.0 MB, 400.0 MB/s (20 s avg), ETA 0:41:40, elapsed 3:00:05")
    assert files == (
        "acknowledged 1,000,000/1,234,567 files, 4,000,000.0/5,000,000.0 MB "
        "(80%); 16 POSTs in flight, 1,500 retries, 12,345 failed"
    )


def test_finish_closes_the_display_once_and_nothing_is_shown_after() -> None:
    run = Run()
    run.tick()
    run.reporter.finish()
    run.reporter.finish()
    run.tick()
    assert run.screen.closed == 1 and len(run.screen.shown) == 1
