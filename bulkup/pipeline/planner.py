"""The planner between the walker and the workers: which walked files to send this run.

It takes walked files in chunks, asks the journal about a whole chunk at once, and passes on
only what needs sending: new files, changed files (size or mtime differ from their last
acknowledged state; with ``checksum`` the sha256 differs, hashes cached by size, mtime and
inode), and files never acknowledged. ``force`` sends everything; ``retry_failed`` only what
failed before. Each chunk is recorded in one journal transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import structlog

from bulkup.config.model import UploadConfig
from bulkup.journal.session import AsyncJournal
from bulkup.journal.store import ACKNOWLEDGED, Journal, Known
from bulkup.models import FileEntry
from bulkup.pipeline.pipe import Pipe
from bulkup.stats import Stats

log = structlog.get_logger("bulkup.pipeline.planner")
CHUNK = 256
HASH_BLOCK = 1024 * 1024


@dataclass(slots=True)
class SyncPlanner:
    """Decides, chunk by chunk, which files go to the workers."""

    config: UploadConfig
    stats: Stats
    journal: AsyncJournal | None = None
    run_id: int = 0
    hashes: dict[str, str] = field(default_factory=dict)  # target → sha256, until posted
    first_run: bool | None = None  # the journal has no files: nothing to look up

    async def run(self, walked: Pipe[FileEntry], to_send: Pipe[FileEntry]) -> None:
        """Move files from ``walked`` to ``to_send`` until ``walked`` ends; ``to_send`` is
        closed however this ends (finished, failed, cancelled)."""
        try:
            async for chunk in walked.chunks(CHUNK):
                for entry in await self._plan(chunk):
                    if not to_send.offer(entry):  # no coroutine per file while there is room
                        await to_send.put(entry)
        finally:
            to_send.close()

    async def _plan(self, chunk: list[FileEntry]) -> list[FileEntry]:
        journal = self.journal
        if journal is None:
            return chunk
        if self.first_run is None:
            self.first_run = not await journal.call(Journal.has_files)
        if not self.first_run and self._by_size_and_mtime:
            indexes = await journal.call(Journal.walked_changed, self.run_id, chunk)
            return self._skipped_but(chunk, [chunk[i] for i in indexes])
        known: dict[str, Known] = {}
        if not self.first_run:
            known = await journal.call(Journal.lookup, [e.target for e in chunk])
        hashes: dict[str, str] = {}
        if self.config.checksum:
            hashes = await asyncio.to_thread(_hash_chunk, chunk, known)
        send = [e for e in chunk if self._should_send(e, known.get(e.target), hashes)]
        if known:
            await journal.call(
                Journal.record_walked, self.run_id, [e for e in chunk if e.target in known], hashes
            )
        self.hashes.update((e.target, hashes[e.target]) for e in send if e.target in hashes)
        return self._skipped_but(chunk, send)

    @property
    def _by_size_and_mtime(self) -> bool:
        """The plain sync (no force, retry-failed or checksum): decided inside the journal."""
        config = self.config
        return not (config.force or config.retry_failed or config.checksum)

    def _skipped_but(self, chunk: list[FileEntry], send: list[FileEntry]) -> list[FileEntry]:
        """``send``, the rest of ``chunk`` counted as skipped."""
        self.stats.files_skipped += len(chunk) - len(send)
        self.stats.bytes_skipped += sum([e.size for e in chunk]) - sum([e.size for e in send])
        return send

    def _should_send(self, entry: FileEntry, known: Known | None, hashes: dict[str, str]) -> bool:
        config = self.config
        if config.force:
            return True
        if config.retry_failed:
            return known is not None and known.state == "failed"
        if known is None or known.state not in ACKNOWLEDGED:
            return True
        if config.checksum and known.acked_sha256 is not None:
            return known.acked_sha256 != hashes.get(entry.target)
        return not known.unchanged_since_ack(entry)


def _hash_chunk(chunk: list[FileEntry], known: dict[str, Known]) -> dict[str, str]:
    """sha256 of each file, from the cache when size, mtime and inode still match."""
    found: dict[str, str] = {}
    for entry in chunk:
        cached = known[entry.target].cached_sha256(entry) if entry.target in known else None
        digest = cached or _sha256_of(entry.path)
        if digest is not None:
            found[entry.target] = digest
    return found


def _sha256_of(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
    except OSError:
        return None  # the send will report what is wrong with the file
    return digest.hexdigest()
