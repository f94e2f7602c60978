"""The job coordinator: the only code that touches the upload job's life cycle.

It opens the job lazily (a run with nothing to send opens no job) but early: as soon as a
worker gets its first file to send (:meth:`JobCoordinator.open_soon`), so the opening POST's
round trip overlaps with walking and packing the first batch (on a WAN that is one round trip
less before the first file; on loopback it is within noise). It serializes that opening so no
other POST starts before the handle is back, keeps the job alive with file-less POSTs (D-09),
replaces a job the server lost (D-14), and sends the closing ``endJob`` POST after every other
POST has returned.
"""

from __future__ import annotations

import asyncio
import functools
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from bulkup.config.model import UploadConfig, policy_of
from bulkup.errors import (
    HandleMismatch,
    IpsApiFault,
    RunStopping,
    SourceAddressChanged,
    UploadFailed,
    is_fatal,
)
from bulkup.protocol import (
    AuthHeader,
    UploadPostJob,
    UploadPostParam,
    encode_auth_header,
    encode_upload_post_param,
)
from bulkup.retry import Attempts, RetryPolicy, Sleep, call_with_retry
from bulkup.stats import Stats
from bulkup.transport.body import BatchBody, new_boundary, xml_part
from bulkup.transport.protocols import UploadPoster

log = structlog.get_logger("bulkup.pipeline.coordinator")


class JobStatusSource(Protocol):
    """What the monitoring API says of a job (see :class:`bulkup.monitoring.api.JobMonitor`)."""

    async def job_takes_posts(self, handle: str) -> bool: ...


class JobRecorder(Protocol):
    """Where the coordinator reports the job's life cycle (the journal)."""

    async def job_opened(self, handle: str, name: str) -> None: ...
    async def job_active(self, handle: str) -> None: ...
    async def job_closing(self, handle: str) -> None: ...
    async def job_closed(self, handle: str) -> None: ...


MAX_JOB_REPLACEMENTS = 5


