"""Hand-built SOAP envelopes and strict readers of the answers (spec §4.4, §5), for the tests.

No client code: requests are strings, answers are parsed with ElementTree and checked against
the literal shapes of the spec.
"""

from __future__ import annotations

import base64
import gzip
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import aiohttp

from .wire import NS_2014, NS_BASE

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CONTENT_TYPES = {SOAP11: "text/xml;charset=utf-8", SOAP12: "application/soap+xml;charset=utf-8"}
REQUEST_TYPES = {SOAP11: "text/xml; charset=UTF-8", SOAP12: "application/soap+xml; charset=UTF-8"}
TIMEOUT = aiohttp.ClientTimeout(total=30)
USER, PASSWORD = "uploader@example.com", "s3cret"
_DEFAULT: Any = object()


def auth_header(
    user: str | None = USER,
    password: str | None = PASSWORD,
    *,
    ns: str | None = NS_BASE,
    extra: str = "",
) -> str:
    """An ``authHeader`` SOAP header entry; None leaves an element out."""
    xmlns = f' xmlns="{ns}"' if ns else ""
    user_el = "" if user is None else f"<user>{escape(user)}</user>"
    password_el = "" if password is None else f"<password>{escape(password)}</password>"
    return (
        f"<authHeader{xmlns}>{user_el}{password_el}<appName>soap-tests</appName>"
        f"<appVersion>1</appVersion>{extra}</authHeader>"
    )


def fields(**values: str | int | None) -> str:
    """Child elements in the given order (None left out)."""
    return "".join(
        f"<{name}>{escape(str(value))}</{name}>"
        for name, value in values.items()
        if value is not None
    )


def items(name: str, values: list[str]) -> str:
    """A ``types:StringArray`` element."""
    return f"<{name}>" + "".join(f"<items>{escape(v)}</items>" for v in values) + f"</{name}>"


def envelope(
    operation: str,
    inner: str = "",
    *,
    ns: str | None = NS_2014,
    auth: str | None = _DEFAULT,
    soap: str = SOAP11,
    element: str | None = None,
) -> str:
    """``<operation>Param`` (or ``element``) in a SOAP envelope with an authHeader."""
    auth = auth_header() if auth is _DEFAULT else auth
    xmlns = f' xmlns="{ns}"' if ns else ""
    name = element or f"{operation}Param"
    header = f"<s:Header>{auth}</s:Header>" if auth is not None else ""
    return (
        f'<s:Envelope xmlns:s="{soap}">{header}<s:Body>'
        f"<{name}{xmlns}>{inner}</{name}></s:Body></s:Envelope>"
    )


