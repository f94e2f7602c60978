"""Using the journal from a run: where it lives, the lock that keeps two runs apart, and an
async front that runs every journal call on one dedicated thread (SQLite calls block)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from bulkup.config import UploadConfig
from bulkup.errors import JournalError
from bulkup.journal import Journal

log = structlog.get_logger("bulkup.journal")
T = TypeVar("T")


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/bulkup``, else ``~/.local/state/bulkup``."""
    env = environ if environ is not None else dict(os.environ)
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bulkup"


def target_description(config: UploadConfig, sources: Sequence[str]) -> dict[str, Any]:
    """What identifies an upload target: server, company, destination and source roots."""
    return {"server": config.upload_url, "company": config.company_handle,
            "company_root": config.company_root, "dest_folder": config.dest_folder,
            "sources": sorted(str(Path(s).resolve()) for s in sources)}


def default_journal_path(config: UploadConfig, sources: Sequence[str],
                         environ: dict[str, str] | None = None) -> Path:
    """One journal per upload target, named readably and made unique by a digest."""
    description = target_description(config, sources)
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    hint = "-".join(filter(None, (config.company_root, config.dest_folder))) or "upload"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", hint).strip("-")[:40] or "upload"
    return state_dir(environ) / f"{slug}-{digest}.journal"


class RunLock:
    """An exclusive lock beside the journal; the kernel drops it when its process dies."""

    def __init__(self, journal_path: Path) -> None:
        self.path = journal_path.with_name(journal_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise JournalError naming the holder's PID and start time."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise JournalError(f"journal {self.path.with_suffix('')} is in use by another run "
                               f"(PID {holder.get('pid', '?')}, started "
                               f"{holder.get('started', '?')}); try again when it ends") from None
        previous = _read_holder(fd)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.info("journal_lock_taken_over", dead_pid=previous.get("pid"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the lock file stays; its content names the last holder)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


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
            raise JournalError(f"journal {self.path} cannot be written ({exc}); what it "
                               "recorded before is intact, and the same command resumes "
                               "from there once the problem is fixed") from exc

    async def close(self) -> None:
        """Close the database and stop the thread."""
        if self._journal is not None:
            await self._run(self._journal.close)
            self._journal = None
        self._executor.shutdown(wait=True)
