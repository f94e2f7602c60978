"""The progress figures (h:mm:ss, the moving rate, ETA, POSTs in flight), the ``stats`` event's
cadence on a fake clock, log lines printed above the live area (checked on an emulated screen),
and rich kept off the import path of a run that is not on a terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest
import structlog
from rich.console import Console

from bulkup.cli.log import configure_logging, route_console_output
from bulkup.cli.progress import (
    Figures,
    MovingRate,
    ProgressReporter,
    figures,
    hms,
    progress_line,
    progress_lines,
    stats_fields,
)
from bulkup.cli.progress_display import LiveDisplay
from bulkup.stats import Stats, StatsSnapshot

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    route_console_output(None)
    structlog.reset_defaults()


def snap(**changes: Any) -> StatsSnapshot:
    base: dict[str, Any] = dict(
        files_found=0,
        bytes_found=0,
        walk_done=False,
        files_uploaded=0,
        bytes_uploaded=0,
        files_failed=0,
        files_skipped=0,
        posts=0,
        retries=0,
        elapsed_s=0.0,
    )
    base.update(changes)
    return StatsSnapshot(**base)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0:00:00"),
        (9.4, "0:00:09"),
        (59.6, "0:01:00"),
        (250, "0:04:10"),
        (3723, "1:02:03"),
        (100 * 3600 + 1, "100:00:01"),
        (None, "-"),
        (-1, "-"),
        (float("inf"), "-"),
        (float("nan"), "-"),
    ],
)
def test_hms(seconds: float | None, shown: str) -> None:
    assert hms(seconds) == shown


def test_the_rate_follows_the_last_window_not_the_whole_run() -> None:
    """30 s at 10 MB/s, then the link stalls: 20 s later the rate is 0 (the run's average
    would still say 6 MB/s); then 2 MB/s is 2 MB/s once the window is past the stall."""
    rate, sent, t, seen = MovingRate(window_s=20.0), 0, 0.0, 0.0
    rate.add(t, sent)
    for _ in range(60):  # 30 s, a sample every 0.5 s
        t, sent = t + 0.5, sent + 5 * MB
        seen = rate.add(t, sent)
    assert seen == pytest.approx(10 * MB)
    for _ in range(40):  # 20 s of nothing
        t += 0.5
        seen = rate.add(t, sent)
    assert seen == 0.0
    for _ in range(50):  # 25 s at 2 MB/s
        t, sent = t + 0.5, sent + MB
        seen = rate.add(t, sent)
    assert seen == pytest.approx(2 * MB)


def test_the_rate_is_zero_until_time_has_passed() -> None:
    rate = MovingRate()
    assert rate.add(5.0, 123) == 0.0
    assert rate.add(5.0, 456) == 0.0
    assert rate.add(6.0, 1456) == pytest.approx(1333.0)


def test_eta_only_once_the_walk_is_done_and_bytes_move() -> None:
    walking = figures(snap(bytes_found=100 * MB, bytes_uploaded=10 * MB), 1 * MB)
    assert walking.eta_s is None and "ETA -," in progress_line(walking)
    stalled = figures(snap(bytes_found=100 * MB, walk_done=True), 0.0)
    assert stalled.eta_s is None and "ETA -," in progress_line(stalled)
    # left: found - acknowledged - skipped = 100 - 10 - 30 = 60 MB at 0.5 MB/s: 120 s
    moving = figures(
        snap(
            bytes_found=100 * MB,
            walk_done=True,
            bytes_uploaded=10 * MB,
            bytes_skipped=30 * MB,
            bytes_sent=12 * MB,
        ),
        0.5 * MB,
    )
    assert moving.eta_s == pytest.approx(120.0)
    assert "ETA 0:02:00" in progress_line(moving)


def test_the_lines_show_sent_acknowledged_in_flight_retries_failures() -> None:
    fig = figures(
        snap(
            files_found=3010,
            bytes_found=412 * MB,
            walk_done=False,
            files_uploaded=1234,
            bytes_uploaded=150 * MB,
            bytes_sent=170_200_000,
            posts_in_flight=2,
            retries=3,
            files_failed=1,
            elapsed_s=9.0,
        ),
        18.9 * MB,
    )
    wire, files = progress_lines(fig)
    assert wire == "sent 170.2 MB, 18.9 MB/s (20 s avg), ETA -, elapsed 0:00:09"
    assert files == (
        "acknowledged 1,234/3,010+ files, 150.0/412.0 MB; 2 POSTs in flight, 3 retries, 1 failed"
    )
    one = figures(
        snap(
            walk_done=True,
            bytes_found=10,
            bytes_uploaded=5,
            posts_in_flight=1,
            retries=1,
            files_skipped=4,
            bytes_skipped=1,
        ),
        0.0,
    )
    assert "(60%); 1 POST in flight, 1 retry, 0 failed, 4 unchanged" in progress_lines(one)[1]


def test_the_reporter_counts_posts_in_flight_from_the_stats() -> None:
    shown: list[Figures] = []

    class Recorder:
        def __call__(self, fig: Figures) -> None:
            shown.append(fig)

        def close(self) -> None:
            pass

    stats = Stats(clock=FakeClock())
    reporter = ProgressReporter(display=Recorder())
    stats.posts_in_flight += 2
    reporter(stats.snapshot())
    stats.posts_in_flight -= 1
    reporter(stats.snapshot())
    assert [f.posts_in_flight for f in shown] == [2, 1]


def test_stats_events_every_interval_on_the_run_s_clock() -> None:
    """Ticks every 0.5 s for 185 s with a 60 s interval: events at 60, 120 and 180 s, with the
    display's figures; none at 0."""
    clock = FakeClock()
    stats = Stats(clock=clock)
    events: list[dict[str, Any]] = []
    reporter = ProgressReporter(stats_interval_s=60.0, emit=events.append)
    assert reporter.active
    for _ in range(371):
        stats.bytes_sent += MB // 2  # 1 MB/s
        reporter(stats.snapshot())
        clock.now += 0.5
    assert [e["elapsed_s"] for e in events] == [60.0, 120.0, 180.0]
    assert events[0]["rate_bytes_per_s"] == MB
    assert set(events[0]) >= {
        "files_found",
        "files_acknowledged",
        "files_failed",
        "bytes_sent",
        "bytes_acknowledged",
        "rate_bytes_per_s",
        "eta_s",
        "posts_in_flight",
        "retries",
    }


