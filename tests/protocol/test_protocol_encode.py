"""Encoder tests: §2.7 golden parts, §3.1/§3.3/§3.4 element order, encoding details."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import pytest

from bulkup.errors import ProtocolValueError
from bulkup.protocol import (
    ELEMENT_ORDER,
    KNOWN_NAMESPACES,
    NS_2014_04_03,
    NS_UNVERSIONED,
    AuthHeader,
    AutoSetCreationOptions,
    EmailSetting,
    ThumbnailOptions,
    UnsharpMaskOptions,
    UploadPostJob,
    UploadPostParam,
    element_order,
    encode_auth_header,
    encode_upload_post_param,
    processing,
)

from ._builders import CROPS, NESTED_ORDER, SPEC_JOB_ORDER, child_names, full_job, local, texts

HANDLE = "j|42||bulkup-20250101T120000Z-9f2c01ab|1007"

# §2.7, verbatim (example A's uploadPostParam is pretty-printed there).
GOLDEN_AUTH_A = (
    '<authHeader xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><user>uploader@example.com'
    "</user><password>s3cret</password><locale>en-US</locale><appName>bulkup</appName>"
    "<appVersion>0.1</appVersion></authHeader>"
)
GOLDEN_AUTH_B = (
    '<authHeader xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><user>uploader@example.com'
    "</user><password>s3cret</password><appName>bulkup</appName><appVersion>0.1</appVersion>"
    "</authHeader>"
)
GOLDEN_PARAM_A_PRETTY = """
<uploadPostParam xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03">
  <companyHandle>c|42</companyHandle>
  <jobName>bulkup-20250101T120000Z-9f2c01ab</jobName>
  <description>nightly catalogue sync</description>
  <uploadParams>
    <overwrite>true</overwrite>
    <readyForPublish>false</readyForPublish>
    <preservePublishState>true</preservePublishState>
    <createMask>false</createMask>
    <emailSetting>None</emailSetting>
  </uploadParams>
</uploadPostParam>
"""
GOLDEN_PARAM_B = (
    '<uploadPostParam xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><companyHandle>c|42'
    "</companyHandle><jobHandle>j|42||bulkup-20250101T120000Z-9f2c01ab|1007</jobHandle>"
    "</uploadPostParam>"
)
GOLDEN_PARAM_C = (
    '<uploadPostParam xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><companyHandle>c|42'
    "</companyHandle><jobHandle>j|42||bulkup-20250101T120000Z-9f2c01ab|1007</jobHandle>"
    "<fileName>Acme/shoes/2025/chaussure-été.jpg</fileName></uploadPostParam>"
)
GOLDEN_PARAM_D = (
    '<uploadPostParam xmlns="http://www.scene7.com/IpsApi/xsd/2014-04-03"><companyHandle>c|42'
    "</companyHandle><jobHandle>j|42||bulkup-20250101T120000Z-9f2c01ab|1007</jobHandle>"
    "<endJob>true</endJob></uploadPostParam>"
)


def compact(pretty: str) -> bytes:
    """The spec's pretty-printed XML without the indentation between tags."""
    return re.sub(r">\s+<", "><", pretty.strip()).encode("utf-8")


def auth(**overrides: object) -> AuthHeader:
    """The example credentials of §2.7."""
    fields: dict[str, object] = {
        "user": "uploader@example.com",
        "password": "s3cret",
        "app_version": "0.1",
    }
    fields.update(overrides)
    return AuthHeader(**fields)  # type: ignore[arg-type]


def parse(data: bytes) -> ET.Element:
    """Parse with the standard library, not with the code under test."""
    return ET.fromstring(data)


class TestGoldenParts:
    """Byte-for-byte comparison with the §2.7 examples."""

    def test_auth_header_example_a(self) -> None:
        """Example A's authHeader (with locale) is reproduced exactly."""
        assert encode_auth_header(auth(locale="en-US")) == GOLDEN_AUTH_A.encode()

    def test_auth_header_example_b(self) -> None:
        """Example B's authHeader (no locale) is reproduced exactly."""
        assert encode_auth_header(auth()) == GOLDEN_AUTH_B.encode()

    def test_opening_post_example_a(self) -> None:
        """Example A's uploadPostParam equals the compacted spec text."""
        param = UploadPostParam(
            company_handle="c|42",
            job_name="bulkup-20250101T120000Z-9f2c01ab",
            description="nightly catalogue sync",
            upload_params=UploadPostJob(
                overwrite=True,
                ready_for_publish=False,
                create_mask=False,
                email_setting=EmailSetting.NONE,
            ),
        )
        assert encode_upload_post_param(param) == compact(GOLDEN_PARAM_A_PRETTY)

    def test_follow_up_post_example_b(self) -> None:
        """Example B: companyHandle and jobHandle only."""
        param = UploadPostParam(company_handle="c|42", job_handle=HANDLE)
        assert encode_upload_post_param(param) == GOLDEN_PARAM_B.encode()

    def test_non_ascii_file_name_example_c(self) -> None:
        """Example C: the non-ASCII fileName is sent as UTF-8."""
        param = UploadPostParam(
            company_handle="c|42", job_handle=HANDLE, file_name="Acme/shoes/2025/chaussure-été.jpg"
        )
        assert encode_upload_post_param(param) == GOLDEN_PARAM_C.encode("utf-8")

    def test_closing_post_example_d(self) -> None:
        """Example D: endJob true."""
        param = UploadPostParam(company_handle="c|42", job_handle=HANDLE, end_job=True)
        assert encode_upload_post_param(param) == GOLDEN_PARAM_D.encode()


