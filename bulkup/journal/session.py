"""Using the journal from a run: where it lives, the locks that keep two runs apart, and an
async front that runs every journal call on one dedicated thread (SQLite calls block).

Two locks are taken: one beside the journal file, and one per upload target (server, company,
destination, sources) in the state folder's ``locks/``, so two runs on the same target are
kept apart even when one of them keeps its journal elsewhere (``--journal``). When the state
folder cannot be written, the target locks live in a per-user folder of the temporary
directory instead. A lock file's content names its holder while it is held; on
release the file is removed, so only a holder that died leaves one behind
(``journal_lock_taken_over``).

A folder that cannot hold the journal (read-only, missing and not creatable, a file in the
way, a full disk) is a :class:`~bulkup.errors.JournalError` naming the path and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bulkup.config.model import UploadConfig
from bulkup.errors import JournalError
from bulkup.journal.store import Journal, unusable_folder

log = structlog.get_logger("bulkup.journal.store")
T = TypeVar("T")


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/bulkup``, else ``~/.local/state/bulkup``."""
    env = environ if environ is not None else dict(os.environ)
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bulkup"


def target_description(config: UploadConfig, sources: Sequence[str]) -> dict[str, Any]:
    """What identifies an upload target: server, company, destination and source roots, and
    the shard (``--shard K/N``, with its rule): each shard keeps its own journal."""
    description = {
        "server": config.upload_url,
        "company": config.company_handle,
        "company_root": config.company_root,
        "dest_folder": config.dest_folder,
        "sources": sorted(str(Path(s).resolve()) for s in sources),
    }
    if config.shard is not None:  # left out otherwise: unsharded journals keep their names
        description["shard"] = f"{config.shard} {config.shard_by}"
    return description


def target_digest(config: UploadConfig, sources: Sequence[str]) -> str:
    """A short digest of :func:`target_description`."""
    description = target_description(config, sources)
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


def target_lock_path(
    config: UploadConfig, sources: Sequence[str], environ: dict[str, str] | None = None
) -> Path:
    """The target's lock file: in the state folder, else (unwritable) in a per-user folder
    of the temporary directory."""
    name = f"{target_digest(config, sources)}.lock"
    for folder in (
        state_dir(environ) / "locks",
        Path(tempfile.gettempdir()) / f"bulkup-{os.getuid()}-locks",
    ):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder / name
    raise JournalError(
        f"no folder for the upload target's lock: {state_dir(environ)} and "
        "the temporary directory cannot be written; set XDG_STATE_HOME to a "
        "writable folder"
    )


def default_journal_path(
    config: UploadConfig, sources: Sequence[str], environ: dict[str, str] | None = None
) -> Path:
    """One journal per upload target, named readably and made unique by a digest."""
    digest = target_digest(config, sources)
    hint = "-".join(filter(None, (config.company_root, config.dest_folder))) or "upload"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", hint).strip("-")[:40] or "upload"
    if config.shard is not None:
        slug += "-s" + config.shard.replace("/", "of")
    return state_dir(environ) / f"{slug}-{digest}.journal"


class RunLock:
    """An exclusive lock; the kernel drops it when its process dies. By default the one
    beside the journal; ``lock_path`` and ``what`` make it another (the target's)."""

    def __init__(
        self, journal_path: Path, *, lock_path: Path | None = None, what: str | None = None
    ) -> None:
        self.path = lock_path or journal_path.with_name(journal_path.name + ".lock")
        self._journal_path = journal_path
        self._what = what or f"journal {journal_path}"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise JournalError naming the holder's PID and start time."""
        for _ in range(MAX_LOCK_TRIES):
            fd = self._open()
            self._lock(fd)
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file as we opened it: take the new one
        else:
            raise JournalError(f"cannot lock {self.path}: it keeps being replaced")
        self._take(fd)

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise JournalError(
                f"{self._what} is in use by another run "
                f"(PID {holder.get('pid', '?')}, started "
                f"{holder.get('started', '?')}, journal "
                f"{holder.get('journal', '?')}); try again when it ends"
            ) from None

    def _take(self, fd: int) -> None:
        previous = _read_holder(fd)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.info("journal_lock_taken_over", dead_pid=previous.get("pid"), lock=str(self.path))
        self._fd = fd
        holder = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "journal": str(self._journal_path),
            }
        ).encode()
        try:  # the note only names the holder; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder, 0)
        except OSError as exc:  # a full disk: the journal's own error will say so
            log.warning("lock_holder_not_written", lock=str(self.path), reason=exc.strerror)

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise unusable_folder(self.path, exc) from None

    def release(self) -> None:
        """Remove the lock file, then drop the lock (a run that opened the file meanwhile
        sees it replaced and takes the new one); a file left behind names a holder that
        died."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


MAX_LOCK_TRIES = 5


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        found = json.loads(data.decode() or "{}")
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


class AsyncJournal:
    """Runs the synchronous :class:`Journal` on one thread of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._journal: Journal | None = None

    async def open(self) -> None:
        """Open (or create) the journal file on the journal thread."""
        self._journal = await self._run(Journal, self.path)

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``await journal.call(Journal.record_posted, ...)``: one thread hop."""
        journal = self._journal
        if journal is None:
            raise JournalError("journal used before it was opened")
        return await self._run(method, journal, *args, **kwargs)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))
        except sqlite3.Error as exc:  # a full disk, an I/O error: the run cannot go on
            raise JournalError(
                f"journal {self.path} cannot be written ({exc}); what it "
                "recorded before is intact, and the same command resumes "
                "from there once the problem is fixed"
            ) from exc

    async def close(self) -> None:
        """Close the database and stop the thread."""
        if self._journal is not None:
            await self._run(self._journal.close)
            self._journal = None
        self._executor.shutdown(wait=True)
