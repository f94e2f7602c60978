"""The adaptive concurrency controller, on a fake clock with scripted outcomes.

A scripted server gives each limit a throughput (bytes a second); the POSTs of a window come
back evenly spaced at that rate, each having taken ``limit`` spacings (Little's law: with
``limit`` POSTs in flight, each waits for the ``limit`` answers before it). Nothing waits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import pairwise

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import RequestTimeout, ServerUnavailable, TransportError
from bulkup.pipeline.concurrency import (
    AutoSettings,
    Change,
    ConcurrencyController,
    Ticket,
    signal_of,
)

MB = 1_000_000
POST = 1_600_000  # bytes of one POST (100 x 16 KiB)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def controller(**settings: object) -> tuple[ConcurrencyController, FakeClock]:
    clock = FakeClock()
    return ConcurrencyController(AutoSettings(**settings), clock), clock  # type: ignore[arg-type]


def one_window(
    ctrl: ConcurrencyController,
    clock: FakeClock,
    rate: Callable[[int], float],
    *,
    saturated: bool = True,
    latency_factor: float = 1.0,
) -> list[Change]:
    """Answers under the current limit until a window ends (the limit may move then)."""
    changes: list[Change] = []
    limit, seen = ctrl.limit, ctrl.windows
    while ctrl.windows == seen:
        spacing = POST / rate(limit)
        clock.now += spacing
        ticket = dataclasses.replace(
            ctrl.start(), started=clock.now - spacing * limit * latency_factor
        )
        change = ctrl.acknowledged(ticket, POST, saturated=saturated)
        if change is not None:
            changes.append(change)
            break
    return changes


def windows(
    ctrl: ConcurrencyController,
    clock: FakeClock,
    rate: Callable[[int], float],
    count: int,
    **kwargs: object,
) -> list[Change]:
    changes: list[Change] = []
    for _ in range(count):
        changes += one_window(ctrl, clock, rate, **kwargs)  # type: ignore[arg-type]
    return changes


def far_server(limit: int) -> float:
    """A latency-bound server: every POST in flight adds its share."""
    return 10 * MB * limit


def busy_server(limit: int) -> float:
    """A CPU-bound one: the same throughput whatever the limit."""
    return 60 * MB


def capped_server(cap: int) -> Callable[[int], float]:
    """Grows with the limit up to ``cap``, flat beyond."""
    return lambda limit: 10 * MB * min(limit, cap)


def test_it_starts_at_eight_and_climbs_while_throughput_grows() -> None:
    ctrl, clock = controller(maximum=64)
    assert ctrl.limit == 8
    assert windows(ctrl, clock, far_server, 1) == []  # one window is no level yet
    changes = windows(ctrl, clock, far_server, 11)
    assert [c.new for c in changes] == [10, 12, 15, 18, 22, 27, 33, 41, 51, 63, 64]
    assert changes[0].reason == "probe"
    assert {c.reason for c in changes[1:]} == {"throughput grew"}
    assert changes[1].mb_s == pytest.approx(100.0) and changes[1].latency_ms is not None


def test_a_step_that_gains_nothing_is_taken_back_and_probed_ever_more_rarely() -> None:
    ctrl, clock = controller()
    seen: list[tuple[int, Change]] = []
    for _ in range(70):
        seen += [(ctrl.windows, c) for c in one_window(ctrl, clock, busy_server)]
    assert [(c.old, c.new, c.reason) for _, c in seen] == [(8, 10, "probe"), (10, 8, "no gain")] * 4
    # Windows at 8 before each probe: 2 (a steady level), then 8, 16, 32 (the hold doubles
    # after each probe that gained nothing).
    assert [w for w, c in seen if c.reason == "probe"] == [2, 12, 30, 64]


def test_the_climb_stops_where_throughput_stops_growing() -> None:
    ctrl, clock = controller()
    windows(ctrl, clock, capped_server(20), 12)
    assert 18 <= ctrl.limit <= 22


def test_above_the_start_it_also_probes_down_and_stays_where_the_top_posts_pay() -> None:
    """The server gets busier: past 12 the extra POSTs bring nothing. From 22, probes down
    find that, and the limit comes back to the knee; never below the start."""
    ctrl, clock = controller()
    windows(ctrl, clock, capped_server(20), 12)
    assert ctrl.limit >= 18
    changes = windows(ctrl, clock, capped_server(12), 80)
    assert {"no loss", "probe"} <= {c.reason for c in changes}
    assert ctrl.limit in (12, 15)
    assert min(c.new for c in changes) >= 8


def test_a_probe_down_that_loses_throughput_goes_back_up() -> None:
    ctrl, clock = controller()
    windows(ctrl, clock, capped_server(20), 12)
    changes = windows(ctrl, clock, capped_server(20), 40)
    assert ("probe", "loss") in {(a.reason, b.reason) for a, b in pairwise(changes)}
    assert 18 <= ctrl.limit <= 27


def test_no_probe_while_the_run_speeds_up_or_slows_down_for_other_reasons() -> None:
    """Each window 40% faster than the one before (a start-up, another program leaving the
    machine): no two agree, so nothing is probed and nothing is mistaken for a gain."""
    ctrl, clock = controller()
    speed = [10 * MB]

    def ramp(limit: int) -> float:
        return speed[0]

    changes: list[Change] = []
    for _ in range(10):
        changes += one_window(ctrl, clock, ramp)
        speed[0] *= 1.4
    assert changes == [] and ctrl.limit == 8


def test_a_gain_below_the_bar_is_no_gain() -> None:
    """10 -> 12 must bring at least 40% of the proportional 20%; 5% is noise."""
    ctrl, clock = controller()
    changes = windows(ctrl, clock, lambda limit: 60 * MB * (1 + 0.005 * limit), 3)
    assert [c.reason for c in changes] == ["probe", "no gain"]


def test_no_climb_while_the_limit_is_not_what_holds_the_run_back() -> None:
    """Workers did not wait at the gate (the walk is slower, or the run's tail): no growth."""
    ctrl, clock = controller()
    assert windows(ctrl, clock, far_server, 10, saturated=False) == []
    assert ctrl.limit == 8


def test_pushback_cuts_once_per_round_and_below_what_was_in_flight() -> None:
    ctrl, _ = controller()
    old_round = [ctrl.start() for _ in range(8)]
    first = ctrl.refused(old_round[0], "pushback 503", in_flight=8)
    assert first == Change(8, 6, "pushback 503")
    # The others of that round were sent before the cut: no second cut for them.
    assert all(ctrl.refused(t, "pushback 503", in_flight=7) is None for t in old_round[1:])
    assert ctrl.limit == 6
    again = ctrl.refused(ctrl.start(), "pushback 429", in_flight=6)
    assert again == Change(6, 4, "pushback 429")


def test_pushback_goes_below_the_posts_in_flight_when_that_is_lower() -> None:
    ctrl, _ = controller(initial=40)
    change = ctrl.refused(ctrl.start(), "pushback 503", in_flight=5)
    assert change is not None and change.new == 4


def test_a_timeout_cuts_by_a_quarter_and_the_floor_holds() -> None:
    ctrl, _ = controller(initial=3)
    assert ctrl.refused(ctrl.start(), "timeout", in_flight=3) == Change(3, 2, "timeout")
    assert ctrl.refused(ctrl.start(), "timeout", in_flight=2) == Change(2, 1, "timeout")
    assert ctrl.refused(ctrl.start(), "timeout", in_flight=1) is None
    assert ctrl.limit == 1


def test_after_pushback_it_recovers_below_that_level_and_probes_it_rarely() -> None:
    ctrl, clock = controller()
    ctrl.refused(ctrl.start(), "pushback 503", in_flight=8)  # 8 -> 6; 8 was too many
    changes = windows(ctrl, clock, far_server, 1)
    assert [(c.old, c.new, c.reason) for c in changes] == [(6, 7, "recovery")]
    assert windows(ctrl, clock, far_server, 9) == []  # below 8 for the ceiling's 8 windows
    changes = windows(ctrl, clock, far_server, 2)
    assert [(c.old, c.new, c.reason) for c in changes] == [
        (7, 8, "probe"),
        (8, 10, "throughput grew"),
    ]  # no pushback at 8 now: climbing on


def test_against_a_server_that_takes_four_it_stays_at_four_mostly() -> None:
    """A far server that refuses every round sent above 4 in flight."""
    ctrl, clock = controller()
    limits: list[int] = []
    refusals = 0
    for _ in range(200):
        if ctrl.limit > 4:
            refusals += 1
            ctrl.refused(ctrl.start(), "pushback 503", in_flight=ctrl.limit)
        one_window(ctrl, clock, far_server)
        limits.append(ctrl.limit)
    assert refusals <= 8  # 2 to come down from 8, then one probe every 64 windows at most
    assert sum(limits[10:]) / len(limits[10:]) > 3.9
    assert min(limits[10:]) >= 3


def test_rising_latency_without_more_throughput_backs_off() -> None:
    ctrl, clock = controller()
    windows(ctrl, clock, busy_server, 4)  # probe, no gain: holding at 8
    assert ctrl.limit == 8
    assert windows(ctrl, clock, busy_server, 1) == []  # the plateau's own latency
    changes = one_window(ctrl, clock, busy_server, latency_factor=3.0)
    assert [(c.old, c.new, c.reason) for c in changes] == [(8, 6, "latency rose")]


def test_answers_to_posts_sent_under_another_limit_are_not_counted() -> None:
    ctrl, clock = controller()
    stale = ctrl.start()
    ctrl.refused(ctrl.start(), "timeout", in_flight=8)
    for _ in range(50):
        clock.now += 0.001
        assert ctrl.acknowledged(stale, POST, saturated=True) is None


def test_never_above_the_maximum() -> None:
    ctrl, clock = controller(maximum=12)
    windows(ctrl, clock, far_server, 20)
    assert ctrl.limit == 12


@pytest.mark.parametrize(
    ("exc", "signal"),
    [
        (ServerUnavailable("HTTP 503", http_status=503, retry_after_s=1), "pushback 503"),
        (ServerUnavailable("HTTP 429", http_status=429), "pushback 429"),
        (ServerUnavailable("HTTP 502", http_status=502), None),
        (RequestTimeout("slow"), "timeout"),
        (TransportError("reset"), None),
    ],
)
def test_what_counts_as_a_signal(exc: BaseException, signal: str | None) -> None:
    assert signal_of(exc) == signal


def test_the_settings_follow_the_config() -> None:
    assert AutoSettings.from_config(UploadConfig(concurrency=8)) is None
    auto = AutoSettings.from_config(UploadConfig(concurrency="auto", max_concurrency=5))
    assert auto is not None and (auto.initial, auto.maximum) == (5, 5)
    assert AutoSettings.from_config(UploadConfig()) is None  # fixed 8 by default
    assert AutoSettings.from_config(UploadConfig(concurrency="auto")) == AutoSettings(
        initial=8, maximum=64
    )


def test_a_ticket_is_stamped_with_the_clock() -> None:
    ctrl, clock = controller()
    clock.now = 7.5
    assert ctrl.start() == Ticket(7.5, 0, 0)
