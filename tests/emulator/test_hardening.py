"""Issue 13, rows 12-15 and rule 9: the emulator is a server that can face a network.

Bounded memory whatever the part count, slow or silent clients dropped, a connection cap, no
traceback for a client that went away, backslashes kept in ``filename`` (D-16 step 3) and one
folder/asset name space per company (D-15). Everything on loopback, with sub-second timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bulkup.emulator import app as emulator_app
from bulkup.emulator import build_settings, guard, server
from bulkup.emulator.receive import MAX_XML_PART_BYTES, BodyReader, XmlPart
from bulkup.emulator.server import Running

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
        reply = await emu.send(
            params_xml(job_handle=handle), [file_part(b'"A\\b\\c.jpg"', b"jpeg")]
        )
        assert reply.job_handle() == handle
        assert emu.stored() == {"A/b/c.jpg": b"jpeg"}

    async def test_escaped_quote_does_not_end_the_value(self, emu: Emulator) -> None:
        """``\\"`` keeps the value open and the backslash stays: ``a\\"b.jpg`` → ``a/"b.jpg``,
        which D-25 refuses (``"`` in a name); nothing is stored."""
        handle = await emu.open_job()
        await emu.send(params_xml(job_handle=handle), [file_part(b'"a\\"b.jpg"; x=1', b"jpeg")])
        record = (await emu.job(handle))["files"][0]
        assert record["target_path"] == 'Acme/a/"b.jpg'
        assert record["outcome"] == "UploadError"
        assert emu.stored() == {}


class TestClientGone:
    """Row 15: a client that cuts its body mid-POST costs one log line, not a traceback."""

    async def test_cut_body_logs_one_line(
        self, emu: Emulator, events: Events, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="aiohttp")
        data = body(
            [
                xml_part("auth", auth_xml(USER, PASSWORD)),
                xml_part("uploadParams", params_xml()),
                file_part("x.jpg", b"x" * 100_000),
            ]
        )
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
            piece = self.data[at : at + self.chunk]
            self.read += len(piece)
            yield piece


def empty_parts(count: int, *, authenticated: bool = True) -> bytes:
    password = PASSWORD if authenticated else "wrong"
    parts = [
        xml_part("auth", auth_xml(USER, password)),
        xml_part("uploadParams", params_xml(job_handle="j|42||x|1")),
    ]
    parts += [file_part(f"e{i}.jpg", b"", name=f"file{i}") for i in range(count)]
    return body(parts)


def reader_for(
    tmp_path: Path, *, keep: bool, max_parts: int = 10_000, drain_limit: int = 64 * 1024**2
) -> BodyReader:
    return BodyReader(
        staging_dir=tmp_path,
        max_file_size=2**31,
        drain_limit_bytes=drain_limit,
        max_parts=max_parts,
        strict_part_order=True,
        keep_files=lambda post: keep,
    )


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
        post = await reader.read(
            SimpleNamespace(content=content),
            BOUNDARY,  # type: ignore[arg-type]
            touch=lambda: held.append(len(reader.post.files)),
        )
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

    def test_oversized_xml_part_keeps_nothing(self) -> None:
        """An XML part over the cap is a 30003 fault and is never parsed, so none of it is
        held while the rest arrives (1,000 stalled POSTs cost at most 2 x 48 KiB each)."""
        part = XmlPart()
        for _ in range(40):
            part.write(b"a" * 4096)
        assert part.too_large
        assert len(part.raw) == 0
        assert MAX_XML_PART_BYTES == 48 * 1024

    async def test_too_many_parts_is_30001(self, start_emulator: StartEmulator) -> None:
        """On the wire: 20,000 empty file parts in one follow-up POST are answered 30001
        (the cap is named); the job receives nothing."""
        emu = await start_emulator(max_parts_per_post=100)
        handle = await emu.open_job()
        data = body(
            [
                xml_part("auth", auth_xml(USER, PASSWORD)),
                xml_part("uploadParams", params_xml(job_handle=handle)),
                *(file_part(f"e{i}.jpg", b"", name=f"file{i}") for i in range(20_000)),
            ]
        )
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


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Start]:
    """Factory: the emulator as ``bulkup serve`` runs it (guarded site), on 127.0.0.1:0."""
    started: list[Running] = []

    async def begin(**knobs: Any) -> Running:
        settings = build_settings(root=tmp_path / "root", host="127.0.0.1", port=0, **knobs)
        started.append(await server.start(settings))
        return started[-1]

    yield begin
    for running in started:
        await running.runner.cleanup()


@pytest.fixture
def guard_events(events: Events, monkeypatch: pytest.MonkeyPatch) -> Events:
    monkeypatch.setattr(guard, "log", structlog.get_logger("bulkup.emulator"))
    return events


