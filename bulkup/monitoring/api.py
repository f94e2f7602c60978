"""The job-monitoring API (SOAP, spec §5) as the client needs it.

``getProperty`` for the server's per-file limit, ``getActiveJobs`` to see whether a job is
still open or done, ``getJobLogDetails`` page by page for the per-file verdicts, ``stopJob``.
The API lives on its own host (``api_url``); transport failures are retried like POSTs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from bulkup.config.model import UploadConfig, policy_of
from bulkup.errors import JobStopped
from bulkup.protocol import AuthHeader
from bulkup.protocol.soap import as_list, encode_soap_request
from bulkup.retry import RetryPolicy, Sleep, call_with_retry
from bulkup.transport.protocols import SoapCaller

log = structlog.get_logger("bulkup.monitoring.api")
PAGE_ROWS = 1000
OPEN_STATES = frozenset({"New", "WaitingClient", "WaitingCoordinator", "Running", "Unknown"})
IDLE_OPEN_STATES = frozenset({"New", "WaitingClient"})  # open and waiting for POSTs


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """What ``getActiveJobs`` says of one job."""

    handle: str
    state: str
    progress: str | None
    name: str | None = None

    @property
    def done(self) -> bool:
        """The job has finished processing (D-23)."""
        return self.state == "Done"

    @property
    def idle_open(self) -> bool:
        """Open and waiting for POSTs: it finishes only at endJob or its idle timeout."""
        return self.state in IDLE_OPEN_STATES

    @property
    def stopping(self) -> bool:
        """Somebody stopped the job (``stopJob``)."""
        return self.state == "Stopping"


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSettings:
    """What the monitor reads of the config: where the API is, whose jobs, the ``authHeader``
    and the namespace of its calls, and the retry policy."""

    api_url: str
    company_handle: str | None
    auth: AuthHeader
    namespace: str
    retry: RetryPolicy

    @classmethod
    def from_config(cls, config: UploadConfig, api_url: str) -> MonitorSettings:
        """The settings for the API at ``api_url`` (the config's ``resolved_api_url``)."""
        return cls(
            api_url=api_url,
            company_handle=config.company_handle,
            auth=AuthHeader(
                user=config.user or "", password=config.password or "", locale=config.locale
            ),
            namespace=config.namespace,
            retry=policy_of(config),
        )


class JobMonitor:
    """SOAP calls for one company, through the run's HTTP client."""

    def __init__(
        self,
        settings: MonitorSettings,
        *,
        client: SoapCaller,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._settings, self._client = settings, client
        self._sleep, self._rng = sleep, rng

    @property
    def api_url(self) -> str:
        """Where the API answers."""
        return self._settings.api_url

    @property
    def company_handle(self) -> str | None:
        """The company whose jobs this monitor asks about."""
        return self._settings.company_handle

    async def call(
        self, operation: str, *, attempts: int | None = None, **params: Any
    ) -> dict[str, Any]:
        """One operation, retried on transport failures; faults raise typed errors."""
        envelope = encode_soap_request(
            operation, params, self._settings.auth, namespace=self._settings.namespace
        )

        async def attempt() -> dict[str, Any]:
            return await self._client.soap(self.api_url, operation, envelope)

        policy = self._settings.retry
        if attempts is not None:
            policy = dataclasses.replace(policy, max_attempts=attempts)
        return await call_with_retry(attempt, policy, sleep=self._sleep, rng=self._rng)

    async def max_file_size(self, *, attempts: int | None = None) -> int | None:
        """The server's ``UploadPostMaxFileSize``, or None when it gives none."""
        answer = await self.call("getProperty", attempts=attempts, name="UploadPostMaxFileSize")
        value = answer.get("value")
        return int(value) if isinstance(value, str) and value.strip().isdigit() else None

    async def active_job(self, handle: str) -> ActiveJob | None:
        """The job as ``getActiveJobs`` shows it; None once it has left the list."""
        jobs = await self.active_jobs(handle)
        return next((job for job in jobs if job.handle == handle), None)

    async def active_jobs(self, handle: str | None = None) -> list[ActiveJob]:
        """The company's jobs ``getActiveJobs`` lists (only ``handle``'s, when given)."""
        params: dict[str, Any] = {"jobHandle": handle} if handle is not None else {}
        answer = await self.call("getActiveJobs", companyHandle=self.company_handle, **params)
        return [
            ActiveJob(
                handle=str(item.get("jobHandle")),
                state=str(item.get("state") or "Unknown"),
                progress=item.get("progress"),
                name=item.get("name"),
            )
            for item in as_list(answer.get("jobArray"))
            if isinstance(item, dict) and item.get("jobHandle")
        ]

    async def wait_until_done(
        self, handle: str, *, first_wait_s: float = 0.5, max_wait_s: float = 30.0
    ) -> ActiveJob | None:
        """Poll ``getActiveJobs`` with growing waits until the job is done or gone.

        Returns early with a job that is open and idle (its endJob did not get through): such
        a job finishes only at its idle timeout, so there is nothing to wait for now.
        """
        wait = first_wait_s
        while True:
            job = await self.active_job(handle)
            if job is None or job.done or job.idle_open:
                return job
            log.debug("job_waiting", job_handle=handle, state=job.state, progress=job.progress)
            await self._sleep(wait)
            wait = min(wait * 1.5, max_wait_s)

    async def job_log(self, handle: str) -> AsyncIterator[tuple[dict[str, Any], list[Any]]]:
        """Every page of the job's log: (JobLog without details, that page's details)."""
        page, seen = 1, 0
        while True:
            answer = await self.call(
                "getJobLogDetails",
                companyHandle=self.company_handle,
                jobHandle=handle,
                recordsPerPage=PAGE_ROWS,
                resultsPage=page,
            )
            logs = as_list(answer.get("jobLogArray"))
            if not logs or not isinstance(logs[0], dict):
                return
            job_log = logs[0]
            details = as_list(job_log.get("detailArray"))
            total = _int(job_log.get("detailTotalRows"), default=len(details))
            yield job_log, details
            seen += len(details)
            if not details or page * PAGE_ROWS >= total or seen >= total:
                return
            page += 1

    async def job_takes_posts(self, handle: str) -> bool:
        """Whether the job is still open; raises JobStopped if it was stopped on the server."""
        job = await self.active_job(handle)
        if job is not None and job.state in OPEN_STATES:
            return True
        if (job is not None and job.stopping) or await self.was_stopped(handle):
            raise JobStopped(
                f"job {handle} was stopped on the server (stopJob); "
                "its unprocessed files are reported as failed"
            )
        return False

    async def was_stopped(self, handle: str) -> bool:
        """Whether the job's log says it ended in a fatal error (``stopJob``, D-30)."""
        answer = await self.call(
            "getJobLogDetails",
            companyHandle=self.company_handle,
            jobHandle=handle,
            recordsPerPage=1,
            resultsPage=1,
        )
        logs = as_list(answer.get("jobLogArray"))
        return (
            bool(logs)
            and isinstance(logs[0], dict)
            and str(logs[0].get("fatalError", "")).lower() == "true"
        )

    async def stop(self, handle: str) -> None:
        """Ask the server to stop the job (``stopJob``)."""
        await self.call("stopJob", companyHandle=self.company_handle, jobHandle=handle)


def _int(value: object, *, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default
