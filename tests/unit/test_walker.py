"""Walker tests on real trees under tmp_path: order, filters, names, special files, symlinks,
failures, closing the pipe, backpressure, big directories in chunks and the
one-thread-hop-per-directory rule."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import threading
import unicodedata
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from structlog.testing import capture_logs

from bulkup.models import FileEntry, FileFailure
from bulkup.pipeline import walker as walker_module
from bulkup.pipeline.pipe import Pipe
from bulkup.pipeline.walker import Walker
from bulkup.stats import WalkStats

T = TypeVar("T")


class _RecordingPipe(Pipe[FileEntry]):
    """A pipe that notes every put that found it full (the producer had to wait)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.full_puts = 0
        self.blocked = asyncio.Event()
        self.first_put = asyncio.Event()

    async def put(self, item: FileEntry) -> None:
        if self.full():
            self.full_puts += 1
            self.blocked.set()
        await super().put(item)

    async def put_many(self, items: list[FileEntry]) -> None:
        if self._capacity - len(self) < len(items):  # will have to wait for room
            self.full_puts += len(items) - max(self._capacity - len(self), 0)
            self.blocked.set()
        if items and len(self) < self._capacity:
            self.first_put.set()
        await super().put_many(items)

    def offer(self, item: FileEntry) -> bool:
        placed = super().offer(item)  # the walker's way in while there is room, and put's too
        if placed:
            self.first_put.set()
        return placed


