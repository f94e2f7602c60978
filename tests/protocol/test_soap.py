"""The SOAP codec: request envelopes and answers, independent of any server."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkup.errors import AuthorizationFault, IpsApiFault, ProtocolError, ServerUnavailable
from bulkup.protocol import AuthHeader
from bulkup.protocol.soap import SOAP_11, as_list, encode_soap_request, parse_soap_response

NS = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
AUTH = AuthHeader(user="u@example.com", password="pw<&>")


def envelope(body: str, soap: str = SOAP_11) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{soap}"><s:Header/><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


class TestRequest:
    def test_envelope_shape(self) -> None:
        """authHeader in the SOAP header (unversioned ns), <op>Param in the API namespace."""
        root = ET.fromstring(
            encode_soap_request(
                "getJobLogDetails",
                {
                    "companyHandle": "c|1",
                    "jobHandle": "j|1||x|2",
                    "recordsPerPage": 1000,
                    "resultsPage": None,
                    "logTypeArray": ["UploadError", "FileCancel"],
                },
                AUTH,
            )
        )
        assert root.tag == f"{{{SOAP_11}}}Envelope"
        auth = root.find(f"{{{SOAP_11}}}Header/{{http://www.scene7.com/IpsApi/xsd}}authHeader")
        assert auth is not None
        assert auth.findtext("{http://www.scene7.com/IpsApi/xsd}password") == "pw<&>"
        param = root.find(f"{{{SOAP_11}}}Body/{{{NS}}}getJobLogDetailsParam")
        assert param is not None
        assert [c.tag.split("}")[1] for c in param] == [
            "companyHandle",
            "jobHandle",
            "recordsPerPage",
            "logTypeArray",
        ]
        assert [i.text for i in param.find(f"{{{NS}}}logTypeArray")] == [
            "UploadError",
            "FileCancel",
        ]

    @given(
        st.text(
            alphabet=st.characters(
                blacklist_categories=("Cs",),
                blacklist_characters="\x00\r\ufffe\uffff"
                + "".join(map(chr, range(1, 9)))
                + "".join(map(chr, range(11, 32))),
            )
        )
    )
    def test_values_round_trip(self, value: str) -> None:
        """Hostile parameter values come back unchanged through a standard parser."""
        root = ET.fromstring(encode_soap_request("getActiveJobs", {"originalName": value}, AUTH))
        assert root.findtext(f".//{{{NS}}}originalName") == value


class TestAnswers:
    def test_return_element_as_dicts(self) -> None:
        """<op>Return comes back by local name, arrays normalised by as_list."""
        body = envelope(
            f'<getActiveJobsReturn xmlns="{NS}"><jobArray><items><jobHandle>a'
            "</jobHandle><state>Running</state></items></jobArray>"
            "</getActiveJobsReturn>"
        )
        answer = parse_soap_response(body, operation="getActiveJobs", http_status=200)
        assert [i["state"] for i in as_list(answer.get("jobArray"))] == ["Running"]

    def test_empty_array_and_many(self) -> None:
        """An empty jobArray is no items; two items are a list of two."""
        empty = parse_soap_response(
            envelope(f'<getActiveJobsReturn xmlns="{NS}"><jobArray/></getActiveJobsReturn>'),
            operation="getActiveJobs",
            http_status=200,
        )
        assert as_list(empty.get("jobArray")) == []
        two = parse_soap_response(
            envelope(
                f'<getActiveJobsReturn xmlns="{NS}"><jobArray><items><state>A</state></items>'
                "<items><state>B</state></items></jobArray></getActiveJobsReturn>"
            ),
            operation="getActiveJobs",
            http_status=200,
        )
        assert len(as_list(two.get("jobArray"))) == 2

    def test_soap11_fault(self) -> None:
        """The §4.4 fault form raises the typed IPS fault with its code."""
        body = envelope(
            "<s:Fault><faultcode>s:Client</faultcode><faultstring>AuthorizationException"
            '</faultstring><detail><ns1:authorizationFault xmlns:ns1="http://www.scene7.com/'
            'IpsApi/xsd"><code xmlns="http://www.scene7.com/IpsApi/xsd">20003</code>'
            '<reason xmlns="http://www.scene7.com/IpsApi/xsd">no</reason>'
            "</ns1:authorizationFault></detail></s:Fault>"
        )
        with pytest.raises(AuthorizationFault) as caught:
            parse_soap_response(body, operation="getActiveJobs", http_status=500)
        assert caught.value.code == 20003

    def test_soap12_fault(self) -> None:
        """A SOAP 1.2 fault (Detail) raises the typed fault too."""
        body = envelope(
            "<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text>x"
            '</s:Text></s:Reason><s:Detail><f:ipsApiFault xmlns:f="http://www.scene7.com/'
            'IpsApi/xsd"><f:code>30000</f:code><f:reason>boom</f:reason></f:ipsApiFault>'
            "</s:Detail></s:Fault>",
            soap="http://www.w3.org/2003/05/soap-envelope",
        )
        with pytest.raises(IpsApiFault) as caught:
            parse_soap_response(body, operation="stopJob", http_status=500)
        assert caught.value.retryable

    def test_not_soap(self) -> None:
        """An HTML 502 page is a retryable failure; a 200 without the Return is a protocol
        error."""
        with pytest.raises(ServerUnavailable):
            parse_soap_response(b"<html>bad gateway</html>", operation="x", http_status=502)
        with pytest.raises(ProtocolError):
            parse_soap_response(envelope("<other/>"), operation="x", http_status=200)

    def test_empty_return_is_empty_dict(self) -> None:
        """stopJob's empty Return element is a valid, empty answer."""
        answer = parse_soap_response(
            envelope(f'<stopJobReturn xmlns="{NS}"/>'), operation="stopJob", http_status=200
        )
        assert answer == {}