def test_stats_events_keep_to_their_grid_after_a_late_tick() -> None:
    clock = FakeClock()
    stats = Stats(clock=clock)
    events: list[dict[str, Any]] = []
    reporter = ProgressReporter(stats_interval_s=10.0, emit=events.append)
    for now in (0.0, 9.5, 35.0, 39.5, 40.0, 41.0):  # the loop was blocked from 9.5 to 35
        clock.now = now
        reporter(stats.snapshot())
    assert [e["elapsed_s"] for e in events] == [35.0, 40.0]


def test_no_stats_events_with_interval_zero() -> None:
    events: list[dict[str, Any]] = []
    reporter = ProgressReporter(stats_interval_s=0.0, emit=events.append)
    assert not reporter.active
    for elapsed in range(0, 600, 30):
        reporter(snap(elapsed_s=float(elapsed)))
    assert events == []


def test_the_stats_event_is_a_log_event_with_numbers() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    reporter = ProgressReporter(stats_interval_s=1.0)
    reporter(snap(elapsed_s=1.0, bytes_sent=42, walk_done=True, bytes_found=100))
    event = json.loads(out.getvalue())
    assert event["event"] == "stats" and event["bytes_sent"] == 42 and event["eta_s"] is None
    assert stats_fields(figures(snap(), 0.0))["eta_s"] is None


def screen_of(output: str, columns: int = 100, lines: int = 12) -> list[str]:
    """What a terminal shows after ``output``: its lines, trailing blanks cut."""
    screen = pyte.Screen(columns, lines)
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))  # the tty's onlcr
    return [line.rstrip() for line in screen.display]


def test_log_lines_print_above_the_progress_area_never_into_it() -> None:
    """The display and the console log share one terminal: after log lines between updates
    the screen shows each log line whole on a line of its own, the two progress lines last."""
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=160, height=12, color_system=None)
    configure_logging("console", stream=terminal)
    display = LiveDisplay(console, stdout=io.StringIO())
    log = structlog.get_logger()
    stats = Stats(clock=FakeClock())
    stats.files_found, stats.bytes_found, stats.bytes_sent = 10, 10 * MB, 3 * MB
    display(figures(stats.snapshot(), MB))
    log.warning("post_retry", attempt=1, reason="connection reset")
    stats.posts_in_flight, stats.walk_done = 2, True  # the bar joins the first line
    display(figures(stats.snapshot(), MB))
    log.info("job_opened", job_handle="j|1")
    display(figures(stats.snapshot(), MB))
    shown = [line for line in screen_of(terminal.getvalue(), columns=160) if line]
    assert len(shown) == 4, shown
    assert "post_retry" in shown[0] and "attempt=1" in shown[0]
    assert "job_opened" in shown[1] and "job_handle=j|1" in shown[1]
    assert "sent 3.0 MB, 1.0 MB/s" in shown[2] and "ETA 0:00:10" in shown[2]
    assert shown[3].startswith("acknowledged 0/10 files") and "2 POSTs in flight" in shown[3]
    display.close()
    log.info("after_close")
    assert "after_close" in terminal.getvalue().splitlines()[-1]  # the stream again


def test_closing_erases_the_area_for_the_summary() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=100, height=12)
    display = LiveDisplay(console, stdout=io.StringIO())
    display(figures(snap(files_found=1, bytes_found=10, walk_done=True), 0.0))
    display.close()
    display.close()  # idempotent
    terminal.write("found 1 file; sent 0\n")
    assert [line for line in screen_of(terminal.getvalue()) if line] == ["found 1 file; sent 0"]


PROBE = textwrap.dedent("""
    import sys
    from bulkup.cli.main import main
    code = main(["upload", "--emulator", "--no-journal", "--stats", "0"])
    print("RICH", sorted(m for m in sys.modules if m == "rich" or m.startswith("rich.")))
    sys.exit(code)
""")


def test_a_run_off_a_terminal_never_imports_rich(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "RICH []" in done.stdout
    assert "job_closed" in done.stderr or "job_opened" in done.stderr  # the run did happen
