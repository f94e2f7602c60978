"""Hand-built request bodies and strict response readers for the emulator tests.

Nothing here uses bulkup's client code: multipart bodies are assembled byte by byte (boundary,
CRLFs, Content-Disposition, exact length) and responses are checked against the literal shapes
of spec §4.1/§4.2.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

NS_BASE = "http://www.scene7.com/IpsApi/xsd"
NS_2014 = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
NS_2013 = "http://www.scene7.com/IpsApi/xsd/2013-02-15"
BOUNDARY = "emu-test-5b1c0e"
XML_CONTENT_TYPE = "text/xml;charset=utf-8"

REQUIRED_OPTIONS = (
    "<overwrite>true</overwrite><readyForPublish>false</readyForPublish>"
    "<preservePublishState>true</preservePublishState><createMask>false</createMask>"
    "<emailSetting>None</emailSetting>"
)
_UNSET: Any = object()


def quoted(value: str) -> str:
    """A header parameter value as an RFC 2616 quoted-string (``\\`` and ``"`` escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Part:
    """One body part: its header lines (already encoded) and its content."""

    header_lines: tuple[bytes, ...]
    content: bytes

    def encode(self, boundary: str) -> bytes:
        head = b"".join(line + b"\r\n" for line in self.header_lines)
        return b"--" + boundary.encode("ascii") + b"\r\n" + head + b"\r\n" + self.content


def xml_part(
    name: str, xml: str | bytes, *, charset: str | None = "UTF-8", encoding: str = "utf-8"
) -> Part:
    """An XML form part (``auth`` / ``uploadParams``)."""
    content = xml if isinstance(xml, bytes) else xml.encode(encoding)
    lines = [f'Content-Disposition: form-data; name="{name}"'.encode("ascii")]
    if charset is not None:
        lines.append(f"Content-Type: text/plain; charset={charset}".encode("ascii"))
    return Part(tuple(lines), content)


def file_part(
    filename: str | bytes | None,
    content: bytes,
    *,
    name: str = "file1",
    header_encoding: str = "utf-8",
) -> Part:
    """A file part; ``filename`` is quoted/escaped unless given as raw header bytes."""
    disposition = f'Content-Disposition: form-data; name="{name}"'.encode("ascii")
    if isinstance(filename, bytes):
        disposition += b"; filename=" + filename
    elif filename is not None:
        disposition += b"; filename=" + quoted(filename).encode(header_encoding)
    return Part((disposition, b"Content-Type: application/octet-stream"), content)


def files(named: dict[str, bytes]) -> list[Part]:
    """File parts ``file1`` … ``fileN`` for a {filename: bytes} mapping, in order."""
    return [file_part(fn, data, name=f"file{i}") for i, (fn, data) in enumerate(named.items(), 1)]


def body(parts: list[Part], boundary: str = BOUNDARY) -> bytes:
    """The complete multipart/form-data body, closing delimiter included."""
    out = bytearray()
    for i, part in enumerate(parts):
        if i:
            out += b"\r\n"
        out += part.encode(boundary)
    if parts:
        out += b"\r\n"
    out += b"--" + boundary.encode("ascii") + b"--\r\n"
    return bytes(out)


def content_type(boundary: str = BOUNDARY) -> str:
    return f"multipart/form-data; boundary={boundary}"


def auth_xml(
    user: str | None, password: str | None, *, ns: str | None = NS_2014, extra: str = ""
) -> str:
    """An ``authHeader`` document (no XML declaration); None leaves an element out."""
    xmlns = f' xmlns="{ns}"' if ns else ""
    user_el = "" if user is None else f"<user>{escape(user)}</user>"
    password_el = "" if password is None else f"<password>{escape(password)}</password>"
    return (
        f"<authHeader{xmlns}>{user_el}{password_el}<appName>emu-tests</appName>"
        f"<appVersion>1</appVersion>{extra}</authHeader>"
    )


def params_xml(
    company: str | None = "c|42",
    *,
    job_name: str | None = _UNSET,
    job_handle: str | None = None,
    end_job: str | None = None,
    file_name: str | None = None,
    dest_folder: str | None = None,
    options: str | None = REQUIRED_OPTIONS,
    ns: str | None = NS_2014,
    root: str = "uploadPostParam",
    extra: str = "",
) -> str:
    """An ``uploadPostParam`` document; ``options`` is the inner XML of ``uploadParams``."""
    xmlns = f' xmlns="{ns}"' if ns else ""
    out = [f"<{root}{xmlns}>"]
    if company is not None:
        out.append(f"<companyHandle>{escape(company)}</companyHandle>")
    if job_name is not _UNSET and job_name is not None:
        out.append(f"<jobName>{escape(job_name)}</jobName>")
    if job_handle is not None:
        out.append(f"<jobHandle>{escape(job_handle)}</jobHandle>")
    if dest_folder is not None:
        out.append(f"<destFolder>{escape(dest_folder)}</destFolder>")
    if file_name is not None:
        out.append(f"<fileName>{escape(file_name)}</fileName>")
    if end_job is not None:
        out.append(f"<endJob>{end_job}</endJob>")
    if options is not None and job_handle is None:
        out.append(f"<uploadParams>{options}</uploadParams>")
    out.append(extra)
    out.append(f"</{root}>")
    return "".join(out)


# --- responses -------------------------------------------------------------------------------

_FAULT_SHAPE = re.compile(
    r"<\?xml version='1\.0' encoding='UTF-8'\?>"
    r"<tns:(authenticationFault|authorizationFault|ipsApiFault)"
    r' xmlns:tns="http://www\.scene7\.com/IpsApi/xsd">'
    r"<tns:code>(\d+)</tns:code><tns:reason>([^<]*)</tns:reason></tns:\1>"
)
_SUCCESS_SHAPE = re.compile(
    r"<\?xml version='1\.0' encoding='UTF-8'\?>"
    r'<uploadPostReturn xmlns="([^"]+)"><jobHandle>[^<]*</jobHandle></uploadPostReturn>'
)


@dataclass(slots=True)
class Reply:
    """One HTTP answer; ``body`` is gunzipped when the server gzipped it."""

    status: int
    headers: dict[str, str]
    raw: bytes
    body: bytes = field(init=False)

    def __post_init__(self) -> None:
        gz = self.headers.get("content-encoding", "").lower() == "gzip"
        self.body = gzip.decompress(self.raw) if gz else self.raw

    @property
    def gzipped(self) -> bool:
        return self.headers.get("content-encoding", "").lower() == "gzip"

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def fault(self) -> tuple[str, int, str]:
        """(fault type, code, reason) after checking the exact §4.2 document shape."""
        assert self.headers.get("content-type") == XML_CONTENT_TYPE, self.headers
        match = _FAULT_SHAPE.fullmatch(self.text)
        assert match, f"not a §4.2 fault document: {self.text!r}"
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{NS_BASE}}}{match.group(1)}"
        assert [child.tag for child in root] == [f"{{{NS_BASE}}}code", f"{{{NS_BASE}}}reason"]
        return match.group(1), int(match.group(2)), root[1].text or ""

    def job_handle(self, ns: str = NS_2014) -> str:
        """The handle of an ``uploadPostReturn`` (checked: status 200, shape, namespace)."""
        assert self.status == 200, (self.status, self.body[:300])
        assert self.headers.get("content-type") == XML_CONTENT_TYPE, self.headers
        match = _SUCCESS_SHAPE.fullmatch(self.text)
        assert match, f"not an uploadPostReturn document: {self.text!r}"
        assert match.group(1) == ns
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{ns}}}uploadPostReturn"
        assert [child.tag for child in root] == [f"{{{ns}}}jobHandle"]
        return root[0].text or ""


def assert_fault(reply: Reply, kind: str, code: int, status: int = 500) -> str:
    """Check fault type, code and HTTP status; returns the reason."""
    got_kind, got_code, reason = reply.fault()
    assert (got_kind, got_code, reply.status) == (kind, code, status), reason
    return reason
