"""Caps a user sets: the bwlimit timetable (rclone's form), the run's token buckets on a fake
clock, SIGUSR2's switch, and where the limits apply (the wire's writes, the client's POSTs)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from bulkup.config.model import UploadConfig
from bulkup.config.timetable import parse_bwlimit
from bulkup.errors import ConfigError
from bulkup.transport.limits import (
    BandwidthLimit,
    LimitSwitch,
    PostLimit,
    bandwidth_limit,
    post_limit,
)
from bulkup.transport.wire import Wire

MONDAY = datetime(2026, 11, 30)  # a Monday, 00:00


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time on the day ``day`` days after Monday 2026-11-30."""
    return MONDAY.replace(
        day=30 + day if day == 0 else day, month=12 if day else 11, hour=hour, minute=minute
    )


class FakeTime:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class TestTimetable:
    @pytest.mark.parametrize(
        ("text", "rate"),
        [
            ("10M", 10_000_000),
            ("512k", 512_000),
            ("1.5MiB", 1_572_864),
            ("off", None),
            ("0", None),
            ("OFF", None),
            ("10M:1M", 10_000_000),
            ("200B", 200),
        ],
    )
    def test_a_single_rate_holds_all_week(self, text: str, rate: int | None) -> None:
        table = parse_bwlimit(text)
        assert {table.rate_at(at(day, hour)) for day in range(7) for hour in (0, 13)} == {rate}

    def test_rclones_daily_example(self) -> None:
        """rclone's docs: 512k at 8am, 10M at noon, 512k at 1pm, 30M at 6pm, unlimited from
        11pm until 8am."""
        table = parse_bwlimit("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off")
        assert table.rate_at(at(2, 7, 59)) is None  # before the day's first entry: last one
        assert table.rate_at(at(2, 8, 0)) == 512_000
        assert table.rate_at(at(2, 12, 30)) == 10_000_000
        assert table.rate_at(at(2, 13, 0)) == 512_000
        assert table.rate_at(at(2, 22, 59)) == 30_000_000
        assert table.rate_at(at(2, 23, 0)) is None

    def test_weekday_entries_wrap_around_the_week(self) -> None:
        """rclone's docs: 512 on Monday, 10M from Friday 23:59, 1M from Saturday 10:00,
        unlimited from Sunday 20:00 until Monday."""
        table = parse_bwlimit("Mon-00:00,512k Fri-23:59,10M Saturday-10:00,1M sun-20:00,off")
        assert table.rate_at(at(0, 0)) == 512_000
        assert table.rate_at(at(4, 23, 58)) == 512_000  # Friday
        assert table.rate_at(at(4, 23, 59)) == 10_000_000
        assert table.rate_at(at(5, 9, 59)) == 10_000_000  # Saturday
        assert table.rate_at(at(5, 10)) == 1_000_000
        assert table.rate_at(at(6, 20)) is None  # Sunday evening

    def test_entries_without_a_weekday_apply_every_day(self) -> None:
        """rclone's docs: 'Mon-00:00,512 12:00,1M Sun-20:00,off' is 12:00,1M on every day."""
        table = parse_bwlimit("Mon-00:00,512k;12:00,1M;Sun-20:00,off")
        assert table.rate_at(at(3, 12)) == 1_000_000  # Thursday noon
        assert table.rate_at(at(3, 11)) == 1_000_000  # still Wednesday's noon entry
        assert table.rate_at(at(0, 11)) == 512_000
        assert table.rate_at(at(6, 21)) is None

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("512", "has no unit"),
            ("08:00,512", "has no unit"),
            ("fast", "is no rate"),
            ("24:00,1M", "no time of day"),
            ("08:60,1M", "no time of day"),
            ("Mo-08:00,1M", "no weekday"),
            ("1M 08:00,off", "single rate stands alone"),
            ("", "empty"),
            ("08:00", "a time without a rate"),
        ],
    )
    def test_mistakes_name_the_entry(self, text: str, says: str) -> None:
        with pytest.raises(ConfigError, match=says):
            parse_bwlimit(text)

    def test_the_config_refuses_a_bad_limit(self) -> None:
        with pytest.raises(ConfigError, match="bwlimit .*has no unit"):
            UploadConfig(bwlimit="512")
        with pytest.raises(ConfigError, match="tpslimit must be"):
            UploadConfig(tpslimit=-1)
        with pytest.raises(ConfigError, match="tpslimit_burst must be"):
            UploadConfig(tpslimit_burst=0)


def limit(
    text: str, time: FakeTime, switch: LimitSwitch | None = None, now: datetime = MONDAY
) -> BandwidthLimit:
    return BandwidthLimit(
        parse_bwlimit(text),
        switch=switch or LimitSwitch(),
        clock=time.clock,
        sleep=time.sleep,
        now=lambda: now,
    )


async def send_for(
    pace: BandwidthLimit, time: FakeTime, seconds: float, workers: int = 8
) -> Counter[int]:
    """Bytes handed on per whole second of fake time, by ``workers`` writers sharing it."""
    per_second: Counter[int] = Counter()

    async def writer() -> None:
        while time.now < seconds:
            piece = pace.piece_bytes()
            await pace.take(piece)
            per_second[int(time.now)] += piece

    await asyncio.gather(*(writer() for _ in range(workers)))
    return per_second


