"""The walker: the producer that turns source roots into :class:`~bulkup.models.FileEntry` records.

Each root is walked depth-first, files of a directory before its subdirectories. Listing a
directory and stat'ing its entries are blocking calls, so they run in ``asyncio.to_thread`` hops
of at most :data:`SCAN_CHUNK` entries each, which return small records; everything else (filters,
targets, counters, logging, the pipe) runs on the event loop. Memory stays flat whatever the
tree's shape: the walker holds one chunk of one directory at a time, the subdirectories found so
far in that directory, and a stack of pending directory paths, never the tree. A directory of up
to :data:`SCAN_CHUNK` entries is walked in sorted name order; a bigger one in the order the file
system lists it (sorting it would mean holding all its names: 1,000,000 names took 375 MB).
Nothing downstream depends on the order: the journal and the reports are keyed by target. When
following symlinks the walker also remembers the ``(st_dev, st_ino)`` of every directory walked
under the current root, to detect loops.

Counters go straight into the run's one :class:`~bulkup.stats.Stats` (read as
:class:`~bulkup.stats.WalkStats` through :attr:`Walker.stats`).

Two kinds of name never leave the walker raw:

* A path that is not valid UTF-8 (a file's name, a directory's name anywhere above it, the root's
  own path included) fails that file alone, with the bad segment shown escaped
  (``file name is not valid UTF-8: caf\\xe9.jpg``); a directory with such a name is walked, and
  every file under it fails with ``directory name is not valid UTF-8: ...``, so the counts say
  how many files were not sent. Every path and target in a failure or a log event goes through
  :func:`~bulkup.targets.escaped`: nothing with surrogate escapes or control characters reaches
  the journal, the report or the terminal.
* With ``follow_symlinks``, a link is followed only when it resolves (``os.path.realpath``, the
  whole chain) inside a source root, or to a root itself; a link out of the roots is skipped
  like a FIFO (counted in ``skipped``, a ``walk_skipped`` event, at warning level, with reason
  ``symlink out of the source roots`` and where it leads), unless ``follow_external_symlinks``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import NamedTuple

import structlog

from bulkup.config.filters import FileFilter
from bulkup.models import FileEntry, FileFailure
from bulkup.pipeline.pipe import Pipe
from bulkup.stats import Stats, WalkStats
from bulkup.targets import (
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    build_target,
    escaped,
    folder_problem,
    name_problem,
    name_warnings,
    needs_file_name_param,
    undecodable_problem,
)

__all__ = ["WalkStats", "Walker"]

log = structlog.get_logger(__name__)

SCAN_CHUNK = 4096  # directory entries listed and stat'ed per thread hop
SCAN_AHEAD = 2  # chunks the scanning stage may list ahead of the loop side
# A name no per-file check can object to: printable ASCII without the characters D-17 sends
# in fileName (" \ ;), D-25 refuses (\ : * ? " < > |) or warns about (# % & + , ; = space).
_PLAIN_NAME = re.compile(r'[^\x00-\x20\x7f-\U0010ffff\\:*?"<>|;#%&+,=]+')

FailureCallback = Callable[[FileFailure], None]


class _File(NamedTuple):
    path: str
    name: str
    size: int
    mtime_ns: int
    inode: int


class _Dir(NamedTuple):
    path: str
    name: str
    key: tuple[int, int]


class _Skip(NamedTuple):
    path: str
    reason: str
    leads_to: str | None = None  # for a link refused because it leads out of the roots


class _Fail(NamedTuple):
    path: str
    reason: str


_Record = _File | _Dir | _Skip | _Fail


_Plain = Callable[["_File"], FileEntry | None]


class _Listing(NamedTuple):
    records: tuple[_Record | FileEntry, ...]
    error: _Fail | None = None
    more: bool = False  # more entries of the same directory follow
    dir_path: str = ""  # the directory listed


class _Chunk(NamedTuple):
    """What the scanning stage hands on: one chunk of a directory (or a root's own record)."""

    listing: _Listing
    rel_dir: str
    fast: bool = True  # the usual file may take the fast way (not for a root's own record)


class _Pending(NamedTuple):
    path: str
    rel_path: str


class Walker:
    """Walks source roots and feeds a bounded queue with the files to upload.

    Args:
        roots: directories or single files. A file root's ``rel_path`` is its base name. A root
            that is a symlink is always followed (it was named explicitly).
        include: shorthand for ``file_filter=FileFilter(include=...)``: patterns in rclone's
            rules (:mod:`bulkup.config.filters`) on the NFC, ``/``-separated relative path.
        exclude: shorthand likewise; exclude wins over include, and a directory an exclude
            rule (``dir/``) matches is not descended into.
        file_filter: the whole filter (patterns, size and age limits); when given, ``include``
            and ``exclude`` must be empty. A pattern that matched nothing by the end of a
            complete walk is named in a ``filter_matched_nothing`` warning.
        follow_symlinks: follow links to files and directories that resolve inside a source
            root (loops are detected); when False, links below a root are skipped.
        follow_external_symlinks: with ``follow_symlinks``, also follow links that lead out
            of the source roots (otherwise they are skipped with a reason).
        company_root: the company root folder put in front of every target.
        dest_folder: the folder under the company root that receives the tree.
        max_file_size: files larger than this (in bytes) are reported as failed, not queued.
        on_failure: called with each :class:`FileFailure` (file or directory that cannot be sent).
        stats: the run's counters the walker adds to (a fresh one when not given).

    Raises:
        ValueError: when ``max_file_size`` is negative, or ``file_filter`` is given with
            ``include`` or ``exclude``.
    """

    def __init__(
        self,
        roots: Sequence[str],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        file_filter: FileFilter | None = None,
        follow_symlinks: bool = False,
        follow_external_symlinks: bool = False,
        company_root: str | None = None,
        dest_folder: str | None = None,
        max_file_size: int,
        on_failure: FailureCallback | None = None,
        stats: Stats | None = None,
    ) -> None:
        if max_file_size < 0:
            raise ValueError(f"max_file_size must be 0 or more, got {max_file_size}")
        self._roots = tuple(roots)
        if file_filter is not None and (include or exclude):
            raise ValueError("give file_filter or include/exclude, not both")
        self._filter = file_filter or FileFilter(include=include, exclude=exclude)
        self._follow = follow_symlinks
        self._links = _Links(self._roots, follow=follow_symlinks, external=follow_external_symlinks)
        self._company_root = company_root
        self._dest_folder = dest_folder
        self._max_file_size = max_file_size
        self._on_failure = on_failure
        self._counts = stats if stats is not None else Stats()
        self._folder_cache: tuple[str, str, str | None] | None = None

    @property
    def stats(self) -> WalkStats:
        """An immutable snapshot of the walker's counters."""
        return self._counts.walk_snapshot()

    async def run(self, out: Pipe[FileEntry]) -> None:
        """Walk every root and put each file's entry into ``out``, then close it.

        ``await out.put`` gives backpressure: the walk pauses while the pipe is full. ``out``
        is closed however the walk ends (finished, raised, cancelled), so its consumers always
        see the end; entries already put are never dropped.

        Two stages overlap: a scanning task (owned here, always awaited) lists directories in
        thread hops and decides which subdirectories to enter, a couple of chunks ahead; this
        coroutine turns each chunk's records into entries on the event loop.
        """
        log.info("walk_started", roots=[escaped(root) for root in self._roots])
        chunks: Pipe[_Chunk] = Pipe(SCAN_AHEAD)
        scanning = chunks.closes_with(asyncio.create_task(self._scan_roots(chunks)))
        try:
            async for taken in chunks.chunks(1):
                await self._consume(taken[0], out)
            await scanning  # its error, if it failed
            self._finish()
        except asyncio.CancelledError:
            log.warning("walk_cancelled", files_found=self._counts.files_found)
            raise
        finally:
            out.close()
            scanning.cancel()
            await asyncio.wait({scanning})

    def _finish(self) -> None:
        self._counts.walk_done = True
        log.info("walk_finished", **self.stats._asdict())
        self._filter.warn_unmatched()
        if self._counts.name_warnings:
            log.warning(
                "target_names_warned",
                files=self._counts.name_warnings,
                details="each file's warning is logged at debug level (-v)",
            )

    async def _scan_roots(self, chunks: Pipe[_Chunk]) -> None:
        """The scanning stage: every root, depth first, chunk by chunk into ``chunks``."""
        for root in self._roots:
            scan = _Scan(root, self._links, self._plain_files("", root))
            record, first = await asyncio.to_thread(scan.open_root)
            if first is None:
                scan.close()
                await chunks.put(_Chunk(_Listing((record,)), "", fast=False))
                continue
            assert isinstance(record, _Dir)
            seen = {record.key} if self._follow else None
            stack = list(reversed(await self._scan_dir(scan, "", seen, chunks, first)))
            while stack:
                directory = stack.pop()
                scan = _Scan(
                    directory.path,
                    self._links,
                    self._plain_files(directory.rel_path, directory.path),
                )
                subdirs = await self._scan_dir(scan, directory.rel_path, seen, chunks)
                stack.extend(reversed(subdirs))

    async def _scan_dir(
        self,
        scan: _Scan,
        rel_dir: str,
        seen: set[tuple[int, int]] | None,
        chunks: Pipe[_Chunk],
        first: _Listing | None = None,
    ) -> list[_Pending]:
        """Every chunk of one directory (``first`` already listed) into ``chunks``; returns
        the subdirectories to walk."""
        subdirs: list[_Pending] = []
        try:
            listing = first if first is not None else await asyncio.to_thread(scan.next_chunk)
            if listing.error is None:
                self._counts.dirs_walked += 1
            while True:
                subdirs += self._subdirs(listing, rel_dir, seen)
                await chunks.put(_Chunk(listing, rel_dir))
                if not listing.more:
                    return subdirs
                listing = await asyncio.to_thread(scan.next_chunk)
        finally:
            scan.close()

    def _subdirs(
        self, listing: _Listing, rel_dir: str, seen: set[tuple[int, int]] | None
    ) -> list[_Pending]:
        subdirs: list[_Pending] = []
        for record in listing.records:
            if isinstance(record, _Dir):
                rel_path = _rel_join(rel_dir, record.name)
                if self._admit_dir(record, rel_path, seen):
                    subdirs.append(_Pending(record.path, rel_path))
        return subdirs

    async def _consume(self, chunk: _Chunk, out: Pipe[FileEntry]) -> None:
        """Pass on a chunk's files, report its skips and failures (its subdirectories were
        seen to by the scanning stage)."""
        listing, rel_dir = chunk.listing, chunk.rel_dir
        if listing.error is not None:
            self._fail(listing.error.path, listing.error.reason)
            return
        ready: list[FileEntry] = []  # made in the scanning thread, in order, put in one go
        for record in listing.records:
            if isinstance(record, FileEntry):
                ready.append(record)
                continue
            if ready:
                await self._put_all(ready, out)
                ready = []
            if isinstance(record, _File):
                await self._offer(record, _rel_join(rel_dir, record.name), out)
            elif isinstance(record, _Skip):
                self._skip(record)
            elif isinstance(record, _Fail):
                self._fail(record.path, record.reason)
        if ready:
            await self._put_all(ready, out)

    async def _put_all(self, entries: list[FileEntry], out: Pipe[FileEntry]) -> None:
        self._counts.files_found += len(entries)
        self._counts.bytes_found += sum([entry.size for entry in entries])
        await out.put_many(entries)

    def _plain_files(self, rel_dir: str, dir_path: str) -> _Plain | None:
        """The fast way for the usual file of this directory, or None when the directory's
        own names need the full checks. Pure: it runs in the scanning thread, which hands
        the usual file on as a finished :class:`FileEntry`.

        The usual file: a plain ASCII name (:data:`_PLAIN_NAME`) in a folder with no problem,
        within the size cap and the path length, and no filter, so that none of the per-file
        checks can find anything (undecodable or unusual names, D-17, D-25 warnings, NFC).
        The function returns None for any other file, which then takes :meth:`_offer`.
        """
        if not self._filter.accepts_everything:
            return None
        folder, problem = self._folder_of(f"{rel_dir}/x" if rel_dir else "x")
        if problem is not None or not folder.isascii() or undecodable_problem(dir_path, os.sep):
            return None
        needs_param = needs_file_name_param(folder)
        prefix_rel = f"{rel_dir}/" if rel_dir else ""
        prefix_target = f"{folder}/" if folder else ""
        room = MAX_PATH_BYTES - len(prefix_target)
        max_size = self._max_file_size
        plain_name = _PLAIN_NAME.fullmatch

        def plain(record: _File) -> FileEntry | None:
            name = record.name
            if (
                len(name) > room
                or len(name) > MAX_SEGMENT_BYTES
                or record.size > max_size
                or plain_name(name) is None
                or name in (".", "..")
            ):
                return None
            return FileEntry(
                record.path,
                prefix_rel + name,
                prefix_target + name,
                record.size,
                record.mtime_ns,
                record.inode,
                needs_param,
            )

        return plain

    def _admit_dir(self, record: _Dir, rel_path: str, seen: set[tuple[int, int]] | None) -> bool:
        if self._filter.prunes(rel_path):
            self._counts.walk_excluded += 1
            return False
        if seen is None:
            return True
        if record.key in seen:
            self._skip(_Skip(record.path, "symlink loop"))
            return False
        seen.add(record.key)
        return True

    async def _offer(self, record: _File, rel_path: str, out: Pipe[FileEntry]) -> None:
        if not self._filter.accepts(rel_path, record.size, record.mtime_ns):
            self._counts.walk_excluded += 1
            return
        folder_target, folder_problem_found = self._folder_of(rel_path)
        name = rel_path.rpartition("/")[2]
        target = f"{folder_target}/{name}" if folder_target else name
        problem = (
            undecodable_problem(record.path, os.sep)
            or folder_problem_found
            or name_problem(name, target)
            or self._size_problem(record.size)
        )
        if problem is not None:
            self._fail(record.path, problem, target)
            return
        entry = FileEntry(
            path=record.path,
            rel_path=rel_path,
            target=target,
            size=record.size,
            mtime_ns=record.mtime_ns,
            inode=record.inode,
            needs_file_name_param=needs_file_name_param(target),
        )
        self._counts.name_warnings += _warn_about_name(entry)
        if not out.offer(entry):  # no coroutine per file while there is room
            await out.put(entry)
        self._counts.files_found += 1
        self._counts.bytes_found += entry.size

    def _folder_of(self, rel_path: str) -> tuple[str, str | None]:
        """The target folder of a file and its problem, worked out once per directory."""
        rel_dir = rel_path.rpartition("/")[0]
        cached = self._folder_cache
        if cached is None or cached[0] != rel_dir:
            folder = build_target(
                rel_dir, company_root=self._company_root, dest_folder=self._dest_folder
            ).rstrip("/")
            cached = self._folder_cache = (rel_dir, folder, folder_problem(folder))
        return cached[1], cached[2]

    def _size_problem(self, size: int) -> str | None:
        if size > self._max_file_size:
            return f"file too large: {size} bytes > max_file_size {self._max_file_size}"
        return None

    def _skip(self, record: _Skip) -> None:
        self._counts.walk_skipped += 1
        if record.leads_to is None:
            log.info("walk_skipped", path=escaped(record.path), reason=record.reason)
        else:
            log.warning(
                "walk_skipped",
                path=escaped(record.path),
                reason=record.reason,
                leads_to=escaped(record.leads_to),
            )

    def _fail(self, path: str, reason: str, target: str | None = None) -> None:
        """Report a failure with every name in it escaped (see the module's notes)."""
        self._counts.walk_failed += 1
        failure = FileFailure(
            escaped(path), escaped(reason), None if target is None else escaped(target)
        )
        log.debug(
            "walk_failed", path=failure.path, reason=failure.reason, target=failure.target
        )  # the failure's one warning is file_failed
        if self._on_failure is not None:
            self._on_failure(failure)


class _Links:
    """Which symlinks below a root the walk follows (used in the walker's thread only).

    The roots' real paths are worked out when the first link is met, so a walk without links
    costs nothing more."""

    def __init__(self, roots: tuple[str, ...], *, follow: bool, external: bool) -> None:
        self.follow = follow
        self._roots = roots
        self._external = external
        self._inside: tuple[str, ...] | None = None

    def refusal(self, path: str) -> _Skip | None:
        """None when the link at ``path`` may be followed, else why it is skipped."""
        if self._external:
            return None
        real = os.path.realpath(path)
        if self._inside is None:
            self._inside = tuple(_with_sep(os.path.realpath(root)) for root in self._roots)
        if any(real == root[:-1] or real.startswith(root) for root in self._inside):
            return None
        return _Skip(path, "symlink out of the source roots", leads_to=real)


class _Scan:
    """One directory being listed, :data:`SCAN_CHUNK` entries per call.

    Its methods run in worker threads, one call at a time; :meth:`close` comes from the event
    loop. A close that arrives while a chunk is being listed (the walk was cancelled) is left to
    that call, which closes the listing when it is done: the OS handle is never closed under a
    thread still reading it.
    """

    def __init__(self, path: str, links: _Links, plain: _Plain | None = None) -> None:
        self.path = path
        self._links = links
        self._plain = plain
        self._entries: Iterator[os.DirEntry[str]] | None = None
        self._busy = threading.Lock()
        self._close_asked = False
        self._first = True
        self._ahead: os.DirEntry[str] | None = None

    def open_root(self) -> tuple[_Record, _Listing | None]:
        """Stat the root (following a link) and, for a directory, list its first chunk: one
        thread hop (runs in a worker thread)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return _Fail(self.path, "source not found"), None
        except OSError as exc:
            return _stat_error(self.path, exc), None
        record = _from_stat(self.path, os.path.basename(os.path.normpath(self.path)), st)
        return record, (self.next_chunk() if isinstance(record, _Dir) else None)

    def next_chunk(self) -> _Listing:
        """The next entries, stat'ed (runs in a worker thread)."""
        with self._busy:
            try:
                return self._next_chunk()
            finally:
                if self._close_asked:
                    self._close_now()

    def close(self) -> None:
        """Release the listing's handle now, or when the chunk under way is done."""
        self._close_asked = True
        if self._busy.acquire(blocking=False):
            try:
                self._close_now()
            finally:
                self._busy.release()

    def _next_chunk(self) -> _Listing:
        try:
            entries, more = self._chunk()
        except OSError as exc:
            self._close_now()
            return _Listing((), _Fail(self.path, f"cannot read directory: {_os_reason(exc)}"))
        links, plain = self._links, self._plain
        records: list[_Record | FileEntry] = [_classify(entry, links) for entry in entries]
        if plain is not None:
            records = [(plain(r) or r) if isinstance(r, _File) else r for r in records]
        return _Listing(tuple(records), more=more, dir_path=self.path)

    def _chunk(self) -> tuple[list[os.DirEntry[str]], bool]:
        """Up to SCAN_CHUNK entries and whether more follow (one is read ahead to know)."""
        if self._entries is None:
            self._entries = os.scandir(self.path)
        entries = [] if self._ahead is None else [self._ahead]
        entries += islice(self._entries, SCAN_CHUNK + 1 - len(entries))
        more = len(entries) > SCAN_CHUNK
        self._ahead = entries.pop() if more else None
        if not more:
            self._close_now()
            if self._first:
                entries.sort(key=_name_of)  # the whole directory fits one chunk: sorted
        self._first = False
        return entries, more

    def _close_now(self) -> None:
        entries, self._entries = self._entries, None
        if entries is not None:
            entries.close()  # type: ignore[attr-defined]


def _classify(entry: os.DirEntry[str], links: _Links) -> _Record:
    path = entry.path
    try:
        st = entry.stat(follow_symlinks=False)  # the same lstat, without joining in Python
    except FileNotFoundError:
        return _Fail(path, "vanished before it could be read")
    except OSError as exc:
        return _stat_error(path, exc)
    if not stat.S_ISLNK(st.st_mode):
        return _from_stat(path, entry.name, st)
    if not links.follow:
        return _Skip(path, "symlink")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _Fail(path, "broken symlink")
    except OSError as exc:
        return _stat_error(path, exc)
    return links.refusal(path) or _from_stat(path, entry.name, st)


def _name_of(entry: os.DirEntry[str]) -> str:
    return entry.name


def _from_stat(path: str, name: str, st: os.stat_result) -> _Record:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return _File(path, name, st.st_size, st.st_mtime_ns, st.st_ino)
    if stat.S_ISDIR(mode):
        return _Dir(path, name, (st.st_dev, st.st_ino))
    if stat.S_ISFIFO(mode):
        return _Skip(path, "fifo")
    if stat.S_ISSOCK(mode):
        return _Skip(path, "socket")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return _Skip(path, "device")
    return _Skip(path, "unsupported file type")


def _stat_error(path: str, exc: OSError) -> _Record:
    if exc.errno == errno.ELOOP:
        return _Skip(path, "symlink loop")
    return _Fail(path, f"cannot stat: {_os_reason(exc)}")


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _warn_about_name(entry: FileEntry) -> bool:
    """Whether the target's name may be treated oddly by the server (said at debug level;
    the walk's end says how many)."""
    warnings = name_warnings(entry.target)
    if warnings:
        log.debug("target_name_warning", path=entry.path, target=entry.target, warnings=warnings)
    return bool(warnings)


def _with_sep(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


def _rel_join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{_nfc(name)}" if rel_dir else _nfc(name)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
