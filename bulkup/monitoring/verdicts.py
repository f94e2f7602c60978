"""After the upload: the monitoring API found (or not), the server's file limit, and the
server's verdict on every file of the run's jobs (spec §1.3, D-18, D-23)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from bulkup.config.model import UploadConfig
from bulkup.errors import (
    BulkupError,
    ConfigError,
    RequestRejected,
    UploadFailed,
    describe,
    is_fatal,
    is_retryable,
)
from bulkup.monitoring.api import JobMonitor, MonitorSettings
from bulkup.monitoring.confirm import Ledger, Outcome, confirm_job
from bulkup.retry import Sleep, unless_stopped
from bulkup.stats import Failures
from bulkup.transport.protocols import SoapCaller

log = structlog.get_logger("bulkup.monitoring.verdicts")
PROBE_ATTEMPTS = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitSettings:
    """What waiting for the server's verdicts reads of the config."""

    no_wait: bool
    wait_timeout_s: float

    @classmethod
    def from_config(cls, config: UploadConfig) -> WaitSettings:
        """Built once per run."""
        return cls(no_wait=config.no_wait, wait_timeout_s=config.wait_timeout_s)


async def find_monitor(
    client: SoapCaller, config: UploadConfig, sleep: Sleep, stop: asyncio.Event
) -> tuple[JobMonitor | None, UploadConfig]:
    """The monitoring API if it answers, and the config capped to the server's file limit,
    with the company root the server names when none is given (:func:`with_company_root`).

    An API that cannot be reached is said once; the upload goes on without it. A stop ends
    the probe (the run then sends nothing anyway).

    Raises:
        ConfigError: no company root given and the API cannot tell it (unless the API refused
            our credentials: then the opening POST will say so, exit 3, before any file).
    """
    api_url = config.resolved_api_url
    monitor = (
        None
        if api_url is None
        else JobMonitor(MonitorSettings.from_config(config, api_url), client=client, sleep=sleep)
    )
    limit: int | None = None
    try:
        limit = (
            None
            if monitor is None
            else await unless_stopped(monitor.max_file_size(attempts=PROBE_ATTEMPTS), stop)
        )
    except BulkupError as exc:  # even a fault: the upload itself will say what is wrong
        log.warning(
            "job_monitoring_unavailable",
            api_url=api_url,
            reason=describe(exc),
            consequence="files stay posted, not confirmed by the job log",
        )
        if stop.is_set() or (is_fatal(exc) and not isinstance(exc, RequestRejected)):
            return None, config  # credentials or TLS: the opening POST fails the same way
        if is_retryable(exc) and config.company_root is None:
            raise UploadFailed(
                f"cannot look up the company root (getCompanyInfo): "
                f"{describe(exc)}; give --company-root to go without",
                [exc],
            ) from exc
        monitor = None
    if limit is not None and limit < config.max_file_size:
        log.info("server_file_limit", max_file_size=limit)
        config = config.with_overrides(max_file_size=limit)
    return monitor, await with_company_root(monitor, config)


async def with_company_root(monitor: JobMonitor | None, config: UploadConfig) -> UploadConfig:
    """The config with ``company_root``: as given, else the server's (``getCompanyInfo``'s
    ``rootPath``). Without it every target would land outside the company's folders.

    Raises:
        ConfigError: not given, and the API cannot tell it (it answered without one, refused
            the call, or is not there).
        UploadFailed: not given, and the server could not be asked right now (unreachable,
            5xx): like a server that cannot open a job, exit 3.
    """
    if config.company_root is not None:
        return config
    advice = "give --company-root (the company's root folder, e.g. 'Acme/')"
    if monitor is None:
        raise ConfigError(
            f"company_root: not given, and the server's API cannot be asked "
            f"for it (getCompanyInfo: see job_monitoring_unavailable); {advice}"
        )
    try:
        answer = await monitor.call("getCompanyInfo", companyHandle=config.company_handle)
    except BulkupError as exc:
        if is_retryable(exc):
            raise UploadFailed(
                f"cannot look up the company root (getCompanyInfo): "
                f"{describe(exc)}; {advice} to go without",
                [exc],
            ) from exc
        raise ConfigError(
            f"company_root: not given, and getCompanyInfo failed ({describe(exc)}); {advice}"
        ) from None
    info = answer.get("companyInfo")
    root = info.get("rootPath") if isinstance(info, dict) else None
    if not isinstance(root, str) or not root.strip("/"):
        raise ConfigError(f"company_root: not given, and getCompanyInfo named none; {advice}")
    log.info("company_root_found", company_root=root, source="getCompanyInfo")
    return config.with_overrides(company_root=root)


async def server_verdicts(
    monitor: JobMonitor | None,
    settings: WaitSettings,
    handles: list[str],
    ledger: Ledger,
    failures: Failures,
    stop: asyncio.Event,
) -> tuple[Outcome | None, str]:
    """Wait for each job, read its log, settle its files; returns the outcome and a status.

    A Ctrl-C (``stop``) ends the wait: the files keep the state they have.
    """
    if settings.no_wait:
        return None, "not waited for (--no-wait)"
    if not handles:
        return None, "no job"
    if monitor is None:
        return None, "unavailable: the job monitoring API could not be reached"
    if stop.is_set():
        return None, "not waited for (interrupted)"
    outcome = Outcome()
    waiting = asyncio.create_task(
        _wait_and_confirm(monitor, settings.wait_timeout_s, handles, ledger, failures, outcome)
    )
    stopped = asyncio.create_task(stop.wait())  # both owned here: awaited before returning
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await asyncio.wait({stopped})
    if not waiting.done():
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return outcome, "incomplete: interrupted while waiting for the job log"
    return outcome, waiting.result()


async def _wait_and_confirm(
    monitor: JobMonitor,
    timeout_s: float,
    handles: list[str],
    ledger: Ledger,
    failures: Failures,
    outcome: Outcome,
) -> str:
    still_open: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            for handle in handles:
                job = await monitor.wait_until_done(handle)
                if job is not None and job.idle_open:
                    still_open.append(handle)
                await confirm_job(monitor, handle, ledger, outcome, failures.add)
    except (BulkupError, TimeoutError) as exc:
        reason = describe(exc) if isinstance(exc, BulkupError) else "wait_timeout_s ran out"
        log.warning("job_monitoring_failed", reason=reason)
        return f"incomplete: {reason}"
    if still_open:
        log.warning("job_still_open", job_handles=still_open)
        return (
            f"incomplete: job {', '.join(still_open)} is still open on the server "
            "(its endJob did not get through; it closes at its idle timeout)"
        )
    if outcome.unmatched_lines:
        log.warning("job_log_lines_unmatched", count=outcome.unmatched_lines)
    return "complete"
