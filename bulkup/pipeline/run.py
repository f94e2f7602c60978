"""The pipeline of one run: walker → bounded pipe → workers (pack + send) → one job.

::

    sources ──walk──▶ [pipe] ──plan──▶ [pipe] ──▶ N workers ──pack──▶ Batch ──POST──▶
                      (SyncPlanner: skip what the journal   (one BatchPacker each, BatchSender;
                       says is unchanged, in chunks)          a receipt per acknowledged POST)
    JobCoordinator: opens the job as soon as a worker has a file to send, keeps it alive, and
    sends endJob after every other POST returned — also after partial failures and on the
    first Ctrl-C (``stop``).

A stop (first SIGINT or SIGTERM) starts no new POST and no retry; the POSTs in flight get
``stop_grace_s`` to finish, then their workers are cancelled (those files stay unacknowledged);
endJob gets one attempt of at most :data:`END_JOB_ON_STOP_S`; the report and journal are
written. An abort (the second signal) cancels whatever is under way at once; the journal keeps
its last committed receipt and the report is still built. Worst case from the first signal to
the end of the run: ``stop_grace_s`` + :data:`END_JOB_ON_STOP_S` + closing the journal.

Every task of a run is started in one ``asyncio.TaskGroup`` (:func:`_pipeline`) and ends with it;
the stages are joined by :class:`~bulkup.pipeline.pipe.Pipe` s that their producers close, so an
end, a failure or a stop reaches every consumer without end markers.

Memory is bounded by the two pipes (``queue_size`` entries each) plus, per worker, one open
batch of entries and about two read chunks of file data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog

from bulkup.config.filters import FileFilter
from bulkup.config.model import UploadConfig
from bulkup.errors import (
    BulkupError,
    ConfigError,
    JournalError,
    RunStopping,
    UploadFailed,
    describe,
    is_fatal,
)
from bulkup.journal.recorder import JournalLedger, RunRecorder
from bulkup.journal.store import ResumableJob
from bulkup.models import FileEntry
from bulkup.monitoring.api import OPEN_STATES, JobMonitor
from bulkup.monitoring.confirm import Ledger, MemoryLedger, Outcome
from bulkup.monitoring.verdicts import WaitSettings, find_monitor, server_verdicts
from bulkup.pipeline.coordinator import Deps, JobCoordinator, JobLinks, JobSettings
from bulkup.pipeline.packing import BatchPacker, PlanListing
from bulkup.pipeline.pipe import Pipe
from bulkup.pipeline.planner import SyncPlanner
from bulkup.pipeline.preflight import check_before_upload
from bulkup.pipeline.sender import BatchSender, OnPosted, Outcomes, SenderSettings
from bulkup.pipeline.shard import apply_shard, left_out, named_for_shard, with_shard
from bulkup.pipeline.walker import Walker
from bulkup.report import EXIT_FATAL, EXIT_USAGE, UploadReport
from bulkup.retry import Sleep, unless_stopped
from bulkup.stats import Failures, Stats, StatsSnapshot
from bulkup.transport.client import UploadClient

log = structlog.get_logger("bulkup.pipeline.run")
END_JOB_TIMEOUT_S = 600.0
END_JOB_ON_STOP_S = 10.0
Progress = Callable[[StatsSnapshot], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunHooks:
    """The world a run talks to, injectable for tests."""

    clock: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep
    rng: Callable[[], float] = random.random
    progress: Progress | None = None
    progress_interval_s: float = 0.5


async def run_upload(
    config: UploadConfig,
    sources: Sequence[str],
    *,
    stop: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
    hooks: RunHooks = RunHooks(),
) -> UploadReport:
    """Upload every file under ``sources``; returns the report.

    ``stop`` asks for a graceful stop (see the module's notes), ``abort`` for leaving at once.

    Raises only ConfigError (no server, or a mistake found before the first POST: see
    :mod:`bulkup.pipeline.preflight`) and JournalError (journal locked, damaged or newer);
    everything
    else that goes wrong is in the report.
    """
    check_before_upload(config, sources)
    config = named_for_shard(config)
    now = time.time()  # ages from the run's start
    file_filter = await apply_shard(
        config, sources, lambda: FileFilter.from_config(config, now=now)
    )
    stats = Stats(clock=hooks.clock)
    failures = Failures(stats)
    if config.dry_run:
        return with_shard(
            await _dry_run(
                config, _walker(config, sources, failures, file_filter), stats, failures
            ),
            file_filter,
        )
    url = config.upload_url
    if not url:
        raise ConfigError("no server: give --server URL, --region or --emulator")
    recorder = None if config.no_journal else await RunRecorder.start(config, sources)
    try:
        if recorder is not None:
            failures.sink = recorder.failed
        return with_shard(
            await _run(
                config,
                url,
                sources,
                stats,
                failures,
                recorder,
                stop or asyncio.Event(),
                abort,
                hooks,
                file_filter,
            ),
            file_filter,
        )
    finally:
        if recorder is not None:
            await recorder.close()


async def _run(
    config: UploadConfig,
    url: str,
    sources: Sequence[str],
    stats: Stats,
    failures: Failures,
    recorder: RunRecorder | None,
    stop: asyncio.Event,
    abort: asyncio.Event | None,
    hooks: RunHooks,
    file_filter: FileFilter,
) -> UploadReport:
    resume = await recorder.resumable_job() if recorder else None
    ledger: Ledger = JournalLedger(recorder) if recorder else MemoryLedger()
    async with UploadClient(config, url, stats=stats) as client:
        try:
            monitor, config = await find_monitor(client, config, hooks.sleep, stop)
            setup_failure = None
        except UploadFailed as exc:
            log.error("run_failed", error=type(exc).__name__, reason=describe(exc))
            monitor, setup_failure = None, Fatal(describe(exc))
        resume = await _still_open(resume, monitor, recorder)
        walker = _walker(config, sources, failures, file_filter)
        planner = SyncPlanner(
            config=config,
            stats=stats,
            journal=recorder.journal if recorder else None,
            run_id=recorder.run_id if recorder else 0,
        )
        deps = Deps(
            client=client,
            stats=stats,
            clock=hooks.clock,
            sleep=hooks.sleep,
            rng=hooks.rng,
            stop=stop,
        )
        coordinator = JobCoordinator(
            JobSettings.from_config(config),
            deps=deps,
            links=JobLinks(
                recorder=recorder,
                status=monitor,
                resume=(resume.handle, resume.name) if resume else None,
            ),
        )
        sender = BatchSender(
            SenderSettings.from_config(config),
            deps=deps,
            coordinator=coordinator,
            outcomes=Outcomes(failures, _receipts(recorder, planner, ledger)),
        )
        fatal = setup_failure or await _unless_aborted(
            _send_and_close(config, walker, planner, sender, coordinator, stats, stop, hooks),
            abort,
            stop,
        )
        handles = list(coordinator.handles)
        if recorder is not None and monitor is not None and not stop.is_set():
            handles += await recorder.earlier_unconfirmed_jobs(handles)
        outcome, confirmation = await server_verdicts(
            monitor, WaitSettings.from_config(config), handles, ledger, failures, stop
        )
    report = _with_verdicts(
        _report(stats, failures, coordinator.handles, stop.is_set(), fatal),
        outcome,
        confirmation,
        config,
    )
    if recorder is None:
        return report
    try:
        # Gone files only after a walk that saw everything: a filtered-out file is not gone.
        saw_all = (
            walker.stats.done
            and not stop.is_set()
            and not left_out(file_filter, walker.stats.excluded)
        )
        gone = await recorder.finish(report, saw_all)
    except JournalError as exc:
        log.error("journal_finish_failed", reason=str(exc))
        if report.fatal_error is not None:
            return report
        return dataclasses.replace(report, fatal_error=str(exc), fatal_exit_code=EXIT_USAGE)
    return dataclasses.replace(report, files_gone=len(gone), gone=tuple(gone))


async def _still_open(
    resume: ResumableJob | None, monitor: JobMonitor | None, recorder: RunRecorder | None
) -> ResumableJob | None:
    """The earlier run's open job, if the server still lists it as taking POSTs
    (``getActiveJobs``; when the API cannot say, the journal's word stands and a 30001 on the
    first POST would still show a lost job). A job the server no longer has open is recorded
    closed and never POSTed into (D-07)."""
    if resume is None or monitor is None or recorder is None:
        return resume
    try:
        job = await monitor.active_job(resume.handle)
    except BulkupError as exc:
        log.info("job_status_unavailable", job_handle=resume.handle, reason=describe(exc))
        return resume
    if job is not None and job.state in OPEN_STATES:
        return resume
    log.info(
        "job_not_resumed",
        job_handle=resume.handle,
        state=job.state if job is not None else "not listed",
    )
    await recorder.job_closed(resume.handle)
    return None


async def _send_and_close(
    config: UploadConfig,
    walker: Walker,
    planner: SyncPlanner,
    sender: BatchSender,
    coordinator: JobCoordinator,
    stats: Stats,
    stop: asyncio.Event,
    hooks: RunHooks,
) -> Fatal | None:
    """The pipeline, then endJob; returns why the run failed, if it did."""
    fatal: Fatal | None = None
    try:
        await _pipeline(config, walker, planner, sender, coordinator, stats, stop, hooks)
    except BaseExceptionGroup as group:  # from the TaskGroup
        fatal = _fatal_reason(group)
    return await _close_job(coordinator, fatal, stop.is_set())


async def _unless_aborted(
    work: Coroutine[Any, Any, Fatal | None], abort: asyncio.Event | None, stop: asyncio.Event
) -> Fatal | None:
    """``work``'s outcome; when ``abort`` fires first, ``work`` is cancelled (and awaited:
    receipts being written finish first) and the run counts as interrupted."""
    if abort is None:
        return await work
    try:
        return await unless_stopped(work, abort)
    except RunStopping:
        stop.set()
        log.warning("run_aborted", reason="second signal: left without waiting")
        return None


def _with_verdicts(
    report: UploadReport, outcome: Outcome | None, confirmation: str, config: UploadConfig
) -> UploadReport:
    """The server's verdicts in the report; unconfirmed files fail if confirmation is required."""
    outcome = outcome or Outcome(unconfirmed=report.files_uploaded)
    failed = report.files_failed
    if config.require_confirmation and outcome.unconfirmed:
        failed += outcome.unconfirmed
    return dataclasses.replace(
        report,
        files_failed=failed,
        files_confirmed=outcome.confirmed,
        files_skipped_by_server=outcome.skipped_by_server,
        files_unconfirmed=outcome.unconfirmed,
        confirmation=confirmation,
        jobs_stopped=outcome.stopped_jobs,
        files_refused=outcome.failed,
        files_failed_locally=max(report.files_failed - outcome.failed, 0),
    )