def default_job_name(now: datetime | None = None) -> str:
    """``bulkup-<UTC yyyymmddThhmmssZ>-<8 hex>`` (D-06)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"bulkup-{stamp}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSettings:
    """What the coordinator reads of the config: the job's name and options, the ``auth``
    part, the POSTs' shape, the keep-alive interval and the retry policy."""

    job_name: str | None
    company_handle: str
    upload_params: UploadPostJob
    locale: str | None
    description: str | None
    namespace: str
    auth: AuthHeader
    auth_namespace: str
    chunk_size: int
    keepalive_after_s: float
    retry: RetryPolicy

    @classmethod
    def from_config(cls, config: UploadConfig) -> JobSettings:
        """Built once per run (the retry policy with it)."""
        return cls(
            job_name=config.job_name,
            company_handle=config.company_handle or "",
            upload_params=config.upload_params,
            locale=config.locale,
            description=config.description,
            namespace=config.namespace,
            auth=AuthHeader(
                user=config.user or "",
                password=config.password or "",
                locale=config.locale,
                fault_http_status_code=config.fault_http_status_code,
            ),
            auth_namespace=config.auth_namespace,
            chunk_size=config.chunk_size,
            keepalive_after_s=config.keepalive_after_s,
            retry=policy_of(config),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Deps:
    """The run's collaborators the coordinator and the sender share: the server, the run's
    counters, its clock, sleep and randomness (injected by tests) and its stop."""

    client: UploadPoster
    stats: Stats
    clock: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep
    rng: Callable[[], float] = random.random
    stop: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobLinks:
    """Where the job's life cycle is recorded (the journal), who says whether the server
    still has the job (the monitoring API), and the (handle, name) of an earlier run's open
    job to continue."""

    recorder: JobRecorder | None = None
    status: JobStatusSource | None = None
    resume: tuple[str, str] | None = None


class JobCoordinator:
    """Owns the job handle(s) of one run."""

    def __init__(self, settings: JobSettings, *, deps: Deps, links: JobLinks = JobLinks()) -> None:
        """Once ``deps.stop`` is set no job is opened or kept alive and no failed POST is
        retried."""
        self._settings = settings
        self._client, self._stats, self._stop = deps.client, deps.stats, deps.stop
        self._clock, self._sleep, self._rng = deps.clock, deps.sleep, deps.rng
        self._recorder, self._status = links.recorder, links.status
        self._lock = asyncio.Lock()
        self._base_name = settings.job_name or default_job_name()
        self._auth_xml = encode_auth_header(settings.auth, namespace=settings.auth_namespace)
        self._follow_up_xml: dict[str, bytes] = {}
        self.handle: str | None = None
        self.handles: list[str] = []
        self._opening: asyncio.Task[str] | None = None
        self.last_activity = self._clock()
        if links.resume is not None:
            self.handle, self._base_name = links.resume
            self.handles.append(links.resume[0])
            log.info("job_resumed", job_handle=links.resume[0])

    @property
    def opened(self) -> bool:
        """Whether this run opened a job."""
        return bool(self.handles)

    def open_soon(self) -> None:
        """Start opening the job now, in the background (a file will be sent); a no-op once it
        is open or opening. The callers of :meth:`current_handle` share its outcome."""
        if self.handle is None and self._opening is None:
            # owned by the coordinator: the run awaits it through settled() before endJob
            self._opening = asyncio.get_running_loop().create_task(self.current_handle())
            self._opening.add_done_callback(_retrieve_outcome)

    async def settled(self) -> None:
        """Wait for an opening started by :meth:`open_soon` (whatever its outcome), so the
        run's end sees the job it opened."""
        if self._opening is not None:
            await asyncio.wait([self._opening])

    async def current_handle(self) -> str:
        """The open job's handle; the first caller opens the job, the others wait for it."""
        opening = self._opening
        if self.handle is None and opening is not None and asyncio.current_task() is not opening:
            await asyncio.shield(opening)  # its failure is every caller's failure
        if self.handle is None:
            async with self._lock:
                if self.handle is None:
                    if self._stop.is_set():
                        raise RunStopping("the run is stopping: no job is opened")
                    await self._open_or_give_up(self._base_name)
        assert self.handle is not None
        return self.handle

    async def _open_or_give_up(self, name: str) -> None:
        """Open a job; when even that fails after its retries, the whole run stops."""
        try:
            await self._open(name)
        except RunStopping:
            raise
        except Exception as exc:
            if is_fatal(exc):
                raise
            raise UploadFailed(f"cannot open an upload job: {exc}", [exc]) from exc

    def head(self, boundary: str, handle: str, file_name: str | None = None) -> bytes:
        """The ``auth`` and ``uploadParams`` parts of a follow-up POST of job ``handle``."""
        if file_name is None:
            params = self._follow_up_xml.get(handle)
            if params is None:
                params = self._follow_up_xml[handle] = self._encode(job_handle=handle)
        else:
            params = self._encode(job_handle=handle, file_name=file_name)
        return xml_part(boundary, "auth", self._auth_xml) + xml_part(
            boundary, "uploadParams", params
        )

    def _follow_up_head(self, handle: str, boundary: str) -> bytes:
        return self.head(boundary, handle)

    def _encode(self, **fields: object) -> bytes:
        """An ``uploadPostParam``; every POST carries the job's same ``uploadParams`` options
        (the servlet takes them from the opening POST and ignores them afterwards)."""
        param = UploadPostParam(
            company_handle=self._settings.company_handle,
            upload_params=self._settings.upload_params,
            **fields,  # type: ignore[arg-type]
        )
        return encode_upload_post_param(param, namespace=self._settings.namespace)

    def touch(self) -> None:
        """A POST of the job was acknowledged now."""
        self.last_activity = self._clock()
        self._stats.posts += 1

    async def _open(self, name: str) -> None:
        params = self._encode(
            job_name=name, locale=self._settings.locale, description=self._settings.description
        )
        result = await self._post_without_files(
            lambda boundary: (
                xml_part(boundary, "auth", self._auth_xml)
                + xml_part(boundary, "uploadParams", params)
            )
        )
        self.handle = result
        self.handles.append(result)
        if self._recorder is not None:
            await self._recorder.job_opened(result, name)
        log.info("job_opened", job_handle=result, job_name=name)

    async def _post_without_files(
        self, head_of: Callable[[str], bytes], job: str | None = None
    ) -> str:
        """A file-less POST; when it goes into the open job ``job``, its answer must name
        that job."""
        record = Attempts()

        async def attempt() -> str:
            boundary = new_boundary()
            body = BatchBody(
                boundary=boundary,
                head=head_of(boundary),
                files=(),
                chunk_size=self._settings.chunk_size,
            )
            answered = (await self._client.post(body)).job_handle
            if job is not None and answered != job:
                raise HandleMismatch(
                    f"the answer named job {answered!r}, not {job!r}: not an acknowledgement"
                )
            return answered

        try:
            handle = await call_with_retry(
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
        self.touch()
        return handle

    def _on_retry(self, exc: BaseException, attempt: int, wait_s: float) -> None:
        log.warning(
            "post_retry",
            kind="job",
            attempt=attempt,
            wait_s=round(wait_s, 3),
            error=type(exc).__name__,
            reason=str(exc)[:200],
        )

    async def job_is_alive(self, handle: str) -> bool:
        """After a 30001 on a follow-up: does the job still take POSTs? (D-14).

        Asks ``getActiveJobs`` when the monitoring API answers, else sends a file-less POST.
        Raises JobStopped when somebody stopped the job on the server.
        """
        open_on_server = await self._open_on_server(handle)
        if open_on_server is False:
            return False
        probe_accepted = await self._probe(handle)
        if open_on_server and not probe_accepted:
            raise SourceAddressChanged(
                f"job {handle} is open on the server but refuses POSTs from this machine: its "
                "source address changed mid-job (a NAT pool or a proxy with several egress "
                "addresses). Run from a host with one egress address, or pin it with "
                "--source-ip; the same command again resumes with a new job."
            )
        return probe_accepted

    async def _open_on_server(self, handle: str) -> bool | None:
        """getActiveJobs' view (None when the API cannot say)."""
        if self._status is None:
            return None
        try:
            return await self._status.job_takes_posts(handle)
        except Exception as exc:
            if is_fatal(exc):
                raise
            log.info("job_status_unavailable", job_handle=handle, reason=str(exc)[:200])
            return None

    async def _probe(self, handle: str) -> bool:
        """Does a file-less POST of ours get into the job?"""
        try:
            await self._post_without_files(
                functools.partial(self._follow_up_head, handle), job=handle
            )
        except IpsApiFault as fault:
            if fault.may_mean_job_lost:
                return False
            raise
        return True

    async def replace_lost_job(self, lost: str) -> None:
        """Open a new job (``<name>-r<k>``) in place of a lost one; once per lost handle."""
        async with self._lock:
            if self.handle != lost:
                return  # another worker already replaced it
            if len(self.handles) > MAX_JOB_REPLACEMENTS:
                raise UploadFailed(
                    f"the server lost the job {MAX_JOB_REPLACEMENTS} times; giving up"
                )
            log.warning("job_lost", job_handle=lost)
            self.handle = None
            if self._recorder is not None:
                await self._recorder.job_closed(lost)
            await self._open_or_give_up(f"{self._base_name}-r{len(self.handles)}")

    async def keep_alive(self) -> None:
        """Send a file-less POST whenever the job has been idle for ``keepalive_after_s``."""
        interval = self._settings.keepalive_after_s
        while not self._stop.is_set():
            wait = self.last_activity + interval - self._clock()
            if wait > 0 or self.handle is None:
                await self._sleep(wait if wait > 0 else interval)
                continue
            handle = self.handle
            try:
                await self._post_without_files(
                    functools.partial(self._follow_up_head, handle), job=handle
                )
            except RunStopping:
                return
            if self._recorder is not None:
                await self._recorder.job_active(handle)
            log.info("job_kept_alive", job_handle=handle)

    async def end_job(self) -> None:
        """The closing POST (``endJob=true``), once every other POST has returned. The journal
        records the job closing *before* it is sent (D-07: never a POST into a closed job,
        whatever happens to this one); a journal that cannot record it stops the close."""
        handle = self.handle
        if handle is None:
            return
        params = self._encode(job_handle=handle, end_job=True)
        if self._recorder is not None:  # before sending: a crash then never POSTs into it
            await self._recorder.job_closing(handle)
        try:
            await self._post_without_files(
                lambda boundary: (
                    xml_part(boundary, "auth", self._auth_xml)
                    + xml_part(boundary, "uploadParams", params)
                ),
                job=handle,
            )
        except IpsApiFault as fault:
            if not fault.may_mean_job_lost:
                raise
            # closed already: an earlier attempt got through, or the idle timeout closed it
            log.warning("job_close_refused", job_handle=handle, reason=fault.reason)
        self.handle = None
        if self._recorder is not None:
            await self._recorder.job_closed(handle)
        log.info("job_closed", job_handle=handle)


def _retrieve_outcome(task: asyncio.Task[str]) -> None:
    """The early opening's error reaches the callers of current_handle, not the loop's log."""
    if not task.cancelled():
        task.exception()
