"""Upload jobs: their life cycle (spec §1.4), unique names (D-06), handles (D-27), the idle
timeout (D-08) and the ``Done`` linger (D-23), measured with an injected clock.

Date-times (``startDate``, ``endDate``…) come from a :class:`Timeline` anchored on that clock, so
a fake clock moves them too.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Clock = Callable[[], float]
_BAD_JOB_NAME = re.compile(r"[|\x00-\x1f\x7f-\x9f]")  # "|" and Unicode Cc (C0, DEL, C1)
PENDING = "Pending"  # a received file not processed yet (inspection route only)
STOP_REASONS = ("stopJob", "deleteJob")


class Timeline:
    """Wall-clock date-times that advance with the injected monotonic clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._base = clock()
        self._wall = datetime.now(UTC)

    def now(self) -> datetime:
        """The current date-time, in UTC, to the millisecond (as reported, so a reported date
        used as a query bound selects exactly that moment)."""
        moment = self._wall + timedelta(seconds=self.clock() - self._base)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: datetime) -> str:
    """An ``xsd:dateTime`` with milliseconds and offset: ``2026-11-26T03:45:12.345+00:00``."""
    return moment.isoformat(timespec="milliseconds")


@dataclass(slots=True)
class FileRecord:
    """One file received by a job and what processing made of it (D-24 log types)."""

    target_path: str
    size: int
    sha256: str
    outcome: str
    message: str
    asset_handle: str | None = None
    asset_name: str = ""
    asset_type: str = "NoType"

    def as_json(self) -> dict[str, Any]:
        """The inspection route's view of this file."""
        return {
            "target_path": self.target_path,
            "size": self.size,
            "sha256": self.sha256,
            "outcome": self.outcome,
            "message": self.message,
            "asset_handle": self.asset_handle,
            "asset_name": self.asset_name,
            "asset_type": self.asset_type,
        }


@dataclass(slots=True)
class Job:
    """One upload job and everything the emulator knows about it."""

    handle: str
    name: str
    original_name: str
    company_handle: str
    user_email: str
    peer: str
    options: dict[str, Any]
    description: str | None
    locale: str | None
    client: str
    last_activity: float
    seq: int
    timeline: Timeline = field(repr=False, compare=False)
    start_date: datetime = field(default_factory=lambda: datetime.now(UTC))
    end_date: datetime | None = None
    done_at: float | None = None  # clock value when the job became Done
    last_progress: datetime | None = None
    open: bool = True
    closed_by: str | None = None
    stopped_by: str | None = None  # stopJob / deleteJob (D-30)
    deleted: bool = False
    fatal_error: bool = False
    in_flight: int = 0
    pending: int = 0  # files received and not processed yet
    posts: int = 0
    files: list[FileRecord] = field(default_factory=list)
    post_log: list[dict[str, Any]] = field(default_factory=list)
    done_log: list[Any] | None = field(default=None, repr=False, compare=False)  # see joblog

    @property
    def done(self) -> bool:
        """Closed and drained: nothing more will happen to this job."""
        return not self.open and self.pending == 0

    @property
    def state(self) -> str:
        """The ``ActiveJob/state`` this job reports (§1.4)."""
        if self.done:
            return "Done"
        if self.stopped_by:
            return "Stopping"
        if self.pending or self.in_flight or not self.open:
            return "Running"
        return "WaitingClient" if self.files else "New"

    @property
    def started_at(self) -> str:
        """``startDate`` as text."""
        return iso(self.start_date)

    @property
    def ended_at(self) -> str | None:
        """``endDate`` as text, once the job is done."""
        return iso(self.end_date) if self.end_date and self.done else None

    def close(self, reason: str) -> None:
        """No more POSTs: closed by ``endJob``, ``idle_timeout``, ``stopJob`` or ``deleteJob``."""
        if self.open:
            self.open, self.closed_by = False, reason
            self.finish_if_drained()

    def finish_if_drained(self) -> None:
        """Closed and nothing left to process: the job is Done now."""
        if self.done:
            self.end_date, self.done_at = self.timeline.now(), self.timeline.clock()

    def file_processed(self) -> None:
        """One pending file got its outcome."""
        self.pending -= 1
        self.last_progress = self.timeline.now()
        self.finish_if_drained()

    def as_json(self, *, with_files: bool = True) -> dict[str, Any]:
        """The inspection route's view of this job."""
        view: dict[str, Any] = {
            "handle": self.handle,
            "name": self.name,
            "original_name": self.original_name,
            "company": self.company_handle,
            "user": self.user_email,
            "state": self.state,
            "open": self.open,
            "closed_by": self.closed_by,
            "peer": self.peer,
            "posts": self.posts,
            "file_count": len(self.files),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "options": self.options,
            "description": self.description,
            "client": self.client,
            "pending": self.pending,
            "stopped_by": self.stopped_by,
            "deleted": self.deleted,
            "fatal_error": self.fatal_error,
        }
        if with_files:
            view["files"] = [record.as_json() for record in self.files]
            view["post_log"] = self.post_log
        return view


