"""The SOAP service (spec §4.4, §5.1, §5.5): envelopes, credentials, roles and helper operations."""

from __future__ import annotations

import pytest

from .conftest import Emulator, StartEmulator
from .soapwire import (
    PASSWORD,
    SOAP11,
    SOAP12,
    USER,
    assert_soap_fault,
    auth_header,
    basic,
    call,
    envelope,
    fields,
    names,
    post_soap,
    sub,
    text,
)
from .wire import NS_2013, NS_2014, NS_BASE

IPS, AUTHN, AUTHZ = "ipsApiFault", "authenticationFault", "authorizationFault"
VERSION = fields(name="IpsVersion")


class TestEnvelope:
    """SOAP 1.1 and 1.2, namespaces, SOAPAction, malformed requests."""

    async def test_soap11_answer(self, emu: Emulator) -> None:
        """A SOAP 1.1 request gets a SOAP 1.1 answer, Content-Type text/xml."""
        reply = await call(emu.soap_url, "getProperty", VERSION)
        assert text(reply.answer("getProperty"), "value") == "6.8 emulator"

    async def test_soap12_answer(self, emu: Emulator) -> None:
        """A SOAP 1.2 request gets a SOAP 1.2 answer, Content-Type application/soap+xml."""
        reply = await call(emu.soap_url, "getProperty", VERSION, soap=SOAP12)
        assert text(reply.answer("getProperty", soap=SOAP12), "value") == "6.8 emulator"

    @pytest.mark.parametrize(
        ("sent", "answered"),
        [
            (NS_2014, NS_2014),
            (NS_2013, NS_2013),
            (NS_BASE, NS_BASE),
            (f"{NS_BASE}/2008-01-15", f"{NS_BASE}/2008-01-15"),
            (None, NS_2014),
        ],
    )
    async def test_namespace_echoed(self, emu: Emulator, sent: str | None, answered: str) -> None:
        """§5.1: ``<op>Return`` and its children are in the request's namespace (none → 2014)."""
        reply = await call(emu.soap_url, "getProperty", VERSION, ns=sent)
        answer = reply.answer("getProperty", ns=answered)
        assert [c.tag for c in answer] == [f"{{{answered}}}value"]

    @pytest.mark.parametrize("action", [None, "getProperty", '"getProperty"', '""'])
    async def test_soap_action_any_form(self, emu: Emulator, action: str | None) -> None:
        """The body element names the operation; SOAPAction may be absent or quoted."""
        reply = await call(emu.soap_url, "getProperty", VERSION, action=action)
        assert text(reply.answer("getProperty"), "value") == "6.8 emulator"

    async def test_prefixed_body_element(self, emu: Emulator) -> None:
        """A prefixed ``<ips:getPropertyParam>`` is read by local name, answered in its ns."""
        data = (
            f'<e:Envelope xmlns:e="{SOAP11}"><e:Header>{auth_header()}</e:Header><e:Body>'
            f'<ips:getPropertyParam xmlns:ips="{NS_2013}"><ips:name>IpsVersion</ips:name>'
            "</ips:getPropertyParam></e:Body></e:Envelope>"
        )
        reply = await post_soap(emu.soap_url, data)
        assert text(reply.answer("getProperty", ns=NS_2013), "value") == "6.8 emulator"

    @pytest.mark.parametrize("element", ["fooBarParam", "getActiveJobs", "submitJobParam"])
    async def test_unknown_operation(self, emu: Emulator, element: str) -> None:
        """§5.5: anything but the eight operations is ipsApiFault 30000 (soapenv:Server)."""
        reply = await call(emu.soap_url, "x", element=element)
        assert_soap_fault(reply, IPS, 30000)

    async def test_unknown_operation_soap12(self, emu: Emulator) -> None:
        """A SOAP 1.2 server-side fault uses Code/Value ``soap:Receiver``."""
        reply = await call(emu.soap_url, "pauseJob", soap=SOAP12)
        assert_soap_fault(reply, IPS, 30000, soap=SOAP12)

    async def test_soap12_client_fault_shape(self, emu: Emulator) -> None:
        """A SOAP 1.2 fault: Code/Value ``soap:Sender``, Reason/Text in English, Detail."""
        reply = await call(emu.soap_url, "getActiveJobs", soap=SOAP12, auth=None)
        assert_soap_fault(reply, AUTHN, 10000, soap=SOAP12)
        assert b'xml:lang="en"' in reply.body

    @pytest.mark.parametrize(
        "data",
        [
            b"not xml at all",
            b"<a><b></a>",
            b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]><e>&x;</e>',
            b"<Envelope><Body><getPropertyParam/></Body></Envelope>",
            f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/></e:Envelope>'.encode(),
            envelope("getProperty", ns="urn:other").encode(),
        ],
        ids=["text", "broken", "dtd", "no-soap-ns", "empty-body", "foreign-ns"],
    )
    async def test_invalid_request_xml(self, emu: Emulator, data: bytes) -> None:
        """Not a SOAP envelope with one IPS body element: ipsApiFault 30003, SOAP 1.1 form."""
        assert_soap_fault(await post_soap(emu.soap_url, data), IPS, 30003)

    async def test_gzip_on_request(self, emu: Emulator) -> None:
        """§4.3: Accept-Encoding gzip compresses the answer; gzipResponse=false forbids it."""
        url, gz = emu.soap_url, {"Accept-Encoding": "gzip"}
        reply = await post_soap(url, envelope("getProperty", VERSION), headers=gz)
        assert reply.headers.get("content-encoding") == "gzip"
        assert text(reply.answer("getProperty"), "value") == "6.8 emulator"
        no = auth_header(extra="<gzipResponse>false</gzipResponse>")
        reply = await post_soap(url, envelope("getProperty", VERSION, auth=no), headers=gz)
        assert "content-encoding" not in reply.headers


