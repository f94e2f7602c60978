"""What is sent is what was walked: a file that no longer matches the walk (size, mtime_ns,
inode) once its last byte is read stops its body before the closing boundary, on every read
path, with SourceChangedWhileSent; and a changed file is stat'ed again for its resend."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bulkup.errors import BulkupError, SourceChangedError, SourceChangedWhileSent
from bulkup.models import FileEntry
from bulkup.transport import body as body_module
from bulkup.transport.body import BatchBody, new_boundary, xml_part
from bulkup.transport.client import mapped_errors
from bulkup.transport.read_helper import MODIFIED, OK, read_whole
from bulkup.transport.reader import FilePart, HelperReader, SmallFileReader, restat

from .parts import file_parts, started_helper

SECOND = 1_000_000_000


def rewrite_in_place(path: str, fill: int) -> None:
    """Same size, new bytes, same inode, mtime one second later (set, not left to the
    clock's granularity)."""
    st = os.stat(path)
    with open(path, "r+b") as out:
        out.write(bytes([fill]) * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + SECOND))


def replace_keeping_mtime(path: str) -> None:
    """Another file (another inode) of the same size and mtime moved into place."""
    st = os.stat(path)
    other = path + ".new"
    Path(other).write_bytes(b"N" * st.st_size)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)


def body_of(
    parts: list[FilePart],
    chunk_size: int = 1024 * 1024,
    reader: SmallFileReader | None = None,
    boundary: str = "b",
) -> BatchBody:
    head = xml_part(boundary, "auth", b"<authHeader/>")
    return BatchBody(
        boundary=boundary, head=head, files=parts, chunk_size=chunk_size, reader=reader
    )


class Writer:
    """Collects what the body writes; ``after_write`` runs after each write."""

    def __init__(self, after_write: Callable[[int], None] = lambda count: None) -> None:
        self.data = io.BytesIO()
        self.writes = 0
        self._after_write = after_write

    async def write(self, chunk: bytes) -> None:
        self.data.write(chunk)
        self.writes += 1
        self._after_write(self.writes)


def closing(body: BatchBody) -> bytes:
    return f"--{body.boundary}--".encode()


class TestSmallFiles:
    @pytest.mark.parametrize("change", ["rewritten", "replaced"])
    async def test_a_changed_file_stops_the_body(
        self, tmp_path: Path, reader: SmallFileReader, change: str
    ) -> None:
        """Same size, but rewritten (another mtime) or replaced (another inode) since the walk:
        the body stops before the closing boundary, naming the file; none of its bytes sent."""
        parts = file_parts(tmp_path, [1000] * 5, boundary="b")
        victim = parts[2].entry.path
        if change == "rewritten":
            rewrite_in_place(victim, 0xAB)
        else:
            replace_keeping_mtime(victim)
        body, out = body_of(parts, reader=reader), Writer()
        with pytest.raises(SourceChangedWhileSent) as caught:
            await body.write(out)
        assert caught.value.path == victim
        assert ("another inode" if change == "replaced" else "mtime_ns") in caught.value.reason
        sent = out.data.getvalue()
        assert closing(body) not in sent
        assert b"\xab" * 1000 not in sent and b"N" * 1000 not in sent

    async def test_unchanged_files_pass(self, tmp_path: Path, reader: SmallFileReader) -> None:
        parts = file_parts(tmp_path, [1000] * 5, boundary="b")
        os.utime(parts[2].entry.path, ns=(0, parts[2].entry.mtime_ns))  # atime does not count
        body, out = body_of(parts, reader=reader), Writer()
        await body.write(out)
        assert out.data.getvalue().endswith(closing(body) + b"\r\n")

    async def test_a_size_change_still_fails_as_since_the_walk(
        self, tmp_path: Path, reader: SmallFileReader
    ) -> None:
        """A size that differs at the read fails as before (SourceChangedError, not resent)."""
        parts = file_parts(tmp_path, [1000] * 3, boundary="b")
        Path(parts[1].entry.path).write_bytes(b"x" * 10)
        with pytest.raises(SourceChangedError) as caught:
            await body_of(parts, reader=reader).write(Writer())
        assert type(caught.value) is SourceChangedError
        assert "since the walk" in caught.value.reason


class TestReadWhole:
    def test_fstat_after_the_last_byte(self, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"abc")
        st = path.stat()
        assert read_whole(bytes(path), 3, st.st_mtime_ns, st.st_ino) == (OK, b"abc")
        assert read_whole(bytes(path), 3, st.st_mtime_ns, 0) == (OK, b"abc")  # 0: no inode
        status, reason = read_whole(bytes(path), 3, st.st_mtime_ns - 1, st.st_ino)
        assert status == MODIFIED and b"mtime_ns" in reason
        status, reason = read_whole(bytes(path), 3, st.st_mtime_ns, st.st_ino + 1)
        assert status == MODIFIED and b"another inode" in reason


