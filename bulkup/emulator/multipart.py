"""A streaming multipart/form-data parser: bytes in, part events out, nothing buffered whole.

The handler feeds whatever the socket delivers; the parser returns events in order:
``PartHeaders`` (the part's headers), ``bytes``/``memoryview`` chunks of the part's body (views
of the data fed in, not copies), ``PART_END``, and finally ``DONE`` after the closing delimiter.
Delimiters are found with ``bytes.find`` (C speed); only a possible delimiter start or an
incomplete header block is held back between feeds.

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


Event = PartHeaders | bytes | memoryview | _Marker


class _State(Enum):
    PREAMBLE = auto()
    AFTER_DELIMITER = auto()
    HEADERS = auto()
    BODY = auto()
    EPILOGUE = auto()


class MultipartParser:
    """Push parser for one multipart body with the given boundary.

    Body chunks are handed out as views of the data fed in (or that data itself), never copied:
    the parser works on offsets into each feed and carries over only what it cannot decide yet,
    a possible delimiter start (a few bytes, and only when the feed really ends with one) or an
    incomplete header block. The data fed in must not change afterwards (``bytes`` does not).
    """

    def __init__(self, boundary: str) -> None:
        if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
            raise MultipartError("bad boundary")
        self._dash_boundary = b"--" + boundary.encode("latin-1")
        self._delimiter = b"\r\n" + self._dash_boundary
        self._held = b""
        self._state = _State.PREAMBLE

    @property
    def done(self) -> bool:
        """Whether the closing delimiter has been seen."""
        return self._state is _State.EPILOGUE

    def feed(self, data: bytes | bytearray) -> list[Event]:
        """Consume ``data``; return the events it completes."""
        if self._state is _State.EPILOGUE:
            return []
        if type(data) is not bytes:
            data = bytes(data)  # chunks handed out are views: they must not change under them
        if self._held:
            data, self._held = self._held + data, b""
        events: list[Event] = []
        pos = 0
        while pos >= 0:
            pos = self._step(data, pos, events)
        return events

    def close(self) -> None:
        """Declare the end of input; raises when the body stopped before its closing delimiter."""
        if self._state is not _State.EPILOGUE:
            raise MultipartError("body ended before the closing delimiter")

    def _step(self, data: bytes, pos: int, events: list[Event]) -> int:
        """Parse from ``pos``; the next position, or -1 once the rest is held for the next feed."""
        state = self._state
        if state is _State.BODY:
            return self._step_body(data, pos, events)
        if state is _State.HEADERS:
            return self._step_headers(data, pos, events)
        if state is _State.AFTER_DELIMITER:
            return self._step_after_delimiter(data, pos, events)
        if state is _State.PREAMBLE:
            return self._step_preamble(data, pos)
        return -1

    def _hold(self, data: bytes, start: int) -> int:
        """Keep ``data[start:]`` for the next feed; -1 ends this one."""
        self._held = data[start:]
        return -1

    def _step_preamble(self, data: bytes, pos: int) -> int:
        if data.startswith(self._dash_boundary, pos):
            self._state = _State.AFTER_DELIMITER
            return pos + len(self._dash_boundary)
        at = data.find(self._delimiter, pos)
        if at < 0:
            return self._hold(data, max(pos, len(data) - len(self._delimiter)))
        self._state = _State.AFTER_DELIMITER
        return at + len(self._delimiter)

    def _step_after_delimiter(self, data: bytes, pos: int, events: list[Event]) -> int:
        if len(data) - pos < 2:
            return self._hold(data, pos)
        if data.startswith(b"--", pos):
            self._state = _State.EPILOGUE
            events.append(DONE)
            return -1
        end = data.find(b"\r\n", pos)
        if end < 0:
            if len(data) - pos > 256:
                raise MultipartError("garbage after a boundary")
            return self._hold(data, pos)
        if data[pos:end].strip(b" \t"):
            raise MultipartError("garbage after a boundary")
        self._state = _State.HEADERS
        return end + 2

    def _step_headers(self, data: bytes, pos: int, events: list[Event]) -> int:
        if data.startswith(b"\r\n", pos):
            end, skip = pos, 2
        else:
            end, skip = data.find(b"\r\n\r\n", pos), 4
        if end < 0:
            if len(data) - pos > MAX_HEADER_BYTES:
                raise MultipartError("part headers too large")
            return self._hold(data, pos)
        if end - pos > MAX_HEADER_BYTES:
            raise MultipartError("part headers too large")
        events.append(parse_part_headers(data[pos:end]))
        self._state = _State.BODY
        return end + skip

    def _step_body(self, data: bytes, pos: int, events: list[Event]) -> int:
        delimiter = self._delimiter
        at = data.find(delimiter, pos)
        if at >= 0:
            if at > pos:
                events.append(_span(data, pos, at))
            events.append(PART_END)
            self._state = _State.AFTER_DELIMITER
            return at + len(delimiter)
        keep = _delimiter_start(data, delimiter, max(pos, len(data) - len(delimiter) + 1))
        if keep > pos:
            events.append(_span(data, pos, keep))
        return self._hold(data, keep)


def _span(data: bytes, start: int, stop: int) -> bytes | memoryview:
    """``data[start:stop]`` without a copy: ``data`` itself when that is all of it."""
    if start == 0 and stop == len(data):
        return data
    return memoryview(data)[start:stop]


def _delimiter_start(data: bytes, delimiter: bytes, start: int) -> int:
    """Where, at or after ``start``, ``data`` ends with the beginning of ``delimiter`` (else
    ``len(data)``): only those bytes must wait for the next feed. Every delimiter begins with
    CR, so candidates are the few CRs of the last ``len(delimiter) - 1`` bytes."""
    at = data.find(b"\r", start)
    while at >= 0:
        if delimiter.startswith(data[at:]):
            return at
        at = data.find(b"\r", at + 1)
    return len(data)


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

    A backslash inside a quoted value keeps the next character from ending the value but is
    itself kept, as a Java servlet's parser does (Apache Commons FileUpload's
    ``ParameterParser``): ``filename="A\\b\\c.jpg"`` is ``A\\b\\c.jpg``, which D-16 step 3 then
    turns into ``A/b/c.jpg``. Nothing is percent-decoded (the servlet takes ``filename``
    literally) and ``filename*`` is not interpreted.
    """
    found: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1]
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