class TestAuthentication:
    """``authHeader`` in the SOAP header or HTTP Basic (D-28); 10000/10001/10002."""

    @pytest.mark.parametrize(
        "auth",
        [None, auth_header(password=None), auth_header(user=None), auth_header(password="")],
        ids=["absent", "no-password", "no-user", "empty-password"],
    )
    async def test_missing_credentials(self, emu: Emulator, auth: str | None) -> None:
        """No complete credentials: authenticationFault 10000, HTTP 500."""
        reply = await call(emu.soap_url, "getActiveJobs", auth=auth)
        assert_soap_fault(reply, AUTHN, 10000)

    @pytest.mark.parametrize(
        ("user", "password"),
        [
            (USER, "wrong"),
            (USER, PASSWORD.upper()),
            (USER, PASSWORD + " "),
            ("nobody@example.com", PASSWORD),
        ],
    )
    async def test_bad_credentials(self, emu: Emulator, user: str, password: str) -> None:
        """A wrong password (compared exactly) or unknown user: 10001."""
        reply = await call(emu.soap_url, "getActiveJobs", auth=auth_header(user, password))
        assert_soap_fault(reply, AUTHN, 10001)

    async def test_disabled_user(self, emu: Emulator) -> None:
        """A disabled user: 10002."""
        reply = await call(
            emu.soap_url, "getActiveJobs", auth=auth_header("gone@example.com", "pw-gone")
        )
        assert_soap_fault(reply, AUTHN, 10002)

    @pytest.mark.parametrize(
        "ns", [NS_BASE, NS_2014, NS_2013, None, "http://www.scene7.com/IpsApi"]
    )
    async def test_auth_header_namespaces(self, emu: Emulator, ns: str | None) -> None:
        """§5.1: authHeader in any IPS namespace, or none, is read."""
        reply = await call(emu.soap_url, "getActiveJobs", auth=auth_header(ns=ns))
        assert len(sub(reply.answer("getActiveJobs"), "jobArray")) == 0

    async def test_auth_header_foreign_namespace_ignored(self, emu: Emulator) -> None:
        """An authHeader in a foreign namespace is not IPS's: no credentials, 10000."""
        reply = await call(emu.soap_url, "getActiveJobs", auth=auth_header(ns="urn:other"))
        assert_soap_fault(reply, AUTHN, 10000)

    async def test_http_basic(self, emu: Emulator) -> None:
        """HTTP Basic credentials work without any SOAP header."""
        reply = await call(
            emu.soap_url,
            "getActiveJobs",
            auth=None,
            headers={"Authorization": basic(USER, PASSWORD)},
        )
        reply.answer("getActiveJobs")

    @pytest.mark.parametrize(
        ("value", "code"),
        [
            (basic(USER, "wrong"), 10001),
            (basic("second@example.com", PASSWORD), 10001),
            ("Basic !!!not-base64", 10000),
            (basic(USER, ""), 10000),
            ("Bearer abc", 10000),
        ],
    )
    async def test_http_basic_refused(self, emu: Emulator, value: str, code: int) -> None:
        """Bad Basic credentials are 10001; unreadable ones count as none (10000), never 401."""
        reply = await call(
            emu.soap_url, "getActiveJobs", auth=None, headers={"Authorization": value}
        )
        assert_soap_fault(reply, AUTHN, code)

    async def test_auth_header_wins_over_basic(self, emu: Emulator) -> None:
        """Complete authHeader credentials are used even when Basic ones are also sent."""
        reply = await call(
            emu.soap_url, "getActiveJobs", headers={"Authorization": basic(USER, "wrong")}
        )
        reply.answer("getActiveJobs")

    async def test_fault_http_status_override(self, emu: Emulator) -> None:
        """D-22: authHeader/faultHttpStatusCode replaces the fault's HTTP 500."""
        auth = auth_header(password="wrong", extra="<faultHttpStatusCode>200</faultHttpStatusCode>")
        reply = await call(emu.soap_url, "getActiveJobs", auth=auth)
        assert_soap_fault(reply, AUTHN, 10001, status=200)


