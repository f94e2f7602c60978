"""Success documents (§4.1, D-01, D-02), character sets (D-02, D-17) and gzip (§4.3)."""

from __future__ import annotations

import gzip

import pytest

from .conftest import PASSWORD, USER, Emulator
from .wire import (
    NS_2013,
    NS_2014,
    NS_BASE,
    Part,
    auth_xml,
    file_part,
    params_xml,
    xml_part,
)


def auth(ns: str | None = NS_2014, extra: str = "") -> Part:
    return xml_part("auth", auth_xml(USER, PASSWORD, ns=ns, extra=extra))


class TestUploadPostReturn:
    @pytest.mark.parametrize(
        ("request_ns", "answer_ns"),
        [
            (NS_2014, NS_2014),
            (NS_2013, NS_2013),
            (None, NS_2014),
        ],
        ids=["2014-04-03", "2013-02-15", "none"],
    )
    async def test_answer_in_request_namespace(
        self, emu: Emulator, request_ns: str | None, answer_ns: str
    ) -> None:
        """§4.1/D-02: uploadPostReturn follows the request's namespace (2014-04-03 if none)."""
        reply = await emu.post(
            [auth(), xml_part("uploadParams", params_xml(job_name="ns", ns=request_ns))]
        )
        handle = reply.job_handle(ns=answer_ns)
        assert handle == (await emu.jobs())[0]["handle"]

    async def test_handle_format(self, emu: Emulator) -> None:
        """D-27: job handles are ``j|<n>||<unique name>|<seq>``."""
        handle = await emu.open_job("nightly-sync")
        number, empty, name, seq = handle.split("|")[1:]
        assert (handle[:2], number, empty, name) == ("j|", "42", "", "nightly-sync")
        assert seq.isdigit()

    async def test_upload_post_params_root_accepted(self, emu: Emulator) -> None:
        """D-01: the prose's root name ``uploadPostParams`` is accepted too."""
        xml = params_xml(job_name="plural", root="uploadPostParams")
        (await emu.post([auth(), xml_part("uploadParams", xml)])).job_handle()

    @pytest.mark.parametrize("ns", [NS_BASE, None, NS_2013], ids=["unversioned", "none", "2013"])
    async def test_auth_header_namespaces(self, emu: Emulator, ns: str | None) -> None:
        """D-02: authHeader in the unversioned namespace, another version or none is accepted."""
        (
            await emu.post([auth(ns), xml_part("uploadParams", params_xml(job_name="a"))])
        ).job_handle()

    async def test_prefixed_elements(self, emu: Emulator) -> None:
        """D-02: elements are matched by local name, prefixes included."""
        xml = (
            f'<p:uploadPostParam xmlns:p="{NS_2014}"><p:companyHandle>c|42</p:companyHandle>'
            "<p:jobName>pfx</p:jobName><p:uploadParams><p:overwrite>true</p:overwrite>"
            "<p:readyForPublish>true</p:readyForPublish><p:createMask>false</p:createMask>"
            "<p:emailSetting>All</p:emailSetting></p:uploadParams></p:uploadPostParam>"
        )
        (await emu.post([auth(), xml_part("uploadParams", xml)])).job_handle()

    async def test_element_order_free(self, emu: Emulator) -> None:
        """D-03: children in any order are accepted (strict element order is off)."""
        xml = (
            "<uploadPostParam><uploadParams><emailSetting>None</emailSetting>"
            "<createMask>0</createMask><readyForPublish>1</readyForPublish>"
            "<overwrite>false</overwrite></uploadParams><jobName>late</jobName>"
            "<companyHandle>c|42</companyHandle></uploadPostParam>"
        )
        (await emu.post([auth(), xml_part("uploadParams", xml)])).job_handle()
        assert (await emu.jobs())[0]["options"]["overwrite"] is False