def _write(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _walker(roots: list[Path], failures: list[FileFailure] | None = None, **options: Any) -> Walker:
    options.setdefault("max_file_size", 10**9)
    on_failure = None if failures is None else failures.append
    return Walker([str(root) for root in roots], on_failure=on_failure, **options)


async def _drain(pipe: Pipe[FileEntry]) -> list[FileEntry]:
    """Everything left in a closed pipe."""
    assert pipe.closed
    return [entry async for chunk in pipe.chunks(1000) for entry in chunk]


async def _walk(walker: Walker) -> list[FileEntry]:
    pipe: Pipe[FileEntry] = Pipe(10**7)
    await walker.run(pipe)
    return await _drain(pipe)


def _rels(entries: list[FileEntry]) -> list[str]:
    return [entry.rel_path for entry in entries]


def _events(logs: list[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == event]


class TestTreeWalk:
    """Plain trees: order, entry fields, counters."""

    async def test_nested_dirs_with_zero_byte_files(self, tmp_path: Path) -> None:
        """Every file of a nested tree comes out once, 0-byte files included, depth-first."""
        _write(tmp_path / "z.jpg", b"zz")
        _write(tmp_path / "a" / "y.jpg")
        _write(tmp_path / "a" / "b" / "c" / "x.jpg")
        _write(tmp_path / "a" / "b2" / "w.jpg")
        entries = await _walk(_walker([tmp_path]))
        assert _rels(entries) == ["z.jpg", "a/y.jpg", "a/b/c/x.jpg", "a/b2/w.jpg"]
        assert [entry.size for entry in entries] == [2, 0, 0, 0]

    async def test_entry_fields(self, tmp_path: Path) -> None:
        """An entry carries path, rel_path, prefixed target, size, mtime and inode."""
        path = _write(tmp_path / "src" / "shoes" / "a.jpg", b"abc")
        walker = _walker([tmp_path / "src"], company_root="Acme/", dest_folder="in")
        (entry,) = await _walk(walker)
        st = path.stat()
        assert entry == FileEntry(
            path=str(path),
            rel_path="shoes/a.jpg",
            target="Acme/in/shoes/a.jpg",
            size=3,
            mtime_ns=st.st_mtime_ns,
            inode=st.st_ino,
            needs_file_name_param=False,
        )

    async def test_non_ascii_needs_file_name_param(self, tmp_path: Path) -> None:
        """A non-ASCII target is flagged for uploadPostParam/fileName (D-17)."""
        _write(tmp_path / "été.jpg")
        _write(tmp_path / "semi;colon.jpg")
        _write(tmp_path / "plain.jpg")
        entries = await _walk(_walker([tmp_path]))
        flags = {entry.rel_path: entry.needs_file_name_param for entry in entries}
        assert flags == {"été.jpg": True, "semi;colon.jpg": True, "plain.jpg": False}

    async def test_stats(self, tmp_path: Path) -> None:
        """The counters add up and done is set once the walk ends."""
        _write(tmp_path / "a.jpg", b"1234")
        _write(tmp_path / "d" / "b.jpg", b"56")
        walker = _walker([tmp_path])
        assert walker.stats == WalkStats()
        await _walk(walker)
        assert walker.stats == WalkStats(dirs_walked=2, files_found=2, bytes_found=6, done=True)

    async def test_several_roots(self, tmp_path: Path) -> None:
        """Roots are walked in the order given, each relative to itself."""
        _write(tmp_path / "r1" / "a.jpg")
        _write(tmp_path / "r2" / "sub" / "a.jpg")
        entries = await _walk(_walker([tmp_path / "r2", tmp_path / "r1"]))
        assert _rels(entries) == ["sub/a.jpg", "a.jpg"]

    async def test_single_file_root(self, tmp_path: Path) -> None:
        """A root that is a file yields that file with its base name as rel_path."""
        path = _write(tmp_path / "deep" / "shoe.jpg", b"x")
        (entry,) = await _walk(_walker([path], company_root="Acme"))
        assert (entry.path, entry.rel_path) == (str(path), "shoe.jpg")
        assert entry.target == "Acme/shoe.jpg"

    async def test_empty_roots(self) -> None:
        """No roots: an empty, closed pipe, and the walk is done."""
        walker = _walker([])
        assert await _walk(walker) == []
        assert walker.stats.done

    def test_negative_max_file_size_refused(self) -> None:
        """max_file_size below 0 is a ValueError."""
        with pytest.raises(ValueError, match="max_file_size"):
            Walker(["."], max_file_size=-1)


class TestFilters:
    """Include and exclude globs."""

    @pytest.fixture
    def tree(self, tmp_path: Path) -> Path:
        for rel in [
            "a.jpg",
            "a.tmp",
            "secret.jpg",
            "sub/b.jpg",
            "sub/b.tmp",
            "sub/Thumbs.db",
            "raw/c.jpg",
            "sub/raw/d.jpg",
            "other/e.tmp",
        ]:
            _write(tmp_path / rel)
        return tmp_path

    async def test_include(self, tree: Path) -> None:
        """Only files matching an include pattern are queued, at any depth."""
        entries = await _walk(_walker([tree], include=["*.jpg"]))
        assert _rels(entries) == ["a.jpg", "secret.jpg", "raw/c.jpg", "sub/b.jpg", "sub/raw/d.jpg"]

    async def test_exclude_wins(self, tree: Path) -> None:
        """A file matching both include and exclude is left out."""
        entries = await _walk(_walker([tree], include=["*.jpg"], exclude=["secret*"]))
        assert "secret.jpg" not in _rels(entries)
        assert "a.jpg" in _rels(entries)

    async def test_directory_pruned(self, tree: Path) -> None:
        """An excluded directory (``raw/``: a directory rule, rclone's trailing slash) is not
        descended into; its name matches at any depth."""
        walker = _walker([tree], include=["*.jpg"], exclude=["raw/"])
        entries = await _walk(walker)
        assert _rels(entries) == ["a.jpg", "secret.jpg", "sub/b.jpg"]
        assert walker.stats.dirs_walked == 3
        assert walker.stats.excluded == 6  # four non-jpg files, two raw directories

    async def test_pattern_with_slash_matches_whole_path(self, tree: Path) -> None:
        """A pattern with '/' matches whole segments at the end of the relative path, not the
        base name; ``sub/raw/`` is the directory and everything below."""
        entries = await _walk(_walker([tree], exclude=["sub/*.tmp", "sub/raw/"]))
        rels = _rels(entries)
        assert "sub/b.tmp" not in rels
        assert "sub/raw/d.jpg" not in rels
        assert {"a.tmp", "other/e.tmp", "raw/c.jpg"} <= set(rels)

    async def test_base_name_pattern(self, tree: Path) -> None:
        """A pattern without '/' also matches the base name of nested files."""
        entries = await _walk(_walker([tree], exclude=["Thumbs.db", "*.tmp"]))
        assert not [rel for rel in _rels(entries) if rel.endswith((".db", ".tmp"))]

    async def test_nfd_pattern_matches_nfc_path(self, tmp_path: Path) -> None:
        """Patterns are normalised like paths, so an NFD pattern matches."""
        _write(tmp_path / "été.jpg")
        _write(tmp_path / "keep.jpg")
        entries = await _walk(_walker([tmp_path], exclude=[unicodedata.normalize("NFD", "été*")]))
        assert _rels(entries) == ["keep.jpg"]


class TestNames:
    """Name normalisation and refused targets."""

    async def test_nfd_names_yield_nfc(self, tmp_path: Path) -> None:
        """NFD directory and file names give NFC rel_path and target; path stays as on disk."""
        nfd_dir = unicodedata.normalize("NFD", "Café")
        nfd_file = unicodedata.normalize("NFD", "chaussure-été.jpg")
        path = _write(tmp_path / nfd_dir / nfd_file)
        (entry,) = await _walk(_walker([tmp_path], company_root="Acme"))
        assert entry.rel_path == "Café/chaussure-été.jpg"
        assert entry.target == "Acme/Café/chaussure-été.jpg"
        assert entry.path == str(path)

    async def test_refused_target_reported(self, tmp_path: Path) -> None:
        """A file whose target the server would refuse is a failure, not an entry."""
        bad = _write(tmp_path / "a:b.jpg")
        _write(tmp_path / "ok.jpg")
        failures: list[FileFailure] = []
        entries = await _walk(_walker([tmp_path], failures, company_root="Acme"))
        assert _rels(entries) == ["ok.jpg"]
        assert failures == [FileFailure(str(bad), "file name contains ':'", "Acme/a:b.jpg")]

    async def test_undecodable_name_reported(self, tmp_path: Path) -> None:
        """A name that is not UTF-8 on disk fails with a clear reason."""
        _write(tmp_path / os.fsdecode(b"bad\xff.jpg"))
        assert b"bad\xff.jpg" in os.listdir(os.fsencode(tmp_path))
        failures: list[FileFailure] = []
        assert await _walk(_walker([tmp_path], failures)) == []
        assert [failure.reason for failure in failures] == [
            "file name is not valid UTF-8: bad\\xff.jpg"
        ]

    async def test_name_warning_logged(self, tmp_path: Path) -> None:
        """A URL-troublesome name is queued, with a debug event; the walk's end counts them
        in one warning."""
        _write(tmp_path / "a b.jpg")
        with capture_logs() as logs:
            entries = await _walk(_walker([tmp_path]))
        assert _rels(entries) == ["a b.jpg"]
        (detail,) = _events(logs, "target_name_warning")
        assert detail["warnings"] == ["file name contains a space"]
        assert detail["log_level"] == "debug"
        (counted,) = _events(logs, "target_names_warned")
        assert counted["files"] == 1 and counted["log_level"] == "warning"


class TestSpecialFiles:
    """FIFOs and sockets are skipped with a log event and a counter."""

    async def test_fifo_skipped(self, tmp_path: Path) -> None:
        """A FIFO is skipped (never opened: opening it would block)."""
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        _write(tmp_path / "a.jpg")
        walker = _walker([tmp_path])
        with capture_logs() as logs:
            entries = await _walk(walker)
        assert _rels(entries) == ["a.jpg"]
        (skip,) = _events(logs, "walk_skipped")
        assert (skip["path"], skip["reason"]) == (str(fifo), "fifo")
        assert walker.stats.skipped == 1

    async def test_socket_skipped(self, tmp_path: Path) -> None:
        """A Unix socket is skipped."""
        path = tmp_path / "sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(path))
        walker = _walker([tmp_path])
        with capture_logs() as logs:
            assert await _walk(walker) == []
        (skip,) = _events(logs, "walk_skipped")
        assert (skip["path"], skip["reason"]) == (str(path), "socket")
        assert walker.stats.skipped == 1

    async def test_fifo_root_skipped(self, tmp_path: Path) -> None:
        """A root that is a FIFO is skipped too."""
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        walker = _walker([fifo])
        assert await _walk(walker) == []
        assert walker.stats.skipped == 1


class TestSymlinks:
    """The symlink policy and loop detection."""

    async def test_file_link_skipped_by_default(self, tmp_path: Path) -> None:
        """Without follow_symlinks a link is skipped and logged."""
        _write(tmp_path / "real.jpg", b"abc")
        (tmp_path / "link.jpg").symlink_to(tmp_path / "real.jpg")
        walker = _walker([tmp_path])
        with capture_logs() as logs:
            entries = await _walk(walker)
        assert _rels(entries) == ["real.jpg"]
        (skip,) = _events(logs, "walk_skipped")
        assert (skip["path"], skip["reason"]) == (str(tmp_path / "link.jpg"), "symlink")

    async def test_file_link_followed(self, tmp_path: Path) -> None:
        """With follow_symlinks a link to a file is queued under the link's name."""
        _write(tmp_path / "elsewhere" / "real.jpg", b"abc")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "link.jpg").symlink_to(tmp_path / "elsewhere" / "real.jpg")
        (entry,) = await _walk(
            _walker([tmp_path / "src"], follow_symlinks=True, follow_external_symlinks=True)
        )
        assert (entry.rel_path, entry.size) == ("link.jpg", 3)

    async def test_dir_link_followed(self, tmp_path: Path) -> None:
        """With follow_symlinks a link to a directory is walked."""
        _write(tmp_path / "elsewhere" / "a.jpg")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "d").symlink_to(tmp_path / "elsewhere")
        entries = await _walk(
            _walker([tmp_path / "src"], follow_symlinks=True, follow_external_symlinks=True)
        )
        assert _rels(entries) == ["d/a.jpg"]

    async def test_root_link_always_followed(self, tmp_path: Path) -> None:
        """A root given as a symlink is followed even without follow_symlinks."""
        _write(tmp_path / "real" / "a.jpg")
        (tmp_path / "root").symlink_to(tmp_path / "real")
        entries = await _walk(_walker([tmp_path / "root"]))
        assert _rels(entries) == ["a.jpg"]

    async def test_loop_terminates_and_is_reported(self, tmp_path: Path) -> None:
        """A link back to an ancestor is skipped as a symlink loop."""
        _write(tmp_path / "src" / "sub" / "a.jpg")
        loop = tmp_path / "src" / "sub" / "up"
        loop.symlink_to(tmp_path / "src")
        walker = _walker([tmp_path / "src"], follow_symlinks=True)
        with capture_logs() as logs:
            entries = await _walk(walker)
        assert _rels(entries) == ["sub/a.jpg"]
        (skip,) = _events(logs, "walk_skipped")
        assert (skip["path"], skip["reason"]) == (str(loop), "symlink loop")
        assert walker.stats.skipped == 1

    async def test_directory_reached_twice_walked_once(self, tmp_path: Path) -> None:
        """Two links to one directory: it is walked once."""
        _write(tmp_path / "shared" / "a.jpg")
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "l1").symlink_to(tmp_path / "shared")
        (tmp_path / "src" / "l2").symlink_to(tmp_path / "shared")
        walker = _walker([tmp_path / "src"], follow_symlinks=True, follow_external_symlinks=True)
        assert _rels(await _walk(walker)) == ["l1/a.jpg"]
        assert walker.stats.skipped == 1

    async def test_self_link_is_a_loop(self, tmp_path: Path) -> None:
        """A link pointing at itself is skipped as a symlink loop."""
        (tmp_path / "self").symlink_to(tmp_path / "self")
        walker = _walker([tmp_path], follow_symlinks=True)
        with capture_logs() as logs:
            assert await _walk(walker) == []
        assert [line["reason"] for line in _events(logs, "walk_skipped")] == ["symlink loop"]

    async def test_broken_link_followed_fails(self, tmp_path: Path) -> None:
        """A dangling link, when following links, is a failure."""
        (tmp_path / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
        failures: list[FileFailure] = []
        assert await _walk(_walker([tmp_path], failures, follow_symlinks=True)) == []
        assert failures == [FileFailure(str(tmp_path / "dangling.jpg"), "broken symlink")]


class TestFailures:
    """Per-file and per-directory failures reach on_failure and the walk goes on."""

    async def test_file_over_max_size(self, tmp_path: Path) -> None:
        """A file above max_file_size is reported, not queued; one at the limit passes."""
        big = _write(tmp_path / "big.jpg", b"x" * 11)
        _write(tmp_path / "fits.jpg", b"x" * 10)
        failures: list[FileFailure] = []
        walker = _walker([tmp_path], failures, max_file_size=10)
        entries = await _walk(walker)
        assert _rels(entries) == ["fits.jpg"]
        assert failures == [
            FileFailure(str(big), "file too large: 11 bytes > max_file_size 10", "big.jpg")
        ]
        assert walker.stats.failed == 1

    async def test_unreadable_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A directory that cannot be listed is reported and the walk goes on."""
        locked = tmp_path / "locked"
        _write(locked / "hidden.jpg")
        _write(tmp_path / "open" / "a.jpg")
        locked.chmod(0)
        try:
            _deny_listing(locked, monkeypatch)
            failures: list[FileFailure] = []
            entries = await _walk(_walker([tmp_path], failures))
        finally:
            locked.chmod(0o755)
        assert _rels(entries) == ["open/a.jpg"]
        assert failures == [FileFailure(str(locked), "cannot read directory: Permission denied")]

    async def test_vanished_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file gone between scandir and stat is reported, not queued."""
        gone = _write(tmp_path / "gone.jpg")
        _write(tmp_path / "kept.jpg")
        real_scandir = os.scandir

        class Vanishing:
            """A directory entry whose file is removed before it is stat'ed."""

            def __init__(self, entry: os.DirEntry[str]) -> None:
                self.name, self.path, self._entry = entry.name, entry.path, entry

            def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
                if self.path == str(gone):
                    os.unlink(gone)
                return os.stat(self.path, follow_symlinks=follow_symlinks)

        class Listing:
            def __init__(self, path: Any) -> None:
                self._real = real_scandir(path)

            def __iter__(self) -> Any:
                return (Vanishing(entry) for entry in self._real)

            def close(self) -> None:
                self._real.close()

        monkeypatch.setattr(os, "scandir", Listing)
        failures: list[FileFailure] = []
        entries = await _walk(_walker([tmp_path], failures))
        assert _rels(entries) == ["kept.jpg"]
        assert failures == [FileFailure(str(gone), "vanished before it could be read")]

    async def test_missing_root(self, tmp_path: Path) -> None:
        """A root that does not exist is reported and the other roots are walked."""
        _write(tmp_path / "real" / "a.jpg")
        failures: list[FileFailure] = []
        walker = _walker([tmp_path / "nope", tmp_path / "real"], failures)
        entries = await _walk(walker)
        assert _rels(entries) == ["a.jpg"]
        assert failures == [FileFailure(str(tmp_path / "nope"), "source not found")]
        assert walker.stats.done


def _deny_listing(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make listing ``path`` fail: chmod 000 works, except for root: then patch os.scandir."""
    try:
        os.listdir(path)
    except PermissionError:
        return
    real_scandir = os.scandir

    def scandir(target: Any = ".") -> Any:
        if os.fspath(target) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(target)

    monkeypatch.setattr(os, "scandir", scandir)


class TestClose:
    """The walker closes its pipe however the walk ends, and never drops an entry."""

    async def test_closed_after_walk(self, tmp_path: Path) -> None:
        """A clean walk closes the pipe after the last entry."""
        _write(tmp_path / "a.jpg")
        pipe: Pipe[FileEntry] = Pipe(10)
        await _walker([tmp_path]).run(pipe)
        assert pipe.closed
        assert _rels(await _drain(pipe)) == ["a.jpg"]
        assert await pipe.take(5) == []

    async def test_closed_when_walk_raises(self, tmp_path: Path) -> None:
        """The pipe is closed even when the walk raises, and the error propagates."""

        def explode(failure: FileFailure) -> None:
            raise RuntimeError(failure.reason)

        _write(tmp_path / "real" / "a.jpg")
        walker = Walker(
            [str(tmp_path / "real"), str(tmp_path / "nope")], max_file_size=10, on_failure=explode
        )
        pipe: Pipe[FileEntry] = Pipe(5)
        with pytest.raises(RuntimeError, match="source not found"):
            await walker.run(pipe)
        assert _rels(await _drain(pipe)) == ["a.jpg"]
        assert not walker.stats.done

    @pytest.mark.parametrize("capacity", [3, 1])
    async def test_closed_when_cancelled_with_full_pipe(
        self, tmp_path: Path, capacity: int
    ) -> None:
        """Cancelled while blocked on a full pipe: no hang, no entry lost, the end follows."""
        for index in range(5):
            _write(tmp_path / f"f{index}.jpg")
        pipe = _RecordingPipe(capacity)
        task = asyncio.create_task(_walker([tmp_path]).run(pipe))
        await pipe.blocked.wait()
        task.cancel()
        with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
            await task
        assert pipe.full() and pipe.closed
        assert len(_events(logs, "walk_cancelled")) == 1
        assert _rels(await _drain(pipe)) == [f"f{index}.jpg" for index in range(capacity)]
        assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left behind

    async def test_closed_when_cancelled_with_room(self, tmp_path: Path) -> None:
        """Cancelled mid-walk with room left: entries already put stay, then the end."""
        _write(tmp_path / "a.jpg")
        _write(tmp_path / "d" / "b.jpg")
        pipe = _RecordingPipe(10)
        task = asyncio.create_task(_walker([tmp_path]).run(pipe))
        await pipe.first_put.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _rels(await _drain(pipe)) == ["a.jpg"]

    async def test_cancelled_before_it_started(self, tmp_path: Path) -> None:
        """A walk cancelled before its first step still ends its pipe (closes_with)."""
        _write(tmp_path / "a.jpg")
        pipe: Pipe[FileEntry] = Pipe(10)
        task = pipe.closes_with(asyncio.create_task(_walker([tmp_path]).run(pipe)))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pipe.closed and await pipe.take(5) == []


class TestBackpressure:
    """The bounded pipe holds the walker back without losing anything."""

    async def test_slow_consumer_gets_every_file(self, tmp_path: Path) -> None:
        """With capacity 2 and a consumer that only takes when the walker waits, all files
        arrive."""
        names = [f"d{d}/f{f}.jpg" for d in range(3) for f in range(4)]
        for name in names:
            _write(tmp_path / name)
        pipe = _RecordingPipe(2)
        producer = asyncio.create_task(_walker([tmp_path]).run(pipe))
        got = await _slow_consumer(pipe, producer)
        await producer
        assert _rels(got) == names
        assert pipe.full_puts >= len(names) // 2  # each folder's 4 files met a full pipe


async def _slow_consumer(pipe: _RecordingPipe, producer: asyncio.Task[None]) -> list[FileEntry]:
    """Take one item each time the pipe is full (the producer is held back) or the producer
    has finished."""
    got: list[FileEntry] = []
    while True:
        while not pipe.full() and not producer.done():
            await asyncio.sleep(0)
        chunk = await pipe.take(1)
        if not chunk:
            return got
        got += chunk


class TestBigDirectories:
    """A directory bigger than one scan chunk is listed in chunks: bounded memory, every file
    once, unsorted; a small one is still sorted."""

    @pytest.fixture
    def small_chunks(self, monkeypatch: pytest.MonkeyPatch) -> int:
        monkeypatch.setattr(walker_module, "SCAN_CHUNK", 7)
        return 7

    async def test_every_file_once_in_chunks(
        self, tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """50 files and 3 subdirectories through chunks of 7: each file exactly once, files of
        the directory before those of its subdirectories, at most 7 records per hop."""
        names = {f"f{index:02}.jpg" for index in range(50)}
        for name in names:
            _write(tmp_path / name)
        for sub in ("s1", "s2", "s3"):
            _write(tmp_path / sub / "x.jpg")
        sizes: list[int] = []
        real = walker_module._Scan.next_chunk

        def spy(self: Any) -> Any:
            listing = real(self)
            sizes.append(len(listing.records))
            return listing

        monkeypatch.setattr(walker_module._Scan, "next_chunk", spy)
        walker = _walker([tmp_path])
        got = _rels(await _walk(walker))
        assert sorted(got[:50]) == sorted(names)
        assert sorted(got[50:]) == ["s1/x.jpg", "s2/x.jpg", "s3/x.jpg"]
        assert max(sizes) == small_chunks and sum(sizes) == 53 + 3
        assert walker.stats.dirs_walked == 4 and walker.stats.files_found == 53

    async def test_small_directory_sorted(self, tmp_path: Path, small_chunks: int) -> None:
        """A directory that fits one chunk comes out in name order."""
        for name in ["c.jpg", "a.jpg", "b.jpg", "e.jpg", "d.jpg"]:
            _write(tmp_path / name)
        assert _rels(await _walk(_walker([tmp_path]))) == [
            "a.jpg",
            "b.jpg",
            "c.jpg",
            "d.jpg",
            "e.jpg",
        ]

    async def test_exactly_one_chunk(self, tmp_path: Path, small_chunks: int) -> None:
        """A directory of exactly SCAN_CHUNK entries is one chunk (read ahead by one)."""
        for index in range(small_chunks):
            _write(tmp_path / f"f{index}.jpg")
        assert _rels(await _walk(_walker([tmp_path]))) == [
            f"f{index}.jpg" for index in range(small_chunks)
        ]

    async def test_cancelled_mid_directory_releases_listing(
        self, tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A walk cancelled between the chunks of a directory closes its listing."""
        for index in range(30):
            _write(tmp_path / f"f{index:02}.jpg")
        closed: list[str] = []
        real_close = walker_module._Scan._close_now

        def spy(self: Any) -> None:
            if self._entries is not None:
                closed.append(self.path)
            real_close(self)

        monkeypatch.setattr(walker_module._Scan, "_close_now", spy)
        pipe = _RecordingPipe(3)
        task = asyncio.create_task(_walker([tmp_path]).run(pipe))
        await pipe.blocked.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(500):  # a chunk being listed when the walk was cancelled closes the
            if closed:  # listing itself once its thread is done: wait for that thread
                break
            await asyncio.sleep(0.01)
        assert closed == [str(tmp_path)]


class TestThreadHops:
    """One asyncio.to_thread hop per directory, with every blocking call inside it."""

    @pytest.fixture
    def hops(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        calls: list[str] = []
        real = asyncio.to_thread

        async def counting(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
            calls.append(func.__name__)
            return await real(func, *args, **kwargs)

        monkeypatch.setattr(asyncio, "to_thread", counting)
        return calls

    async def test_one_hop_per_directory(self, tmp_path: Path, hops: list[str]) -> None:
        """A tree of five directories costs five hops."""
        for rel in ["a.jpg", "d1/b.jpg", "d1/d2/c.jpg", "d1/d2/e.jpg", "d3/f.jpg", "d4/.keep"]:
            _write(tmp_path / rel)
        walker = _walker([tmp_path])
        await _walk(walker)
        assert len(hops) == walker.stats.dirs_walked == 5

    async def test_one_hop_per_file_root(self, tmp_path: Path, hops: list[str]) -> None:
        """A single-file root costs one hop."""
        await _walk(_walker([_write(tmp_path / "a.jpg")]))
        assert len(hops) == 1

    async def test_blocking_calls_off_the_loop(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """scandir and stat never run on the event loop's thread."""
        _write(tmp_path / "d" / "a.jpg")
        loop_thread = threading.get_ident()
        on_loop: list[str] = []
        _spy(monkeypatch, "scandir", loop_thread, on_loop)
        _spy(monkeypatch, "stat", loop_thread, on_loop)
        assert _rels(await _walk(_walker([tmp_path]))) == ["d/a.jpg"]
        assert on_loop == []


def _spy(monkeypatch: pytest.MonkeyPatch, name: str, loop_thread: int, on_loop: list[str]) -> None:
    real: Callable[..., Any] = getattr(os, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == loop_thread:
            on_loop.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, spy)