class TestAuthorization:
    """Roles (§5.2-§5.4) and companies: 20003, 20000, 20006."""

    VIEWER = auth_header("viewer@example.com", "pw-viewer")

    @pytest.mark.parametrize("operation", ["getJobLogs", "getJobLogDetails"])
    async def test_image_portal_user_reads_logs(self, emu: Emulator, operation: str) -> None:
        """ImagePortalUser may read job logs."""
        reply = await call(emu.soap_url, operation, fields(companyHandle="c|42"), auth=self.VIEWER)
        assert names(reply.answer(operation)) == ["jobLogArray"]

    @pytest.mark.parametrize("operation", ["getActiveJobs", "stopJob", "deleteJob"])
    async def test_image_portal_user_no_job_control(self, emu: Emulator, operation: str) -> None:
        """ImagePortalUser may not list, stop or delete jobs: 20003."""
        inner = fields(companyHandle="c|42", jobHandle="j|42||x|1")
        reply = await call(emu.soap_url, operation, inner, auth=self.VIEWER)
        assert_soap_fault(reply, AUTHZ, 20003)

    @pytest.mark.parametrize(
        "operation",
        ["getActiveJobs", "getJobLogs", "getJobLogDetails", "stopJob", "getCompanyInfo"],
    )
    async def test_unknown_company(self, emu: Emulator, operation: str) -> None:
        """An unknown companyHandle: 20000."""
        inner = fields(companyHandle="c|999", jobHandle="j|999||x|1")
        assert_soap_fault(await call(emu.soap_url, operation, inner), AUTHZ, 20000)

    @pytest.mark.parametrize(
        "operation",
        ["getActiveJobs", "getJobLogs", "getJobLogDetails", "deleteJob", "getCompanyInfo"],
    )
    async def test_company_of_others(self, emu: Emulator, operation: str) -> None:
        """A company the user is not a member of: 20006."""
        inner = fields(companyHandle="c|43", jobHandle="j|43||x|1")
        auth = auth_header("second@example.com", "pw-second")
        assert_soap_fault(await call(emu.soap_url, operation, inner, auth=auth), AUTHZ, 20006)


