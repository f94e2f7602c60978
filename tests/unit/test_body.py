"""The streamed multipart body: exact length, merged writes, safe headers, changed files."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkup.body import BatchBody, file_part_header, new_boundary, xml_part
from bulkup.errors import SourceChangedError, SourceError
from bulkup.reader import InProcessReader, SmallFileReader

from .parts import file_parts, started_helper


@pytest.fixture(params=["in_process", "helper"])
async def reader(request: pytest.FixtureRequest) -> AsyncIterator[SmallFileReader]:
    """Both ways small files are read: on the loop's thread, and by the read helper process."""
    if request.param == "in_process":
        yield InProcessReader()
        return
    async with started_helper() as helper:
        yield helper


class Writer:
    """Collects what the payload writes, and how (sizes of each write)."""

    def __init__(self) -> None:
        self.data = io.BytesIO()
        self.sizes: list[int] = []

    async def write(self, chunk: bytes) -> None:
        self.sizes.append(len(chunk))
        self.data.write(chunk)


def body_for(tmp_path: Path, sizes: list[int], chunk_size: int = 64 * 1024,
             reader: SmallFileReader | None = None) -> BatchBody:
    boundary = new_boundary()
    parts = file_parts(tmp_path, sizes, boundary=boundary)
    head = xml_part(boundary, "auth", b"<authHeader/>") + xml_part(
        boundary, "uploadParams", b"<uploadPostParam/>")
    return BatchBody(boundary=boundary, head=head, files=parts, chunk_size=chunk_size,
                     reader=reader)


class TestLength:
    @settings(max_examples=25, deadline=None)
    @given(sizes=st.lists(st.sampled_from([0, 1, 100, 4095, 70_000, 300_000]), max_size=8),
           chunk=st.sampled_from([4096, 65536, 1024 * 1024]))
    async def test_size_is_exactly_what_is_written(self, tmp_path_factory: pytest.TempPathFactory,
                                                   sizes: list[int], chunk: int) -> None:
        """Content-Length (the payload size) equals the bytes written, for any mix of sizes."""
        body = body_for(tmp_path_factory.mktemp("b"), sizes, chunk)
        out = Writer()
        await body.write(out)
        assert body.size == len(out.data.getvalue())

    async def test_parses_back_as_multipart(self, tmp_path: Path,
                                            reader: SmallFileReader) -> None:
        """A standard MIME parser finds the two XML parts and every file, byte for byte."""
        body = body_for(tmp_path, [0, 5, 70_000, 30_000, 40_000], reader=reader)
        out = Writer()
        await body.write(out)
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {body.content_type}\r\n\r\n".encode() + out.data.getvalue())
        parts = list(message.iter_parts())
        assert [p.get_param("name", header="content-disposition") for p in parts] == [
            "auth", "uploadParams", "file1", "file2", "file3", "file4", "file5"]
        assert parts[4].get_payload(decode=True) == bytes([3]) * 70_000
        assert parts[5].get_payload(decode=True) == bytes([4]) * 30_000
        assert parts[6].get_payload(decode=True) == bytes([5]) * 40_000
        assert parts[2].get_payload(decode=True) == b""
        assert body.size == len(out.data.getvalue())

    async def test_small_writes_are_merged(self, tmp_path: Path,
                                           reader: SmallFileReader) -> None:
        """Many small files go out in few writes (about 64 KiB each), not one per part."""
        body = body_for(tmp_path, [100] * 500, reader=reader)
        out = Writer()
        await body.write(out)
        assert len(out.sizes) < 10


class TestHeaders:
    @pytest.mark.parametrize("name", ['a"b.jpg', "a\r\nX-Evil: 1.jpg", "a\\b.jpg", "a;b.jpg",
                                      "a\nb.jpg"])
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
        with pytest.raises(SourceError, match="vanished"):
            await body.write(Writer())
        assert body.source_failure is not None and "f2.bin" in body.source_failure.path

    @pytest.mark.parametrize("new_size", [5, 15])
    async def test_size_changed(self, tmp_path: Path, new_size: int,
                                reader: SmallFileReader) -> None:
        """A file whose size differs from the walk's fails with SourceChangedError."""
        body = body_for(tmp_path, [10, 200_000], chunk_size=65536, reader=reader)
        (tmp_path / "f1.bin").write_bytes(b"x" * new_size)
        with pytest.raises(SourceChangedError, match="size changed"):
            await body.write(Writer())
