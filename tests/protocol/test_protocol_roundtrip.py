"""Property tests: hostile strings survive encoding, forbidden characters are refused.

Encoded bytes are parsed back with the standard library's ElementTree, never with bulkup code.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkup.errors import ProtocolValueError
from bulkup.protocol import (
    AuthHeader,
    ColorManagementOptions,
    EmailSetting,
    IllustratorOptions,
    UploadPostJob,
    UploadPostParam,
    encode_auth_header,
    encode_upload_post_param,
)

from ._builders import local, texts

FORBIDDEN = [chr(c) for c in range(0x20) if chr(c) not in "\t\n"] + [
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
]
HOSTILE_PIECES = [
    "&",
    "<",
    ">",
    "]]>",
    '"',
    "'",
    "\t",
    "\n",
    "&amp;",
    "&#0;",
    "<![CDATA[x]]>",
    "<!--",
    "<?pi?>",
    "é",
    "€",
    "\u2028",
    "\x85",
    "\x7f",
    "\ufeff",
    "😀",
    "\U0010fffd",
    " ",
    "|",
    "\\",
]

allowed_char = st.characters(codec="utf-8", exclude_characters="".join(FORBIDDEN))
allowed_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(allowed_char, max_size=20)), max_size=30
).map("".join)
# Long strings cheaply: a short hostile string repeated (keeps Hypothesis' entropy budget).
long_text = st.tuples(allowed_text.filter(bool), st.integers(100, 2000)).map(
    lambda pair: (pair[0] * pair[1])[:20_000]
)
hostile = st.one_of(allowed_text, long_text)
hostile_non_empty = hostile.filter(bool)
ELEMENT_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,10}", fullmatch=True)


@st.composite
def with_forbidden(draw: st.DrawFn) -> str:
    """A hostile string with one forbidden character inserted somewhere."""
    base = draw(allowed_text)
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(st.sampled_from(FORBIDDEN)) + base[at:]


def parse(data: bytes) -> ET.Element:
    """Parse with the standard library."""
    return ET.fromstring(data)


class TestAuthHeaderRoundTrip:
    """authHeader strings survive encode -> ElementTree parse."""

    @given(
        user=hostile_non_empty, password=hostile_non_empty, app_name=hostile, app_version=hostile
    )
    def test_strings_round_trip(
        self, user: str, password: str, app_name: str, app_version: str
    ) -> None:
        """user, password, appName and appVersion come back unchanged."""
        header = AuthHeader(
            user=user, password=password, app_name=app_name, app_version=app_version
        )
        got = texts(parse(encode_auth_header(header)))
        assert got == {
            "user": user,
            "password": password,
            "appName": app_name,
            "appVersion": app_version,
        }

    @given(password=with_forbidden())
    def test_forbidden_password_is_refused_without_echo(self, password: str) -> None:
        """A password XML cannot carry is refused; the message does not contain it."""
        with pytest.raises(ProtocolValueError) as caught:
            encode_auth_header(AuthHeader(user="u", password=password))
        message = str(caught.value)
        assert message == "authHeader/password contains a character XML cannot carry"
        assert password not in message

    @given(user=with_forbidden(), password=hostile_non_empty.filter(lambda p: len(p) > 3))
    def test_forbidden_user_is_refused_without_password(self, user: str, password: str) -> None:
        """A bad user is refused naming user; the password is not in the message."""
        with pytest.raises(ProtocolValueError, match="authHeader/user") as caught:
            encode_auth_header(AuthHeader(user=user, password=password))
        assert password not in str(caught.value)


class TestUploadPostParamRoundTrip:
    """uploadPostParam strings survive encode -> ElementTree parse."""

    @given(
        company=hostile_non_empty,
        job_name=hostile_non_empty,
        description=hostile,
        dest_folder=hostile,
        file_name=hostile,
    )
    def test_top_level_strings(
        self, company: str, job_name: str, description: str, dest_folder: str, file_name: str
    ) -> None:
        """companyHandle, jobName, description, destFolder, fileName round-trip."""
        param = UploadPostParam(
            company_handle=company,
            job_name=job_name,
            description=description,
            dest_folder=dest_folder,
            file_name=file_name,
        )
        assert texts(parse(encode_upload_post_param(param))) == {
            "companyHandle": company,
            "jobName": job_name,
            "description": description,
            "destFolder": dest_folder,
            "fileName": file_name,
        }

    @given(handle=hostile_non_empty)
    def test_job_handle(self, handle: str) -> None:
        """jobHandle round-trips."""
        param = UploadPostParam(company_handle="c", job_handle=handle, end_job=True)
        got = texts(parse(encode_upload_post_param(param)))
        assert got == {"companyHandle": "c", "jobHandle": handle, "endJob": "true"}

    @given(
        keywords=hostile,
        url=hostile,
        handles=st.lists(hostile_non_empty, max_size=4),
        profile=hostile_non_empty,
        color_space=hostile_non_empty,
        in_design=st.dictionaries(ELEMENT_NAME, hostile, max_size=3),
    )
    def test_job_strings(
        self,
        keywords: str,
        url: str,
        handles: list[str],
        profile: str,
        color_space: str,
        in_design: dict[str, str],
    ) -> None:
        """xmpKeywords, postHttpUrl, handle items, profiles, colorSpace and inDesign texts
        round-trip."""
        job = UploadPostJob(
            overwrite=True,
            ready_for_publish=False,
            create_mask=False,
            email_setting=EmailSetting.ALL,
            illustrator_options=IllustratorOptions(color_space=color_space),
            color_management_options=ColorManagementOptions(source_profile_handle=profile),
            project_handle_array=tuple(handles),
            post_http_url=url,
            in_design_options=in_design,
            xmp_keywords=keywords,
        )
        root = parse(
            encode_upload_post_param(
                UploadPostParam(company_handle="c", job_name="n", upload_params=job)
            )
        )
        uploads = root[-1]
        got = {local(child.tag): child for child in uploads}
        assert texts(uploads)["xmpKeywords"] == keywords
        assert texts(uploads)["postHttpUrl"] == url
        assert [item.text or "" for item in got["projectHandleArray"]] == handles
        assert texts(got["illustratorOptions"]) == {"colorSpace": color_space}
        assert texts(got["colorManagementOptions"]) == {"sourceProfileHandle": profile}
        assert texts(got["inDesignOptions"]) == in_design


PARAM_STRING_FIELDS = ["company_handle", "job_name", "description", "dest_folder", "file_name"]
WIRE_NAMES = {
    "company_handle": "companyHandle",
    "job_name": "jobName",
    "description": "description",
    "dest_folder": "destFolder",
    "file_name": "fileName",
}


class TestForbiddenCharacters:
    """Strings XML 1.0 cannot carry unchanged raise ProtocolValueError naming the element."""

    @given(field=st.sampled_from(PARAM_STRING_FIELDS), value=with_forbidden())
    def test_param_fields(self, field: str, value: str) -> None:
        """Any uploadPostParam string with a forbidden character is refused, naming it."""
        base = UploadPostParam(company_handle="c", job_name="n")
        param = dataclasses.replace(base, **{field: value})
        with pytest.raises(ProtocolValueError, match=f"uploadPostParam/{WIRE_NAMES[field]} "):
            encode_upload_post_param(param)

    @given(value=with_forbidden())
    def test_xmp_keywords(self, value: str) -> None:
        """A forbidden character in xmpKeywords is refused, naming the path."""
        job = UploadPostJob(
            overwrite=True,
            ready_for_publish=False,
            create_mask=False,
            email_setting=EmailSetting.ALL,
            xmp_keywords=value,
        )
        param = UploadPostParam(company_handle="c", job_name="n", upload_params=job)
        with pytest.raises(ProtocolValueError, match="uploadPostParam/uploadParams/xmpKeywords"):
            encode_upload_post_param(param)

    @pytest.mark.parametrize(
        "char", ["\r", "\x00", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff", "\ud83d"]
    )
    def test_each_forbidden_class(self, char: str) -> None:
        """CR, NUL, VT, FF, other C0, U+FFFE, U+FFFF and lone surrogates are all refused."""
        with pytest.raises(ProtocolValueError, match="uploadPostParam/description"):
            encode_upload_post_param(
                UploadPostParam(company_handle="c", job_handle="j", description=f"a{char}b")
            )

    @pytest.mark.parametrize("char", ["\t", "\n", "\x7f", "\x85", "\ufffd", "\U0001f600"])
    def test_allowed_edge_characters(self, char: str) -> None:
        """TAB, LF, DEL, NEL, U+FFFD and astral characters are carried unchanged."""
        data = encode_upload_post_param(
            UploadPostParam(company_handle="c", job_handle="j", description=f"a{char}b")
        )
        assert texts(parse(data))["description"] == f"a{char}b"
