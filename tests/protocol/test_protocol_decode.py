"""Response classification tests (spec §4.5)."""

from __future__ import annotations

import gzip
import socket
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bulkup.errors import (
    AuthenticationFault,
    AuthorizationFault,
    IpsApiFault,
    ProtocolError,
    RequestRejected,
    ServerFault,
    ServerUnavailable,
    is_fatal,
    is_retryable,
)
from bulkup.protocol import (
    KNOWN_NAMESPACES,
    MAX_RESPONSE_BYTES,
    UploadPostReturn,
    parse_retry_after,
    parse_upload_response,
)

HANDLE = "j|42||bulkup-20250101T120000Z-9f2c01ab|1007"

# §2.7 E, verbatim.
SUCCESS_E = (
    b"<?xml version='1.0' encoding='UTF-8'?><uploadPostReturn "
    b'xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><jobHandle>'
    b"j|42||bulkup-20250101T120000Z-9f2c01ab|1007</jobHandle></uploadPostReturn>"
)
# §4.2, verbatim.
AUTHENTICATION_FAULT_4_2 = (
    b"<?xml version='1.0' encoding='UTF-8'?>\n"
    b'<tns:authenticationFault xmlns:tns="http://www.scene7.com/IpsApi/xsd"><tns:code>10001'
    b"</tns:code><tns:reason>Invalid username/password</tns:reason></tns:authenticationFault>"
)
# §2.7 F, verbatim.
IPS_API_FAULT_F = (
    b"<?xml version='1.0' encoding='UTF-8'?><tns:ipsApiFault "
    b'xmlns:tns="http://www.scene7.com/IpsApi/xsd"><tns:code>30002</tns:code><tns:reason>'
    b"Missing parameter: companyHandle</tns:reason></tns:ipsApiFault>"
)
# §4.4, verbatim.
SOAP_FAULT_4_4 = """<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Header/>
  <soapenv:Body>
    <soapenv:Fault>
      <faultcode>soapenv:Client</faultcode>
      <faultstring>AuthorizationException</faultstring>
      <detail>
        <ns1:authorizationFault xmlns:ns1="http://www.scene7.com/IpsApi/xsd">
          <code xmlns="http://www.scene7.com/IpsApi/xsd">20003</code>
          <reason xmlns="http://www.scene7.com/IpsApi/xsd">…</reason>
        </ns1:authorizationFault>
      </detail>
    </soapenv:Fault>
  </soapenv:Body>
</soapenv:Envelope>
""".encode()