class TestGetProperty:
    """``getProperty``: UploadPostMaxFileSize, IpsVersion."""

    async def test_max_file_size_default(self, emu: Emulator) -> None:
        """D-18: UploadPostMaxFileSize is max_file_size (default 2 GiB)."""
        reply = await call(emu.soap_url, "getProperty", fields(name="UploadPostMaxFileSize"))
        assert text(reply.answer("getProperty"), "value") == "2147483648"

    async def test_max_file_size_configured(self, start_emulator: StartEmulator) -> None:
        """A configured max_file_size is what getProperty reports."""
        emu = await start_emulator(max_file_size=12345)
        reply = await call(emu.soap_url, "getProperty", fields(name="UploadPostMaxFileSize"))
        assert text(reply.answer("getProperty"), "value") == "12345"

    @pytest.mark.parametrize(
        ("inner", "code"),
        [
            (fields(name="NoSuchProperty"), 30001),
            (fields(name="ipsversion"), 30001),
            ("", 30002),
            (fields(name=""), 30002),
        ],
    )
    async def test_bad_names(self, emu: Emulator, inner: str, code: int) -> None:
        """An unknown property name is 30001; a missing one 30002."""
        assert_soap_fault(await call(emu.soap_url, "getProperty", inner), IPS, code)


class TestGetCompanyInfo:
    """``getCompanyInfo`` by handle or by name."""

    @pytest.mark.parametrize(
        "inner",
        [fields(companyHandle="c|42"), fields(companyName="Acme"), fields(companyName="acme")],
    )
    async def test_info(self, emu: Emulator, inner: str) -> None:
        """companyInfo holds companyHandle, name, rootPath and expires."""
        answer = (await call(emu.soap_url, "getCompanyInfo", inner)).answer("getCompanyInfo")
        info = sub(answer, "companyInfo")
        assert names(info) == ["companyHandle", "name", "rootPath", "expires"]
        assert [text(info, n) for n in names(info)[:3]] == ["c|42", "Acme", "Acme/"]
        assert (text(info, "expires") or "").endswith("+00:00")

    @pytest.mark.parametrize(
        ("inner", "kind", "code"),
        [
            ("", IPS, 30002),
            (fields(companyName="Nope"), AUTHZ, 20000),
        ],
    )
    async def test_faults(self, emu: Emulator, inner: str, kind: str, code: int) -> None:
        """Neither handle nor name is 30002; an unknown name is 20000."""
        assert_soap_fault(await call(emu.soap_url, "getCompanyInfo", inner), kind, code)


class TestCheckLogin:
    """``checkLogin``: a credential pre-check that needs no authHeader."""

    @pytest.mark.parametrize(
        ("email", "password", "company", "status"),
        [
            (USER, PASSWORD, None, "ValidLogin"),
            (USER.upper(), PASSWORD, "c|43", "ValidLogin"),
            (USER, "wrong", None, "InvalidLogin"),
            (USER, PASSWORD.upper(), None, "InvalidLogin"),
            ("nobody@example.com", PASSWORD, None, "InvalidLogin"),
            ("second@example.com", "pw-second", "c|43", "InvalidLogin"),
            ("second@example.com", "pw-second", "c|999", "InvalidLogin"),
            ("gone@example.com", "pw-gone", None, "InvalidLogin"),
        ],
    )
    async def test_status(
        self, emu: Emulator, email: str, password: str, company: str | None, status: str
    ) -> None:
        """ValidLogin only for a right, enabled pair (member of companyHandle if given)."""
        inner = fields(companyHandle=company, email=email, password=password)
        reply = await call(emu.soap_url, "checkLogin", inner, auth=None)
        assert names(reply.answer("checkLogin")) == ["status"]
        assert text(reply.answer("checkLogin"), "status") == status

    async def test_missing_password(self, emu: Emulator) -> None:
        """checkLogin without a password is 30002."""
        reply = await call(emu.soap_url, "checkLogin", fields(email=USER), auth=None)
        assert_soap_fault(reply, IPS, 30002)