def _receipts(recorder: RunRecorder | None, planner: SyncPlanner, ledger: Ledger) -> OnPosted:
    """What the sender calls once a POST is acknowledged: the journal's receipt (or, without
    a journal, the in-memory ledger the job log is matched against)."""

    async def on_posted(entries: list[FileEntry], handle: str) -> None:
        if recorder is None:
            assert isinstance(ledger, MemoryLedger)
            ledger.add(handle, entries)
            return
        hashes = {
            e.target: planner.hashes.pop(e.target) for e in entries if e.target in planner.hashes
        }
        await recorder.posted(entries, handle, hashes)

    return on_posted


def _walker(
    config: UploadConfig, sources: Sequence[str], failures: Failures, file_filter: FileFilter
) -> Walker:
    return Walker(
        roots=sources,
        file_filter=file_filter,
        follow_symlinks=config.follow_symlinks,
        follow_external_symlinks=config.follow_external_symlinks,
        company_root=config.company_root,
        dest_folder=config.dest_folder,
        max_file_size=config.max_file_size,
        on_failure=failures.add,
        stats=failures.stats,
    )


async def _pipeline(
    config: UploadConfig,
    walker: Walker,
    planner: SyncPlanner,
    sender: BatchSender,
    coordinator: JobCoordinator,
    stats: Stats,
    stop: asyncio.Event,
    hooks: RunHooks,
) -> None:
    walked: Pipe[FileEntry] = Pipe(config.queue_size)
    to_send: Pipe[FileEntry] = Pipe(config.queue_size)
    async with asyncio.TaskGroup() as group:
        walking = walked.closes_with(group.create_task(walker.run(walked)))
        planning = to_send.closes_with(group.create_task(planner.run(walked, to_send)))
        workers = [
            group.create_task(_worker(to_send, _packer(config), sender, coordinator, stop))
            for _ in range(config.concurrency_cap)
        ]
        helpers = [
            group.create_task(coordinator.keep_alive()),
            group.create_task(_cancel_on(stop, walking, planning)),
            group.create_task(_report_progress(stats, hooks)),
        ]
        await _drain(workers, stop, config.stop_grace_s)
        for task in helpers:
            task.cancel()