class TestBandwidth:
    async def test_one_bucket_for_all_writers(self) -> None:
        """Eight writers sharing the limit: 5 MB/s together over 20 s, no second above 2x."""
        time = FakeTime()
        per_second = await send_for(limit("5M", time), time, 20.0)
        seconds = [per_second[s] for s in range(20)]
        assert abs(sum(seconds) / 20 - 5_000_000) < 0.05 * 5_000_000
        assert max(seconds) <= 2 * 5_000_000

    async def test_a_slow_limit_goes_in_small_pieces(self) -> None:
        time = FakeTime()
        pace = limit("8k", time)
        assert pace.piece_bytes() == 1024
        per_second = await send_for(pace, time, 10.0, workers=3)
        assert max(per_second.values()) <= 2 * 8000

    async def test_off_and_a_suspended_limit_never_wait(self) -> None:
        time, switch = FakeTime(), LimitSwitch()
        pace = limit("08:00,1M 19:00,off", time, switch, now=at(2, 20))
        await pace.take(50_000_000)
        switch.suspended = True
        pace_on = limit("1M", time, switch)
        await pace_on.take(50_000_000)
        assert time.slept == []

    async def test_sigusr2_switch_toggles_and_logs(self) -> None:
        time, switch = FakeTime(), LimitSwitch()
        pace = limit("1M", time, switch)
        with structlog.testing.capture_logs() as logs:
            switch.toggle()
            await pace.take(10_000_000)  # off: at once
            assert time.slept == []
            switch.toggle()
            await pace.take(2_000_000)
        assert sum(time.slept) == pytest.approx(2.0, rel=0.01)
        assert [(e["event"], e["limit"]) for e in logs] == [
            ("bwlimit_toggled", "off"),
            ("bwlimit_toggled", "on"),
        ]

    async def test_a_timetable_change_reaches_a_waiting_writer(self) -> None:
        """A writer waiting on a slow limit goes on at the new rate once the table changes."""
        time = FakeTime()
        when = [at(2, 18, 59)]
        table = parse_bwlimit("08:00,1k 19:00,off")
        pace = BandwidthLimit(
            table, switch=LimitSwitch(), clock=time.clock, sleep=time.sleep, now=lambda: when[0]
        )

        async def turn_of_the_hour() -> None:
            while time.now < 5:
                await asyncio.sleep(0)
            when[0] = at(2, 19, 0)

        with structlog.testing.capture_logs() as logs:
            await asyncio.gather(pace.take(1_000_000), turn_of_the_hour())
        assert 5 <= time.now <= 7  # not the 1,000 s the old rate would take
        assert any(e["event"] == "bwlimit_changed" and e["rate"] == "off" for e in logs)

    def test_a_limit_only_where_one_is_set(self) -> None:
        assert bandwidth_limit(UploadConfig()) is None
        assert bandwidth_limit(UploadConfig(bwlimit="off")) is None
        assert bandwidth_limit(UploadConfig(bwlimit="08:00,1M 19:00,off")) is not None
        assert post_limit(UploadConfig()) is None
        assert post_limit(UploadConfig(tpslimit=0)) is None


class TestPosts:
    async def test_posts_a_second_with_a_burst(self) -> None:
        """--tpslimit 4 --tpslimit-burst 2: two at once, then one every quarter second."""
        time = FakeTime()
        posts = PostLimit(4, 2, clock=time.clock, sleep=time.sleep)
        started: list[float] = []
        for _ in range(10):
            await posts.take()
            started.append(time.now)
        assert started[:2] == [0.0, 0.0]
        assert started[-1] == pytest.approx(2.0)


class RecordingWriter:
    """aiohttp's writer as a body sees it, on a TLS-like transport (no shortcuts)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.transport = None

    async def write(self, data: Any) -> None:
        self.sizes.append(len(data))


class TestWhereLimitsApply:
    async def test_the_wire_takes_every_piece_from_the_bucket(self) -> None:
        time = FakeTime()
        pace = limit("1M", time)
        writer = RecordingWriter()
        wire = Wire(writer, pace=pace)  # type: ignore[arg-type]
        await wire.write(bytes(1_000_000))
        await wire.write(b"x" * 100)
        await wire.flush()
        assert sum(writer.sizes) == 1_000_100
        assert max(writer.sizes) <= pace.piece_bytes()
        assert time.now == pytest.approx(1.0, rel=0.01)

    async def test_no_hand_over_under_a_limit(self) -> None:
        """The read helper's own writes cannot be paced: no descriptor for it under a limit."""
        ours, peer = __import__("socket").socketpair()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        try:
            writer = SimpleNamespace(transport=transport)
            assert Wire(writer).can_hand_over  # type: ignore[arg-type]
            limited = Wire(writer, pace=limit("1M", FakeTime()))  # type: ignore[arg-type]
            assert limited.can_sendfile and not limited.can_hand_over
        finally:
            transport.close()
            peer.close()
