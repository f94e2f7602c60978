"""Field checks shared by the option dataclasses (private).

Each check reads ``obj.<name>``, raises :class:`~bulkup.errors.ProtocolValueError` naming
``<Class>.<name>`` when the value is wrong, and may store a normalised value back (the
dataclasses are frozen, hence ``object.__setattr__``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NoReturn

from bulkup.errors import ProtocolValueError

XSD_INT_MIN = -(2**31)
XSD_INT_MAX = 2**31 - 1
XSD_LONG_MAX = 2**63 - 1

_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*\Z")


def fail(obj: object, name: str, problem: str) -> NoReturn:
    """Raise a ProtocolValueError for ``<Class>.<name>``."""
    raise ProtocolValueError(f"{type(obj).__name__}.{name}: {problem}")


def shown(value: object) -> str:
    """A short repr of a rejected value for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _store(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def check_bool(obj: object, name: str, *, optional: bool = True) -> None:
    """Require a bool (or None when optional)."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, bool):
        fail(obj, name, f"must be true or false, got {shown(value)}")


def check_int(
    obj: object, name: str, lo: int = XSD_INT_MIN, hi: int = XSD_INT_MAX, *, optional: bool = True
) -> None:
    """Require an int within ``lo..hi`` (bool is not an int here)."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        fail(obj, name, f"must be an integer, got {shown(value)}")
    if not lo <= value <= hi:
        fail(obj, name, f"must be within {lo}..{hi}, got {value}")


def check_number(
    obj: object,
    name: str,
    lo: float,
    hi: float | None = None,
    *,
    lo_exclusive: bool = False,
) -> None:
    """Require a finite int or float within ``lo..hi`` (``lo`` excluded if asked); None passes."""
    value = getattr(obj, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(obj, name, f"must be a number, got {shown(value)}")
    low_ok = value > lo if lo_exclusive else value >= lo
    if not (math.isfinite(value) and low_ok and (hi is None or value <= hi)):
        fail(obj, name, f"must be {_bounds(lo, hi, lo_exclusive)}, got {value}")


def _bounds(lo: float, hi: float | None, lo_exclusive: bool) -> str:
    if lo_exclusive:
        low = f"greater than {lo:g}"
        return low if hi is None else f"{low} and at most {hi:g}"
    return f"at least {lo:g}" if hi is None else f"within {lo:g}..{hi:g}"


def check_str(
    obj: object, name: str, *, optional: bool = True, non_empty: bool = False, secret: bool = False
) -> None:
    """Require a str; ``secret`` values are never shown in the message."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, str):
        got = "" if secret else f", got {shown(value)}"
        fail(obj, name, f"must be a string{got}")
    if non_empty and not value:
        fail(obj, name, "must not be empty")


def check_pattern(obj: object, name: str, pattern: re.Pattern[str], what: str) -> None:
    """Require an optional str that matches ``pattern`` in full."""
    check_str(obj, name)
    value = getattr(obj, name)
    if value is not None and not pattern.match(value):
        fail(obj, name, f"must be {what}, got {shown(value)}")


def coerce_enum(obj: object, name: str, enum: type[StrEnum], *, optional: bool = True) -> None:
    """Require a member (or exact-case value) of ``enum`` and store the member."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    try:
        member = enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        fail(obj, name, f"must be one of {allowed} (case-sensitive), got {shown(value)}")
    _store(obj, name, member)


def coerce_handles(obj: object, name: str) -> None:
    """Require an optional iterable of non-empty str handles and store it as a tuple."""
    value = getattr(obj, name)
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        fail(obj, name, f"must be a sequence of handles, got {shown(value)}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            fail(obj, name, f"items must be non-empty strings, got {shown(item)}")
    _store(obj, name, items)


def check_instance(obj: object, name: str, cls: type[Any], *, optional: bool = True) -> None:
    """Require an instance of ``cls`` (or None when optional)."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, cls):
        fail(obj, name, f"must be a {cls.__name__}, got {type(value).__name__}")


def check_element_map(obj: object, name: str) -> Mapping[str, str] | None:
    """Validate an optional mapping of XML element name to text; return a copy in order."""
    value = getattr(obj, name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        fail(obj, name, f"must be a mapping of element name to text, got {shown(value)}")
    for key, text in value.items():
        if not isinstance(key, str) or not _NCNAME.match(key):
            fail(obj, name, f"{shown(key)} is not a valid element name")
        if not isinstance(text, str):
            fail(obj, name, f"text of {key} must be a string, got {shown(text)}")
    return dict(value)
