"""The server's verdict on every file: read the job log and settle each file sent.

A 200 from the servlet only says the bytes arrived (D-13); the job log says, per file, whether
it became an asset (``UploadSuccess``, ``FileUpdated``), was kept out as a duplicate
(``DuplicateSkipped``), or was refused (``UploadError``, ``FileCancel``). Each log line is
matched to the file sent by the target path its message begins with, or else by its asset
name; the ledger (the journal, or memory without one) records the verdicts page by page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from bulkup.models import FileFailure
from bulkup.monitoring.api import JobMonitor

log = structlog.get_logger("bulkup.monitoring.confirm")
VERDICTS = {
    "uploadsuccess": "confirmed",
    "fileupdated": "confirmed",
    "duplicateskipped": "skipped",
    "uploaderror": "failed",
    "filecancel": "failed",
}
SUCCESS_SUFFIX = " was processed into IPS"


class Ledger(Protocol):
    """The files sent into one job, and where their verdicts go."""

    async def find(self, handle: str, candidates: list[str]) -> dict[str, str]:
        """target → source path, for the candidate targets that were sent to ``handle``."""

    async def settle(self, verdicts: list[tuple[str, str, str]]) -> None:
        """Record (target, ``confirmed``/``failed``, message) verdicts (failures also reach
        ``on_failure``, which records them as every other failure)."""

    async def unconfirmed(self, handle: str) -> int:
        """How many files sent to ``handle`` still have no verdict."""


@dataclass(slots=True)
class Outcome:
    """What the job logs said about this run's files."""

    confirmed: int = 0
    failed: int = 0
    skipped_by_server: int = 0
    unconfirmed: int = 0
    unmatched_lines: int = 0
    stopped_jobs: int = 0


def candidates_of(message: str) -> list[str]:
    """Targets a log message may begin with: before " was processed…", or before a ": "."""
    found = []
    if SUCCESS_SUFFIX in message:
        found.append(message.split(SUCCESS_SUFFIX, 1)[0])
    start = 0
    while (at := message.find(": ", start)) > 0:
        found.append(message[:at])
        start = at + 1
    return found


async def confirm_job(
    monitor: JobMonitor, handle: str, ledger: Ledger, outcome: Outcome, on_failure: Any
) -> None:
    """Page through the job's log and settle every file it mentions."""
    stopped = False
    async for job_log, details in monitor.job_log(handle):
        stopped = stopped or str(job_log.get("fatalError", "")).lower() == "true"
        lines = [
            (str(d.get("logType", "")).lower(), str(d.get("logMessage") or ""))
            for d in details
            if isinstance(d, dict)
        ]
        lines = [(VERDICTS[kind], message) for kind, message in lines if kind in VERDICTS]
        if lines:
            await _settle_page(handle, lines, ledger, outcome, on_failure)
    outcome.stopped_jobs += stopped
    outcome.unconfirmed += await ledger.unconfirmed(handle)


async def _settle_page(
    handle: str, lines: list[tuple[str, str]], ledger: Ledger, outcome: Outcome, on_failure: Any
) -> None:
    wanted = sorted({c for _, message in lines for c in candidates_of(message)})
    sent = await ledger.find(handle, wanted)
    verdicts: list[tuple[str, str, str]] = []
    for kind, message in lines:
        target = next((c for c in candidates_of(message) if c in sent), None)
        if target is None:
            outcome.unmatched_lines += 1
            log.warning("job_log_line_unmatched", job_handle=handle, message=message[:200])
            continue
        verdicts.append((target, "failed" if kind == "failed" else "confirmed", message))
        _count(kind, outcome)
        if kind == "failed":
            on_failure(FileFailure(sent[target], f"refused by the server: {message}", target))
    await ledger.settle(verdicts)


def _count(kind: str, outcome: Outcome) -> None:
    if kind == "confirmed":
        outcome.confirmed += 1
    elif kind == "skipped":
        outcome.skipped_by_server += 1
        outcome.confirmed += 1
    else:
        outcome.failed += 1


class MemoryLedger:
    """Without a journal: the targets sent, per job, kept in memory for the run."""

    def __init__(self) -> None:
        self._sent: dict[str, dict[str, str]] = {}

    def add(self, handle: str, entries: list[Any]) -> None:
        """Remember files acknowledged into ``handle``."""
        self._sent.setdefault(handle, {}).update((e.target, e.path) for e in entries)

    async def find(self, handle: str, candidates: list[str]) -> dict[str, str]:
        sent = self._sent.get(handle, {})
        return {c: sent[c] for c in candidates if c in sent}

    async def settle(self, verdicts: list[tuple[str, str, str]]) -> None:
        for job in self._sent.values():
            for target, _, _ in verdicts:
                job.pop(target, None)

    async def unconfirmed(self, handle: str) -> int:
        return len(self._sent.get(handle, {}))