class TestLargeFiles:
    async def test_torn_mid_file_in_chunks(self, tmp_path: Path) -> None:
        """Read in chunks (no sendfile): rewritten after its first chunk went out, so the
        bytes read mix old and new; the body stops before the closing boundary."""
        parts = file_parts(tmp_path, [100, 512 * 1024, 100], boundary="b")
        victim = parts[1].entry.path
        body = body_of(parts, chunk_size=64 * 1024)

        def tear(writes: int) -> None:
            if writes == 2:  # the head and first small file, then the first 64 KiB chunk
                rewrite_in_place(victim, 0xAB)

        out = Writer(tear)
        with pytest.raises(SourceChangedWhileSent, match="mtime_ns") as caught:
            await body.write(out)
        assert caught.value.path == victim
        sent = out.data.getvalue()
        assert b"\xab" * 1024 in sent  # torn indeed: new bytes went out after old ones
        assert closing(body) not in sent

    @pytest.mark.parametrize(("change", "says"), [("grow", "grew"), ("shrink", "shrank")])
    async def test_size_changed_mid_file(self, tmp_path: Path, change: str, says: str) -> None:
        parts = file_parts(tmp_path, [512 * 1024], boundary="b")
        victim = parts[0].entry.path

        def tear(writes: int) -> None:
            if writes == 2:
                with open(victim, "ab" if change == "grow" else "r+b") as handle:
                    handle.write(b"more") if change == "grow" else handle.truncate(1000)

        with pytest.raises(SourceChangedWhileSent, match=says):
            await body_of(parts, chunk_size=64 * 1024).write(Writer(tear))


async def post_to_silent_server(body: BatchBody) -> tuple[bytes, BulkupError]:
    """POST ``body`` to a loopback server that reads until EOF (or the closing boundary) and
    never answers: what reached it, byte for byte (the body's failure cuts the connection), and
    the error the POST failed with, as the client's one translation of aiohttp's errors
    (:func:`~bulkup.transport.client.mapped_errors`) gives it."""
    received = bytearray()
    finished = asyncio.Event()
    end = closing(body) + b"\r\n"

    async def take(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not received.endswith(end) and (chunk := await reader.read(65536)):
            received.extend(chunk)
        writer.close()
        finished.set()

    server = await asyncio.start_server(take, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(BulkupError) as caught, mapped_errors("silent"):
                await session.post(f"http://127.0.0.1:{port}/", data=body)
        await asyncio.wait_for(finished.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()
    return bytes(received), caught.value


class TestOverTheWire:
    """Plain HTTP on asyncio's loop: large files by sendfile(), small groups written into the
    connection by the read helper. A changed file cuts the POST short of its Content-Length:
    the server never sees the closing boundary."""

    async def test_sendfile(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        boundary = new_boundary()
        parts = file_parts(tmp_path, [100, 512 * 1024, 100], boundary=boundary)
        victim = parts[1].entry.path
        original = body_module._open_checked

        def open_then_change(entry: FileEntry) -> Any:
            handle = original(entry)
            if entry.path == victim:
                rewrite_in_place(victim, 0xAB)  # sendfile() sends the new bytes
            return handle

        monkeypatch.setattr(body_module, "_open_checked", open_then_change)
        body = body_of(parts, chunk_size=64 * 1024, boundary=boundary)
        received, failure = await post_to_silent_server(body)
        assert isinstance(failure, SourceChangedWhileSent) and failure.path == victim
        assert b"\xab" * 1024 in received  # it went by sendfile() indeed
        assert closing(body) not in received and len(received) < body.size

    async def test_read_helper_writing_into_the_connection(self, tmp_path: Path) -> None:
        boundary = new_boundary()
        parts = file_parts(tmp_path, [16 * 1024] * 200, boundary=boundary)
        victim = parts[150].entry.path  # a later group: the first ones go in directly
        rewrite_in_place(victim, 0xAB)
        async with started_helper() as helper:
            body = body_of(parts, reader=helper, boundary=boundary)
            received, failure = await post_to_silent_server(body)
            assert isinstance(helper, HelperReader) and helper.direct_groups > 0
        assert isinstance(failure, SourceChangedWhileSent) and failure.path == victim
        assert b"\xab" * 1024 not in received
        assert closing(body) not in received and len(received) < body.size


class TestRestat:
    def test_the_file_as_it_is_now(self, tmp_path: Path) -> None:
        [part] = file_parts(tmp_path, [100])
        path = part.entry.path
        Path(path).write_bytes(b"y" * 300)
        os.utime(path, ns=(0, part.entry.mtime_ns + SECOND))
        fresh = restat(part.entry, max_file_size=1000)
        st = os.stat(path)
        assert fresh == part.entry._replace(size=300, mtime_ns=st.st_mtime_ns, inode=st.st_ino)

    def test_why_it_cannot_be_sent_any_more(self, tmp_path: Path) -> None:
        [part] = file_parts(tmp_path, [100])
        path = Path(part.entry.path)
        assert restat(part.entry, max_file_size=99).startswith("file too large: 100 bytes")
        path.unlink()
        assert restat(part.entry, max_file_size=1000) == "file vanished before it was sent"
        path.symlink_to("/etc/hostname")  # a link now: not followed
        assert "no longer a regular file" in str(restat(part.entry, max_file_size=1000))
