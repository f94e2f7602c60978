"""The vendor's "Example POST request", framing repaired per spec §2.8, against the emulator.

``data/vendor_upload_example.txt`` is a verbatim copy of that example (Adobe docs, snapshot
``c5ea7eac``, file ``000_e1bc8a3f7314c7c8.txt`` in the shared seeds), trailing spaces and
defects included. When the seed file is present the copy is checked against it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import StartEmulator

COPY = Path(__file__).parent / "data" / "vendor_upload_example.txt"
SEED = Path(os.environ.get("BULKUP_VENDOR_SEED", "/work/shared/seeds/000_e1bc8a3f7314c7c8.txt"))
HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:")
USER, PASSWORD = "sampleuser@test.com", "vendor-pw"


def example_text() -> str:
    if COPY.exists():
        return COPY.read_text(encoding="utf-8")
    if SEED.exists():
        return seed_section(SEED.read_text(encoding="utf-8"))
    pytest.skip("neither the vendored copy nor the seed file is available")


def seed_section(text: str) -> str:
    """The code block under the seed's "## Example POST request" heading."""
    after = text.split("## Example POST request", 1)[1]
    block = after.split("```\n", 1)[1]
    return block.split("```", 1)[0]


def repair(text: str, file_bytes: list[bytes]) -> tuple[str, bytes, dict[str, str]]:
    """(boundary, body, request headers) with the §2.8 framing defects repaired.

    Closing delimiters before the end become plain delimiters, header/delimiter lines lose
    their trailing whitespace, every part gets a blank line between headers and content, lines
    end in CRLF, the redacted password ``*`` becomes a real one, and each ``<file bytes ... >``
    placeholder becomes real bytes.
    """
    lines = text.split("\n")
    blank = next(i for i, line in enumerate(lines) if not line.strip())
    head = {
        k.strip(): v.strip()
        for k, _, v in (line.partition(":") for line in lines[:blank] if ":" in line)
    }
    boundary = head["Content-Type"].split("boundary=")[1]
    delimiter = "--" + boundary
    parts: list[tuple[list[str], list[str]]] = []
    for line in lines[blank + 1 :]:
        if line.rstrip().startswith(delimiter):
            parts.append(([], []))
            in_headers = True
        elif not parts:
            continue  # preamble: the HTTP head's trailing blank line
        elif in_headers and HEADER_LINE.match(line):
            parts[-1][0].append(line.rstrip())
        elif in_headers and not line.strip():
            in_headers = False  # the (whitespace-only) separator line
        else:
            in_headers = False
            parts[-1][1].append(line)
    parts = [p for p in parts if p[0]]  # the last delimiter opens no part
    files = iter(file_bytes)
    out = bytearray()
    for headers, content in parts:
        text_content = "\r\n".join(content)
        text_content = text_content.replace(
            "<password>*</password>", f"<password>{PASSWORD}</password>"
        )
        data = (
            next(files)
            if text_content.strip() == "<file bytes ... >"
            else text_content.encode("ascii")
        )
        out += (delimiter + "\r\n" + "\r\n".join(headers) + "\r\n\r\n").encode("ascii")
        out += data + b"\r\n"
    out += (delimiter + "--\r\n").encode("ascii")
    return boundary, bytes(out), {"User-Agent": head["User-Agent"]}


class TestVendorExample:
    """The vendor's own request, repaired."""

    def test_copy_matches_seed(self) -> None:
        """The vendored copy is the seed's example, byte for byte."""
        if not (SEED.exists() and COPY.exists()):
            pytest.skip("seed file not available here")
        assert COPY.read_text(encoding="utf-8") == seed_section(SEED.read_text(encoding="utf-8"))

    async def test_repaired_vendor_example(self, start_emulator: StartEmulator) -> None:
        """§2.7/§2.8: the repaired vendor request is accepted and both files land in place."""
        emu = await start_emulator(
            config=None, users=[f"{USER}:{PASSWORD}"], companies=["ApiTestCo1:c|2101"]
        )
        first, second = b"\xff\xd8\xff\xe0 first jpeg" + bytes(range(256)), b"\xff\xd8 second\r\n--"
        boundary, data, headers = repair(example_text(), [first, second])
        assert data.count(b"--" + boundary.encode() + b"--") == 1
        reply = await emu.post_raw(
            data, ctype=f"multipart/form-data; boundary={boundary}", headers=headers
        )
        handle = reply.job_handle()
        assert re.fullmatch(r"j\|2101\|\|uploadFileServlet-1376682217351\|\d+", handle)
        assert emu.stored("ApiTestCo1") == {
            "UploadFileServlet1376682217351/1376682217351-1.jpg": first,
            "UploadFileServlet1376682217351/1376682217351-2.jpg": second,
        }
        job = await emu.job(handle)
        assert [f["target_path"] for f in job["files"]] == [
            "ApiTestCo1/UploadFileServlet1376682217351/1376682217351-1.jpg",
            "ApiTestCo1/UploadFileServlet1376682217351/1376682217351-2.jpg",
        ]
        assert job["options"]["manualCropOptions"] == {
            "left": 500,
            "right": 500,
            "top": 500,
            "bottom": 500,
        }
        assert job["options"]["photoshopOptions"]["layerOptions"]["anchor"] == "Northwest"
        assert (job["client"], job["open"]) == ("MyUploadServletTest 1.0", True)
