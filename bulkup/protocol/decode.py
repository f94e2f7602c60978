"""Classify an UploadFile response (spec §4.5).

The body is decompressed (bounded), parsed with ``xmltodict`` and matched by local element name,
whatever the prefix or namespace. A success or fault document decides regardless of the HTTP
status (D-22); anything else falls back to the status. Documents with a DTD are refused before
any entity is declared, so nothing is expanded or fetched.
"""

from __future__ import annotations

import math
import re
import zlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final
from xml.parsers import expat

import xmltodict  # type: ignore[import-untyped, unused-ignore]

from bulkup.errors import (
    AuthenticationFault,
    AuthorizationFault,
    IpsApiFault,
    ProtocolError,
    RequestRejected,
    ServerFault,
    ServerUnavailable,
)
from bulkup.protocol.results import UploadPostReturn

__all__ = ["MAX_RESPONSE_BYTES", "parse_retry_after", "parse_upload_response"]

MAX_RESPONSE_BYTES: Final = 1024 * 1024
"""Largest (decompressed) response body that is parsed at all."""

_EXCERPT_CHARS: Final = 200
_FAULTS: Final[dict[str, type[ServerFault]]] = {
    "authenticationFault": AuthenticationFault,
    "authorizationFault": AuthorizationFault,
    "ipsApiFault": IpsApiFault,
}
_RETRY_STATUSES: Final = frozenset({408, 429})
_INT = re.compile(r"[+-]?[0-9]{1,10}\Z")
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}\Z")
_GZIP_MAGIC: Final = b"\x1f\x8b"
_Document = dict[str, object]


class _Unusable(Exception):
    """The body cannot be read as a document; the message says why."""


def parse_upload_response(
    body: bytes,
    *,
    http_status: int,
    content_encoding: str | None = None,
    retry_after: str | None = None,
) -> UploadPostReturn:
    """Turn a servlet response into a job handle or the matching exception.

    Args:
        body: The response body as received (still compressed if ``content_encoding`` says so).
        http_status: The HTTP status code.
        content_encoding: The ``Content-Encoding`` header, if the body is still encoded.
        retry_after: The ``Retry-After`` header, used for :class:`ServerUnavailable`.

    Returns:
        The job handle of an ``uploadPostReturn`` document, whatever the status.

    Raises:
        AuthenticationFault: An ``authenticationFault`` document (bare or in a SOAP fault).
        AuthorizationFault: An ``authorizationFault`` document.
        IpsApiFault: An ``ipsApiFault`` document.
        ProtocolError: A fault without an integer code, or no usable document under a 1xx, 2xx
            or 3xx status (includes bodies that inflate beyond :data:`MAX_RESPONSE_BYTES`).
        ServerUnavailable: No usable document under 5xx, 429 or 408.
        RequestRejected: No usable document under another 4xx.
    """
    try:
        data = _decode(body, content_encoding)
        document = _parse(data)
    except _Unusable as exc:
        raise _by_status(http_status, str(exc), retry_after) from None
    outcome = _classify(document, http_status)
    if outcome is not None:
        return outcome
    raise _by_status(http_status, f"unexpected document {_excerpt(data)}", retry_after)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Args:
        value: The header value, or None.
        now: The current time (for tests; naive means UTC); defaults to the system clock.

    Returns:
        Non-negative seconds, or None when the header is absent or invalid.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.match(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = now or datetime.now(UTC)
    delay = (_aware(when) - _aware(current)).total_seconds()
    return max(0.0, delay) if math.isfinite(delay) else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _by_status(status: int, problem: str, retry_after: str | None) -> Exception:
    message = f"HTTP {status} without a success or fault document: {problem}"
    if 500 <= status <= 599 or status in _RETRY_STATUSES:
        return ServerUnavailable(
            message, http_status=status, retry_after_s=parse_retry_after(retry_after)
        )
    if 400 <= status <= 499:
        return RequestRejected(message, http_status=status)
    return ProtocolError(message)


def _decode(body: bytes, content_encoding: str | None, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    header = content_encoding or ""
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        data = body
    elif codings in (["gzip"], ["x-gzip"]):
        data = _gunzip(body, limit) if body.startswith(_GZIP_MAGIC) else body
    else:
        raise _Unusable(f"unsupported Content-Encoding {_short(header)!r}")
    if len(data) > limit:
        raise _Unusable(f"body larger than {limit} bytes")
    return data


def _gunzip(data: bytes, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Inflate every gzip member, never producing more than ``limit`` + 1 bytes."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise _Unusable(f"corrupt gzip body ({exc})") from None
        if len(out) > limit:
            raise _Unusable(f"gzip body inflates beyond {limit} bytes")
        if not inflater.eof:
            raise _Unusable("truncated gzip body")
        rest = inflater.unused_data
    return bytes(out)


def _parse(data: bytes) -> _Document:
    try:
        document = xmltodict.parse(
            data.lstrip(),
            expat=_GuardedExpat,
            xml_attribs=False,
            postprocessor=_local_name,
        )
    except _Refused:
        raise _Unusable(f"refused a document with a DTD: {_excerpt(data)}") from None
    except (expat.ExpatError, ValueError) as exc:
        raise _Unusable(f"not well-formed XML ({_short(str(exc))}): {_excerpt(data)}") from None
    if not isinstance(document, dict) or len(document) != 1:
        raise _Unusable(f"no root element: {_excerpt(data)}")
    return document


def _local_name(_path: object, key: str, value: object) -> tuple[str, object]:
    return key.rpartition(":")[2], value


def _classify(document: _Document, status: int) -> UploadPostReturn | None:
    ((root, node),) = document.items()
    if root == "uploadPostReturn":
        handle = _text(node, "jobHandle")
        return UploadPostReturn(job_handle=handle) if handle else None
    if root in _FAULTS:
        raise _fault(root, node, status)
    if root == "Envelope":
        detail = _child(_child(_child(node, "Body"), "Fault"), "detail")
        if isinstance(detail, dict):
            for name, fault in detail.items():
                if name in _FAULTS:
                    raise _fault(name, fault, status)
    return None


def _fault(name: str, node: object, status: int) -> Exception:
    code = _text(node, "code")
    if code is None or not _INT.match(code) or not -(2**31) <= int(code) < 2**31:
        shown = "missing" if code is None else repr(_short(code))
        return ProtocolError(f"HTTP {status}: {name} document with an invalid code ({shown})")
    return _FAULTS[name](int(code), _short(_text(node, "reason") or ""), http_status=status)


def _child(node: object, name: str) -> object:
    return node.get(name) if isinstance(node, dict) else None


def _text(node: object, name: str) -> str | None:
    """The text of the single child ``name``; None if missing, repeated or not text-only."""
    value = _child(node, name)
    return value if isinstance(value, str) else None


def _short(text: str) -> str:
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def _excerpt(body: bytes) -> str:
    head = body[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return repr(_short(head)) + f" ({len(body)} bytes)"


class _Refused(Exception):
    """A DTD was found; raised from inside the parser."""


def _refuse_dtd(*_args: object) -> None:
    raise _Refused("DTDs are not accepted")


class _GuardedExpat:
    """Stands in for the ``expat`` module in ``xmltodict.parse``: its parsers refuse any DTD."""

    @staticmethod
    def ParserCreate(
        encoding: str | None = None, namespace_separator: str | None = None
    ) -> expat.XMLParserType:
        parser = expat.ParserCreate(encoding, namespace_separator)
        parser.StartDoctypeDeclHandler = _refuse_dtd
        parser.EntityDeclHandler = _refuse_dtd
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        return parser