def basic(user: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@dataclass(slots=True)
class SoapReply:
    """One HTTP answer of the SOAP service (gunzipped when needed)."""

    status: int
    headers: dict[str, str]
    raw: bytes
    body: bytes = field(init=False)

    def __post_init__(self) -> None:
        gz = self.headers.get("content-encoding", "").lower() == "gzip"
        self.body = gzip.decompress(self.raw) if gz else self.raw

    def envelope(self, soap: str) -> ET.Element:
        """The parsed envelope, checked: Content-Type of that SOAP version, Header, Body."""
        assert self.headers.get("content-type") == CONTENT_TYPES[soap], self.headers
        assert self.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        root = ET.fromstring(self.body)
        assert root.tag == f"{{{soap}}}Envelope"
        assert [c.tag for c in root] == [f"{{{soap}}}Header", f"{{{soap}}}Body"]
        return root

    def answer(self, operation: str, ns: str = NS_2014, soap: str = SOAP11) -> ET.Element:
        """The ``<operation>Return`` element (status 200, the request's namespace)."""
        assert self.status == 200, (self.status, self.body[:600])
        body = self.envelope(soap)[1]
        assert [c.tag for c in body] == [f"{{{ns}}}{operation}Return"], self.body[:600]
        return body[0]

    def fault(self, soap: str = SOAP11) -> tuple[str, int, str, str]:
        """(fault kind, code, faultcode/Value, faultstring/Text) after checking the §4.4 shape."""
        body = self.envelope(soap)[1]
        assert [c.tag for c in body] == [f"{{{soap}}}Fault"], self.body[:600]
        fault = body[0]
        if soap == SOAP11:
            assert [c.tag for c in fault] == ["faultcode", "faultstring", "detail"]
            code, string, detail = (fault[0].text or ""), (fault[1].text or ""), fault[2]
        else:
            assert [c.tag for c in fault] == [
                f"{{{SOAP12}}}{n}" for n in ("Code", "Reason", "Detail")
            ]
            code = fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") or ""
            string = fault.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or ""
            detail = fault[2]
        [ips] = list(detail)
        assert ips.tag.startswith(f"{{{NS_BASE}}}"), ips.tag
        assert [c.tag for c in ips] == [f"{{{NS_BASE}}}code", f"{{{NS_BASE}}}reason"]
        kind = ips.tag.rpartition("}")[2]
        return kind, int(ips[0].text or ""), code, string


def assert_soap_fault(
    reply: SoapReply, kind: str, code: int, *, status: int = 500, soap: str = SOAP11
) -> str:
    """Check kind, code, HTTP status, faultcode and faultstring; returns the faultstring."""
    got_kind, got_code, faultcode, faultstring = reply.fault(soap)
    assert (got_kind, got_code, reply.status) == (kind, code, status), reply.body[:600]
    server = code == 30000
    if soap == SOAP11:
        assert faultcode == ("soapenv:Server" if server else "soapenv:Client")
    else:
        assert faultcode == ("soap:Receiver" if server else "soap:Sender")
    names = {
        "authenticationFault": "AuthenticationException",
        "authorizationFault": "AuthorizationException",
        "ipsApiFault": "IpsApiException",
    }
    assert faultstring == names[kind]
    return faultstring


async def post_soap(
    url: str,
    data: str | bytes,
    *,
    soap: str = SOAP11,
    headers: dict[str, str] | None = None,
    action: str | None = None,
) -> SoapReply:
    """POST one envelope; no Accept-Encoding unless given."""
    sent = {"Content-Type": REQUEST_TYPES[soap]}
    if action is not None:
        sent["SOAPAction"] = action
    sent.update(headers or {})
    session = aiohttp.ClientSession(
        auto_decompress=False, timeout=TIMEOUT, skip_auto_headers=("Accept-Encoding",)
    )
    payload = data.encode("utf-8") if isinstance(data, str) else data
    async with session, session.post(url, data=payload, headers=sent) as response:
        raw = await response.read()
        got = {k.lower(): v for k, v in response.headers.items()}
        return SoapReply(response.status, got, raw)


# --- reading answers by local name -------------------------------------------------------------


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def names(element: ET.Element) -> list[str]:
    """Local names of the children, in order."""
    return [local(c.tag) for c in element]


def text(element: ET.Element, name: str) -> str | None:
    """Text of the first child with this local name (None when absent)."""
    found = next((c for c in element if local(c.tag) == name), None)
    return None if found is None else (found.text or "")


def sub(element: ET.Element, name: str) -> ET.Element:
    """The first child with this local name (asserted present)."""
    found = next((c for c in element if local(c.tag) == name), None)
    assert found is not None, (name, names(element))
    return found


def listed(element: ET.Element, array: str) -> list[ET.Element]:
    """The ``items`` of an array child."""
    found = sub(element, array)
    assert all(local(c.tag) == "items" for c in found)
    return list(found)


def flat(element: ET.Element) -> dict[str, str]:
    """Leaf children as {local name: text}."""
    return {local(c.tag): c.text or "" for c in element if len(c) == 0}


async def call(
    url: str,
    operation: str,
    inner: str = "",
    *,
    soap: str = SOAP11,
    headers: dict[str, str] | None = None,
    action: str | None = None,
    **kwargs: Any,
) -> SoapReply:
    """One operation: ``inner`` is the XML inside ``<operation>Param``."""
    data = envelope(operation, inner, soap=soap, **kwargs)
    return await post_soap(url, data, soap=soap, headers=headers, action=action)