class TestElementOrder:
    """Children come out in the §3.1, §3.3 and §3.4 order."""

    def test_auth_header_order_with_every_field(self) -> None:
        """All seven authHeader children in schema order."""
        header = auth(locale="fr-FR", gzip_response=True, fault_http_status_code=200)
        root = parse(encode_auth_header(header))
        assert child_names(root) == [
            "user",
            "password",
            "locale",
            "appName",
            "appVersion",
            "gzipResponse",
            "faultHttpStatusCode",
        ]
        assert texts(root)["gzipResponse"] == "true"
        assert texts(root)["faultHttpStatusCode"] == "200"

    def test_upload_post_param_order_with_every_field(self) -> None:
        """All uploadPostParam children in §3.1 order (jobName case)."""
        param = UploadPostParam(
            company_handle="c|1",
            job_name="n",
            locale="en",
            description="d",
            dest_folder="Acme/x/",
            file_name="f.jpg",
            end_job=True,
            upload_params=full_job(),
        )
        names = child_names(parse(encode_upload_post_param(param)))
        assert names == [
            "companyHandle",
            "jobName",
            "locale",
            "description",
            "destFolder",
            "fileName",
            "endJob",
            "uploadParams",
        ]

    @pytest.mark.parametrize("crop", CROPS)
    def test_full_job_children_follow_section_3_3(self, crop: str) -> None:
        """Every UploadPostJob child is present, in the §3.3 sequence."""
        param = UploadPostParam(company_handle="c|1", job_name="n", upload_params=full_job(crop))
        job = parse(encode_upload_post_param(param)).find(f"{{{NS_2014_04_03}}}uploadParams")
        assert job is not None
        expected = [name for name in SPEC_JOB_ORDER if name not in CROPS or name == crop]
        assert child_names(job) == expected
        assert len(SPEC_JOB_ORDER) == 23

    def test_nested_children_follow_their_tables(self) -> None:
        """Every nested type's children come out in the order of its §3.4 table or example."""
        param = UploadPostParam(company_handle="c|1", job_name="n", upload_params=full_job())
        root = parse(encode_upload_post_param(param))
        seen = set()
        for element in root.iter():
            name = local(element.tag)
            if name in NESTED_ORDER:
                assert child_names(element) == NESTED_ORDER[name], name
                seen.add(name)
        assert seen == set(NESTED_ORDER) - {"autoColorCropOptions", "autoTransparentCropOptions"}

    def test_order_tables_cover_every_dataclass_field(self) -> None:
        """The order tables list each field of each request type and each processing option
        exactly once."""
        options = [getattr(processing, name) for name in processing.__all__ if name != "NESTED"]
        assert len(options) == 15
        for cls in [*ELEMENT_ORDER, *options]:
            attributes = [attribute for attribute, _ in element_order(cls)]
            assert attributes == [f.name for f in dataclasses.fields(cls)], cls

    def test_element_order_refuses_other_types(self) -> None:
        with pytest.raises(KeyError):
            element_order(dict)

    def test_job_table_matches_spec_list(self) -> None:
        """The UploadPostJob table is exactly the §3.3 list."""
        assert [element for _, element in ELEMENT_ORDER[UploadPostJob]] == SPEC_JOB_ORDER


