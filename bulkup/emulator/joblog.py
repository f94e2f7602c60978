"""What the monitoring operations report about a job (spec §5.6, D-23, D-24, D-30).

``ActiveJob`` (state, progress, options) and ``JobLog`` (counters, detail lines) are both
derived from the :class:`~bulkup.emulator.jobs.Job` on every call; detail lines come in the D-24
order: ``BeginUpload``, ``OriginalJobName``, ``JobClient``, ``JobType``, one line per processed
file, then ``TotalFileCount`` and ``EndUpload`` once the job is done.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bulkup.emulator.jobparams import WIRE_ORDER
from bulkup.emulator.jobs import PENDING, FileRecord, Job, iso
from bulkup.emulator.soap import add

JOB_TYPE = "UploadPost"
SERVER_NAME = "emulator"
NO_HANDLE = frozenset({"UploadError", "FileCancel"})
ENDINGS = {
    "endJob": "closed by endJob",
    "stopJob": "stopped by stopJob",
    "deleteJob": "deleted by deleteJob",
}


@dataclass(frozen=True, slots=True)
class Detail:
    """One ``JobLogDetail`` line."""

    log_type: str
    message: str
    asset_name: str | None = None
    asset_type: str | None = None
    asset_handle: str | None = None


def details(job: Job, idle_timeout_s: float) -> list[Detail]:
    """Every detail line of the job so far, in the order they were logged.

    A done job's lines never change again, so they are built once (a client pages through
    the log of a 100,000-file job a thousand lines at a time)."""
    if job.done and job.done_log is not None:
        return job.done_log
    lines = [
        Detail("BeginUpload", f"Upload job {job.name} started"),
        Detail("OriginalJobName", job.original_name),
        Detail("JobClient", job.client),
        Detail("JobType", JOB_TYPE),
    ]
    lines += [_file_detail(record) for record in job.files if record.outcome != PENDING]
    if job.done:
        lines.append(Detail("TotalFileCount", str(len(job.files))))
        lines.append(Detail("EndUpload", end_message(job, idle_timeout_s)))
        job.done_log = lines
    return lines


def _file_detail(record: FileRecord) -> Detail:
    handle = None if record.outcome in NO_HANDLE else record.asset_handle
    return Detail(record.outcome, record.message, record.asset_name, record.asset_type, handle)


def end_message(job: Job, idle_timeout_s: float) -> str:
    """The ``EndUpload`` message: how the job ended (endJob, idle timeout, stop, delete)."""
    reason = job.stopped_by or job.closed_by or "endJob"
    text = ENDINGS.get(reason, f"closed by idle timeout (no POST for {idle_timeout_s:g} s)")
    fatal = "; fatal error" if job.fatal_error and not job.stopped_by else ""
    return f"Upload job {job.name} ended: {text}{fatal}"


def counters(job: Job) -> dict[str, int]:
    """The D-24 counters; a cancelled file counts as an error."""
    outcomes = Counter(record.outcome for record in job.files)
    total = len(job.files)
    return {
        "fileSuccessCount": outcomes["UploadSuccess"],
        "fileErrorCount": outcomes["UploadError"] + outcomes["FileCancel"],
        "fileWarningCount": 0,
        "fileDuplicateCount": outcomes["DuplicateSkipped"],
        "fileUpdateCount": outcomes["FileUpdated"],
        "totalFileCount": total,
        "transferSuccessCount": total,
        "transferErrorCount": 0,
        "transferWarningCount": 0,
    }


def progress(job: Job) -> int:
    """Integer percent of the received files already processed (100 when none is waiting)."""
    if not job.files or not job.pending:
        return 100
    return 100 * (len(job.files) - job.pending) // len(job.files)


def log_type(job: Job) -> str:
    """``JobLog/logType``: ``BeginUpload`` while running, ``EndUpload`` once done."""
    return "EndUpload" if job.done else "BeginUpload"


def write_active_job(item: ET.Element, job: Job) -> None:
    """The children of one ``ActiveJob`` (§5.6 order; fields the emulator knows)."""
    add(item, "companyHandle", job.company_handle)
    add(item, "jobHandle", job.handle)
    add(item, "name", job.name)
    add(item, "originalName", job.original_name)
    add(item, "type", JOB_TYPE)
    add(item, "state", job.state)
    add(item, "submitUserEmail", job.user_email)
    if job.locale:
        add(item, "locale", job.locale)
    if job.description is not None:
        add(item, "description", job.description)
    add(item, "serverName", SERVER_NAME)
    add(item, "startDate", iso(job.start_date))
    add(item, "totalSize", str(sum(record.size for record in job.files)))
    add(item, "progress", str(progress(job)))
    add(item, "lastProgressUpdate", iso(job.last_progress or job.start_date))
    write_options(add(item, "uploadPostJob"), job.options)


def write_options(element: ET.Element, options: dict[str, Any]) -> None:
    """The job's ``UploadPostJob`` options, top level in §3.3 wire order."""
    order = {name: i for i, name in enumerate(WIRE_ORDER)}
    for name in sorted(options, key=lambda n: order.get(n, len(order))):
        _option(element, name, options[name])