def job_name_problem(name: str) -> str | None:
    """Why a ``jobName`` is refused (D-06), or None when it is fine."""
    if not name:
        return "missing"
    if _BAD_JOB_NAME.search(name):
        return "invalid"
    return None


class JobStore:
    """Every job of the emulator's lifetime, open or closed."""

    def __init__(self, *, idle_timeout_s: float, clock: Clock = time.monotonic) -> None:
        self._jobs: dict[str, Job] = {}
        self._names: dict[tuple[str, str], int] = {}  # last suffix given per sent name
        self._taken: set[tuple[str, str]] = set()  # unique names in use, per company
        self._seq = itertools.count(1001)
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self.timeline = Timeline(clock)

    def open_job(self, *, company_handle: str, job_name: str, **details: Any) -> Job:
        """Create a job; a name already used in the company gets a ``-<n>`` suffix (D-06)."""
        key = (company_handle, job_name.casefold())
        unique = job_name
        if key in self._taken:  # the next free suffix: "x-1" may have been sent as a name
            suffix = self._names.get(key, 0)
            while (company_handle, unique.casefold()) in self._taken:
                suffix += 1
                unique = f"{job_name}-{suffix}"
            self._names[key] = suffix
        self._taken.add((company_handle, unique.casefold()))
        number = company_handle.partition("|")[2] or company_handle
        seq = next(self._seq)
        handle = f"j|{number}||{unique}|{seq}"
        job = Job(
            handle=handle,
            name=unique,
            original_name=job_name,
            company_handle=company_handle,
            last_activity=self.clock(),
            seq=seq,
            timeline=self.timeline,
            start_date=self.timeline.now(),
            **details,
        )
        self._jobs[handle] = job
        return job

    def get(self, handle: str) -> Job | None:
        """The job with this handle, after closing it if its idle timeout has run out."""
        job = self._jobs.get(handle)
        if job is not None:
            self._expire(job)
        return job

    def jobs(self) -> list[Job]:
        """Every job, oldest first, with idle timeouts applied."""
        self.expire_idle()
        return list(self._jobs.values())

    def active(self, linger_s: float) -> list[Job]:
        """Jobs ``getActiveJobs`` lists: not deleted, and not Done for ``linger_s`` or longer."""
        now = self.clock()
        return [
            job
            for job in self.jobs()
            if not job.deleted
            and (not job.done or job.done_at is None or now < job.done_at + linger_s)
        ]

    def expire_idle(self) -> int:
        """Close every job idle past its deadline (D-08); returns how many were closed."""
        return sum(self._expire(job) for job in self._jobs.values())

    def touch(self, job: Job) -> None:
        """An accepted POST of this job completed now."""
        job.last_activity = self.clock()
        job.posts += 1

    def _expire(self, job: Job) -> bool:
        deadline = job.last_activity + self.idle_timeout_s
        if job.open and not job.in_flight and self.clock() >= deadline:
            job.close("idle_timeout")
            return True
        return False
