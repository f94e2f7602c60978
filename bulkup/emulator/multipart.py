"""A streaming multipart/form-data parser: bytes in, part events out, nothing buffered whole.

The handler feeds whatever the socket delivers; the parser returns events in order:
``PartHeaders`` (the part's headers), ``bytes``/``bytearray`` chunks of the part's body,
``PART_END``, and finally ``DONE`` after the closing delimiter. Delimiters are found with
``bytes.find`` (C speed); only a delimiter-sized tail is ever held back between feeds.

Why not aiohttp's ``MultipartReader``: it decodes part headers as UTF-8 only (spec D-17 wants an
ISO-8859-1 fallback), strips leading slashes from file names, and costs several awaits per part;
this parser is a few bytes.find calls per part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

MAX_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY_CHARS = 200
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.S)


class MultipartError(ValueError):
    """The body is not valid multipart/form-data."""


class _Marker(Enum):
    PART_END = auto()
    DONE = auto()


PART_END = _Marker.PART_END
DONE = _Marker.DONE


@dataclass(frozen=True, slots=True)
class PartHeaders:
    """One part's headers, with its form-data ``name`` and ``filename`` pulled out."""

    headers: dict[str, str]
    name: str | None
    filename: str | None

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of the part's Content-Type, if any."""
        params = _params(self.headers.get("content-type", ""))
        return params.get("charset")


Event = PartHeaders | bytes | bytearray | _Marker


class _State(Enum):
    PREAMBLE = auto()
    AFTER_DELIMITER = auto()
    HEADERS = auto()
    BODY = auto()
    EPILOGUE = auto()


class MultipartParser:
    """Push parser for one multipart body with the given boundary."""

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
            raise MultipartError("bad boundary")
        self._dash_boundary = b"--" + boundary.encode("latin-1")
        self._delimiter = b"\r\n" + self._dash_boundary
        self._buf = bytearray()
        self._state = _State.PREAMBLE

    @property
    def done(self) -> bool:
        """Whether the closing delimiter has been seen."""
        return self._state is _State.EPILOGUE

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes."""
        if self._state is _State.EPILOGUE:
            return []
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> None:
        """Declare the end of input; raises when the body stopped before its closing delimiter."""
        if self._state is not _State.EPILOGUE:
            raise MultipartError("body ended before the closing delimiter")

    def _step(self, events: list[Event]) -> bool:
        if self._state is _State.BODY:
            return self._step_body(events)
        if self._state is _State.PREAMBLE:
            return self._step_preamble()
        if self._state is _State.AFTER_DELIMITER:
            return self._step_after_delimiter(events)
        if self._state is _State.HEADERS:
            return self._step_headers(events)
        self._buf.clear()
        return False

    def _step_preamble(self) -> bool:
        if self._buf.startswith(self._dash_boundary):
            del self._buf[: len(self._dash_boundary)]
            self._state = _State.AFTER_DELIMITER
            return True
        at = self._buf.find(self._delimiter)
        if at < 0:
            keep = len(self._delimiter)
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            return False
        del self._buf[: at + len(self._delimiter)]
        self._state = _State.AFTER_DELIMITER
        return True

    def _step_after_delimiter(self, events: list[Event]) -> bool:
        if len(self._buf) < 2:
            return False
        if self._buf.startswith(b"--"):
            self._state = _State.EPILOGUE
            self._buf.clear()
            events.append(DONE)
            return False
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > 256:
                raise MultipartError("garbage after a boundary")
            return False
        if self._buf[:end].strip(b" \t"):
            raise MultipartError("garbage after a boundary")
        del self._buf[: end + 2]
        self._state = _State.HEADERS
        return True

    def _step_headers(self, events: list[Event]) -> bool:
        if self._buf.startswith(b"\r\n"):
            end, skip = 0, 2
        else:
            end, skip = self._buf.find(b"\r\n\r\n"), 4
        if end < 0:
            if len(self._buf) > MAX_HEADER_BYTES:
                raise MultipartError("part headers too large")
            return False
        if end > MAX_HEADER_BYTES:
            raise MultipartError("part headers too large")
        events.append(parse_part_headers(bytes(self._buf[:end])))
        del self._buf[: end + skip]
        self._state = _State.BODY
        return True

    def _step_body(self, events: list[Event]) -> bool:
        at = self._buf.find(self._delimiter)
        if at >= 0:
            if at:
                events.append(bytes(self._buf[:at]))
            del self._buf[: at + len(self._delimiter)]
            events.append(PART_END)
            self._state = _State.AFTER_DELIMITER
            return True
        safe = len(self._buf) - (len(self._delimiter) - 1)
        if safe > 0:
            # hand the buffer itself over (truncated in place) and keep only the tail that may
            # start a delimiter: one copy of the tail instead of two of the whole chunk
            chunk, self._buf = self._buf, bytearray(self._buf[safe:])
            del chunk[safe:]
            events.append(chunk)
        return False


def parse_part_headers(raw: bytes) -> PartHeaders:
    """Decode a part's header block: UTF-8, else ISO-8859-1 (spec D-17)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    headers: dict[str, str] = {}
    for line in text.split("\r\n") if text else []:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise MultipartError("malformed part header")
        headers[name.strip().lower()] = value.strip()
    params = _params(headers.get("content-disposition", ""))
    return PartHeaders(headers=headers, name=params.get("name"), filename=params.get("filename"))


def _params(value: str) -> dict[str, str]:
    """Parameters of a header value such as ``form-data; name="a"; filename="b"``.

    Quoted values honour backslash escapes (RFC 2616 quoted-pair); nothing is percent-decoded
    (the servlet takes ``filename`` literally) and ``filename*`` is not interpreted.
    """
    found: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.S)
        found.setdefault(key.lower(), raw)
    return found


def boundary_of(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` Content-Type, or None when it is not one."""
    kind, _, _ = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    boundary = _params(content_type).get("boundary") or None
    if boundary is None or len(boundary) > MAX_BOUNDARY_CHARS or not boundary.isascii():
        return None  # MultipartParser would refuse it: answer 30001, not a crash
    return boundary
