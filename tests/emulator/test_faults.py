"""Spec D-21 (fault table and its evaluation order) and D-22 (``faultHttpStatusCode``)."""

from __future__ import annotations

from typing import Any

import pytest

from bulkup.emulator import app as emulator_app

from .conftest import PASSWORD, USER, Emulator, StartEmulator
from .wire import (
    REQUIRED_OPTIONS,
    Part,
    assert_fault,
    auth_xml,
    body,
    content_type,
    file_part,
    files,
    params_xml,
    xml_part,
)

AUTH = "authenticationFault"
AUTHZ = "authorizationFault"
IPS = "ipsApiFault"


def auth(user: str | None = USER, password: str | None = PASSWORD, extra: str = "") -> Part:
    return xml_part("auth", auth_xml(user, password, extra=extra))


def params(**kwargs: Any) -> Part:
    kwargs.setdefault("job_name", "job")
    return xml_part("uploadParams", params_xml(**kwargs))


async def assert_nothing_happened(emu: Emulator) -> None:
    """No job was opened and no file was stored or left in staging."""
    assert await emu.jobs() == []
    assert emu.stored() == {}
    assert emu.staged() == []


class TestRow1Framing:
    async def test_not_multipart(self, emu: Emulator) -> None:
        """Row 1: a urlencoded body is ipsApiFault 30001 with HTTP 500."""
        reply = await emu.post_raw(
            b"auth=x&uploadParams=y", ctype="application/x-www-form-urlencoded"
        )
        assert assert_fault(reply, IPS, 30001) == "Invalid multipart request"

    async def test_multipart_without_boundary(self, emu: Emulator) -> None:
        """Row 1: multipart/form-data without a boundary parameter is 30001."""
        reply = await emu.post_raw(body([auth(), params()]), ctype="multipart/form-data")
        assert_fault(reply, IPS, 30001)

    async def test_missing_closing_delimiter(self, emu: Emulator) -> None:
        """Row 1: a body that ends before its closing delimiter is 30001, nothing ingested."""
        data = body([auth(), params(), *files({"x.jpg": b"abc"})])
        reply = await emu.post_raw(data[: -len(b"--emu-test-5b1c0e--\r\n")])
        assert_fault(reply, IPS, 30001)
        await assert_nothing_happened(emu)

    async def test_garbage_after_boundary(self, emu: Emulator) -> None:
        """Row 1: text after a delimiter on its line is 30001."""
        data = body([auth(), params()]).replace(
            b"--emu-test-5b1c0e\r\n", b"--emu-test-5b1c0e junk\r\n", 1
        )
        assert_fault(await emu.post_raw(data), IPS, 30001)

    async def test_boundary_longer_than_parser_allows(self, emu: Emulator) -> None:
        """Row 1: an absurd 201-character boundary is a 30001 fault, not a crash."""
        boundary = "b" * 201
        reply = await emu.post_raw(body([auth(), params()], boundary), ctype=content_type(boundary))
        assert_fault(reply, IPS, 30001)

    async def test_duplicate_auth_part(self, emu: Emulator) -> None:
        """Row 1: two ``auth`` parts make the request unparseable (30001)."""
        assert_fault(await emu.post([auth(), auth(), params()]), IPS, 30001)

    async def test_part_header_without_colon(self, emu: Emulator) -> None:
        """Row 1: a malformed part header line is 30001."""
        bad = file_part(b'"a\r\nb.jpg"', b"data")
        assert_fault(await emu.post([auth(), params(), bad]), IPS, 30001)


