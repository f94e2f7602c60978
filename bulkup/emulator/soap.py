"""SOAP envelopes of the monitoring service (spec §4.4, §5.1): reading requests, writing answers.

Requests may be SOAP 1.1 or 1.2; the answer uses the request's version. The body element
``<op>Param`` may be in any IPS API namespace (§2.6) or none, and ``<op>Return`` goes back in the
same namespace (2014-04-03 when none). Parsing is the emulator's own (``xmlread``: DTDs refused,
local names); writing is ElementTree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bulkup.emulator.responses import DEFAULT_NS, FAULT_NS, Fault, xml_chars, xml_safe
from bulkup.emulator.xmlread import XmlError, local_name, namespace_of, parse_document

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XML_NS = "http://www.w3.org/XML/1998/namespace"
API_NAMESPACES = frozenset(
    {FAULT_NS}
    | {
        f"{FAULT_NS}/{version}"
        for version in (
            "2014-04-03",
            "2013-02-15",
            "2012-02-14",
            "2010-01-31",
            "2009-07-31",
            "2008-09-10",
            "2008-01-15",
        )
    }
)
AUTH_NAMESPACES = API_NAMESPACES | {"http://www.scene7.com/IpsApi", None}
CONTENT_TYPES = {SOAP11: "text/xml;charset=utf-8", SOAP12: "application/soap+xml;charset=utf-8"}
_PREFIXES = {SOAP11: "soapenv", SOAP12: "soap"}
FAULT_STRINGS = {
    "authenticationFault": "AuthenticationException",
    "authorizationFault": "AuthorizationException",
    "ipsApiFault": "IpsApiException",
}


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """One parsed call: SOAP version, operation (None if the body element is no ``…Param``)."""

    envelope_ns: str
    element: str  # local name of the body element
    operation: str | None
    namespace: str  # of the answer
    param: ET.Element
    auth: ET.Element | None


def guess_envelope(content_type: str) -> str:
    """The SOAP version a fault should use before the envelope could be read."""
    media = content_type.split(";")[0].strip().lower()
    return SOAP12 if media == "application/soap+xml" else SOAP11


def charset_of(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if any."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def read_request(raw: bytes, content_type: str) -> SoapRequest:
    """Parse an envelope; 30003 when it is no SOAP 1.1/1.2 envelope with one body element."""
    try:
        root = parse_document(raw, charset_of(content_type))
    except XmlError:
        raise Fault.ips(30003, "Invalid request XML") from None
    envelope_ns = namespace_of(root.tag)
    if local_name(root.tag) != "Envelope" or envelope_ns not in (SOAP11, SOAP12):
        raise Fault.ips(30003, "Invalid request XML: not a SOAP 1.1 or 1.2 envelope")
    body = root.find(f"{{{envelope_ns}}}Body")
    elements = list(body) if body is not None else []
    if len(elements) != 1:
        raise Fault.ips(30003, "Invalid request XML: the SOAP Body must hold one element")
    param = elements[0]
    namespace = namespace_of(param.tag)
    if namespace is not None and namespace not in API_NAMESPACES:
        raise Fault.ips(30003, f"Invalid request XML: {namespace} is no IPS API namespace")
    element = local_name(param.tag)
    operation = element[: -len("Param")] if element.endswith("Param") else None
    return SoapRequest(
        envelope_ns=envelope_ns,
        element=element,
        operation=operation or None,
        namespace=namespace or DEFAULT_NS,
        param=param,
        auth=_auth_header(root.find(f"{{{envelope_ns}}}Header")),
    )


def _auth_header(header: ET.Element | None) -> ET.Element | None:
    """The first ``authHeader`` in an IPS namespace (or none) among the header entries."""
    if header is None:
        return None
    return next(
        (
            entry
            for entry in header
            if local_name(entry.tag) == "authHeader" and namespace_of(entry.tag) in AUTH_NAMESPACES
        ),
        None,
    )


def add(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    """A child element in the parent's namespace, with optional (XML-safe) text."""
    namespace = namespace_of(parent.tag)
    element = ET.SubElement(parent, f"{{{namespace}}}{name}" if namespace else name)
    if text is not None:
        element.text = xml_chars(text)
    return element


def answer_element(request: SoapRequest) -> ET.Element:
    """The empty ``<op>Return`` element, in the request's namespace."""
    return ET.Element(f"{{{request.namespace}}}{request.operation}Return")


def answer_document(envelope_ns: str, answer: ET.Element) -> bytes:
    """The envelope around a successful answer (its namespace is the default one)."""
    envelope, body = _envelope(envelope_ns)
    body.append(answer)
    return _serialize(envelope, default_namespace=namespace_of(answer.tag))


def fault_document(envelope_ns: str, fault: Fault) -> bytes:
    """A SOAP fault carrying the IPS fault in its detail (§4.4; SOAP 1.2: Code/Reason/Detail)."""
    envelope, body = _envelope(envelope_ns)
    prefix = _PREFIXES[envelope_ns]
    element = ET.SubElement(body, f"{{{envelope_ns}}}Fault")
    server = fault.kind == "ipsApiFault" and fault.code == 30000
    if envelope_ns == SOAP11:
        ET.SubElement(element, "faultcode").text = f"{prefix}:{'Server' if server else 'Client'}"
        ET.SubElement(element, "faultstring").text = FAULT_STRINGS[fault.kind]
        detail = ET.SubElement(element, "detail")
    else:
        code = ET.SubElement(element, f"{{{SOAP12}}}Code")
        value = f"{prefix}:{'Receiver' if server else 'Sender'}"
        ET.SubElement(code, f"{{{SOAP12}}}Value").text = value
        reason = ET.SubElement(element, f"{{{SOAP12}}}Reason")
        text = ET.SubElement(reason, f"{{{SOAP12}}}Text", {f"{{{XML_NS}}}lang": "en"})
        text.text = FAULT_STRINGS[fault.kind]
        detail = ET.SubElement(element, f"{{{SOAP12}}}Detail")
    ips_fault = ET.SubElement(detail, f"{{{FAULT_NS}}}{fault.kind}")
    ET.SubElement(ips_fault, f"{{{FAULT_NS}}}code").text = str(fault.code)
    ET.SubElement(ips_fault, f"{{{FAULT_NS}}}reason").text = xml_safe(fault.reason)
    return _serialize(envelope)


def _envelope(envelope_ns: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(f"{{{envelope_ns}}}Envelope")
    ET.SubElement(envelope, f"{{{envelope_ns}}}Header")
    return envelope, ET.SubElement(envelope, f"{{{envelope_ns}}}Body")


def _serialize(envelope: ET.Element, default_namespace: str | None = None) -> bytes:
    # the prefix registry is process-wide: claim ours right before writing, since fault codes
    # (``soapenv:Client``) name the envelope prefix in text
    for namespace, prefix in _PREFIXES.items():
        ET.register_namespace(prefix, namespace)
    ET.register_namespace("tns", FAULT_NS)
    text = ET.tostring(envelope, encoding="unicode", default_namespace=default_namespace)
    return ("<?xml version='1.0' encoding='UTF-8'?>" + text).encode("utf-8")
