"""Small files read by the read helper process: same bytes and errors as in process, replies
in request order, and a fall-back to in-process reads when the helper cannot serve."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from bulkup.config.model import UploadConfig
from bulkup.errors import SourceChangedError, SourceError
from bulkup.models import FileEntry
from bulkup.transport.client import UploadClient, small_file_reader
from bulkup.transport.read_helper import TO_PIPE
from bulkup.transport.reader import (
    HELPER_SCRIPT,
    FilePart,
    HelperLost,
    HelperReader,
    InProcessReader,
    small_parts,
)

from .parts import file_parts, started_helper


def group_of(tmp_path: Path, sizes: list[int], prefix: str = "f") -> list[FilePart]:
    return file_parts(tmp_path, sizes, prefix)


@pytest.fixture
async def helper() -> AsyncIterator[HelperReader]:
    async with started_helper() as reader:
        yield reader


class TestHelperAnswers:
    async def test_same_bytes_as_in_process(self, tmp_path: Path, helper: HelperReader) -> None:
        """The helper lays the group out exactly as the in-process reader does."""
        group = group_of(tmp_path, [0, 1, 16_384, 300_000, 5])
        assert bytes(await helper.parts(group)) == small_parts(group)

    async def test_bigger_files_are_read_in_process(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        """Files averaging over 64 KiB skip the helper (its pipe copy would cost more)."""
        small = group_of(tmp_path, [16_384] * 4, prefix="s")
        big = group_of(tmp_path, [300_000, 10], prefix="b")
        assert bytes(await helper.parts(small)) == small_parts(small)
        assert helper.helper_groups == 1
        assert bytes(await helper.parts(big)) == small_parts(big)
        assert helper.helper_groups == 1

    async def test_concurrent_requests_get_their_own_replies(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        """Many groups in flight at once: each request gets its own files back."""
        groups = [group_of(tmp_path, [100 * (g + 1)] * 5, prefix=f"g{g}_") for g in range(12)]
        replies = await asyncio.gather(*(helper.parts(g) for g in groups))
        assert [bytes(r) for r in replies] == [small_parts(g) for g in groups]

    async def test_a_cancelled_request_does_not_shift_the_next(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        """A body cancelled while its reply is on the way: the next request still gets its
        own bytes, not the cancelled one's."""
        first = group_of(tmp_path, [60_000] * 16, prefix="a")
        second = group_of(tmp_path, [7] * 3, prefix="b")
        task = asyncio.create_task(helper.parts(first))
        await asyncio.sleep(0)
        task.cancel()
        assert bytes(await helper.parts(second)) == small_parts(second)


def connection(send_buffer: int | None = None) -> tuple[socket.socket, socket.socket]:
    """A connected stream pair: the non-blocking end a body would own, and its peer."""
    ours, peer = socket.socketpair()
    if send_buffer is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    ours.setblocking(False)
    return ours, peer


def drain(peer: socket.socket) -> bytes:
    """Everything the peer can read now."""
    peer.setblocking(False)
    data = bytearray()
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