class TestRows2To6Authentication:
    async def test_no_auth_part(self, emu: Emulator) -> None:
        """Row 2: no ``auth`` part is authenticationFault 10000."""
        assert assert_fault(await emu.post([params()]), AUTH, 10000) == "No credentials"

    @pytest.mark.parametrize(
        "xml",
        [
            "<authHeader><user>u</user>",
            "",
            "not xml at all",
            "<authHeaders><user>uploader@example.com</user><password>s3cret</password></authHeaders>",
            (
                '<!DOCTYPE authHeader [<!ENTITY e "s3cret">]><authHeader><user>uploader@example.com'
                "</user><password>&e;</password></authHeader>"
            ),
        ],
        ids=["unclosed", "empty", "text", "wrong-root", "dtd"],
    )
    async def test_auth_not_an_auth_header(self, emu: Emulator, xml: str) -> None:
        """Row 3: an auth part that is not a well-formed ``authHeader`` is 30003."""
        reply = await emu.post([xml_part("auth", xml), params()])
        assert assert_fault(reply, IPS, 30003) == "Invalid authHeader XML"

    @pytest.mark.parametrize(
        ("user", "password"),
        [
            (None, PASSWORD),
            (USER, None),
            ("", PASSWORD),
            (USER, ""),
            ("   ", PASSWORD),
        ],
    )
    async def test_missing_user_or_password(
        self, emu: Emulator, user: str | None, password: str | None
    ) -> None:
        """Row 4: user or password missing or empty is 10000."""
        assert_fault(await emu.post([auth(user, password), params()]), AUTH, 10000)

    @pytest.mark.parametrize(
        ("user", "password"),
        [
            ("nobody@example.com", PASSWORD),
            (USER, "wrong"),
            (USER, PASSWORD.upper()),
            ("second@example.com", PASSWORD),
            (USER, f" {PASSWORD} "),
        ],
    )
    async def test_bad_credentials(self, emu: Emulator, user: str, password: str) -> None:
        """Row 5: unknown user or wrong password is 10001 with the vendor's reason text."""
        reply = await emu.post([auth(user, password), params()])
        assert assert_fault(reply, AUTH, 10001) == "Invalid username/password"

    async def test_disabled_user(self, emu: Emulator) -> None:
        """Row 6: a disabled user with the right password is 10002."""
        assert_fault(await emu.post([auth("gone@example.com", "pw-gone"), params()]), AUTH, 10002)


class TestRows7To12Parameters:
    async def test_no_upload_params_part(self, emu: Emulator) -> None:
        """Row 7: no ``uploadParams`` part is 30002."""
        reply = await emu.post([auth()])
        assert assert_fault(reply, IPS, 30002) == "Missing parameter: uploadParams"

    @pytest.mark.parametrize(
        "xml",
        [
            "<uploadPostParam><companyHandle>c|42</companyHandle>",
            "<uploadPost><companyHandle>c|42</companyHandle><jobName>j</jobName></uploadPost>",
            "",
        ],
        ids=["unclosed", "wrong-root", "empty"],
    )
    async def test_upload_params_not_xml(self, emu: Emulator, xml: str) -> None:
        """Row 8: a malformed ``uploadParams`` part or a wrong root is 30003."""
        reply = await emu.post([auth(), xml_part("uploadParams", xml)])
        assert_fault(reply, IPS, 30003)

    @pytest.mark.parametrize(
        ("kwargs", "missing"),
        [
            ({"company": None}, "companyHandle"),
            ({"company": ""}, "companyHandle"),
            ({"job_name": None}, "jobName"),
            ({"job_name": ""}, "jobName"),
        ],
    )
    async def test_missing_parameters(
        self, emu: Emulator, kwargs: dict[str, object], missing: str
    ) -> None:
        """Row 9: missing companyHandle, no jobName/jobHandle, empty jobName are 30002."""
        reply = await emu.post([auth(), params(**kwargs)])
        assert missing in assert_fault(reply, IPS, 30002)
        await assert_nothing_happened(emu)

    async def test_unknown_company(self, emu: Emulator) -> None:
        """Row 10: an unknown companyHandle is authorizationFault 20000."""
        assert_fault(await emu.post([auth(), params(company="c|999")]), AUTHZ, 20000)

    async def test_user_not_member_of_company(self, emu: Emulator) -> None:
        """Row 11: a user outside the company is 20006."""
        reply = await emu.post([auth("outsider@example.com", "pw-outsider"), params()])
        assert_fault(reply, AUTHZ, 20006)

    async def test_image_portal_user_cannot_upload(self, emu: Emulator) -> None:
        """Row 12: role ImagePortalUser is 20003."""
        reply = await emu.post([auth("viewer@example.com", "pw-viewer"), params()])
        assert_fault(reply, AUTHZ, 20003)
        await assert_nothing_happened(emu)