def _option(parent: ET.Element, name: str, value: Any) -> None:
    if name == "inDesignOptions":  # accepted, content not kept (D-19)
        add(parent, name)
    elif isinstance(value, dict):
        child = add(parent, name)
        for key, inner in value.items():
            _option(child, key, inner)
    elif isinstance(value, list):
        child = add(parent, name)
        for item in value:
            add(child, "items", str(item))
    elif isinstance(value, bool):
        add(parent, name, "true" if value else "false")
    else:
        add(parent, name, str(value))


def write_job_log(item: ET.Element, job: Job, page: tuple[int, list[Detail]] | None) -> None:
    """The children of one ``JobLog``; ``page`` = (detailTotalRows, rows) for the details."""
    add(item, "companyHandle", job.company_handle)
    add(item, "jobHandle", job.handle)
    add(item, "jobName", job.name)
    add(item, "originalJobName", job.original_name)
    add(item, "submitUserEmail", job.user_email)
    add(item, "logType", log_type(job))
    add(item, "startDate", iso(job.start_date))
    if job.done and job.end_date is not None:
        add(item, "endDate", iso(job.end_date))
    if job.description is not None:
        add(item, "description", job.description)
    for name, count in counters(job).items():
        add(item, name, str(count))
    add(item, "fatalError", "true" if job.fatal_error else "false")
    if page is not None:
        total, rows = page
        add(item, "detailTotalRows", str(total))
        array = add(item, "detailArray")
        for row in rows:
            _write_detail(add(array, "items"), row)


def _write_detail(item: ET.Element, row: Detail) -> None:
    add(item, "logMessage", row.message)
    add(item, "logType", row.log_type)
    for name, value in (
        ("assetName", row.asset_name),
        ("assetType", row.asset_type),
        ("assetHandle", row.asset_handle),
    ):
        if value is not None:
            add(item, name, value)


def select_details(
    lines: list[Detail],
    *,
    log_types: set[str] | None,
    sort_by: str,
    descending: bool,
    per_page: int,
    page: int,
) -> tuple[int, list[Detail]]:
    """Filter by log type (case-insensitive), sort (stable, by ``Date`` or ``LogType``),
    and cut one page; returns (total matching rows, the page)."""
    wanted = (
        lines
        if log_types is None
        else [line for line in lines if line.log_type.casefold() in log_types]
    )
    start = (page - 1) * per_page
    if sort_by == "LogType":
        indexed = sorted(
            enumerate(wanted), key=lambda pair: (pair[1].log_type, pair[0]), reverse=descending
        )
        return len(wanted), [line for _, line in indexed[start : start + per_page]]
    if descending:  # newest first: count back from the end, without copying the log
        last = len(wanted) - 1
        return len(wanted), [
            wanted[last - i] for i in range(start, min(len(wanted), start + per_page))
        ]
    return len(wanted), wanted[start : start + per_page]
