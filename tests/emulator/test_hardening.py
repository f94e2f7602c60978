"""Issue 13, rows 12-15 and rule 9: the emulator is a server that can face a network.

Bounded memory whatever the part count, slow or silent clients dropped, a connection cap, no
traceback for a client that went away, backslashes kept in ``filename`` (D-16 step 3) and one
folder/asset name space per company (D-15). Everything on loopback, with sub-second timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bulkup.emulator import app as emulator_app
from bulkup.emulator import build_settings
from bulkup.emulator.receive import BodyReader

from .conftest import PASSWORD, USER, Emulator, RawPost, StartEmulator, wait_until
from .wire import BOUNDARY, auth_xml, body, file_part, params_xml, xml_part

Events = list[dict[str, Any]]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    """The emulator's structured log events (fresh, uncached loggers while captured)."""
    with capture_logs() as captured:
        monkeypatch.setattr(emulator_app, "log", structlog.get_logger("bulkup.emulator"))
        yield captured


def named(captured: Events, event: str) -> Events:
    return [e for e in captured if e["event"] == event]


class TestBackslashKept:
    """Row 14: D-16 step 3 as written; a servlet's parser keeps ``\\`` in quoted values."""

    async def test_backslashes_become_folders(self, emu: Emulator) -> None:
        """``filename="A\\b\\c.jpg"`` is stored as ``A/b/c.jpg`` (not ``Abc.jpg``)."""
        handle = await emu.open_job()
        reply = await emu.send(params_xml(job_handle=handle),
                               [file_part(b'"A\\b\\c.jpg"', b"jpeg")])
        assert reply.job_handle() == handle
        assert emu.stored() == {"A/b/c.jpg": b"jpeg"}

    async def test_escaped_quote_does_not_end_the_value(self, emu: Emulator) -> None:
        """``\\"`` keeps the value open and the backslash stays: ``a\\"b.jpg`` → ``a/"b.jpg``,
        which D-25 refuses (``"`` in a name); nothing is stored."""
        handle = await emu.open_job()
        await emu.send(params_xml(job_handle=handle),
                       [file_part(b'"a\\"b.jpg"; x=1', b"jpeg")])
        record = (await emu.job(handle))["files"][0]
        assert record["target_path"] == 'Acme/a/"b.jpg'
        assert record["outcome"] == "UploadError"
        assert emu.stored() == {}


class TestClientGone:
    """Row 15: a client that cuts its body mid-POST costs one log line, not a traceback."""

    async def test_cut_body_logs_one_line(self, emu: Emulator, events: Events,
                                          caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="aiohttp")
        data = body([xml_part("auth", auth_xml(USER, PASSWORD)),
                     xml_part("uploadParams", params_xml()), file_part("x.jpg", b"x" * 100_000)])
        async with RawPost(emu, len(data)) as post:
            await post.send(data[: len(data) // 2])
        await wait_until(lambda: bool(named(events, "client_gone")))
        await asyncio.sleep(0.05)  # let aiohttp finish the request it was handling
        assert len(named(events, "client_gone")) == 1
        assert named(events, "client_gone")[0]["path"] == "/scene7/UploadFile"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert not [r for r in caplog.records if r.exc_info]
        assert emu.staged() == []
        assert await emu.jobs() == []


class FakeContent:
    """``request.content`` for BodyReader: the body in fixed-size chunks, counted."""

    def __init__(self, data: bytes, chunk: int = 64 * 1024) -> None:
        self.data, self.chunk, self.read = data, chunk, 0

    async def iter_any(self) -> AsyncIterator[bytes]:
        for at in range(0, len(self.data), self.chunk):
            piece = self.data[at:at + self.chunk]
            self.read += len(piece)
            yield piece


def empty_parts(count: int, *, authenticated: bool = True) -> bytes:
    password = PASSWORD if authenticated else "wrong"
    parts = [xml_part("auth", auth_xml(USER, password)),
             xml_part("uploadParams", params_xml(job_handle="j|42||x|1"))]
    parts += [file_part(f"e{i}.jpg", b"", name=f"file{i}") for i in range(count)]
    return body(parts)


def reader_for(tmp_path: Path, *, keep: bool, max_parts: int = 10_000,
               drain_limit: int = 64 * 1024**2) -> BodyReader:
    return BodyReader(staging_dir=tmp_path, max_file_size=2**31, drain_limit_bytes=drain_limit,
                      max_parts=max_parts, strict_part_order=True,
                      keep_files=lambda post: keep)


class TestBoundedParts:
    """Row 12: memory per POST is bounded whatever the part count."""

    def test_default_cap(self, tmp_path: Path) -> None:
        """Rule 9: 10,000 parts per POST unless configured."""
        assert build_settings(root=tmp_path).max_parts_per_post == 10_000

    async def test_records_never_exceed_the_part_cap(self, tmp_path: Path) -> None:
        """20,000 empty parts, cap 100: never more than 100 records held, none kept
        after the cap, the POST marked for a 30001. (A small cap keeps the test fast: each
        kept part is a staging file.)"""
        reader = reader_for(tmp_path, keep=True, max_parts=100)
        content = FakeContent(empty_parts(20_000))
        held: list[int] = []
        post = await reader.read(SimpleNamespace(content=content), BOUNDARY,  # type: ignore[arg-type]
                                 touch=lambda: held.append(len(reader.post.files)))
        assert post.too_many_parts
        assert max(held) <= 100
        assert post.files == []
        assert list(tmp_path.iterdir()) == []  # every staged file of the refused POST removed

    async def test_part_headers_count_toward_the_drain_limit(self, tmp_path: Path) -> None:
        """An unauthenticated body of empty parts (no data bytes at all) stops being read
        once the drain limit is passed: headers and delimiters count."""
        reader = reader_for(tmp_path, keep=False, max_parts=10**9, drain_limit=1024**2)
        content = FakeContent(empty_parts(100_000, authenticated=False))
        post = await reader.read(SimpleNamespace(content=content), BOUNDARY)  # type: ignore[arg-type]
        assert post.drained_past_limit
        assert content.read <= 1024**2 + 2 * content.chunk < len(content.data)
        assert len(post.files) < 100_000

    async def test_too_many_parts_is_30001(self, start_emulator: StartEmulator) -> None:
        """On the wire: 20,000 empty file parts in one follow-up POST are answered 30001
        (the cap is named); the job receives nothing."""
        emu = await start_emulator(max_parts_per_post=100)
        handle = await emu.open_job()
        data = body([xml_part("auth", auth_xml(USER, PASSWORD)),
                     xml_part("uploadParams", params_xml(job_handle=handle)),
                     *(file_part(f"e{i}.jpg", b"", name=f"file{i}") for i in range(20_000))])
        async with RawPost(emu, len(data)) as post:
            await post.send(data)
            reply = await post.response()
        assert reply.status == 500
        _, code, reason = reply.fault()
        assert code == 30001
        assert "more than 100 parts" in reason
        assert (await emu.job(handle))["files"] == []
        assert emu.staged() == []
        assert emu.stored() == {}

    async def test_parts_at_the_cap_are_accepted(self, start_emulator: StartEmulator) -> None:
        """``max_parts_per_post`` counts every part: auth + uploadParams + 3 files fit in 5."""
        emu = await start_emulator(max_parts_per_post=5)
        handle = await emu.open_job()
        named_files = {f"f{i}.jpg": b"x" for i in range(3)}
        assert (await emu.upload(handle, named_files)).job_handle() == handle
        assert emu.stored() == named_files
        _, code, _ = (await emu.upload(handle, {**named_files, "f3.jpg": b"x"})).fault()
        assert code == 30001
