"""All-or-nothing POSTs (spec D-13, D-18): a POST that is cut or faulted leaves no trace."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import PASSWORD, USER, Emulator, RawPost, StartEmulator, wait_until
from .wire import Part, assert_fault, auth_xml, body, file_part, files, params_xml, xml_part

TAIL = b"\r\n--emu-test-5b1c0e--\r\n"


def everything_under(root: Path) -> list[str]:
    """Every file below ``root`` (relative paths)."""
    found = []
    for dirpath, _dirs, names in os.walk(root):
        found += [os.path.relpath(os.path.join(dirpath, n), root) for n in names]
    return sorted(found)


def head_until_content(
    params: str, filename: str, *, password: str = PASSWORD, before: list[Part] | None = None
) -> bytes:
    """The body up to (not including) the content of a last file part called ``filename``."""
    data = body(
        [
            xml_part("auth", auth_xml(USER, password)),
            xml_part("uploadParams", params),
            *(before or []),
            file_part(filename, b"", name="fileN"),
        ]
    )
    return data[: data.rindex(TAIL)]


class TestCutBody:
    async def test_connection_closed_mid_file(self, emu: Emulator) -> None:
        """D-13: a body cut mid-file stores nothing and leaves the staging dir empty."""
        handle = await emu.open_job()
        head = head_until_content(
            params_xml(job_handle=handle),
            "cut.jpg",
            before=files({"whole.jpg": b"complete first file"}),
        )
        async with RawPost(emu, len(head) + 10_000_000 + len(TAIL)) as post:
            await post.send(head + b"c" * 300_000)

            await wait_until(lambda: len(emu.staged()) == 2)  # both files are being staged
            await post.close()

        async def cleaned_up() -> bool:
            return emu.staged() == [] and (await emu.job(handle))["state"] != "Running"

        await wait_until(cleaned_up)
        job = await emu.job(handle)
        assert (job["file_count"], job["files"], job["open"]) == (0, [], True)
        assert everything_under(emu.root) == []
        (await emu.upload(handle, {"after.jpg": b"fine"})).job_handle()  # still serving
        assert emu.stored() == {"after.jpg": b"fine"}

    async def test_connection_closed_in_opening_post(self, emu: Emulator) -> None:
        """D-13: an opening POST cut mid-file opens no job."""
        head = head_until_content(params_xml(job_name="cut-open"), "x.jpg")
        async with RawPost(emu, len(head) + 1_000_000) as post:
            await post.send(head + b"x" * 1000)
            await wait_until(lambda: len(emu.staged()) == 1)
        await wait_until(lambda: emu.staged() == [])
        assert await emu.jobs() == []
        assert everything_under(emu.root) == []


class TestStartup:
    async def test_staging_left_by_a_crash_is_discarded(
        self, start_emulator: StartEmulator, tmp_path: Path
    ) -> None:
        """D-13: staging files from an earlier run are removed at start and never ingested."""
        staging = tmp_path / "root" / ".bulkup-emulator" / "staging"
        staging.mkdir(parents=True)
        (staging / "leftover").write_bytes(b"half a file")
        emu = await start_emulator()
        assert emu.staged() == []
        assert everything_under(emu.root) == []


class TestFaultedPost:
    async def test_second_file_too_large(self, start_emulator: StartEmulator) -> None:
        """D-18: a 2nd file above max_file_size faults the POST; the 1st is not stored either."""
        emu = await start_emulator(max_file_size=1000)
        handle = await emu.open_job()
        reply = await emu.upload(handle, {"first.jpg": b"1" * 1000, "second.jpg": b"2" * 1001})
        assert "file2" in assert_fault(reply, "ipsApiFault", 30001)
        assert everything_under(emu.root) == []
        assert (await emu.job(handle))["file_count"] == 0

    async def test_auth_fault_sends_bytes_nowhere(self, emu: Emulator) -> None:
        """D-13: with a wrong password the file bytes are never staged nor stored."""
        head = head_until_content(params_xml(job_name="nope"), "secret.jpg", password="wrong")
        chunk = b"z" * (1024 * 1024)
        total = 24
        async with RawPost(emu, len(head) + total * len(chunk) + len(TAIL)) as post:
            await post.send(head)
            for _ in range(total):  # far more than socket buffers hold: the server reads it
                await post.send(chunk)
                assert emu.staged() == []
            await post.send(TAIL)
            reply = await post.response()
        assert_fault(reply, "authenticationFault", 10001)
        assert everything_under(emu.root) == []
        assert await emu.jobs() == []

    async def test_fault_after_body_discards_staged_files(self, emu: Emulator) -> None:
        """D-13: a fault found only at the end (fileName with two parts) discards both files."""
        handle = await emu.open_job()
        reply = await emu.send(
            params_xml(job_handle=handle, file_name="x.jpg"),
            files({"a.jpg": b"a" * 5000, "b.jpg": b"b" * 5000}),
        )
        assert_fault(reply, "ipsApiFault", 30001)
        assert everything_under(emu.root) == []

    async def test_per_file_error_is_not_a_fault(self, emu: Emulator) -> None:
        """D-13: a bad file in a POST is an UploadError line; the others are stored, HTTP 200."""
        handle = await emu.open_job()
        reply = await emu.upload(handle, {"good.jpg": b"g", "bad.exe": b"b", "also.png": b"p"})
        reply.job_handle()
        outcomes = [f["outcome"] for f in (await emu.job(handle))["files"]]
        assert outcomes == ["UploadSuccess", "UploadError", "UploadSuccess"]
        assert emu.stored() == {"good.jpg": b"g", "also.png": b"p"}
        assert emu.staged() == []