async def _drain(workers: list[asyncio.Task[None]], stop: asyncio.Event, grace_s: float) -> None:
    """Wait for the workers; once ``stop`` is set, for at most ``grace_s`` more, then cancel
    the ones still sending (their POSTs are abandoned, their files stay unacknowledged)."""
    pending: set[asyncio.Task[Any]] = set(workers)
    stopping = asyncio.ensure_future(stop.wait())  # owned here: cancelled and awaited below
    try:
        while pending and not stop.is_set():
            _, pending = await asyncio.wait(
                pending | {stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stopping)
    finally:
        stopping.cancel()
        await asyncio.wait({stopping})
    if pending:
        _, pending = await asyncio.wait(pending, timeout=grace_s)
    if pending:
        log.warning("posts_abandoned", workers=len(pending), grace_s=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)


def _packer(config: UploadConfig) -> BatchPacker:
    return BatchPacker(config.max_post_bytes, config.max_files_per_post)


async def _worker(
    pipe: Pipe[FileEntry],
    packer: BatchPacker,
    sender: BatchSender,
    coordinator: JobCoordinator,
    stop: asyncio.Event,
) -> None:
    """Pack entries into batches and send each as soon as it is full; the first entry starts
    opening the job (so its round trip overlaps with packing). Each take is about what the
    open batch still has room for, so the workers share the files out. Under
    ``--concurrency auto`` a worker takes a batch place before it starts a batch (about as
    many as POSTs may be in flight), so the files are not spread thin over every worker."""
    opened, gate, holding = False, sender.gate, False
    try:
        while not stop.is_set():
            if gate is not None and not holding:
                await gate.start_batch()
                holding = True
            files, room = packer.room()
            chunk = await pipe.take(files, weigh=_size_of, budget=room)
            if not chunk or stop.is_set():
                break
            if not opened:
                coordinator.open_soon()
                opened = True
            for entry in chunk:
                for batch in packer.add(entry):
                    if stop.is_set():
                        return
                    await sender.send(batch)
            if gate is not None and holding and not packer.pending:
                gate.end_batch()
                holding = False
        last = packer.flush()
        if last is not None and not stop.is_set():
            await sender.send(last)
    finally:
        if gate is not None and holding:
            gate.end_batch()


def _size_of(entry: FileEntry) -> int:
    return entry.size


async def _cancel_on(stop: asyncio.Event, *producers: asyncio.Task[None]) -> None:
    await stop.wait()
    log.warning("run_stopping", reason="interrupted: no new batches; waiting for those in flight")
    for task in producers:
        task.cancel()


async def _report_progress(stats: Stats, hooks: RunHooks) -> None:
    if hooks.progress is None:
        return
    while True:
        hooks.progress(stats.snapshot())
        await asyncio.sleep(
            hooks.progress_interval_s
        )  # real time: a display refresh, not a wait a test fakes


class Fatal(NamedTuple):
    """Why the run stopped, and the exit code that says so (2 for the surroundings: a
    journal that cannot be written; else 3)."""

    reason: str
    exit_code: int = EXIT_FATAL


def _fatal_reason(group: BaseExceptionGroup[BaseException]) -> Fatal:
    """Why the run stopped: the first fatal error, else the first unexpected one.

    Cancellation and KeyboardInterrupt (not ``Exception``) propagate unchanged.
    """
    leaves = list(_leaves(group))
    if any(not isinstance(exc, Exception) for exc in leaves):
        raise group
    chosen = next((exc for exc in leaves if is_fatal(exc)), leaves[0])
    if is_fatal(chosen):
        log.error("run_failed", error=type(chosen).__name__, reason=describe(chosen))
        return Fatal(
            describe(chosen), EXIT_USAGE if isinstance(chosen, JournalError) else EXIT_FATAL
        )
    log.error(
        "run_failed_unexpectedly",
        error=type(chosen).__name__,
        reason=describe(chosen),
        exc_info=chosen,
    )
    return Fatal(f"internal error: {type(chosen).__name__}: {describe(chosen)}")


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def _close_job(
    coordinator: JobCoordinator, fatal: Fatal | None, stopping: bool
) -> Fatal | None:
    """endJob for an opened job, whatever happened before; a failure here is reported (when
    stopping, only logged: the server closes an idle job itself, and the run exits 130)."""
    await coordinator.settled()
    if coordinator.handle is None:
        return fatal
    try:
        async with asyncio.timeout(END_JOB_ON_STOP_S if stopping else END_JOB_TIMEOUT_S):
            await coordinator.end_job()
    except Exception as exc:
        log.error("job_close_failed", job_handle=coordinator.handle, reason=describe(exc))
        if stopping:
            return fatal
        return fatal or Fatal(f"could not close job {coordinator.handle}: {describe(exc)}")
    return fatal


async def _dry_run(
    config: UploadConfig, walker: Walker, stats: Stats, failures: Failures
) -> UploadReport:
    """Walk and pack, send nothing. With ``list_files``, each batch's files are printed as
    the batch is complete (POST number, target, size; memory stays one open batch)."""
    walked: Pipe[FileEntry] = Pipe(config.queue_size)
    plan = PlanListing(sys.stdout if config.list_files else None)
    packer, total = _packer(config), 0
    # The walk is a task owned here (not a TaskGroup: an error of the listing itself, such as
    # BrokenPipeError under `--list | head`, must leave as itself, not in an ExceptionGroup).
    walking = walked.closes_with(asyncio.create_task(walker.run(walked)))
    try:
        async for chunk in walked.chunks(config.queue_size):
            for entry in chunk:
                plan.add(packer.add(entry))
                total += entry.size
        await walking  # the walk's own error, if it failed
    finally:
        walking.cancel()
        await asyncio.wait({walking})
    plan.add([packer.flush()])
    posts = plan.posts
    return _report(
        stats, failures, [], False, None, dry_run=True, planned_posts=posts, bytes_planned=total
    )


def _report(
    stats: Stats,
    failures: Failures,
    handles: list[str],
    interrupted: bool,
    fatal: Fatal | None,
    **extra: Any,
) -> UploadReport:
    snap = stats.snapshot()
    return UploadReport(
        job_handles=tuple(handles),
        files_found=snap.files_found,
        files_uploaded=snap.files_uploaded,
        files_failed=snap.files_failed,
        files_skipped=snap.files_skipped,
        bytes_uploaded=snap.bytes_uploaded,
        posts=snap.posts,
        retries=snap.retries,
        duration_s=snap.elapsed_s,
        failures=tuple(failures.kept),
        interrupted=interrupted,
        fatal_error=fatal.reason if fatal else None,
        fatal_exit_code=fatal.exit_code if fatal else None,
        files_failed_locally=snap.files_failed,
        **extra,
    )