class TestRows13To15Jobs:
    async def test_unknown_job_handle(self, emu: Emulator) -> None:
        """Row 13: an unknown jobHandle is 30001."""
        reply = await emu.upload("j|42||nope|1", {"a.jpg": b"x"})
        assert assert_fault(reply, IPS, 30001).startswith("Invalid jobHandle")
        assert emu.stored() == {}

    async def test_closed_job_handle(self, emu: Emulator) -> None:
        """Row 13: a closed job's handle is 30001."""
        handle = await emu.open_job()
        (await emu.end_job(handle)).job_handle()
        assert_fault(await emu.upload(handle, {"a.jpg": b"x"}), IPS, 30001)

    async def test_huge_job_handle_echo_stays_well_formed(self, emu: Emulator) -> None:
        """Row 13: a 10,000-character unknown handle still yields a §4.2-shaped document."""
        reply = await emu.upload("j|42||" + "<&>" * 3000 + "\x85|1", {"a.jpg": b"x"})
        assert len(assert_fault(reply, IPS, 30001)) < 1000

    async def test_job_of_another_user(self, emu: Emulator) -> None:
        """Row 14: a job opened by another user of the same company is 20005."""
        handle = await emu.open_job()
        reply = await emu.upload(
            handle, {"a.jpg": b"x"}, user="second@example.com", password="pw-second"
        )
        assert_fault(reply, AUTHZ, 20005)
        assert emu.stored() == {}

    @pytest.mark.parametrize("name", ["a|b", "tab\there", "del\x7f", "nl\nx", "c1\x85x"])
    async def test_job_name_with_bad_characters(self, emu: Emulator, name: str) -> None:
        """Row 15: a jobName with ``|`` or control characters is 30001."""
        reply = await emu.post([auth(), params(job_name=name)])
        assert assert_fault(reply, IPS, 30001) == "Invalid parameter: jobName"
        await assert_nothing_happened(emu)


class TestRows16To17Options:
    async def test_upload_params_element_missing(self, emu: Emulator) -> None:
        """Row 16: an opening POST without the ``uploadParams`` element is 30002."""
        assert_fault(await emu.post([auth(), params(options=None)]), IPS, 30002)

    @pytest.mark.parametrize(
        "child", ["overwrite", "readyForPublish", "createMask", "emailSetting"]
    )
    async def test_required_option_missing(self, emu: Emulator, child: str) -> None:
        """Row 16: each required UploadPostJob child missing is 30002 naming it."""
        start = REQUIRED_OPTIONS.index(f"<{child}>")
        end = REQUIRED_OPTIONS.index(f"</{child}>") + len(f"</{child}>")
        options = REQUIRED_OPTIONS[:start] + REQUIRED_OPTIONS[end:]
        reply = await emu.post([auth(), params(options=options)])
        assert child in assert_fault(reply, IPS, 30002)

    async def test_preserve_publish_state_may_be_missing(self, emu: Emulator) -> None:
        """D-19: preservePublishState is the one "required" child that may be left out."""
        options = REQUIRED_OPTIONS.replace("<preservePublishState>true</preservePublishState>", "")
        (await emu.post([auth(), params(options=options)])).job_handle()

    @pytest.mark.parametrize(
        "extra",
        [
            "<preserveCrop>yes</preserveCrop>",
            "<unsharpMaskOptions><amount>6</amount></unsharpMaskOptions>",
            "<unsharpMaskOptions><threshold>1.5</threshold></unsharpMaskOptions>",
            "<pdfOptions><colorspace>rgb</colorspace></pdfOptions>",
            "<bogusOption>1</bogusOption>",
            (
                "<manualCropOptions><left>1</left></manualCropOptions>"
                "<autoTransparentCropOptions><tolerance>0.5</tolerance></autoTransparentCropOptions>"
            ),
        ],
        ids=["boolean", "range", "integer", "enum-case", "unknown-element", "two-crops"],
    )
    async def test_invalid_option(self, emu: Emulator, extra: str) -> None:
        """Row 17: bad boolean/number/enum/range, unknown element, two crops are 30001."""
        reply = await emu.post([auth(), params(options=REQUIRED_OPTIONS + extra)])
        assert assert_fault(reply, IPS, 30001).startswith("Invalid parameter")

    async def test_enum_is_case_sensitive(self, emu: Emulator) -> None:
        """Row 17: ``emailSetting`` ``none`` (wrong case) is 30001."""
        options = REQUIRED_OPTIONS.replace(">None<", ">none<")
        assert_fault(await emu.post([auth(), params(options=options)]), IPS, 30001)