class TestCharsets:
    async def test_part_charset_latin1_without_declaration(self, emu: Emulator) -> None:
        """D-02: a part in ISO-8859-1 without declaration is decoded with the part charset."""
        xml = params_xml(job_name="café-job")
        part = xml_part("uploadParams", xml.encode("iso-8859-1"), charset="ISO-8859-1")
        handle = (await emu.post([auth(), part])).job_handle()
        assert handle.split("|")[3] == "café-job"
        assert (await emu.jobs())[0]["original_name"] == "café-job"

    async def test_declaration_encoding_wins(self, emu: Emulator) -> None:
        """D-02: an XML declaration's encoding beats the part's (wrong) charset."""
        xml = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + params_xml(job_name="décl")).encode(
            "iso-8859-1"
        )
        handle = (
            await emu.post([auth(), xml_part("uploadParams", xml, charset="UTF-8")])
        ).job_handle()
        assert (await emu.job(handle))["name"] == "décl"

    async def test_file_name_in_latin1_part(self, emu: Emulator) -> None:
        """D-02/D-17: ``fileName`` with é in an ISO-8859-1 part lands as é."""
        handle = await emu.open_job()
        xml = params_xml(job_handle=handle, file_name="Acme/été/crème.jpg")
        part = xml_part("uploadParams", xml.encode("iso-8859-1"), charset="ISO-8859-1")
        (await emu.post([auth(), part, file_part("file1.jpg", b"data")])).job_handle()
        assert emu.stored() == {"été/crème.jpg": b"data"}

    async def test_default_is_utf8(self, emu: Emulator) -> None:
        """D-02: without charset or declaration the part is UTF-8."""
        xml = params_xml(job_name="naïve").encode("utf-8")
        (await emu.post([auth(), xml_part("uploadParams", xml, charset=None)])).job_handle()
        assert (await emu.jobs())[0]["name"] == "naïve"

    @pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
    async def test_filename_header_encodings(self, emu: Emulator, encoding: str) -> None:
        """D-17: the filename header is read as UTF-8, falling back to ISO-8859-1."""
        handle = await emu.open_job()
        part = file_part("Acme/déjà.jpg", b"bytes", header_encoding=encoding)
        (
            await emu.post([auth(), xml_part("uploadParams", params_xml(job_handle=handle)), part])
        ).job_handle()
        assert emu.stored() == {"déjà.jpg": b"bytes"}


class TestGzip:
    async def test_accept_encoding_gzip(self, emu: Emulator) -> None:
        """§4.3: ``Accept-Encoding: gzip`` gets a gzipped uploadPostReturn."""
        reply = await emu.post(
            [auth(), xml_part("uploadParams", params_xml(job_name="gz"))],
            headers={"Accept-Encoding": "gzip, deflate"},
        )
        assert reply.gzipped
        assert gzip.decompress(reply.raw) == reply.body
        reply.job_handle()

    async def test_no_accept_encoding_no_gzip(self, emu: Emulator) -> None:
        """§4.3: without Accept-Encoding the body is plain."""
        reply = await emu.post([auth(), xml_part("uploadParams", params_xml(job_name="plain"))])
        assert not reply.gzipped
        reply.job_handle()

    async def test_gzip_response_false_wins(self, emu: Emulator) -> None:
        """§2.3: ``gzipResponse`` false switches gzip off even when the client accepts it."""
        reply = await emu.post(
            [
                auth(extra="<gzipResponse>false</gzipResponse>"),
                xml_part("uploadParams", params_xml(job_name="nogz")),
            ],
            headers={"Accept-Encoding": "gzip"},
        )
        assert not reply.gzipped
        reply.job_handle()

    async def test_gzip_response_true_wins(self, emu: Emulator) -> None:
        """§2.3: ``gzipResponse`` true switches gzip on without Accept-Encoding."""
        reply = await emu.post(
            [
                auth(extra="<gzipResponse>true</gzipResponse>"),
                xml_part("uploadParams", params_xml(job_name="gz")),
            ]
        )
        assert reply.gzipped
        reply.job_handle()

    async def test_fault_gzipped(self, emu: Emulator) -> None:
        """§4.3: fault documents are compressed the same way."""
        reply = await emu.post(
            [
                xml_part("auth", auth_xml(USER, "bad")),
                xml_part("uploadParams", params_xml(job_name="f")),
            ],
            headers={"Accept-Encoding": "gzip"},
        )
        assert reply.gzipped
        assert reply.fault()[1] == 10001
