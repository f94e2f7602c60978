"""``bulkup job list`` and ``bulkup job status|log|stop HANDLE``: the operators' view of jobs
on the server. Exit codes: 0 done, 1 no such job, 2 usage, 3 the API failed. ``--json`` gives
numbers as numbers."""

from __future__ import annotations

import json
import sys
from typing import Any

from bulkup.config.model import UploadConfig
from bulkup.errors import BulkupError, describe
from bulkup.monitoring.api import JobMonitor, MonitorSettings
from bulkup.protocol.soap import as_list
from bulkup.report import EXIT_FATAL, EXIT_NO_SUCH_JOB, EXIT_OK, EXIT_USAGE
from bulkup.transport.client import UploadClient

SUMMARY_FIELDS = ("jobName", "originalJobName", "logType", "startDate", "endDate",
                  "totalFileCount", "fileSuccessCount", "fileUpdateCount", "fileDuplicateCount",
                  "fileErrorCount", "fileWarningCount", "fatalError")
NUMBER_FIELDS = frozenset(("totalFileCount", "fileSuccessCount", "fileUpdateCount",
                           "fileDuplicateCount", "fileErrorCount", "fileWarningCount",
                           "detailTotalRows", "progress"))


async def run_job_command(config: UploadConfig, action: str, handle: str | None, *,
                          as_json: bool) -> int:
    """Run one job command; 1 for an unknown job, 2 without an API URL, 3 when the API
    fails."""
    api_url = config.resolved_api_url
    if api_url is None or not config.company_handle:
        print("bulkup: give --server, --region or --api-url, and --company-handle",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        async with UploadClient(config, config.upload_url or api_url) as client:
            monitor = JobMonitor(MonitorSettings.from_config(config, api_url), client=client)
            if action == "list" or handle is None:
                return await _list(monitor, as_json)
            if action == "status":
                return await _status(monitor, handle, as_json)
            if action == "stop":
                await monitor.stop(handle)
                print(f"stop requested for job {handle}")
                return EXIT_OK
            return await _log(monitor, handle, as_json)
    except BulkupError as exc:
        print(f"bulkup: {describe(exc)}", file=sys.stderr)
        return EXIT_FATAL


async def _list(monitor: JobMonitor, as_json: bool) -> int:
    jobs = await monitor.active_jobs()
    if as_json:
        print(json.dumps([{"handle": j.handle, "name": j.name, "state": j.state,
                           "progress": _number(j.progress)} for j in jobs], indent=2))
        return EXIT_OK
    if not jobs:
        print("no active job")
    for job in jobs:
        progress = f" {job.progress}%" if job.progress not in (None, "") else ""
        print(f"{job.handle}  {job.state}{progress}  {job.name or ''}".rstrip())
    return EXIT_OK


async def _status(monitor: JobMonitor, handle: str, as_json: bool) -> int:
    job = await monitor.active_job(handle)
    summary = await _summary(monitor, handle)
    if job is None and not summary:
        print(f"bulkup: no job {handle} on the server (job list shows the active ones)",
              file=sys.stderr)
        return EXIT_NO_SUCH_JOB
    state = job.state if job else ("Done" if summary.get("endDate") else "not active")
    if as_json:
        print(json.dumps({"handle": handle, "state": state,
                          "progress": _number(job.progress) if job else None,
                          "log": _numbers(summary)}, indent=2))
        return EXIT_OK
    print(f"job {handle}: {state}" + (f", progress {job.progress}%" if job and job.progress
                                       else ""))
    for key in SUMMARY_FIELDS:
        if key in summary:
            print(f"  {key}: {summary[key]}")
    return EXIT_OK


async def _summary(monitor: JobMonitor, handle: str) -> dict[str, Any]:
    answer = await monitor.call("getJobLogDetails", companyHandle=monitor.company_handle,
                                jobHandle=handle, recordsPerPage=1, resultsPage=1)
    logs = as_list(answer.get("jobLogArray"))
    if not logs or not isinstance(logs[0], dict):
        return {}
    return {k: v for k, v in logs[0].items() if k in SUMMARY_FIELDS or k == "detailTotalRows"}


async def _log(monitor: JobMonitor, handle: str, as_json: bool) -> int:
    details: list[Any] = []
    summary: dict[str, Any] = {}
    async for job_log, page in monitor.job_log(handle):
        summary = {k: v for k, v in job_log.items() if k != "detailArray"}
        if as_json:
            details.extend(page)
            continue
        for line in page:
            if isinstance(line, dict):
                print(f"{line.get('logType', '?'):>18}  {line.get('logMessage', '')}")
    if not summary:
        print(f"bulkup: no log for job {handle} on the server", file=sys.stderr)
        return EXIT_NO_SUCH_JOB
    if as_json:
        print(json.dumps({"handle": handle, "log": _numbers(summary), "details": details},
                         indent=2, ensure_ascii=False))
    return EXIT_OK


def _numbers(fields: dict[str, Any]) -> dict[str, Any]:
    """The job log's counts as numbers (the XML gives every value as text)."""
    return {k: _number(v) if k in NUMBER_FIELDS else v for k, v in fields.items()}


def _number(value: Any) -> Any:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.lstrip("-").isdigit() else value
