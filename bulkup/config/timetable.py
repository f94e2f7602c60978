"""``bwlimit``: a bandwidth limit, or a weekly timetable of limits, in rclone's form.

Forms (entries separated by spaces or semicolons)::

    10M                                   always 10,000,000 bytes/s
    off                                   no limit (so is 0)
    08:00,512k 12:00,10M 19:00,off        from 08:00 every day 512 kB/s, from 12:00 10 MB/s, ...
    Mon-08:00,512k Fri-18:00,off          weekday entries (Mon or Monday, any case)
    08:00,512k:off                        rclone's UPLOAD:DOWNLOAD pair: bulkup uses UPLOAD

As in rclone: an entry applies from its minute (local time) until the next entry of the week;
before the week's first entry, the week's last one still applies (the table wraps around); an
entry without a weekday stands for the same time on all seven days; ``off`` and 0 mean no limit.

Where bulkup differs: a rate is one of bulkup's sizes (``K``/``M``/``G`` are powers of 1000,
``KiB``/``MiB``/``GiB`` of 1024) per second, where rclone reads ``10M`` as 10 MiB/s and a bare
number as KiB/s; a bare number other than 0 is refused rather than guessed. A single rate cannot
be mixed with timed entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bulkup.config.checks import size_or_none
from bulkup.errors import ConfigError

MINUTES_A_DAY = 24 * 60
MINUTES_A_WEEK = 7 * MINUTES_A_DAY
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ENTRY = re.compile(r"(?:(?P<day>[A-Za-z]+)-)?(?P<hh>\d\d):(?P<mm>\d\d),(?P<rate>.+)\Z")
_SEPARATORS = re.compile(r"[\s;]+")


@dataclass(frozen=True, slots=True)
class Slot:
    """From ``minute`` of the week (Monday 00:00 is 0) on, ``rate`` bytes/s (None: no limit)."""

    minute: int
    rate: int | None


@dataclass(frozen=True, slots=True)
class Timetable:
    """The limits of a week, in order of their start; one slot at minute 0 for a plain rate."""

    slots: tuple[Slot, ...]

    def rate_at(self, when: datetime) -> int | None:
        """The limit in force at local time ``when``: the latest slot started at or before it
        within the week, else (before the week's first slot) the week's last slot."""
        minute = when.weekday() * MINUTES_A_DAY + when.hour * 60 + when.minute
        current = self.slots[-1]
        for slot in self.slots:
            if slot.minute > minute:
                break
            current = slot
        return current.rate

    @property
    def ever_limited(self) -> bool:
        """Whether any slot limits at all."""
        return any(slot.rate is not None for slot in self.slots)


def parse_bwlimit(text: str) -> Timetable:
    """The timetable ``text`` describes (see the module's docstring).

    Raises:
        ConfigError: the text is no rate nor timetable; the message names the bad entry.
    """
    entries = [e for e in _SEPARATORS.split(text.strip()) if e]
    if not entries:
        raise ConfigError(
            "expected a rate (10M, 512k, off) or a timetable "
            "('08:00,512k 19:00,off'), got an empty value"
        )
    if len(entries) == 1 and _ENTRY.match(entries[0]) is None:
        if re.fullmatch(r"(?:[A-Za-z]+-)?\d\d?:\d\d", entries[0]):
            raise ConfigError(
                f"timetable entry {entries[0]!r}: a time without a rate: "
                "expected [WEEKDAY-]HH:MM,RATE, e.g. '08:00,512k'"
            )
        return Timetable((Slot(0, _rate(entries[0], entries[0])),))
    slots: dict[int, Slot] = {}
    for entry in entries:
        for slot in _slots_of(entry):
            slots[slot.minute] = slot  # a later entry for the same minute wins
    return Timetable(tuple(sorted(slots.values(), key=lambda s: s.minute)))


def _slots_of(entry: str) -> Sequence[Slot]:
    match = _ENTRY.match(entry)
    if match is None:
        raise ConfigError(
            f"timetable entry {entry!r}: expected [WEEKDAY-]HH:MM,RATE, e.g. "
            "'08:00,512k' or 'Mon-08:00,off' (a single rate stands alone)"
        )
    hours, minutes = int(match["hh"]), int(match["mm"])
    if hours > 23 or minutes > 59:
        raise ConfigError(
            f"timetable entry {entry!r}: {match['hh']}:{match['mm']} is no "
            "time of day (00:00 to 23:59)"
        )
    rate = _rate(match["rate"], entry)
    of_day = hours * 60 + minutes
    if match["day"] is None:
        return [Slot(day * MINUTES_A_DAY + of_day, rate) for day in range(7)]
    return [Slot(_day(match["day"], entry) * MINUTES_A_DAY + of_day, rate)]


def _day(name: str, entry: str) -> int:
    lowered = name.lower()
    for index, (short, full) in enumerate(zip(_DAYS, _FULL_DAYS, strict=True)):
        if lowered in (short, full):
            return index
    raise ConfigError(
        f"timetable entry {entry!r}: {name!r} is no weekday (Mon or Monday, "
        "Tue, Wed, Thu, Fri, Sat, Sun)"
    )


def _rate(text: str, entry: str) -> int | None:
    """Bytes per second, or None for no limit; rclone's ``UP:DOWN`` pair gives its UP."""
    upload = text.split(":", 1)[0].strip()
    if upload.lower() == "off":
        return None
    size = size_or_none(upload)
    if size is None:
        raise ConfigError(
            f"bwlimit {entry!r}: {upload!r} is no rate: expected a size a second "
            "(512k, 10M, 1.5MiB) or off"
        )
    if size and upload.strip().isdigit():
        raise ConfigError(
            f"bwlimit {entry!r}: {upload!r} has no unit: say 512k, 10M or "
            f"{upload}B (rclone would read it as KiB/s, bulkup's sizes as bytes)"
        )
    return size or None
