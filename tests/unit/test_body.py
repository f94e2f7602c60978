"""The streamed multipart body: exact length, merged writes, safe headers, changed files."""

from __future__ import annotations

import asyncio
import io
import socket
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkup.errors import SourceChangedError, SourceError
from bulkup.transport.body import (
    BatchBody,
    file_part_header,
    new_boundary,
    xml_part,
)
from bulkup.transport.reader import HelperReader, SmallFileReader
from bulkup.transport.wire import Wire

from .parts import file_parts


class Writer:
    """Collects what the payload writes, and how (sizes of each write)."""

    def __init__(self) -> None:
        self.data = io.BytesIO()
        self.sizes: list[int] = []

    async def write(self, chunk: bytes) -> None:
        self.sizes.append(len(chunk))
        self.data.write(chunk)


def body_for(
    tmp_path: Path,
    sizes: list[int],
    chunk_size: int = 64 * 1024,
    reader: SmallFileReader | None = None,
) -> BatchBody:
    boundary = new_boundary()
    parts = file_parts(tmp_path, sizes, boundary=boundary)
    head = xml_part(boundary, "auth", b"<authHeader/>") + xml_part(
        boundary, "uploadParams", b"<uploadPostParam/>"
    )
    return BatchBody(
        boundary=boundary, head=head, files=parts, chunk_size=chunk_size, reader=reader
    )


class TestLength:
    @settings(max_examples=25, deadline=None)
    @given(
        sizes=st.lists(st.sampled_from([0, 1, 100, 4095, 70_000, 300_000]), max_size=8),
        chunk=st.sampled_from([4096, 65536, 1024 * 1024]),
    )
    async def test_size_is_exactly_what_is_written(
        self, tmp_path_factory: pytest.TempPathFactory, sizes: list[int], chunk: int
    ) -> None:
        """Content-Length (the payload size) equals the bytes written, for any mix of sizes."""
        body = body_for(tmp_path_factory.mktemp("b"), sizes, chunk)
        out = Writer()
        await body.write(out)
        assert body.size == len(out.data.getvalue())

    async def test_parses_back_as_multipart(self, tmp_path: Path, reader: SmallFileReader) -> None:
        """A standard MIME parser finds the two XML parts and every file, byte for byte."""
        body = body_for(tmp_path, [0, 5, 70_000, 30_000, 40_000], reader=reader)
        out = Writer()
        await body.write(out)
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {body.content_type}\r\n\r\n".encode() + out.data.getvalue()
        )
        parts = list(message.iter_parts())
        assert [p.get_param("name", header="content-disposition") for p in parts] == [
            "auth",
            "uploadParams",
            "file1",
            "file2",
            "file3",
            "file4",
            "file5",
        ]
        assert parts[4].get_payload(decode=True) == bytes([3]) * 70_000
        assert parts[5].get_payload(decode=True) == bytes([4]) * 30_000
        assert parts[6].get_payload(decode=True) == bytes([5]) * 40_000
        assert parts[2].get_payload(decode=True) == b""
        assert body.size == len(out.data.getvalue())

    async def test_small_writes_are_merged(self, tmp_path: Path, reader: SmallFileReader) -> None:
        """Many small files go out in few writes (about 64 KiB each), not one per part."""
        body = body_for(tmp_path, [100] * 500, reader=reader)
        out = Writer()
        await body.write(out)
        assert len(out.sizes) < 10


class TestOverTheWire:
    """A real connection (plain HTTP on asyncio's loop): large files go by sendfile() and, with
    the read helper, groups of small files are written into the connection by the helper."""

    @pytest.mark.parametrize(
        "sizes", [[16_384] * 150, [16_384] * 70 + [2_000_000] + [100] * 70, [5, 0, 1_500_000, 7]]
    )
    async def test_server_gets_exactly_the_body(
        self, tmp_path: Path, sizes: list[int], reader: SmallFileReader
    ) -> None:
        body = body_for(tmp_path, sizes, chunk_size=1024 * 1024, reader=reader)
        expected = Writer()
        await body_for(tmp_path, sizes, chunk_size=1024 * 1024).write(expected)
        received = await post_to_echo_server(body)
        assert received == _same_boundary(expected.data.getvalue(), body)
        if isinstance(reader, HelperReader) and sizes[0] == 16_384:
            assert reader.direct_groups > 0  # the helper wrote into the connection


