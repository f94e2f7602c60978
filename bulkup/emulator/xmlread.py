"""Reading the two XML form parts (``auth`` and ``uploadParams``) the way the servlet would.

The emulator's own reader, independent of the client's codec: the standard library's
ElementTree, element names matched by local name in any namespace (spec D-02), DTDs refused
outright so that no entity is ever expanded or fetched.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bulkup.emulator.responses import Fault

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")
_ANY_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
BODYLESS_STATUSES = frozenset({204, 205, 304})
TRUE_WORDS = {"true": True, "1": True, "false": False, "0": False}


class XmlError(ValueError):
    """Not well-formed XML, or XML the emulator refuses (a DTD)."""


def parse_document(raw: bytes, charset: str | None) -> ET.Element:
    """Parse one XML part: the declaration's encoding wins, then the part charset, then UTF-8."""
    text = _decode(raw, charset)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise XmlError("DTDs are not accepted")
    text = _ANY_DECLARATION.sub("", text, count=1)
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise XmlError(str(exc)) from exc


def _decode(raw: bytes, charset: str | None) -> str:
    match = _DECLARATION.match(raw)
    encoding = match.group(1).decode("ascii") if match else (charset or "utf-8")
    try:
        codecs.lookup(encoding)
        return raw.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise XmlError(f"cannot decode as {encoding}") from exc


def local_name(tag: str) -> str:
    """``{namespace}name`` → ``name``."""
    return tag.rpartition("}")[2]


def namespace_of(tag: str) -> str | None:
    """``{namespace}name`` → ``namespace``; None when the element has no namespace."""
    return tag[1:].partition("}")[0] if tag.startswith("{") else None


def child_text(element: ET.Element, name: str) -> str | None:
    """Text of the first child with this local name (stripped), or None when absent."""
    for child in element:
        if local_name(child.tag) == name:
            return (child.text or "").strip()
    return None


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first child element with this local name."""
    return next((c for c in element if local_name(c.tag) == name), None)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the ``auth`` part said; the password is never shown."""

    user: str
    password: str
    locale: str | None
    app_name: str | None
    app_version: str | None
    gzip_response: bool | None
    fault_http_status: int | None

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, app_name={self.app_name!r})"


def read_auth(raw: bytes, charset: str | None) -> tuple[Credentials | None, int | None]:
    """The credentials (None when user/password are missing) and the fault status override.

    Raises the D-21 row 3 fault when the part is not an ``authHeader`` document.
    """
    try:
        root = parse_document(raw, charset)
    except XmlError:
        raise Fault.ips(30003, "Invalid authHeader XML") from None
    if local_name(root.tag) != "authHeader":
        raise Fault.ips(30003, "Invalid authHeader XML")
    return auth_from_element(root)


def auth_from_element(root: ET.Element) -> tuple[Credentials | None, int | None]:
    """An ``authHeader`` element (form part or SOAP header) → credentials and status override."""
    status = _fault_status(child_text(root, "faultHttpStatusCode"))
    user, password = child_text(root, "user"), _raw_child_text(root, "password")
    if not user or not password:
        return None, status
    gzip_text = child_text(root, "gzipResponse")
    creds = Credentials(
        user=user,
        password=password,
        locale=child_text(root, "locale"),
        app_name=child_text(root, "appName"),
        app_version=child_text(root, "appVersion"),
        gzip_response=TRUE_WORDS.get(gzip_text) if gzip_text else None,
        fault_http_status=status,
    )
    return creds, status


def _fault_status(text: str | None) -> int | None:
    """D-22: the override counts only as an integer 200-599."""
    if text is None or not (text.isascii() and text.isdigit()):  # "²".isdigit() is True
        return None
    value = int(text)
    # 204, 205 and 304 cannot carry a body, so the fault would never reach the client
    return value if 200 <= value <= 599 and value not in BODYLESS_STATUSES else None


@dataclass(frozen=True, slots=True)
class PostParams:
    """The ``uploadPostParam`` document of one POST (spec §3.1)."""

    namespace: str | None
    company_handle: str | None
    job_name: str | None
    job_handle: str | None
    locale: str | None
    description: str | None
    dest_folder: str | None
    file_name: str | None
    end_job: bool
    end_job_invalid: bool  # judged after the company and job checks (D-21 table order)
    upload_params: ET.Element | None


def read_post_params(raw: bytes, charset: str | None) -> PostParams:
    """Parse the ``uploadParams`` form part (root ``uploadPostParam`` or ``uploadPostParams``)."""
    try:
        root = parse_document(raw, charset)
    except XmlError:
        raise Fault.ips(30003, "Invalid uploadPostParam XML") from None
    if local_name(root.tag) not in ("uploadPostParam", "uploadPostParams"):
        raise Fault.ips(30003, "Invalid uploadPostParam XML")
    end_job_text = child_text(root, "endJob")
    return PostParams(
        namespace=namespace_of(root.tag),
        company_handle=child_text(root, "companyHandle"),
        job_name=_raw_child_text(root, "jobName"),
        job_handle=child_text(root, "jobHandle"),
        locale=child_text(root, "locale"),
        description=_raw_child_text(root, "description"),
        dest_folder=_raw_child_text(root, "destFolder"),
        file_name=_raw_child_text(root, "fileName"),
        end_job=TRUE_WORDS.get(end_job_text or "", False),
        end_job_invalid=bool(end_job_text) and end_job_text not in TRUE_WORDS,
        upload_params=child(root, "uploadParams"),
    )


def _raw_child_text(element: ET.Element, name: str) -> str | None:
    """Text of a child kept exactly as sent (names may begin or end with spaces)."""
    found = child(element, name)
    return None if found is None else (found.text or "")