async def connect(running: Running) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", running.port)


async def closed_by_server(reader: asyncio.StreamReader, within: float = 3.0) -> bytes:
    """Everything the server sent until it closed the connection (EOF or reset); fails if it
    is still open after ``within`` seconds."""
    got = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), within):
            got += chunk
    return bytes(got)


async def trickle(writer: asyncio.StreamWriter, pieces: list[bytes], pause: float) -> None:
    """Send ``pieces`` one by one, ``pause`` seconds apart, until the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause)


def head(content_length: int, *, host: str = "127.0.0.1") -> bytes:
    return (
        f"POST /scene7/UploadFile HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode("ascii")


class TestSlowClients:
    """Row 13: slowloris and an unfulfilled Content-Length are dropped."""

    async def test_slowloris_headers_dropped(self, guarded: Start) -> None:
        """A head trickled one header every 50 ms (each well inside any idle timer) is cut
        at the 0.2 s header deadline: the server closes the connection without an answer."""
        running = await guarded(header_timeout_s=0.2)
        reader, writer = await connect(running)
        pieces = [b"POST /scene7/UploadFile HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 200
        sender = asyncio.create_task(trickle(writer, pieces, 0.05))
        try:
            assert await closed_by_server(reader) == b""
        finally:
            sender.cancel()
            writer.close()
        await wait_until(lambda: running.connections.open == 0)

    async def test_silent_connection_dropped(self, guarded: Start) -> None:
        """A connection that never sends a byte is closed at the header deadline."""
        running = await guarded(header_timeout_s=0.2)
        reader, writer = await connect(running)
        assert await closed_by_server(reader) == b""
        writer.close()

    async def test_keep_alive_within_the_deadline(self, guarded: Start) -> None:
        """Two requests on one connection, each head sent at once, are both answered."""
        running = await guarded(header_timeout_s=0.5)
        reader, writer = await connect(running)
        request = b"GET /_emulator/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for _ in range(2):
            writer.write(request)
            status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert status.startswith(b"HTTP/1.1 200 ")
            length = int(status.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()

    async def test_unfulfilled_content_length_dropped(
        self, guarded: Start, guard_events: Events
    ) -> None:
        """Content-Length 10 GB, 1 KB sent, then silence: cut after the 0.2 s body idle
        timeout, one ``body_idle_timeout`` line, nothing staged, no job."""
        running = await guarded(body_idle_timeout_s=0.2)
        reader, writer = await connect(running)
        writer.write(
            head(10 * 1024**3) + body([xml_part("auth", auth_xml(USER, PASSWORD))]) + b"x" * 1024
        )
        await writer.drain()
        assert await closed_by_server(reader) == b""
        writer.close()
        await wait_until(lambda: bool(named(guard_events, "body_idle_timeout")))
        assert named(guard_events, "client_gone") == []
        staging = running.runner.app[emulator_app.STATE].staging_dir
        assert list(staging.iterdir()) == []
        assert running.runner.app[emulator_app.STATE].store.jobs() == []

    async def test_slow_but_steady_body_is_served(
        self, guarded: Start, guard_events: Events
    ) -> None:
        """The body timeout is an idle timeout: a body sent in 12 pieces 50 ms apart (0.6 s
        in all, three times the 0.2 s timeout) is answered normally."""
        running = await guarded(body_idle_timeout_s=0.2)
        reader, writer = await connect(running)
        data = body(
            [
                xml_part("auth", auth_xml("demo@example.com", "demo")),
                xml_part("uploadParams", params_xml("c|1", job_name="steady")),
            ]
        )
        writer.write(head(len(data)))
        step = -(-len(data) // 12)
        await trickle(writer, [data[at : at + step] for at in range(0, len(data), step)], 0.05)
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert answer.startswith(b"HTTP/1.1 200 ")
        writer.close()
        assert named(guard_events, "body_idle_timeout") == []


class TestConnectionCap:
    """Row 13: at most ``max_connections`` at once; the next are answered 503 and closed."""

    async def test_sixth_connection_refused_then_room_again(
        self, guarded: Start, guard_events: Events
    ) -> None:
        running = await guarded(max_connections=5)
        held = [await connect(running) for _ in range(5)]
        await wait_until(lambda: running.connections.open == 5)
        reader, writer = await connect(running)
        assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 503 ")
        writer.close()
        reached = named(guard_events, "connection_limit_reached")
        assert [(e["max_connections"], e["log_level"]) for e in reached] == [(5, "warning")]
        assert running.connections.open == 5
        for _, held_writer in held[:2]:
            held_writer.close()
        await wait_until(lambda: running.connections.open == 3)
        assert [e["refused"] for e in named(guard_events, "connection_limit_cleared")] == [1]
        reader, writer = await connect(running)
        writer.write(b"GET /_emulator/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert answer.startswith(b"HTTP/1.1 200 ")
        writer.close()
        for _, held_writer in held[2:]:
            held_writer.close()

    def test_defaults(self, tmp_path: Path) -> None:
        """Rule 9's defaults: 1,000 connections, 30 s for a head, 60 s of body silence."""
        settings = build_settings(root=tmp_path)
        assert (
            settings.max_connections,
            settings.header_timeout_s,
            settings.body_idle_timeout_s,
        ) == (1000, 30.0, 60.0)


