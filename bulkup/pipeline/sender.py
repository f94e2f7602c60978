"""Sending one batch: build a fresh body per attempt, retry what may be retried, and settle
every file of the batch as uploaded or failed.

A file is counted as uploaded only when the POST that carried it was acknowledged. A file that
changed on disk fails alone and the rest of its batch is sent again; one that changed while its
POST was being sent (the body cut that POST short) is stat'ed again and the batch resent with
it, at most MAX_CHANGED_RESENDS times, before it fails with "changed while being sent". A job
the server lost is replaced and the batch resent there (D-14); anything fatal (authentication,
authorization) propagates and stops the run.

An answer counts as the acknowledgement only when it names the job the POST was sent into
(:class:`~bulkup.errors.HandleMismatch` otherwise). Once the run is asked to stop, no new POST
is started and no failed one retried: the batch's files stay unacknowledged (neither uploaded
nor failed), for the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bulkup.config.model import UploadConfig, policy_of
from bulkup.errors import (
    HandleMismatch,
    IpsApiFault,
    RunStopping,
    SourceChangedWhileSent,
    SourceError,
    describe,
    is_fatal,
)
from bulkup.models import Batch, FileEntry, FileFailure
from bulkup.pipeline.concurrency import AutoSettings, ConcurrencyController, Limiter
from bulkup.pipeline.coordinator import Deps, JobCoordinator
from bulkup.retry import Attempts, RetryPolicy, call_with_retry
from bulkup.stats import Failures
from bulkup.targets import escaped, header_file_name
from bulkup.transport.body import BatchBody, file_part_header, new_boundary
from bulkup.transport.reader import FilePart, restat

log = structlog.get_logger("bulkup.pipeline.sender")
OnPosted = Callable[[list[FileEntry], str], Awaitable[None]]
MAX_CHANGED_RESENDS = 2  # a file that changed while sent: sent at most this many times more
CHANGED_WHILE_SENT = "changed while being sent"


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderSettings:
    """What the sender reads of the config: the retry policy, the read chunk, the file
    limit a changed file is checked against again, and ``--concurrency auto``'s settings
    (None for a fixed concurrency)."""

    retry: RetryPolicy
    chunk_size: int
    max_file_size: int
    auto: AutoSettings | None = None

    @classmethod
    def from_config(cls, config: UploadConfig) -> SenderSettings:
        """Built once per run (after the server's file limit is known)."""
        return cls(
            retry=policy_of(config),
            chunk_size=config.chunk_size,
            max_file_size=config.max_file_size,
            auto=AutoSettings.from_config(config),
        )


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Where each file's fate goes: the failures, and ``on_posted`` for the files of an
    acknowledged POST (the journal's receipt) before they are counted."""

    failures: Failures
    on_posted: OnPosted | None = None


class BatchSender:
    """Delivers batches into the coordinator's job.

    Under ``--concurrency auto`` every POST attempt passes :attr:`gate` (a
    :class:`~bulkup.pipeline.concurrency.Limiter`) and reports its outcome to it; with a fixed
    concurrency there is no gate (the number of workers is the limit)."""

    def __init__(
        self,
        settings: SenderSettings,
        *,
        deps: Deps,
        coordinator: JobCoordinator,
        outcomes: Outcomes,
    ) -> None:
        """Once ``deps.stop`` is set no POST is started and no failed one retried."""
        self._settings, self._coordinator = settings, coordinator
        self._client, self._stats, self._stop = deps.client, deps.stats, deps.stop
        self._sleep, self._rng = deps.sleep, deps.rng
        self._failures, self._on_posted = outcomes.failures, outcomes.on_posted
        self._resends: dict[str, int] = {}  # path: resends after it changed while being sent
        self.gate = (
            None
            if settings.auto is None
            else Limiter(ConcurrencyController(settings.auto, deps.clock))
        )

    async def send(self, batch: Batch) -> None:
        """Deliver ``batch``; every file ends up uploaded or in the failures, unless the run
        is stopping first (then they stay unacknowledged)."""
        entries = list(batch.entries)
        try:
            await self._deliver(entries)
        except RunStopping as exc:
            log.warning("batch_abandoned", files=len(entries), reason=describe(exc)[:200])
        finally:
            for entry in batch.entries:
                self._resends.pop(entry.path, None)

    async def _deliver(self, entries: list[FileEntry]) -> None:
        while entries:
            handle = await self._coordinator.current_handle()
            try:
                used = await self._post_with_retries(entries)
            except RunStopping:
                raise
            except SourceError as exc:
                entries = self._drop_source(entries, exc)
                continue
            except IpsApiFault as fault:
                if fault.may_mean_job_lost and not await self._coordinator.job_is_alive(handle):
                    await self._coordinator.replace_lost_job(handle)
                    continue
                self._fail(entries, f"server refused the POST: {fault}")
                return
            except Exception as exc:
                if is_fatal(exc):
                    raise
                self._fail(entries, f"not delivered: {describe(exc)}")
                return
            await self._settle(entries, used)
            return

    async def _post_with_retries(self, entries: list[FileEntry]) -> str:
        """POST the entries (fresh body per attempt); returns the job handle that took them."""
        record = Attempts()
        gate = self.gate

        async def attempt() -> str:
            if self._stop.is_set():
                raise RunStopping("the run is stopping: the POST was not sent")
            if gate is None:
                return await self._post(entries)
            await self._coordinator.current_handle()  # the job is open before a place is taken
            ticket = await gate.enter(self._stop)
            try:
                handle = await self._post(entries)
            except BaseException as exc:
                gate.failed(ticket, exc)
                raise
            gate.acknowledged(ticket, sum(e.size for e in entries))
            return handle

        try:
            used = await call_with_retry(
                attempt,
                self._settings.retry,
                sleep=self._sleep,
                rng=self._rng,
                record=record,
                on_retry=self._on_retry,
                stop=self._stop,
            )
        finally:
            self._stats.retries += record.retries
        self._coordinator.touch()
        return used

    async def _post(self, entries: list[FileEntry]) -> str:
        """One POST of ``entries`` into the current job; returns the job's handle."""
        handle = await self._coordinator.current_handle()
        answer = await self._client.post(self._body(entries, handle))
        if answer.job_handle != handle:
            raise HandleMismatch(
                f"the answer named job {answer.job_handle!r}, not "
                f"{handle!r}: not an acknowledgement"
            )
        return handle

    def _body(self, entries: list[FileEntry], handle: str) -> BatchBody:
        boundary = new_boundary()
        if len(entries) == 1 and entries[0].needs_file_name_param:
            target = entries[0].target
            head = self._coordinator.head(boundary, handle, file_name=target)
            parts = [
                FilePart(entries[0], file_part_header(boundary, 1, header_file_name(1, target)))
            ]
        else:
            head = self._coordinator.head(boundary, handle)
            parts = [
                FilePart(e, file_part_header(boundary, i, e.target))
                for i, e in enumerate(entries, 1)
            ]
        return BatchBody(
            boundary=boundary, head=head, files=parts, chunk_size=self._settings.chunk_size
        )

    def _on_retry(self, exc: BaseException, attempt: int, wait_s: float) -> None:
        log.warning(
            "post_retry",
            attempt=attempt,
            wait_s=round(wait_s, 3),
            error=type(exc).__name__,
            reason=describe(exc)[:200],
        )

    def _drop_source(self, entries: list[FileEntry], exc: SourceError) -> list[FileEntry]:
        """The entries to send again: without the file ``exc`` names (failed), or with it
        stat'ed again when it changed while being sent and may be resent."""
        bad = [e for e in entries if e.path == exc.path]
        reason = exc.reason
        if bad and isinstance(exc, SourceChangedWhileSent):
            fresh = self._changed_while_sent(bad[0], exc)
            if isinstance(fresh, FileEntry):
                return [fresh if e.path == exc.path else e for e in entries]
            reason = fresh
        self._fail(bad or entries, reason)
        return [e for e in entries if e.path != exc.path] if bad else []

    def _changed_while_sent(self, entry: FileEntry, exc: SourceChangedWhileSent) -> FileEntry | str:
        """The file as it is now, to be resent; or, after MAX_CHANGED_RESENDS resends (or
        when it cannot be sent any more), the reason it fails."""
        resends = self._resends.get(entry.path, 0)
        if resends >= MAX_CHANGED_RESENDS:
            return f"{CHANGED_WHILE_SENT} ({resends + 1} times; last: {exc.reason})"
        fresh = restat(entry, self._settings.max_file_size)
        if isinstance(fresh, FileEntry):
            self._resends[entry.path] = resends + 1
            log.info(
                "file_changed_while_sent",
                path=escaped(entry.path),
                resend=resends + 1,
                reason=exc.reason,
                size=fresh.size,
            )
        return fresh

    def _fail(self, entries: list[FileEntry], reason: str) -> None:
        for entry in entries:
            self._failures.add(FileFailure(entry.path, reason, entry.target))

    async def _settle(self, entries: list[FileEntry], handle: str) -> None:
        """Acknowledged: the journal first (a crash after this never re-sends them), then
        the counters. A cancellation (a stop's grace period over) waits for both, so the
        journal never holds a receipt that the report does not count."""
        recording = asyncio.ensure_future(self._record(entries, handle))  # awaited either way
        try:
            await asyncio.shield(recording)
        except asyncio.CancelledError:
            await recording
            raise

    async def _record(self, entries: list[FileEntry], handle: str) -> None:
        if self._on_posted is not None:
            await self._on_posted(entries, handle)
        self._stats.files_uploaded += len(entries)
        self._stats.bytes_uploaded += sum(e.size for e in entries)
        log.debug("batch_sent", files=len(entries), bytes=sum(e.size for e in entries))