class TestRows18To19FileParts:
    async def test_file_before_xml_parts(self, emu: Emulator) -> None:
        """Row 18: a file part before both XML parts is 30002 (strict part order)."""
        reply = await emu.post([auth(), *files({"a.jpg": b"x"}), params()])
        assert_fault(reply, IPS, 30002)
        await assert_nothing_happened(emu)

    async def test_file_first_accepted_when_lenient(self, start_emulator: StartEmulator) -> None:
        """D-04: with strict_part_order off the same POST is accepted."""
        emu = await start_emulator(strict_part_order=False)
        reply = await emu.post([*files({"a.jpg": b"x"}), auth(), params()])
        reply.job_handle()
        assert emu.stored() == {"a.jpg": b"x"}

    async def test_file_without_any_name(self, emu: Emulator) -> None:
        """Row 18: a file part with neither ``filename`` nor ``fileName`` is 30002."""
        reply = await emu.post([auth(), params(), file_part(None, b"x")])
        assert_fault(reply, IPS, 30002)
        await assert_nothing_happened(emu)

    async def test_file_name_with_two_file_parts(self, emu: Emulator) -> None:
        """Row 19: ``fileName`` together with two file parts is 30001, nothing stored."""
        reply = await emu.post(
            [auth(), params(file_name="x.jpg"), *files({"a.jpg": b"a", "b.jpg": b"b"})]
        )
        assert_fault(reply, IPS, 30001)
        await assert_nothing_happened(emu)

    async def test_file_above_max_file_size(self, start_emulator: StartEmulator) -> None:
        """Row 19: a file above max_file_size is 30001 for the whole POST."""
        emu = await start_emulator(max_file_size=100)
        reply = await emu.post([auth(), params(), *files({"big.jpg": b"x" * 101})])
        assert_fault(reply, IPS, 30001)
        await assert_nothing_happened(emu)

    async def test_file_of_exactly_max_file_size(self, start_emulator: StartEmulator) -> None:
        """D-18: a file of exactly max_file_size bytes is accepted."""
        emu = await start_emulator(max_file_size=100)
        (await emu.post([auth(), params(), *files({"ok.jpg": b"x" * 100})])).job_handle()
        assert emu.stored() == {"ok.jpg": b"x" * 100}


# Row 20 (folder ACLs, authorizationFault 20009) is not tested: the emulator does not implement
# the optional folder ACLs of D-21 row 20.


