"""Reading the ``<op>Param`` element of a SOAP call: texts, numbers, dates, companies.

Every helper raises the matching fault: 30002 for a missing required parameter, 30001 for an
invalid one, 20000/20006 for a company that is unknown or not the caller's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from bulkup.emulator.responses import Fault
from bulkup.emulator.settings import Company, User
from bulkup.emulator.state import EmulatorState
from bulkup.emulator.xmlread import child, local_name

SORT_DIRECTIONS = {"Ascending": False, "Descending": True}


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated call (``user`` is None only for ``checkLogin``)."""

    state: EmulatorState
    param: ET.Element
    user: User | None

    def company(self, handle: str) -> Company:
        """The company with this handle, if the caller belongs to it (20000, 20006)."""
        company = self.state.settings.company(handle)
        if company is None:
            raise Fault.authorization(20000, "Invalid company")
        if self.user is None or company.handle not in self.user.companies:
            raise Fault.authorization(20006, "Illegal company")
        return company

    def companies(self, handle: str | None) -> list[Company]:
        """That company (checked), or every company of the caller when no handle is given."""
        if handle is not None:
            return [self.company(handle)]
        member = self.user.companies if self.user else ()
        return [c for c in self.state.settings.companies if c.handle in member]


def optional(call: Call, name: str, *, strip: bool = True) -> str | None:
    """A child's text; None when absent or empty."""
    found = child(call.param, name)
    if found is None:
        return None
    text = found.text or ""
    if strip:
        text = text.strip()
    return text or None


def required(call: Call, name: str, *, strip: bool = True) -> str:
    """A child's text; 30002 when absent or empty."""
    text = optional(call, name, strip=strip)
    if text is None:
        raise Fault.ips(30002, f"Missing parameter: {name}")
    return text


def integer(call: Call, name: str, default: int, *, low: int = 1) -> int:
    """An ``xsd:int`` child, at least ``low``; the default when absent."""
    text = optional(call, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Fault.ips(30001, f"Invalid parameter: {name}") from None
    if value < low or value > 2**31 - 1:
        raise Fault.ips(30001, f"Invalid parameter: {name}")
    return value


def date_time(call: Call, name: str) -> datetime | None:
    """An ``xsd:dateTime`` child with its time zone (§5.3: the zone must be given)."""
    text = optional(call, name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Fault.ips(30001, f"Invalid parameter: {name}") from None
    if value.tzinfo is None:
        raise Fault.ips(30001, f"Invalid parameter: {name} (time zone required)")
    return value


def choice(call: Call, name: str, allowed: tuple[str, ...], default: str) -> str:
    """A text child that must be one of ``allowed`` (exact case)."""
    text = optional(call, name) or default
    if text not in allowed:
        raise Fault.ips(30001, f"Invalid parameter: {name}")
    return text


def descending(call: Call) -> bool:
    """``sortDirection``: ``Ascending`` (default) or ``Descending``."""
    return SORT_DIRECTIONS[choice(call, "sortDirection", tuple(SORT_DIRECTIONS), "Ascending")]


def string_array(call: Call, name: str) -> list[str] | None:
    """A ``types:StringArray`` child (its ``items``); None when absent."""
    found = child(call.param, name)
    if found is None:
        return None
    return [(item.text or "").strip() for item in found if local_name(item.tag) == "items"]