class TestEncodingDetails:
    """Booleans, omission, numbers, arrays and namespaces."""

    def test_no_xml_declaration_and_utf8(self) -> None:
        """Parts start with the root element and are UTF-8."""
        data = encode_upload_post_param(
            UploadPostParam(company_handle="c|1", job_handle="j", description="ü€😀")
        )
        assert data.startswith(b"<uploadPostParam xmlns=")
        assert "ü€😀".encode() in data

    def test_end_job_false_is_omitted(self) -> None:
        """endJob appears only when true."""
        data = encode_upload_post_param(UploadPostParam(company_handle="c|1", job_handle="j"))
        assert b"endJob" not in data

    def test_none_fields_are_omitted(self) -> None:
        """Optional fields left at None produce no element."""
        job = UploadPostJob(
            overwrite=False, ready_for_publish=True, create_mask=True, email_setting="All"
        )
        root = parse(
            encode_upload_post_param(
                UploadPostParam(company_handle="c", job_name="n", upload_params=job)
            )
        )
        uploads = root[-1]
        assert child_names(uploads) == [
            "overwrite",
            "readyForPublish",
            "preservePublishState",
            "createMask",
            "emailSetting",
        ]
        assert texts(uploads) == {
            "overwrite": "false",
            "readyForPublish": "true",
            "preservePublishState": "true",
            "createMask": "true",
            "emailSetting": "All",
        }

    def test_app_name_and_version_can_be_omitted(self) -> None:
        """app_name/app_version None drop the elements."""
        root = parse(encode_auth_header(auth(app_name=None, app_version=None)))
        assert child_names(root) == ["user", "password"]

    def test_doubles_and_ints(self) -> None:
        """Whole doubles have no fraction; others keep Python's shortest repr."""
        job = UploadPostJob(
            overwrite=True,
            ready_for_publish=True,
            create_mask=False,
            email_setting=EmailSetting.ALL,
            unsharp_mask_options=UnsharpMaskOptions(amount=2.0, radius=0.1, threshold=0),
        )
        param = UploadPostParam(company_handle="c", job_name="n", upload_params=job)
        unsharp = parse(encode_upload_post_param(param))[-1][-1]
        assert texts(unsharp) == {"amount": "2", "radius": "0.1", "threshold": "0"}

    def test_handle_arrays_are_repeated_items(self) -> None:
        """HandleArray values become repeated items elements (§3.4 example)."""
        job = full_job()
        param = UploadPostParam(company_handle="c", job_name="n", upload_params=job)
        data = encode_upload_post_param(param)
        assert (
            b"<projectHandleArray><items>p|1|7</items><items>p|1|9</items></projectHandleArray>"
            in data
        )

    def test_empty_handle_array_and_empty_type(self) -> None:
        """An empty array or an all-None nested type is an empty element."""
        job = UploadPostJob(
            overwrite=True,
            ready_for_publish=True,
            create_mask=False,
            email_setting=EmailSetting.ALL,
            auto_set_creation_options=AutoSetCreationOptions(auto_sets_array=()),
            project_handle_array=[],  # type: ignore[arg-type]
        )
        data = encode_upload_post_param(
            UploadPostParam(company_handle="c", job_name="n", upload_params=job)
        )
        assert (
            b"<autoSetCreationOptions><autoSetsArray></autoSetsArray></autoSetCreationOptions>"
            in data
        )
        assert b"<projectHandleArray></projectHandleArray>" in data
        assert ThumbnailOptions().thumbnail_time is None

    @pytest.mark.parametrize("namespace", KNOWN_NAMESPACES)
    def test_namespace_is_configurable(self, namespace: str) -> None:
        """Any §2.6 namespace can be the root's default namespace."""
        root = parse(encode_auth_header(auth(), namespace=namespace))
        assert root.tag == f"{{{namespace}}}authHeader"
        assert all(child.tag.startswith(f"{{{namespace}}}") for child in root)

    def test_unversioned_auth_header(self) -> None:
        """The authHeader can be sent in the unversioned namespace (D-02)."""
        data = encode_auth_header(auth(), namespace=NS_UNVERSIONED)
        assert data.startswith(b'<authHeader xmlns="http://www.scene7.com/IpsApi/xsd">')

    def test_unknown_namespace_is_refused(self) -> None:
        """A namespace outside §2.6 raises ProtocolValueError naming the namespace."""
        with pytest.raises(ProtocolValueError, match="namespace"):
            encode_auth_header(auth(), namespace="urn:other")

    def test_hostile_text_is_escaped_by_the_encoder(self) -> None:
        """Markup characters in values never produce extra elements."""
        param = UploadPostParam(
            company_handle="c", job_handle="j", description="</description><endJob>true</endJob>"
        )
        root = parse(encode_upload_post_param(param))
        assert child_names(root) == ["companyHandle", "jobHandle", "description"]
        assert texts(root)["description"] == "</description><endJob>true</endJob>"

    def test_unrepresentable_character_names_the_element(self) -> None:
        """A control character raises ProtocolValueError naming the element path."""
        param = UploadPostParam(company_handle="c", job_handle="j", file_name="a\rb")
        with pytest.raises(ProtocolValueError, match="uploadPostParam/fileName"):
            encode_upload_post_param(param)

    def test_nested_unrepresentable_character_names_the_path(self) -> None:
        """Nested strings are checked too and the full path is named."""
        job = dataclasses.replace(full_job(), project_handle_array=("ok", "bad\x00"))
        param = UploadPostParam(company_handle="c", job_name="n", upload_params=job)
        with pytest.raises(ProtocolValueError, match="uploadParams/projectHandleArray/items"):
            encode_upload_post_param(param)

    def test_encoding_is_deterministic(self) -> None:
        """Equal parameters encode to identical bytes (callers may cache)."""
        param = UploadPostParam(company_handle="c", job_name="n", upload_params=full_job())
        same = UploadPostParam(company_handle="c", job_name="n", upload_params=full_job())
        assert param == same and hash(param) == hash(same)
        assert encode_upload_post_param(param) == encode_upload_post_param(same)