class TestRow21InternalError:
    async def test_injected_fault30000(self, start_emulator: StartEmulator) -> None:
        """Row 21: the fault plan's fault30000 is ipsApiFault 30000, HTTP 500, nothing stored."""
        emu = await start_emulator(faults="seed=1,fault30000=1")
        reply = await emu.post([auth(), params(), *files({"a.jpg": b"x"})])
        assert_fault(reply, IPS, 30000)
        await assert_nothing_happened(emu)

    async def test_injected_fault30000_honours_fault_http_status(
        self, start_emulator: StartEmulator
    ) -> None:
        """D-22 with row 21: the injected internal error comes after the request's checks, so
        it carries the client's faultHttpStatusCode like any other fault."""
        emu = await start_emulator(faults="seed=1,fault30000=1")
        extra = "<faultHttpStatusCode>200</faultHttpStatusCode>"
        reply = await emu.post([auth(extra=extra), params(), *files({"a.jpg": b"x"})])
        assert_fault(reply, IPS, 30000, status=200)
        await assert_nothing_happened(emu)

    async def test_injected_fault30000_after_a_real_fault(
        self, start_emulator: StartEmulator
    ) -> None:
        """A request that fails its checks gets that fault, not the injected one."""
        emu = await start_emulator(faults="seed=1,fault30000=1")
        reply = await emu.post([auth(password="bad"), params(), *files({"a.jpg": b"x"})])
        assert_fault(reply, AUTH, 10001)

    async def test_unexpected_exception(
        self, emu: Emulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Row 21: an unexpected exception while committing is 30000 with its text."""

        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(emulator_app, "commit", boom)
        reply = await emu.post([auth(), params(), *files({"a.jpg": b"x"})])
        assert "disk on fire" in assert_fault(reply, IPS, 30000)
        assert emu.staged() == []


class TestEvaluationOrder:
    async def test_wrong_password_before_missing_company(self, emu: Emulator) -> None:
        """Row 5 before row 9: wrong password and no companyHandle → 10001."""
        assert_fault(await emu.post([auth(password="bad"), params(company=None)]), AUTH, 10001)

    async def test_no_auth_before_no_params(self, emu: Emulator) -> None:
        """Row 2 before row 7: neither XML part → 10000."""
        assert_fault(await emu.post([]), AUTH, 10000)

    async def test_broken_auth_before_unknown_company(self, emu: Emulator) -> None:
        """Row 3 before row 10: broken auth XML and unknown company → 30003."""
        reply = await emu.post([xml_part("auth", "<authHeader>"), params(company="c|9")])
        assert_fault(reply, IPS, 30003)

    async def test_missing_password_before_disabled(self, emu: Emulator) -> None:
        """Row 4 before row 6: a disabled user without password → 10000."""
        assert_fault(await emu.post([auth("gone@example.com", ""), params()]), AUTH, 10000)

    async def test_wrong_password_before_disabled(self, emu: Emulator) -> None:
        """Row 5 before row 6: a disabled user with a wrong password → 10001."""
        assert_fault(await emu.post([auth("gone@example.com", "x"), params()]), AUTH, 10001)

    async def test_disabled_before_missing_params(self, emu: Emulator) -> None:
        """Row 6 before row 7: a disabled user and no uploadParams → 10002."""
        assert_fault(await emu.post([auth("gone@example.com", "pw-gone")]), AUTH, 10002)

    async def test_bad_credentials_before_broken_params(self, emu: Emulator) -> None:
        """Row 5 before row 8: wrong password and broken uploadParams XML → 10001."""
        reply = await emu.post([auth(password="x"), xml_part("uploadParams", "<oops")])
        assert_fault(reply, AUTH, 10001)

    async def test_missing_company_before_bad_job_name(self, emu: Emulator) -> None:
        """Row 9 before row 15: no companyHandle and jobName ``a|b`` → 30002."""
        assert_fault(await emu.post([auth(), params(company=None, job_name="a|b")]), IPS, 30002)

    async def test_unknown_company_before_bad_job_name(self, emu: Emulator) -> None:
        """Row 10 before row 15: unknown company and jobName ``a|b`` → 20000."""
        reply = await emu.post([auth(), params(company="c|9", job_name="a|b")])
        assert_fault(reply, AUTHZ, 20000)

    async def test_not_member_before_unknown_job(self, emu: Emulator) -> None:
        """Row 11 before row 13: outsider with an unknown jobHandle → 20006."""
        reply = await emu.post(
            [
                auth("outsider@example.com", "pw-outsider"),
                params(job_name=None, job_handle="j|42||x|1"),
            ]
        )
        assert_fault(reply, AUTHZ, 20006)

    async def test_role_before_bad_options(self, emu: Emulator) -> None:
        """Row 12 before row 17: ImagePortalUser with invalid options → 20003."""
        reply = await emu.post(
            [auth("viewer@example.com", "pw-viewer"), params(options=REQUIRED_OPTIONS + "<bogus/>")]
        )
        assert_fault(reply, AUTHZ, 20003)

    async def test_bad_job_name_before_missing_options(self, emu: Emulator) -> None:
        """Row 15 before row 16: jobName ``a|b`` and no uploadParams element → 30001."""
        reply = await emu.post([auth(), params(job_name="a|b", options=None)])
        assert_fault(reply, IPS, 30001)

    async def test_missing_option_before_bad_option(self, emu: Emulator) -> None:
        """Row 16 before row 17: a required child missing and a bad enum → 30002."""
        options = REQUIRED_OPTIONS.replace("<overwrite>true</overwrite>", "").replace(
            ">None<", ">bogus<"
        )
        assert_fault(await emu.post([auth(), params(options=options)]), IPS, 30002)

    async def test_bad_option_before_nameless_file(self, emu: Emulator) -> None:
        """Row 17 before row 18: a bad option and a nameless file part → 30001."""
        reply = await emu.post(
            [auth(), params(options=REQUIRED_OPTIONS + "<x/>"), file_part(None, b"x")]
        )
        assert_fault(reply, IPS, 30001)

    async def test_file_first_before_oversize(self, start_emulator: StartEmulator) -> None:
        """Row 18 before row 19: a file before the XML parts that is also too big → 30002."""
        emu = await start_emulator(max_file_size=10)
        reply = await emu.post([auth(), *files({"a.jpg": b"x" * 11}), params()])
        assert_fault(reply, IPS, 30002)

    async def test_nameless_file_before_file_name_with_two_parts(self, emu: Emulator) -> None:
        """Row 18 before row 19: no filename anywhere beats the two-part rule → 30002."""
        reply = await emu.post(
            [
                auth(),
                params(),
                file_part(None, b"a", name="file1"),
                file_part(None, b"b", name="file2"),
            ]
        )
        assert_fault(reply, IPS, 30002)

    async def test_missing_company_before_bad_end_job(self, emu: Emulator) -> None:
        """Row 9 before the endJob check: no companyHandle and endJob ``yes`` → 30002."""
        reply = await emu.post(
            [auth(), params(company=None, job_name=None, job_handle="j|42||x|1", end_job="yes")]
        )
        assert_fault(reply, IPS, 30002)

    async def test_unknown_company_before_bad_end_job(self, emu: Emulator) -> None:
        """Row 10 before the endJob check: unknown company and endJob ``yes`` → 20000."""
        reply = await emu.post([auth(), params(company="c|9", end_job="yes")])
        assert_fault(reply, AUTHZ, 20000)

    async def test_other_users_job_before_bad_end_job(self, emu: Emulator) -> None:
        """Row 14 before the endJob check: another user's job and endJob ``yes`` → 20005."""
        handle = await emu.open_job()
        reply = await emu.post(
            [
                auth("second@example.com", "pw-second"),
                params(job_name=None, job_handle=handle, end_job="yes"),
            ]
        )
        assert_fault(reply, AUTHZ, 20005)

    async def test_wrong_password_before_oversize(self, start_emulator: StartEmulator) -> None:
        """Row 5 before row 19: wrong password and a too-big file → 10001."""
        emu = await start_emulator(max_file_size=10)
        reply = await emu.post([auth(password="x"), params(), *files({"a.jpg": b"x" * 50})])
        assert_fault(reply, AUTH, 10001)


class TestFaultHttpStatusCode:
    @pytest.mark.parametrize("code", [200, 418, 599])
    async def test_override_honoured(self, emu: Emulator, code: int) -> None:
        """D-22: faultHttpStatusCode 200-599 replaces the 500 of a fault."""
        extra = f"<faultHttpStatusCode>{code}</faultHttpStatusCode>"
        reply = await emu.post([auth(password="bad", extra=extra), params()])
        assert_fault(reply, AUTH, 10001, status=code)

    async def test_override_applies_to_later_rows(self, emu: Emulator) -> None:
        """D-22: the override also applies to faults found after authentication."""
        extra = "<faultHttpStatusCode>200</faultHttpStatusCode>"
        reply = await emu.post([auth(extra=extra), params(company="c|999")])
        assert_fault(reply, AUTHZ, 20000, status=200)

    async def test_override_with_missing_password(self, emu: Emulator) -> None:
        """D-22: a readable auth part without password still carries the override."""
        extra = "<faultHttpStatusCode>200</faultHttpStatusCode>"
        assert_fault(
            await emu.post([auth(password=None, extra=extra), params()]), AUTH, 10000, status=200
        )

    @pytest.mark.parametrize(
        "value", ["99", "700", "abc", "", "2OO", "\u00b2", "-200", "204", "205", "304"]
    )
    async def test_override_ignored(self, emu: Emulator, value: str) -> None:
        """D-22: a value that is not an integer 200-599 (or a status that cannot carry a body)
        leaves the fault at 500."""
        extra = f"<faultHttpStatusCode>{value}</faultHttpStatusCode>"
        assert_fault(await emu.post([auth(password="bad", extra=extra), params()]), AUTH, 10001)

    @pytest.mark.parametrize(
        "xml",
        [
            "<authHeader><faultHttpStatusCode>200</faultHttpStatusCode><user>x</user>",
            "<notAuth><faultHttpStatusCode>200</faultHttpStatusCode></notAuth>",
        ],
        ids=["not-well-formed", "wrong-root"],
    )
    async def test_override_not_applied_when_auth_broken(self, emu: Emulator, xml: str) -> None:
        """D-22: with a broken auth part the fault is 500 whatever it says."""
        assert_fault(await emu.post([xml_part("auth", xml), params()]), IPS, 30003)

    async def test_override_not_applied_without_multipart(self, emu: Emulator) -> None:
        """D-22: a row-1 fault is 500 even if the body mentions an override."""
        reply = await emu.post_raw(
            b"<faultHttpStatusCode>200</faultHttpStatusCode>", ctype="text/xml"
        )
        assert_fault(reply, IPS, 30001)

    async def test_success_stays_200(self, emu: Emulator) -> None:
        """D-22: the override concerns faults only; a success is 200."""
        extra = "<faultHttpStatusCode>418</faultHttpStatusCode>"
        (await emu.post([auth(extra=extra), params()])).job_handle()
