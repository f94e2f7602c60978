"""The journal's side of one run: lock, run record, receipts, failures, jobs, gone files.

Created by the uploader when a journal is in use (not with ``--no-journal`` or ``--dry-run``).
Receipts are written once per acknowledged POST, in one transaction; failures are buffered and
written with the next receipt (a failure lost in a crash only means the file is tried again).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import structlog

from bulkup.config.model import UploadConfig
from bulkup.errors import JournalError
from bulkup.journal.session import (
    AsyncJournal,
    RunLock,
    default_journal_path,
    target_description,
    target_lock_path,
)
from bulkup.journal.store import Journal, ResumableJob
from bulkup.models import FileEntry, FileFailure
from bulkup.report import UploadReport

log = structlog.get_logger("bulkup.journal.recorder")


def params_digest(config: UploadConfig) -> str:
    """Identifies the job options, so a job is only continued with the same ones."""
    return hashlib.sha256(repr(config.upload_params).encode()).hexdigest()[:32]


class RunRecorder:
    """Everything a run writes to its journal."""

    def __init__(
        self, journal: AsyncJournal, locks: Sequence[RunLock], config: UploadConfig
    ) -> None:
        self.journal = journal
        self._locks = locks
        self._config = config
        self.run_id = 0
        self._failures: list[FileFailure] = []

    @classmethod
    async def start(cls, config: UploadConfig, sources: Sequence[str]) -> RunRecorder:
        """Lock the upload target and its journal, open the journal, and begin a run."""
        path = config.journal or default_journal_path(config, sources)
        locks = [
            RunLock(
                path,
                lock_path=target_lock_path(config, sources),
                what="the upload target (same server, company, destination and sources)",
            ),
            RunLock(path),
        ]
        taken: list[RunLock] = []
        journal = AsyncJournal(path)
        try:
            for lock in locks:
                lock.acquire()
                taken.append(lock)
            await journal.open()
            await journal.call(Journal.describe, target_description(config, sources))
            recorder = cls(journal, locks, config)
            recorder.run_id = await journal.call(Journal.begin_run, os.getpid())
        except BaseException:
            await journal.close()
            for lock in reversed(taken):
                lock.release()
            raise
        log.info("journal_opened", path=str(path), run=recorder.run_id)
        return recorder

    def failed(self, failure: FileFailure) -> None:
        """Buffer a failure; written with the next receipt or at the end."""
        self._failures.append(failure)

    async def posted(
        self, entries: Sequence[FileEntry], job_handle: str, hashes: dict[str, str]
    ) -> None:
        """The POST carrying ``entries`` was acknowledged: one transaction, the last step.

        The buffered failures are written first: when anything here raises, the receipt is
        not in the journal and the caller does not count the files, so the report and the
        journal agree (a receipt written, then an error, made the report count 0 uploaded
        while the journal held them)."""
        if self._failures:
            await self.flush_failures()
        await self.journal.call(Journal.record_posted, self.run_id, entries, job_handle, hashes)

    async def flush_failures(self) -> None:
        """Write the buffered failures."""
        failures, self._failures = self._failures, []
        if failures:
            await self.journal.call(Journal.record_failed, self.run_id, failures)

    async def resumable_job(self) -> ResumableJob | None:
        """An open job of an earlier run to continue, if one is recent enough."""
        return await self.journal.call(
            Journal.resumable_job,
            source_ip=self._config.source_ip,
            params_digest=params_digest(self._config),
            within_s=self._config.keepalive_after_s,
        )

    async def earlier_unconfirmed_jobs(self, exclude: list[str]) -> list[str]:
        """Jobs of earlier runs whose files were posted but never confirmed (a crash before
        their job log was read): their verdicts are read with this run's."""
        handles = await self.journal.call(Journal.jobs_with_unconfirmed)
        return [h for h in handles if h not in exclude]

    async def job_opened(self, handle: str, name: str) -> None:
        """Remember the job, so a crashed run can continue it."""
        await self.journal.call(
            Journal.record_job_opened,
            self.run_id,
            handle,
            name,
            self._config.source_ip,
            params_digest(self._config),
        )

    async def job_active(self, handle: str) -> None:
        """A file-less POST of the job was acknowledged."""
        await self.journal.call(Journal.record_job_active, handle)

    async def job_closing(self, handle: str) -> None:
        """endJob is about to be sent: from now on the job is closed for every run (D-07)."""
        await self.journal.call(Journal.record_job_closing, handle)

    async def job_closed(self, handle: str) -> None:
        """The job is closed."""
        await self.journal.call(Journal.record_job_closed, handle)

    async def finish(self, report: UploadReport, walk_complete: bool) -> list[str]:
        """Write the run's summary; returns the files gone from disk (complete walks only)."""
        await self.flush_failures()
        gone = await self.journal.call(Journal.gone, self.run_id) if walk_complete else []
        summary: dict[str, Any] = {
            k: v for k, v in report.as_json().items() if k not in ("failures", "gone")
        }
        summary["files_gone"] = len(gone)
        await self.journal.call(Journal.end_run, self.run_id, summary, walk_complete)
        return gone

    async def close(self) -> None:
        """Close the journal and drop the lock (the lock is dropped even if closing fails)."""
        try:
            await self.journal.close()
        except JournalError as exc:
            log.error("journal_close_failed", reason=str(exc))
        finally:
            for lock in reversed(self._locks):
                lock.release()


class JournalLedger:
    """The journal as the ledger of verdicts (see :mod:`bulkup.monitoring.confirm`)."""

    def __init__(self, recorder: RunRecorder) -> None:
        self._recorder = recorder

    async def find(self, handle: str, candidates: list[str]) -> dict[str, str]:
        return await self._recorder.journal.call(Journal.posted_sources, handle, candidates)

    async def settle(self, verdicts: list[tuple[str, str, str]]) -> None:
        confirmed = [target for target, state, _ in verdicts if state == "confirmed"]
        if confirmed:
            await self._recorder.journal.call(Journal.record_confirmed, confirmed)

    async def unconfirmed(self, handle: str) -> int:
        await self._recorder.flush_failures()
        return await self._recorder.journal.call(Journal.count_unconfirmed, handle)