async def test_a_closed_connection_is_never_handed_to_the_helper() -> None:
    """After the transport closes, its descriptor number may belong to another connection:
    the body stops with ConnectionResetError instead of passing it on."""
    ours, peer = socket.socketpair()
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
    wire = Wire(SimpleNamespace(transport=transport))  # type: ignore[arg-type]  # aiohttp's writer
    try:
        assert wire.can_hand_over and await wire.hand_over() == ours.fileno()
        transport.close()
        with pytest.raises(ConnectionResetError):
            await wire.hand_over()
    finally:
        peer.close()


def _same_boundary(data: bytes, body: BatchBody) -> bytes:
    """``data`` was written with another body's random boundary: use ``body``'s."""
    other = data[2 : data.index(b"\r\n")].decode()
    return data.replace(other.encode(), body.boundary.encode())


async def post_to_echo_server(body: BatchBody) -> bytes:
    """POST ``body`` to a loopback server; what the server read, byte for byte."""
    seen: list[bytes] = []

    async def keep(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(text="ok")

    app = web.Application(client_max_size=0)
    app.router.add_post("/", keep)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/", data=body) as response,
        ):
            assert response.status == 200
    finally:
        await runner.cleanup()
    return seen[0]


class TestLargeFileInChunks:
    """Without sendfile() (TLS, uvloop) a large file goes in chunk_size reads, the next read
    on a thread while this chunk is written."""

    async def test_chunks_arrive_in_order(self, tmp_path: Path) -> None:
        body = body_for(tmp_path, [5, 300_000, 7], chunk_size=65_536)
        out = Writer()
        await body.write(out)
        assert out.data.getvalue().count(bytes([2]) * 65_536) == 4  # f2's bytes, whole
        assert 65_536 in out.sizes  # a chunk went through as its own write
        assert body.size == len(out.data.getvalue())

    async def test_file_that_shrinks_while_it_is_read(self, tmp_path: Path) -> None:
        body = body_for(tmp_path, [300_000], chunk_size=65_536)
        out = ShrinkAfterFirstChunk(tmp_path / "f1.bin")
        with pytest.raises(SourceChangedError, match="shrank"):
            await body.write(out)

    async def test_write_failure_waits_for_the_read_in_flight(self, tmp_path: Path) -> None:
        """The connection fails while the next chunk is being read: the connection's error comes
        out, not the read's, and nothing is left behind (warnings are errors in this suite)."""
        body = body_for(tmp_path, [300_000], chunk_size=65_536)
        with pytest.raises(ConnectionResetError):
            await body.write(FailingWriter(after_bytes=100_000))


class ShrinkAfterFirstChunk(Writer):
    """Truncates the file once the first full chunk has been written."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    async def write(self, chunk: bytes) -> None:
        await super().write(chunk)
        if len(chunk) == 65_536:
            self.path.write_bytes(b"")


class FailingWriter(Writer):
    def __init__(self, after_bytes: int) -> None:
        super().__init__()
        self.after = after_bytes

    async def write(self, chunk: bytes) -> None:
        if self.data.tell() >= self.after:
            raise ConnectionResetError("peer went away")
        await super().write(chunk)


class TestHeaders:
    @pytest.mark.parametrize(
        "name", ['a"b.jpg', "a\r\nX-Evil: 1.jpg", "a\\b.jpg", "a;b.jpg", "a\nb.jpg"]
    )
    def test_unsafe_names_never_reach_a_header(self, name: str) -> None:
        """A name that could break out of its quotes or its line is refused (D-17 sends it
        in fileName instead)."""
        with pytest.raises(ValueError, match="unsafe"):
            file_part_header("b", 1, name)


class TestChangedFiles:
    async def test_vanished_file(self, tmp_path: Path, reader: SmallFileReader) -> None:
        """A file gone before its part is written fails the body with a SourceError."""
        body = body_for(tmp_path, [10, 10], reader=reader)
        (tmp_path / "f2.bin").unlink()
        with pytest.raises(SourceError, match="vanished") as caught:
            await body.write(Writer())
        assert "f2.bin" in caught.value.path

    @pytest.mark.parametrize("new_size", [5, 15])
    async def test_size_changed(
        self, tmp_path: Path, new_size: int, reader: SmallFileReader
    ) -> None:
        """A file whose size differs from the walk's fails with SourceChangedError."""
        body = body_for(tmp_path, [10, 200_000], chunk_size=65536, reader=reader)
        (tmp_path / "f1.bin").write_bytes(b"x" * new_size)
        with pytest.raises(SourceChangedError, match="size changed"):
            await body.write(Writer())
