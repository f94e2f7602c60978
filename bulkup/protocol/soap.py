"""The client's codec for the SOAP monitoring operations (spec §5): envelopes out, answers in.

Requests are SOAP 1.1 envelopes built with xmltodict: the ``authHeader`` in the SOAP header (in
the unversioned namespace, as the SOAP chapter says), the body element ``<op>Param`` in the API
namespace. Answers are matched by local name; a SOAP fault carrying an IPS fault raises the
same typed exceptions as the servlet's faults (§4.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import xmltodict  # type: ignore[import-untyped, unused-ignore]

from bulkup.errors import ProtocolError
from bulkup.protocol.decode import _FAULTS, _by_status, _child, _decode, _fault, _parse, _Unusable
from bulkup.protocol.encode import _checked, _children
from bulkup.protocol.namespaces import NS_2014_04_03, NS_UNVERSIONED
from bulkup.protocol.options import AuthHeader

__all__ = [
    "MAX_SOAP_RESPONSE_BYTES",
    "SOAP_11",
    "as_list",
    "encode_soap_request",
    "parse_soap_response",
]

SOAP_11 = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_SOAP_RESPONSE_BYTES = 32 * 1024 * 1024  # a page of 1000 job log details, with room
Params = Mapping[str, "str | int | Sequence[str] | None"]


def encode_soap_request(
    operation: str, params: Params, auth: AuthHeader, *, namespace: str = NS_2014_04_03
) -> bytes:
    """A SOAP 1.1 request for ``operation`` (e.g. ``getActiveJobs``).

    Args:
        operation: The operation name; the body element is ``<operation>Param``.
        params: Child elements in order; None values are left out, sequences become
            repeated ``items`` (a ``types:StringArray``).
        auth: The credentials, sent in the SOAP header.
        namespace: The API namespace of the body element.
    """
    body: dict[str, object] = {"@xmlns": namespace}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, str):
            body[name] = _checked(value, f"{operation}Param/{name}")
        elif isinstance(value, int):
            body[name] = str(value)
        else:
            body[name] = {"items": [_checked(v, f"{operation}Param/{name}") for v in value]}
    header = {"@xmlns": NS_UNVERSIONED, **_children(auth, "authHeader")}
    envelope = {
        "soapenv:Envelope": {
            "@xmlns:soapenv": SOAP_11,
            "soapenv:Header": {"authHeader": header},
            "soapenv:Body": {f"{operation}Param": body},
        }
    }
    text: str = xmltodict.unparse(envelope, full_document=False)
    return text.encode("utf-8")


def parse_soap_response(
    body: bytes, *, operation: str, http_status: int, content_encoding: str | None = None
) -> dict[str, Any]:
    """The ``<operation>Return`` element as nested dicts (local names; texts as str).

    Raises:
        AuthenticationFault, AuthorizationFault, IpsApiFault: a SOAP fault with an IPS fault.
        ProtocolError, ServerUnavailable, RequestRejected: no usable answer (by HTTP status).
    """
    try:
        document = _parse(_decode(body, content_encoding, MAX_SOAP_RESPONSE_BYTES))
    except _Unusable as exc:
        raise _by_status(http_status, str(exc), None) from None
    envelope = document.get("Envelope")
    soap_body = _child(envelope, "Body")
    fault = _child(soap_body, "Fault")
    if fault is not None:
        raise _soap_fault(fault, http_status)
    answer = _child(soap_body, f"{operation}Return")
    if answer is None and isinstance(soap_body, dict) and f"{operation}Return" in soap_body:
        return {}
    if answer is None:
        raise _by_status(http_status, f"no {operation}Return in the answer", None)
    return answer if isinstance(answer, dict) else {}


def _soap_fault(fault: object, status: int) -> Exception:
    detail = _child(fault, "detail") or _child(fault, "Detail")
    if isinstance(detail, dict):
        for name, node in detail.items():
            if name in _FAULTS:
                return _fault(name, node, status)
    text = _child(fault, "faultstring") or "SOAP fault without an IPS fault detail"
    return ProtocolError(f"HTTP {status}: {str(text)[:200]}")


def as_list(node: object, name: str = "items") -> list[Any]:
    """The repeated children ``name`` of an array element, as a list (zero, one or many)."""
    value = _child(node, name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