FAULTS: list[tuple[str, type[ServerFault], int, str]] = [
    ("authenticationFault", AuthenticationFault, 10001, "Invalid username/password"),
    ("authorizationFault", AuthorizationFault, 20006, "Illegal company"),
    ("ipsApiFault", IpsApiFault, 30001, "Invalid jobHandle: j|1"),
]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<uploadPostReturn><jobHandle>&lol9;</jobHandle></uploadPostReturn>"""
EXTERNAL_ENTITY = (
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<uploadPostReturn><jobHandle>&e;</jobHandle></uploadPostReturn>"
)
EXTERNAL_DTD = (
    b'<!DOCTYPE uploadPostReturn SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b"<uploadPostReturn><jobHandle>j</jobHandle></uploadPostReturn>"
)
PARAMETER_ENTITY = (
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
    b"<uploadPostReturn><jobHandle>j</jobHandle></uploadPostReturn>"
)


def fault_doc(name: str, code: str, reason: str, *, prefixed: bool) -> bytes:
    """A fault document in tns: form or in default-namespace form."""
    if prefixed:
        return (
            f'<tns:{name} xmlns:tns="http://www.scene7.com/IpsApi/xsd"><tns:code>{code}</tns:code>'
            f"<tns:reason>{reason}</tns:reason></tns:{name}>"
        ).encode()
    return (
        f'<{name} xmlns="http://www.scene7.com/IpsApi/xsd"><code>{code}</code>'
        f"<reason>{reason}</reason></{name}>"
    ).encode()


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed, built without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


class TestSuccess:
    """uploadPostReturn with a non-empty jobHandle is a success, whatever the status."""

    def test_example_e_in_the_2014_namespace(self) -> None:
        """§2.7 E decodes to its handle."""
        assert parse_upload_response(SUCCESS_E, http_status=200) == UploadPostReturn(
            job_handle=HANDLE
        )

    def test_no_namespace(self) -> None:
        """A document without any namespace is accepted."""
        body = b"<uploadPostReturn><jobHandle>j|1</jobHandle></uploadPostReturn>"
        assert parse_upload_response(body, http_status=200).job_handle == "j|1"

    @pytest.mark.parametrize("prefix", ["ns1", "tns", "x"])
    def test_prefixed(self, prefix: str) -> None:
        """Any prefix on root and child is ignored."""
        body = (
            f'<{prefix}:uploadPostReturn xmlns:{prefix}="http://www.scene7.com/IpsApi/xsd/2014-04-03">'
            f"<{prefix}:jobHandle>j|2</{prefix}:jobHandle></{prefix}:uploadPostReturn>"
        ).encode()
        assert parse_upload_response(body, http_status=200).job_handle == "j|2"

    @pytest.mark.parametrize("namespace", KNOWN_NAMESPACES)
    def test_every_known_namespace(self, namespace: str) -> None:
        """All §2.6 namespaces are accepted."""
        body = (
            f'<uploadPostReturn xmlns="{namespace}"><jobHandle>j|3</jobHandle></uploadPostReturn>'
        )
        assert parse_upload_response(body.encode(), http_status=200).job_handle == "j|3"

    @pytest.mark.parametrize("status", [201, 400, 500, 503])
    def test_success_whatever_the_status(self, status: int) -> None:
        """The body decides: a success document under any status is a success."""
        assert parse_upload_response(SUCCESS_E, http_status=status).job_handle == HANDLE

    def test_pretty_printed_with_leading_whitespace_and_comments(self) -> None:
        """Whitespace around the document and comments are tolerated."""
        body = (
            b"\n  <?xml version='1.0'?>\n<!-- hi -->\n<uploadPostReturn>\n"
            b"  <jobHandle>j|4</jobHandle>\n</uploadPostReturn>\n"
        )
        assert parse_upload_response(body, http_status=200).job_handle == "j|4"

    def test_utf8_bom_and_non_ascii_handle(self) -> None:
        """A UTF-8 BOM and a non-ASCII handle decode."""
        body = "\ufeff<uploadPostReturn><jobHandle>j|été|&amp;</jobHandle></uploadPostReturn>"
        assert parse_upload_response(body.encode(), http_status=200).job_handle == "j|été|&"

    @pytest.mark.parametrize(
        "body",
        [
            b"<uploadPostReturn><jobHandle></jobHandle></uploadPostReturn>",
            b"<uploadPostReturn><jobHandle>   </jobHandle></uploadPostReturn>",
            b"<uploadPostReturn/>",
            b"<uploadPostReturn><jobHandle>a</jobHandle><jobHandle>b</jobHandle></uploadPostReturn>",
            b"<uploadPostReturn><jobHandle><x>a</x></jobHandle></uploadPostReturn>",
        ],
    )
    def test_missing_or_bad_handle_is_not_a_success(self, body: bytes) -> None:
        """Empty, repeated or structured jobHandle: ProtocolError under 200."""
        with pytest.raises(ProtocolError):
            parse_upload_response(body, http_status=200)


class TestFaults:
    """Fault documents raise their exception whatever the status (D-22)."""

    @pytest.mark.parametrize("status", [200, 500])
    @pytest.mark.parametrize("prefixed", [True, False], ids=["tns", "default-ns"])
    @pytest.mark.parametrize(("name", "exc", "code", "reason"), FAULTS, ids=[f[0] for f in FAULTS])
    def test_fault_forms(
        self, name: str, exc: type[ServerFault], code: int, reason: str, prefixed: bool, status: int
    ) -> None:
        """Each fault type in tns: and default-namespace form, under 200 and 500."""
        body = fault_doc(name, str(code), reason, prefixed=prefixed)
        with pytest.raises(exc) as caught:
            parse_upload_response(body, http_status=status)
        assert type(caught.value) is exc
        assert (caught.value.code, caught.value.reason) == (code, reason)
        assert caught.value.http_status == status

    @pytest.mark.parametrize("status", [200, 500])
    def test_section_4_2_example_verbatim(self, status: int) -> None:
        """The §4.2 authenticationFault example decodes to 10001."""
        with pytest.raises(AuthenticationFault) as caught:
            parse_upload_response(AUTHENTICATION_FAULT_4_2, http_status=status)
        assert caught.value.code == 10001
        assert caught.value.reason == "Invalid username/password"
        assert is_fatal(caught.value)

    def test_example_f_verbatim(self) -> None:
        """§2.7 F decodes to ipsApiFault 30002, not retryable."""
        with pytest.raises(IpsApiFault) as caught:
            parse_upload_response(IPS_API_FAULT_F, http_status=500)
        assert caught.value.code == 30002
        assert caught.value.reason == "Missing parameter: companyHandle"
        assert not is_retryable(caught.value)

    def test_ips_api_fault_30000_is_retryable(self) -> None:
        """30000 keeps the retryable behaviour of the error tree."""
        with pytest.raises(IpsApiFault) as caught:
            parse_upload_response(
                fault_doc("ipsApiFault", "30000", "boom", prefixed=True), http_status=500
            )
        assert is_retryable(caught.value)

    @pytest.mark.parametrize("status", [404, 429, 503])
    def test_fault_beats_other_statuses(self, status: int) -> None:
        """A fault body under 4xx/429/503 is still the fault."""
        with pytest.raises(AuthorizationFault):
            parse_upload_response(
                fault_doc("authorizationFault", "20000", "x", prefixed=False), http_status=status
            )

    @pytest.mark.parametrize("status", [200, 500])
    def test_soap_envelope_fault_section_4_4(self, status: int) -> None:
        """The §4.4 SOAP envelope yields an AuthorizationFault 20003."""
        with pytest.raises(AuthorizationFault) as caught:
            parse_upload_response(SOAP_FAULT_4_4, http_status=status)
        assert caught.value.code == 20003
        assert caught.value.reason == "…"
        assert caught.value.http_status == status

    @pytest.mark.parametrize(("name", "exc", "code", "reason"), FAULTS, ids=[f[0] for f in FAULTS])
    def test_soap_envelope_each_fault(
        self, name: str, exc: type[ServerFault], code: int, reason: str
    ) -> None:
        """Every fault type is found inside a SOAP detail, with any prefixes."""
        body = (
            '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>'
            "<faultcode>S:Server</faultcode><faultstring>x</faultstring><detail>"
            f'<p:{name} xmlns:p="http://www.scene7.com/IpsApi/xsd"><p:code>{code}</p:code>'
            f"<p:reason>{reason}</p:reason></p:{name}></detail></S:Fault></S:Body></S:Envelope>"
        ).encode()
        with pytest.raises(exc):
            parse_upload_response(body, http_status=500)

    def test_soap_fault_without_ips_detail_falls_back_to_status(self) -> None:
        """A SOAP fault without an IPS fault in detail is classified by status."""
        body = (
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soapenv:Body><soapenv:Fault><faultcode>soapenv:Server</faultcode>"
            b"<faultstring>oops</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        with pytest.raises(ServerUnavailable):
            parse_upload_response(body, http_status=500)
        with pytest.raises(ProtocolError):
            parse_upload_response(body, http_status=200)

    @pytest.mark.parametrize("code", ["", "abc", "1.5", "0x10", "99999999999", "١٠٠٠١", "1_000"])
    @pytest.mark.parametrize("status", [200, 500])
    def test_bad_fault_code_is_a_protocol_error(self, code: str, status: int) -> None:
        """A fault code that is missing or not an xsd:int is a ProtocolError."""
        with pytest.raises(ProtocolError, match="invalid code"):
            parse_upload_response(
                fault_doc("ipsApiFault", code, "r", prefixed=True), http_status=status
            )

    def test_fault_without_code_element(self) -> None:
        """No code element at all is a ProtocolError."""
        body = b"<authenticationFault><reason>r</reason></authenticationFault>"
        with pytest.raises(ProtocolError, match="missing"):
            parse_upload_response(body, http_status=500)

    def test_fault_without_reason(self) -> None:
        """A missing reason becomes an empty reason."""
        with pytest.raises(AuthorizationFault) as caught:
            parse_upload_response(
                b"<authorizationFault><code>20009</code></authorizationFault>", http_status=500
            )
        assert caught.value.reason == ""

    def test_huge_reason_is_truncated(self) -> None:
        """A very long reason is cut to about 200 characters."""
        body = fault_doc("ipsApiFault", "30001", "x" * 100_000, prefixed=True)
        with pytest.raises(IpsApiFault) as caught:
            parse_upload_response(body, http_status=500)
        assert len(str(caught.value)) < 300


class TestCompression:
    """Content-Encoding: gzip, bounded inflation."""

    @pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip", " gzip ", "identity, gzip"])
    def test_gzip_success(self, encoding: str) -> None:
        """A gzip-compressed success decodes."""
        body = gzip.compress(SUCCESS_E)
        assert (
            parse_upload_response(body, http_status=200, content_encoding=encoding).job_handle
            == HANDLE
        )

    def test_gzip_fault(self) -> None:
        """A gzip-compressed fault raises the fault."""
        with pytest.raises(AuthenticationFault):
            parse_upload_response(
                gzip.compress(AUTHENTICATION_FAULT_4_2), http_status=500, content_encoding="gzip"
            )

    def test_multi_member_gzip(self) -> None:
        """Concatenated gzip members are all inflated."""
        body = gzip.compress(SUCCESS_E[:50]) + gzip.compress(SUCCESS_E[50:])
        assert (
            parse_upload_response(body, http_status=200, content_encoding="gzip").job_handle
            == HANDLE
        )

    def test_already_decompressed_body_is_tolerated(self) -> None:
        """A body announced as gzip but not gzip (already inflated) is parsed as is."""
        assert (
            parse_upload_response(SUCCESS_E, http_status=200, content_encoding="gzip").job_handle
            == HANDLE
        )

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (gzip.compress(SUCCESS_E)[:-12], "truncated"),
            (b"\x1f\x8b" + b"\x00" * 30, "corrupt"),
        ],
    )
    def test_broken_gzip(self, body: bytes, problem: str) -> None:
        """Truncated or corrupt gzip: ProtocolError under 200, ServerUnavailable under 502."""
        with pytest.raises(ProtocolError, match=problem):
            parse_upload_response(body, http_status=200, content_encoding="gzip")
        with pytest.raises(ServerUnavailable):
            parse_upload_response(body, http_status=502, content_encoding="gzip")

    def test_unsupported_encoding(self) -> None:
        """An encoding other than gzip/identity is not guessed at."""
        with pytest.raises(ProtocolError, match="Content-Encoding"):
            parse_upload_response(b"\x00\x01", http_status=200, content_encoding="br")

    def test_gzip_bomb_is_refused_cheaply(self) -> None:
        """50 MB of zeros, gzipped: ProtocolError fast, without inflating it all."""
        bomb = gzip_bomb(50 * 1024 * 1024)
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError, match="inflates beyond") as caught:
                parse_upload_response(bomb, http_status=200, content_encoding="gzip")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024  # not inflated: its memory says so, not a stopwatch
        assert len(str(caught.value)) < 500

    def test_limit_boundary(self) -> None:
        """A body of exactly MAX_RESPONSE_BYTES is parsed; one byte more is refused."""
        doc = b"<uploadPostReturn><jobHandle>j|5</jobHandle></uploadPostReturn>"
        exact = doc + b" " * (MAX_RESPONSE_BYTES - len(doc))
        assert (
            parse_upload_response(
                gzip.compress(exact), http_status=200, content_encoding="gzip"
            ).job_handle
            == "j|5"
        )
        assert parse_upload_response(exact, http_status=200).job_handle == "j|5"
        with pytest.raises(ProtocolError, match="inflates beyond"):
            parse_upload_response(
                gzip.compress(exact + b" "), http_status=200, content_encoding="gzip"
            )
        with pytest.raises(ProtocolError, match="larger than"):
            parse_upload_response(exact + b" ", http_status=200)


class TestStatusFallback:
    """Bodies that are neither success nor fault are classified by HTTP status."""

    def test_html_502_is_server_unavailable(self) -> None:
        """An HTML 502 page from a proxy: ServerUnavailable, retryable."""
        body = (
            b"<html><head><title>502 Bad Gateway</title></head>"
            b"<body><h1>Bad Gateway</h1></body></html>"
        )
        with pytest.raises(ServerUnavailable) as caught:
            parse_upload_response(body, http_status=502)
        assert caught.value.http_status == 502
        assert caught.value.retry_after_s is None
        assert is_retryable(caught.value)

    def test_non_xml_html_5xx(self) -> None:
        """A non-well-formed HTML 500 page is ServerUnavailable too."""
        body = b"<!DOCTYPE html><html><body><p>Internal error<br></body></html>"
        with pytest.raises(ServerUnavailable):
            parse_upload_response(body, http_status=500)

    def test_503_with_retry_after_seconds(self) -> None:
        """Retry-After: 7 gives retry_after_s == 7."""
        with pytest.raises(ServerUnavailable) as caught:
            parse_upload_response(b"busy", http_status=503, retry_after="7")
        assert caught.value.retry_after_s == 7

    def test_retry_after_http_date(self) -> None:
        """Retry-After as an HTTP date gives the seconds until then."""
        future = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
        with pytest.raises(ServerUnavailable) as caught:
            parse_upload_response(b"", http_status=429, retry_after=future)
        assert caught.value.retry_after_s is not None
        assert 100 <= caught.value.retry_after_s <= 121

    def test_invalid_retry_after_is_none(self) -> None:
        """An unparseable Retry-After is ignored."""
        with pytest.raises(ServerUnavailable) as caught:
            parse_upload_response(b"", http_status=503, retry_after="soon")
        assert caught.value.retry_after_s is None

    @pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
    def test_retry_statuses(self, status: int) -> None:
        """5xx, 429 and 408 without a document are ServerUnavailable."""
        with pytest.raises(ServerUnavailable):
            parse_upload_response(b"nope", http_status=status)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 499])
    def test_other_4xx_is_request_rejected(self, status: int) -> None:
        """Other 4xx without a document are RequestRejected, fatal."""
        with pytest.raises(RequestRejected) as caught:
            parse_upload_response(b"Not Found", http_status=status)
        assert caught.value.http_status == status
        assert is_fatal(caught.value)

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"<uploadPostReturn><jobHandle>j|1</jobHa",
            b"<somethingElse><jobHandle>j|1</jobHandle></somethingElse>",
            b"OK",
            b"<a/><b/>",
            b"<x:uploadPostReturn><jobHandle>j</jobHandle>",
        ],
        ids=["empty", "truncated", "unrelated-root", "text", "two-roots", "unclosed"],
    )
    def test_2xx_without_a_document_is_a_protocol_error(self, body: bytes) -> None:
        """Empty, truncated, unrelated or non-XML 200 bodies are ProtocolError, retryable."""
        with pytest.raises(ProtocolError) as caught:
            parse_upload_response(body, http_status=200)
        assert is_retryable(caught.value)

    @pytest.mark.parametrize("status", [100, 204, 302, 304])
    def test_other_statuses_without_a_document(self, status: int) -> None:
        """1xx/3xx and 204 without a document are ProtocolError."""
        with pytest.raises(ProtocolError):
            parse_upload_response(b"", http_status=status)

    def test_error_messages_quote_at_most_200_characters(self) -> None:
        """Huge junk bodies are never echoed in full."""
        for body in (
            b"A" * 100_000,
            b"<root>" + b"B" * 100_000 + b"</root>",
            b"<" + b"C" * 100_000,
        ):
            for status in (200, 404, 503):
                with pytest.raises((ProtocolError, RequestRejected, ServerUnavailable)) as caught:
                    parse_upload_response(body, http_status=status)
                assert len(str(caught.value)) < 450


class TestRetryAfter:
    """parse_retry_after: delta-seconds or HTTP date, else None."""

    NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("7", 7.0),
            (" 120 ", 120.0),
            ("0", 0.0),
            ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
            ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),
            ("Wednesday, 01-Jan-25 12:01:00 GMT", 60.0),
            ("Wed Jan  1 12:00:05 2025", 5.0),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
            (None, None),
            ("Wed, 99 Jan 2025 12:00:30 GMT", None),
        ],
    )
    def test_values(self, value: str | None, expected: float | None) -> None:
        """Each header form maps to the expected delay."""
        assert parse_retry_after(value, now=self.NOW) == expected


class TestHostileXml:
    """DTDs and entities are refused without expansion or fetching."""

    @pytest.fixture(autouse=True)
    def _no_network(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Fail loudly if anything tries to open a connection."""

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("network access attempted")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)

    def test_billion_laughs_is_refused_cheaply(self) -> None:
        """Nested entity declarations are refused, not expanded."""
        tracemalloc.start()
        try:
            with pytest.raises(ProtocolError, match="DTD") as caught:
                parse_upload_response(BILLION_LAUGHS, http_status=200)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * 1024 * 1024  # not expanded
        assert "lollollol" not in str(caught.value)

    def test_billion_laughs_under_500_follows_the_status_rule(self) -> None:
        """Under 5xx a refused document is ServerUnavailable."""
        with pytest.raises(ServerUnavailable):
            parse_upload_response(BILLION_LAUGHS, http_status=500)

    def test_external_entity_is_not_read(self) -> None:
        """A SYSTEM entity pointing at a local file is refused, the file never read."""
        with pytest.raises(ProtocolError, match="DTD") as caught:
            parse_upload_response(EXTERNAL_ENTITY, http_status=200)
        assert "root:" not in str(caught.value)

    @pytest.mark.parametrize(
        "body", [EXTERNAL_DTD, PARAMETER_ENTITY], ids=["external-dtd", "parameter-entity"]
    )
    def test_external_dtds_are_not_fetched(self, body: bytes) -> None:
        """External DTD subsets and parameter entities are refused without network access."""
        with pytest.raises(ProtocolError, match="DTD"):
            parse_upload_response(body, http_status=200)

    def test_fault_with_dtd_is_not_trusted(self) -> None:
        """Even a fault document is refused when it carries a DTD."""
        body = (
            b'<!DOCTYPE ipsApiFault [<!ENTITY r "boom">]>'
            b"<ipsApiFault><code>30000</code><reason>&r;</reason></ipsApiFault>"
        )
        with pytest.raises(ServerUnavailable):
            parse_upload_response(body, http_status=500)

    def test_undeclared_entity_reference(self) -> None:
        """An undeclared entity reference is malformed XML."""
        with pytest.raises(ProtocolError, match="not well-formed"):
            parse_upload_response(
                b"<uploadPostReturn><jobHandle>&e;</jobHandle></uploadPostReturn>", http_status=200
            )
