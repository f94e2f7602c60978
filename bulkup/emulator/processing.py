"""Processing received files into assets (spec D-13, D-15, D-24, D-25, D-30).

With ``processing_delay_s`` = 0 every file is processed while its POST commits. Otherwise the
POST's staged files are moved to a per-job holding name in the staging folder and a background
task processes them one by one in arrival order, each after ``processing_delay_s`` (measured with
the injected sleep); ``stopJob``/``deleteJob`` cancel the files still waiting (``FileCancel``).
Every log message begins with the file's target path (or the name as sent when the path itself
was refused), which is how a client matches log lines to the files it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from bulkup.emulator.assets import CompanyAssets
from bulkup.emulator.jobs import PENDING, FileRecord, Job
from bulkup.emulator.paths import Target, file_type_problem
from bulkup.emulator.settings import Company

log = structlog.get_logger("bulkup.emulator")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class FileWork:
    """One received file on its way to an outcome."""

    job: Job
    record: FileRecord
    path: str | None  # the staged (or held) bytes; None when not kept, or once moved into place
    target: Target | None  # None when the target path was refused
    refused: str | None
    company: Company
    assets: CompanyAssets


def process_file(work: FileWork) -> None:
    """Decide one file's outcome (D-15, D-25) and store it; fills ``work.record``."""
    record, target, company = work.record, work.target, work.company
    if target is None:
        _error(record, work.refused or "target path refused")
        return
    problem = file_type_problem(
        target, record.size, javascript_enabled=company.javascript_upload_enabled
    )
    if problem or work.path is None:
        _error(record, problem or "file was not received")
        return
    options = work.job.options
    keep_state = options.get("preservePublishState", company.retain_publish_state)
    try:
        outcome = work.assets.store(
            work.path,
            target,
            overwrite=bool(options.get("overwrite")),
            publish=bool(options.get("readyForPublish")),
            keep_publish_state=bool(keep_state),
            root_prefix=company.root_path,
        )
    except OSError as exc:
        _error(record, f"cannot store file: {exc.strerror or exc}")
        return
    if outcome.moved:
        work.path = None  # nothing left to remove
    record.outcome, record.message = outcome.log_type, outcome.message
    record.asset_handle = outcome.asset_handle if outcome.log_type != "UploadError" else None


def _error(record: FileRecord, reason: str) -> None:
    record.outcome, record.message = "UploadError", f"{record.target_path}: {reason}"
    record.asset_handle = None


class Processor:
    """Runs :func:`process_file` at once or, with a delay, from a background queue."""

    def __init__(self, *, delay_s: float, staging_dir: Path, sleep: Sleep) -> None:
        self.delay_s = delay_s
        self._staging = staging_dir
        self._sleep = sleep
        self._queue: deque[FileWork] = deque()
        self._wakeup = asyncio.Event()
        self._current: FileWork | None = None

    @property
    def working(self) -> str | None:
        """The target path of the file being processed now (None when idle)."""
        return self._current.record.target_path if self._current else None

    def submit(self, work: FileWork) -> None:
        """A file of a committed POST: process it now, or hold it for the background task."""
        work.job.pending += 1
        if self.delay_s <= 0:
            self._finish(work)
            return
        if work.path is not None:
            held = os.path.join(self._staging, f"held-{work.job.seq}-{len(work.job.files)}")
            os.replace(work.path, held)
            work.path = held
        self._queue.append(work)
        self._wakeup.set()

    async def run(self) -> None:
        """The background task: process held files in arrival order until cancelled."""
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            work = self._queue.popleft()
            if work.record.outcome != PENDING:
                continue  # cancelled by stopJob/deleteJob
            self._current = work  # still set if cancelled: discard_held removes its bytes
            await self._sleep(self.delay_s)
            self._current = None
            self._finish(work)

    def stop(self, job: Job, reason: str) -> None:
        """``stopJob``/``deleteJob`` (D-30): cancel waiting files; the one in work finishes."""
        job.deleted = job.deleted or reason == "deleteJob"
        if job.done:
            return
        job.stopped_by, job.fatal_error = reason, True
        for work in self._queue:
            if work.job is job and work.record.outcome == PENDING:
                self._cancel(work, reason)
        job.close(reason)

    def discard_held(self) -> None:
        """On shutdown: remove the bytes of every file still waiting."""
        waiting = [*self._queue, *([self._current] if self._current else [])]
        for work in waiting:
            _remove(work.path)
        self._queue.clear()

    def _cancel(self, work: FileWork, reason: str) -> None:
        record = work.record
        record.outcome, record.asset_handle = "FileCancel", None
        record.message = f"{record.target_path}: cancelled by {reason}"
        _remove(work.path)
        work.job.file_processed()

    def _finish(self, work: FileWork) -> None:
        try:
            process_file(work)
        except Exception as exc:  # D-24: an internal failure is this file's error, and fatal
            log.exception("file_processing_failed", target=work.record.target_path)
            _error(work.record, f"internal error: {type(exc).__name__}: {exc}")
            work.job.fatal_error = True
        finally:
            _remove(work.path)  # not moved into place
            work.job.file_processed()


def _remove(path: str | None) -> None:
    """Delete a staged or held file that was not moved into place."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
