"""Checks of configuration values, shared by :class:`~bulkup.config.model.UploadConfig` (which
validates itself) and the loader (:mod:`bulkup.config.load`): each names the field it refuses
and shows the rejected value briefly; sizes such as ``"64MiB"`` are parsed here.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from bulkup.errors import ConfigError


class FieldProblem(ConfigError):
    """A ConfigError about named fields; the loader prefixes it with where the value came from."""

    def __init__(self, keys: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys


def fail(name: str, problem: str, *others: str) -> NoReturn:
    raise FieldProblem((name, *others), f"{name} {problem}")


def shown(value: object) -> str:
    """A short rendering of a rejected value, in TOML-like (JSON) notation where possible."""
    if value is None:
        return "None"
    if isinstance(value, Path):
        value = str(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- field checks (each reads getattr(obj, name), may store a normalised value) ---------------


def check_bool(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, bool):
        fail(name, f"must be true or false, got {shown(value)}")


def check_str(obj: object, name: str, *, non_empty: bool = False) -> None:
    value = getattr(obj, name)
    if value is None:
        return
    if not isinstance(value, str):
        fail(name, f"must be a string, got {shown(value)}")
    if non_empty and not value:
        fail(name, "must not be empty")


def check_pattern(obj: object, name: str, pattern: re.Pattern[str], what: str) -> None:
    check_str(obj, name)
    value = getattr(obj, name)
    if value is not None and not pattern.match(value):
        fail(name, f"must be {what}, got {shown(value)}")


def check_choice(
    obj: object, name: str, allowed: tuple[str, ...], *, optional: bool = False
) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if value not in allowed or not isinstance(value, str):
        fail(name, f"must be one of {', '.join(map(shown, allowed))}, got {shown(value)}")


def check_int(
    obj: object, name: str, lo: int, hi: int | None = None, *, optional: bool = False
) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        fail(name, f"must be an integer, got {shown(value)}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"within {lo}..{hi}"
        fail(name, f"must be {bounds}, got {value}")


def check_int_or_auto(obj: object, name: str, lo: int, hi: int) -> None:
    """An integer within ``lo..hi``, or ``"auto"`` (any case, stored as ``"auto"``)."""
    value = getattr(obj, name)
    if isinstance(value, str) and value.strip().lower() == "auto":
        object.__setattr__(obj, name, "auto")
        return
    if isinstance(value, bool) or not isinstance(value, int):
        fail(name, f'must be an integer or "auto", got {shown(value)}')
    check_int(obj, name, lo, hi)


def check_seconds(obj: object, name: str) -> None:
    """A positive, finite number of seconds; an int is stored as a float."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(name, f"must be a number of seconds, got {shown(value)}")
    if not (math.isfinite(value) and value > 0):
        fail(name, f"must be a positive number of seconds, got {value}")
    object.__setattr__(obj, name, float(value))


def check_path(obj: object, name: str) -> None:
    """A Path or None; a str is accepted and stored as a Path."""
    value = getattr(obj, name)
    if value is None or isinstance(value, Path):
        return
    if not isinstance(value, str) or not value:
        fail(name, f"must be a path, got {shown(value)}")
    object.__setattr__(obj, name, Path(value))


def check_patterns(obj: object, name: str) -> None:
    """A sequence of non-empty strings, stored as a tuple."""
    value = getattr(obj, name)
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        fail(name, f"must be a list of glob patterns, got {shown(value)}")
    for item in value:
        if not isinstance(item, str) or not item:
            fail(name, f"items must be non-empty strings, got {shown(item)}")
    object.__setattr__(obj, name, tuple(value))


def check_url(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if value is None:
        return
    if not isinstance(value, str):
        fail(name, f"must be a URL, got {shown(value)}")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        fail(name, f"must be an http or https URL, got {shown(value)}")
    if parts.username is not None or parts.password is not None:
        # Not echoed: the part before "@" may be a password.
        fail(name, "must not hold credentials (user:password@); use user and BULKUP_PASSWORD")
    if parts.scheme not in ("http", "https") or not hostname:
        fail(name, f"must be an http or https URL with a host, got {shown(value)}")


# --- sizes ------------------------------------------------------------------------------------

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*\Z")
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_HELP = (
    "a size in bytes: an integer, or a number with a unit: K, M, G, T, KB, MB, GB, TB "
    "(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
)


def size_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.match(value)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        return None
    from fractions import Fraction  # here: it imports decimal, about 1.5 ms of every start

    size = Fraction(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return int(size) if size.denominator == 1 else None


def parse_size(value: str | int) -> int:
    """A size in bytes from ``"64MiB"``, ``"1.5 GB"``, ``"4096"`` or an int (case-insensitive).

    ``K``/``M``/``G``/``T`` and ``KB``/``MB``/``GB``/``TB`` are powers of 1000,
    ``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024. The result must be a whole number of bytes.

    Raises:
        ConfigError: the value is not such a size (or negative).
    """
    size = size_or_none(value)
    if size is None:
        raise ConfigError(f"expected {_SIZE_HELP}, got {shown(value)}")
    return size
