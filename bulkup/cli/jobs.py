"""``bulkup job list`` and ``bulkup job status|log|stop HANDLE``: the operators' view of jobs
on the server. Exit codes: 0 done, 1 no such job, 2 usage, 3 the API failed. ``--json`` gives
numbers as numbers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkup.cli.args import add_server_arguments, say
from bulkup.cli.runtime import run_loop
from bulkup.errors import BulkupError, ConfigError, JournalError, describe
from bulkup.report import (
    EXIT_FATAL,
    EXIT_NO_SUCH_JOB,
    EXIT_OK,
    EXIT_USAGE,
)

if TYPE_CHECKING:  # the job API and its client load only when a job command runs
    from bulkup.config.model import UploadConfig
    from bulkup.monitoring.api import JobMonitor

SUMMARY_FIELDS = (
    "jobName",
    "originalJobName",
    "logType",
    "startDate",
    "endDate",
    "totalFileCount",
    "fileSuccessCount",
    "fileUpdateCount",
    "fileDuplicateCount",
    "fileErrorCount",
    "fileWarningCount",
    "fatalError",
)
NUMBER_FIELDS = frozenset(
    (
        "totalFileCount",
        "fileSuccessCount",
        "fileUpdateCount",
        "fileDuplicateCount",
        "fileErrorCount",
        "fileWarningCount",
        "detailTotalRows",
        "progress",
    )
)


async def run_job_command(
    config: UploadConfig, action: str, handle: str | None, *, as_json: bool
) -> int:
    """Run one job command; 1 for an unknown job, 2 without an API URL, 3 when the API
    fails."""
    api_url = config.resolved_api_url
    if api_url is None or not config.company_handle:
        print("bulkup: give --server, --region or --api-url, and --company-handle", file=sys.stderr)
        return EXIT_USAGE
    try:
        from bulkup.monitoring.api import JobMonitor, MonitorSettings
        from bulkup.transport.client import UploadClient

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
        print(
            json.dumps(
                [
                    {
                        "handle": j.handle,
                        "name": j.name,
                        "state": j.state,
                        "progress": _number(j.progress),
                    }
                    for j in jobs
                ],
                indent=2,
            )
        )
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
        print(
            f"bulkup: no job {handle} on the server (job list shows the active ones)",
            file=sys.stderr,
        )
        return EXIT_NO_SUCH_JOB
    state = job.state if job else ("Done" if summary.get("endDate") else "not active")
    if as_json:
        print(
            json.dumps(
                {
                    "handle": handle,
                    "state": state,
                    "progress": _number(job.progress) if job else None,
                    "log": _numbers(summary),
                },
                indent=2,
            )
        )
        return EXIT_OK
    print(
        f"job {handle}: {state}" + (f", progress {job.progress}%" if job and job.progress else "")
    )
    for key in SUMMARY_FIELDS:
        if key in summary:
            print(f"  {key}: {summary[key]}")
    return EXIT_OK


async def _summary(monitor: JobMonitor, handle: str) -> dict[str, Any]:
    answer = await monitor.call(
        "getJobLogDetails",
        companyHandle=monitor.company_handle,
        jobHandle=handle,
        recordsPerPage=1,
        resultsPage=1,
    )
    from bulkup.protocol.soap import as_list

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
        print(
            json.dumps(
                {"handle": handle, "log": _numbers(summary), "details": details},
                indent=2,
                ensure_ascii=False,
            )
        )
    return EXIT_OK


def _numbers(fields: dict[str, Any]) -> dict[str, Any]:
    """The job log's counts as numbers (the XML gives every value as text)."""
    return {k: _number(v) if k in NUMBER_FIELDS else v for k, v in fields.items()}


def _number(value: Any) -> Any:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.lstrip("-").isdigit() else value


def add_job_commands(commands: Any) -> None:
    job = commands.add_parser("job", help="look at or stop jobs on the server")
    actions = job.add_subparsers(dest="action", required=True)
    for action, text in (
        ("list", "the company's active jobs (getActiveJobs)"),
        ("status", "the job's state (getActiveJobs)"),
        ("log", "the job's log, every line (getJobLogDetails)"),
        ("stop", "stop the job (stopJob)"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        if action != "list":
            sub.add_argument(
                "handle", metavar="HANDLE", nargs="?", help="the job handle (or --last)"
            )
            sub.add_argument(
                "--last", action="store_true", help="the newest job of the last run in the journal"
            )
            sub.add_argument(
                "--journal",
                type=Path,
                metavar="PATH",
                help="with --last: this journal (default: the newest one)",
            )
        sub.add_argument("--json", action="store_true", help="JSON for scripts")
        _add_job_connection_arguments(sub)


def _add_job_connection_arguments(sub: argparse.ArgumentParser) -> None:
    """Where the server is and how to reach it: the same flags as ``upload``."""
    sub.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    add_server_arguments(sub)
    sub.add_argument("--api-url", metavar="URL", help="SOAP IpsApiService URL")
    sub.add_argument("--user", help="IPS user e-mail (password: BULKUP_PASSWORD)")
    sub.add_argument("--company-handle", help="company handle, e.g. 'c|42'")
    sub.add_argument("--source-ip", metavar="ADDR", help="bind every connection to ADDR")
    sub.add_argument("--ca-bundle", type=Path, help="trust this CA bundle for TLS")
    sub.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="do not verify TLS certificates (warns)",
    )
    sub.add_argument("--proxy", metavar="URL", help="HTTP proxy, http://[user:pass@]host:port")
    sub.add_argument(
        "--no-proxy",
        dest="proxy",
        action="store_const",
        const="direct",
        help="connect directly, whatever the proxy variables say",
    )
    sub.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        help="log lines as console text or JSON",
    )


JOB_OVERRIDES = (
    "server_url",
    "region",
    "staging",
    "api_url",
    "user",
    "company_handle",
    "log_format",
    "source_ip",
    "ca_bundle",
    "insecure",
    "proxy",
)


def job_command(args: argparse.Namespace) -> int:
    from bulkup.cli.jobs import run_job_command
    from bulkup.cli.log import configure_logging
    from bulkup.config.load import load_config
    from bulkup.pipeline.preflight import check_ca_bundle, check_source_ip

    overrides = {key: getattr(args, key) for key in JOB_OVERRIDES}
    try:
        config = load_config(path=args.config, environ=os.environ, overrides=overrides)
        check_ca_bundle(config.ca_bundle)
        check_source_ip(config.source_ip)
    except ConfigError as exc:
        say(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(config.log_format)
    if config.insecure:
        say("bulkup: WARNING: TLS certificates are not verified (--insecure)", file=sys.stderr)
    try:
        handle = _job_handle_of(args)
    except (ConfigError, JournalError) as exc:
        say(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_loop(run_job_command(config, args.action, handle, as_json=args.json))


def _job_handle_of(args: argparse.Namespace) -> str | None:
    """HANDLE, or with ``--last`` the newest job the journal recorded; None for ``list``."""
    if args.action == "list":
        return None
    if args.last == (args.handle is not None):
        raise ConfigError("give a HANDLE or --last (one of them)")
    if args.handle is not None:
        return str(args.handle)
    from bulkup.cli.journals import last_job_handle

    return last_job_handle(args.journal)
