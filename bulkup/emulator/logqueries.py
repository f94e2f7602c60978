"""The two log operations (spec §5.3 ``getJobLogs``, §5.4 ``getJobLogDetails``).

Logs exist from a job's opening POST and stay for the emulator's lifetime, deleted jobs included.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bulkup.emulator.joblog import counters, details, log_type, select_details, write_job_log
from bulkup.emulator.jobs import Job
from bulkup.emulator.params import (
    Call,
    choice,
    date_time,
    descending,
    integer,
    optional,
    required,
    string_array,
)
from bulkup.emulator.soap import add

MAX_RECORDS_PER_PAGE = 1000
DETAIL_SORTS = ("Date", "LogType")
JobKey = Callable[[Job, dict[str, str]], Any]
JOB_LOG_SORTS: dict[str, JobKey] = {
    "StartDate": lambda job, names: job.start_date,
    "JobName": lambda job, names: job.name.casefold(),
    "LogType": lambda job, names: log_type(job),
    "CompanyName": lambda job, names: names.get(job.company_handle, "").casefold(),
    "UserId": lambda job, names: job.user_email.casefold(),
    "Email": lambda job, names: job.user_email.casefold(),
    "FileErrorCount": lambda job, names: counters(job)["fileErrorCount"],
    "FileWarningCount": lambda job, names: counters(job)["fileWarningCount"],
    "FileSuccessCount": lambda job, names: counters(job)["fileSuccessCount"],
}


def get_job_logs(call: Call, answer: ET.Element) -> None:
    """Job summaries (no details) of the caller's companies, in a start-date window, sorted,
    at most ``numRows``; ``userHandle`` is accepted and ignored."""
    companies = call.companies(optional(call, "companyHandle"))
    names = {company.handle: company.name for company in companies}
    sort_by = choice(call, "sortBy", tuple(JOB_LOG_SORTS), "StartDate")
    reverse = descending(call)
    start, end = date_time(call, "startDate"), date_time(call, "endDate")
    num_rows = integer(call, "numRows", 2**31 - 1)
    jobs = [
        job
        for job in call.state.store.jobs()
        if job.company_handle in names and _within(job.start_date, start, end)
    ]
    key = JOB_LOG_SORTS[sort_by]
    jobs.sort(key=lambda job: (key(job, names), job.seq), reverse=reverse)
    array = add(answer, "jobLogArray")
    for job in jobs[:num_rows]:
        write_job_log(add(array, "items"), job, None)


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment <= end)


def get_job_log_details(call: Call, answer: ET.Element) -> None:
    """One company's job logs (by ``jobHandle`` and/or ``originalName``) with one page of
    detail lines each; ``detailTotalRows`` counts every matching line."""
    company = call.company(required(call, "companyHandle"))
    job_handle = optional(call, "jobHandle")
    original = optional(call, "originalName", strip=False)
    types = string_array(call, "logTypeArray")
    wanted = {name.casefold() for name in types} if types else None
    per_page = min(integer(call, "recordsPerPage", MAX_RECORDS_PER_PAGE), MAX_RECORDS_PER_PAGE)
    page = integer(call, "resultsPage", 1)
    sort_by = choice(call, "sortBy", DETAIL_SORTS, "Date")
    reverse = descending(call)
    idle = call.state.settings.idle_timeout_s
    array = add(answer, "jobLogArray")
    for job in call.state.store.jobs():
        if (
            job.company_handle != company.handle
            or job_handle not in (None, job.handle)
            or original not in (None, job.original_name)
        ):
            continue
        rows = select_details(
            details(job, idle),
            log_types=wanted,
            sort_by=sort_by,
            descending=reverse,
            per_page=per_page,
            page=page,
        )
        write_job_log(add(array, "items"), job, rows)