class TestOneNameSpace:
    """D-15 as written: folders and assets share one name space per company."""

    async def outcomes(self, emu: Emulator, named_files: dict[str, bytes]) -> list[str]:
        handle = await emu.open_job()
        await emu.upload(handle, named_files)
        files = (await emu.job(handle))["files"]
        return [f"{f['outcome']}: {f['message']}" for f in files]

    async def test_asset_may_not_take_a_folder_name(self, emu: Emulator) -> None:
        """``shoes/a.jpg`` then ``Shoes.png``: the asset would be named like the folder."""
        got = await self.outcomes(emu, {"shoes/a.jpg": b"a", "Shoes.png": b"p"})
        assert got[0].startswith("UploadSuccess")
        assert got[1] == (
            "UploadError: Acme/Shoes.png: name conflict: asset 'Shoes' has the "
            "name of folder Acme/shoes/"
        )
        assert emu.stored() == {"shoes/a.jpg": b"a"}

    async def test_folder_may_not_take_an_asset_name(self, emu: Emulator) -> None:
        """``boots.jpg`` then ``x/BOOTS/b.jpg``: the new folder would be named like the asset;
        neither the file nor the folder is created."""
        got = await self.outcomes(emu, {"boots.jpg": b"b", "x/BOOTS/b.jpg": b"c"})
        assert got[1] == (
            "UploadError: Acme/x/BOOTS/b.jpg: name conflict: folder 'BOOTS' has "
            "the name of asset Acme/boots.jpg"
        )
        assert emu.stored() == {"boots.jpg": b"b"}
        assert not (emu.company_dir() / "x").exists()

    async def test_folders_on_disk_count(
        self, start_emulator: StartEmulator, tmp_path: Path
    ) -> None:
        """A folder already in the company folder at start-up is in the name space too."""
        (tmp_path / "root" / "Acme" / "old" / "gifs").mkdir(parents=True)
        emu = await start_emulator()
        got = await self.outcomes(emu, {"new/gifs.gif": b"g"})
        assert got == [
            "UploadError: Acme/new/gifs.gif: name conflict: asset 'gifs' has the "
            "name of folder Acme/old/gifs/"
        ]

    async def test_unrelated_names_unaffected(self, emu: Emulator) -> None:
        """Same-named folders in two places, and assets beside them, are fine."""
        payload = {"a/2025/x.jpg": b"1", "b/2025/y.jpg": b"2", "a/z.jpg": b"3"}
        got = await self.outcomes(emu, payload)
        assert [g.split(":")[0] for g in got] == ["UploadSuccess"] * 3
        assert emu.stored() == payload


class TestServeCommandGuards:
    """The same guards in ``bulkup serve`` itself (a subprocess, on uvloop when installed)."""

    @pytest.mark.timeout(60)
    async def test_cap_and_header_timeout_in_the_real_command(self, tmp_path: Path) -> None:
        """``--max-connections 1 --header-timeout-s 0.3``: a second connection is answered
        503 and closed (logged once on stderr); the first, silent, is closed at its header
        deadline."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bulkup",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--root",
            str(tmp_path / "served"),
            "--max-connections",
            "1",
            "--header-timeout-s",
            "0.3",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
            first_reader, first = await asyncio.open_connection("127.0.0.1", port)
            first.write(b"GET /_emulator/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await asyncio.wait_for(first_reader.readline(), 5)).startswith(
                b"HTTP/1.1 200 "
            )  # admitted and served: it holds the one slot now
            second_reader, second = await asyncio.open_connection("127.0.0.1", port)
            assert (await closed_by_server(second_reader)).startswith(b"HTTP/1.1 503 ")
            second.close()
            assert await closed_by_server(first_reader, 5) != b""  # rest of its answer, then EOF
            first.close()
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            log = (await proc.stderr.read()).decode()
            assert log.count("connection_limit_reached") == 1, log
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
