"""The XML the emulator writes: ``uploadPostReturn`` and the three fault documents (spec §4).

Written with ElementTree (escaping included); characters XML 1.0 cannot carry are replaced by
``\\u`` and four hex digits, so that a hostile job name echoed in a reason cannot break the
document.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

FAULT_NS = "http://www.scene7.com/IpsApi/xsd"
DEFAULT_NS = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
XML_CONTENT_TYPE = "text/xml;charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MAX_REASON_CHARS = 500
ET.register_namespace("tns", FAULT_NS)


def xml_chars(text: str) -> str:
    """Replace what XML 1.0 cannot carry (the text is never cut)."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def xml_safe(text: str) -> str:
    """Replace what XML 1.0 cannot carry, and cut very long texts."""
    text = xml_chars(text)
    return text if len(text) <= _MAX_REASON_CHARS else text[:_MAX_REASON_CHARS] + "…"


@dataclass(slots=True)
class Fault(Exception):
    """A servlet fault: ``kind`` is authenticationFault, authorizationFault or ipsApiFault."""

    kind: str
    code: int
    reason: str

    @classmethod
    def ips(cls, code: int, reason: str) -> Fault:
        """An ``ipsApiFault``."""
        return cls("ipsApiFault", code, reason)

    @classmethod
    def authentication(cls, code: int, reason: str) -> Fault:
        """An ``authenticationFault``."""
        return cls("authenticationFault", code, reason)

    @classmethod
    def authorization(cls, code: int, reason: str) -> Fault:
        """An ``authorizationFault``."""
        return cls("authorizationFault", code, reason)

    def __str__(self) -> str:
        return f"{self.kind} {self.code}: {self.reason}"


def upload_post_return(job_handle: str, namespace: str | None) -> bytes:
    """The success document, in the request's namespace (2014-04-03 when it had none)."""
    ns = namespace or DEFAULT_NS
    root = ET.Element(f"{{{ns}}}uploadPostReturn")
    ET.SubElement(root, f"{{{ns}}}jobHandle").text = xml_safe(job_handle)
    return _document(ET.tostring(root, encoding="unicode", default_namespace=ns))


def fault_document(fault: Fault) -> bytes:
    """A fault exactly as spec §4.2 shows it: prefix ``tns``, unversioned namespace."""
    root = ET.Element(f"{{{FAULT_NS}}}{fault.kind}")
    ET.SubElement(root, f"{{{FAULT_NS}}}code").text = str(fault.code)
    ET.SubElement(root, f"{{{FAULT_NS}}}reason").text = xml_safe(fault.reason)
    return _document(ET.tostring(root, encoding="unicode"))


def _document(body: str) -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?>" + body).encode("utf-8")


def wants_gzip(gzip_response: bool | None, accept_encoding: str) -> bool:
    """Server mode ``accept`` (spec §2.3): the request's flag wins, else Accept-Encoding."""
    if gzip_response is not None:
        return gzip_response
    return any(
        token.split(";")[0].strip().lower() == "gzip" for token in accept_encoding.split(",")
    )


def compress(body: bytes) -> bytes:
    """Gzip a response body."""
    return gzip.compress(body, compresslevel=5)