class TestDirectToTheConnection:
    async def test_whole_group_goes_into_the_connection(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        """With room in the connection the helper writes every part; nothing comes back."""
        group = group_of(tmp_path, [0, 1, 16_384, 5])
        ours, peer = connection()
        with ours, peer:
            assert helper.writes_direct
            rest = await helper.parts(group, direct_to=ours.fileno())
            assert bytes(rest) == b""
            assert drain(peer) == small_parts(group)

    async def test_what_does_not_fit_comes_back(self, tmp_path: Path, helper: HelperReader) -> None:
        """A connection that takes only part of the group: the rest comes back, and the two
        together are the group's parts, in order."""
        group = group_of(tmp_path, [60_000] * 16)
        ours, peer = connection(send_buffer=16_384)
        with ours, peer:
            rest = bytes(await helper.parts(group, direct_to=ours.fileno()))
            sent = drain(peer)
            assert sent and rest
            assert sent + rest == small_parts(group)

    async def test_a_bad_file_sends_nothing(self, tmp_path: Path, helper: HelperReader) -> None:
        """A vanished file fails the group before any of its bytes reach the connection."""
        group = group_of(tmp_path, [10, 10, 10])
        Path(group[2].entry.path).unlink()
        ours, peer = connection()
        with ours, peer:
            with pytest.raises(SourceError, match="vanished"):
                await helper.parts(group, direct_to=ours.fileno())
            assert drain(peer) == b""

    async def test_interleaved_with_piped_groups(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        """Direct and piped requests in flight together each get their own answer."""
        groups = [group_of(tmp_path, [100 * (g + 1)] * 5, prefix=f"g{g}_") for g in range(6)]
        pairs = [connection() for _ in groups]
        try:
            replies = await asyncio.gather(
                *(
                    helper.parts(g, direct_to=pair[0].fileno() if i % 2 else None)
                    for i, (g, pair) in enumerate(zip(groups, pairs, strict=True))
                )
            )
            for i, (g, reply, (_, peer)) in enumerate(zip(groups, replies, pairs, strict=True)):
                assert drain(peer) + bytes(reply) == small_parts(g)
                assert bool(reply) == (i % 2 == 0)
        finally:
            for ours, peer in pairs:
                ours.close()
                peer.close()

    async def test_helper_gone_during_a_direct_write_fails_loudly(
        self, tmp_path: Path, helper: HelperReader, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Some of the group may be on the wire: no silent in-process retry, HelperLost (the
        POST is sent again); later groups are read in process.

        The kill lands once the helper holds the connection: killed earlier, the hand-over
        itself fails and the group is rightly read in process (nothing was on the wire)."""
        group = group_of(tmp_path, [1000] * 4)
        pid = helper.helper_pid
        assert pid is not None
        hand_over = helper._pass_fd

        def hand_over_then_kill(fd: int) -> bool:
            passed = hand_over(fd)
            os.kill(pid, signal.SIGKILL)
            return passed

        monkeypatch.setattr(helper, "_pass_fd", hand_over_then_kill)
        ours, peer = connection()
        with ours, peer:
            with pytest.raises(HelperLost):
                await helper.parts(group, direct_to=ours.fileno())
            assert not helper.writes_direct
            assert bytes(await helper.parts(group, direct_to=ours.fileno())) == small_parts(group)


class TestHelperErrors:
    async def test_vanished_file_is_named(self, tmp_path: Path, helper: HelperReader) -> None:
        group = group_of(tmp_path, [10, 10, 10])
        Path(group[1].entry.path).unlink()
        with pytest.raises(SourceError, match="vanished") as caught:
            await helper.parts(group)
        assert caught.value.path == group[1].entry.path

    @pytest.mark.parametrize(("new_size", "says"), [(5, "to 5 bytes"), (15, "to more bytes")])
    async def test_size_changed_is_named(
        self, tmp_path: Path, helper: HelperReader, new_size: int, says: str
    ) -> None:
        group = group_of(tmp_path, [10, 10])
        Path(group[0].entry.path).write_bytes(b"x" * new_size)
        with pytest.raises(SourceChangedError, match=says) as caught:
            await helper.parts(group)
        assert caught.value.path == group[0].entry.path

    async def test_unreadable_path_is_named(self, tmp_path: Path, helper: HelperReader) -> None:
        """A path that opens but cannot be read (a directory in place of the file)."""
        group = group_of(tmp_path, [10, 10])
        Path(group[1].entry.path).unlink()
        Path(group[1].entry.path).mkdir()
        with pytest.raises(SourceError, match="cannot read") as caught:
            await helper.parts(group)
        assert caught.value.path == group[1].entry.path

    async def test_unopenable_path_is_named(self, tmp_path: Path, helper: HelperReader) -> None:
        """A path that cannot be opened for a reason other than absence (ENOTDIR)."""
        group = group_of(tmp_path, [10, 10])
        blocker = tmp_path / "blocker"
        blocker.write_bytes(b"")
        moved = FileEntry(
            path=str(blocker / "f.bin"), rel_path="f.bin", target="Acme/f.bin", size=10, mtime_ns=0
        )
        group[1] = FilePart(moved, group[1].header)
        with pytest.raises(SourceError, match="cannot open: Not a directory") as caught:
            await helper.parts(group)
        assert caught.value.path == moved.path

    async def test_errors_match_the_in_process_reader(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        group = group_of(tmp_path, [10, 10])
        Path(group[1].entry.path).write_bytes(b"x" * 3)
        with pytest.raises(SourceChangedError) as in_process:
            small_parts(group)
        with pytest.raises(SourceChangedError) as by_helper:
            await helper.parts(group)
        assert (by_helper.value.path, by_helper.value.reason) == (
            in_process.value.path,
            in_process.value.reason,
        )


class TestFallBack:
    async def test_helper_killed_midway_reads_go_on_in_process(
        self, tmp_path: Path, helper: HelperReader
    ) -> None:
        group = group_of(tmp_path, [1000] * 4)
        pid = helper.helper_pid
        assert pid is not None
        with structlog.testing.capture_logs() as logs:
            os.kill(pid, signal.SIGKILL)
            assert bytes(await helper.parts(group)) == small_parts(group)
            assert bytes(await helper.parts(group)) == small_parts(group)
        assert helper.helper_pid is None
        assert [e["event"] for e in logs].count("read_helper_failed") == 1

    async def test_helper_that_cannot_start(self, tmp_path: Path) -> None:
        reader = HelperReader(python=str(tmp_path / "no-such-python"))
        with structlog.testing.capture_logs() as logs:
            await reader.start()
        group = group_of(tmp_path, [10, 20])
        assert reader.helper_pid is None
        assert await reader.parts(group) == small_parts(group)
        assert any(
            e["event"] == "read_helper_failed" and "cannot start" in e["reason"] for e in logs
        )
        await reader.close()

    async def test_not_started_reads_in_process(self, tmp_path: Path) -> None:
        reader = HelperReader()
        group = group_of(tmp_path, [10])
        assert await reader.parts(group) == small_parts(group)
        await reader.close()

    async def test_close_ends_the_helper(self, helper: HelperReader) -> None:
        pid = helper.helper_pid
        assert pid is not None
        await helper.close()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: the pid is gone


class TestHelperScript:
    def test_runs_without_bulkup_on_the_path(self, tmp_path: Path) -> None:
        """The script starts with -I -S (no site-packages, no bulkup import) and answers."""
        data = tmp_path / "one.bin"
        data.write_bytes(b"abc")
        path = os.fsencode(data)
        header = b"H:"
        st = data.stat()
        request = (
            (1).to_bytes(4, "little")
            + bytes([TO_PIPE])
            + (3).to_bytes(8, "little")
            + st.st_mtime_ns.to_bytes(8, "little")
            + st.st_ino.to_bytes(8, "little")
            + len(path).to_bytes(4, "little")
            + len(header).to_bytes(4, "little")
            + path
            + header
        )
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(HELPER_SCRIPT)],
            input=request,
            capture_output=True,
            timeout=30,
            check=True,
        )
        status, index, length = done.stdout[0], done.stdout[1:5], done.stdout[5:13]
        assert (status, int.from_bytes(index, "little"), int.from_bytes(length, "little")) == (
            0,
            0,
            len(b"H:abc\r\n"),
        )
        assert done.stdout[13:] == b"H:abc\r\n"

    async def test_ignores_sigint(self, helper: HelperReader, tmp_path: Path) -> None:
        """Ctrl-C reaches the whole process group; the helper keeps serving the uploader,
        which is finishing its POSTs in flight."""
        pid = helper.helper_pid
        assert pid is not None
        group = group_of(tmp_path, [10])
        assert bytes(await helper.parts(group)) == small_parts(group)  # the helper is serving
        os.kill(pid, signal.SIGINT)
        assert bytes(await helper.parts(group)) == small_parts(group)
        assert helper.helper_pid == pid


def test_helper_on_uvloop(tmp_path: Path) -> None:
    """HTTPS runs on uvloop by default: the helper's pipe works there too."""
    import uvloop

    async def read_twice() -> tuple[bytes, bytes, int]:
        reader = HelperReader()
        await reader.start()
        group = group_of(tmp_path, [16_384] * 8)
        try:
            return bytes(await reader.parts(group)), small_parts(group), reader.helper_groups
        finally:
            await reader.close()

    by_helper, in_process, groups = uvloop.run(read_twice())
    assert by_helper == in_process and groups == 1


class TestWhichReader:
    """The client picks the reader: the helper only where it pays (plain HTTP, where it writes
    into the connection); over HTTPS every byte passes through the uploader anyway."""

    @pytest.mark.parametrize(
        ("url", "read_helper", "expected"),
        [
            ("http://127.0.0.1:1/scene7/UploadFile", True, HelperReader),
            ("https://127.0.0.1:1/scene7/UploadFile", True, InProcessReader),
            ("http://127.0.0.1:1/scene7/UploadFile", False, InProcessReader),
        ],
    )
    def test_by_scheme(self, url: str, read_helper: bool, expected: type) -> None:
        config = UploadConfig(server_url=url, read_helper=read_helper)
        assert type(small_file_reader(config, url)) is expected
        assert type(UploadClient(config, url).reader) is expected

    async def test_the_helper_starts_with_the_first_post_and_stops_with_the_client(self) -> None:
        url = "http://127.0.0.1:9/scene7/UploadFile"
        config = UploadConfig(server_url=url, company_root="Acme/", max_attempts=1)
        async with UploadClient(config, url) as client:
            helper = client.reader
            assert isinstance(helper, HelperReader) and helper.helper_pid is None
            reader = await client._started_reader()
            assert reader is helper and helper.helper_pid is not None
        assert helper.helper_pid is None
