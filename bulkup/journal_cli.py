"""``bulkup status`` and ``bulkup report --failed``: reading journals for people and scripts."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkup.errors import JournalError
from bulkup.journal import Journal
from bulkup.journal_run import state_dir

EXIT_OK, EXIT_USAGE = 0, 2


def run_journal_command(args: argparse.Namespace) -> int:
    """Run ``status`` or ``report``; 2 when there is no journal or it cannot be read."""
    try:
        if args.command == "status":
            return _status(args)
        return _report_failed(args)
    except JournalError as exc:
        print(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _journals(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        if not explicit.exists():
            raise JournalError(f"no journal at {explicit}")
        return [explicit]
    found = sorted(state_dir().glob("*.journal"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    if not found:
        raise JournalError(f"no journal in {state_dir()} yet (nothing uploaded with a journal)")
    return found


def _status(args: argparse.Namespace) -> int:
    listing: list[dict[str, Any]] = []
    for path in _journals(args.journal):
        journal = Journal(path)
        try:
            listing.append({"journal": str(path), "runs": journal.recent_runs(args.runs)})
        finally:
            journal.close()
    if args.json:
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    for item in listing:
        print(item["journal"])
        for run in item["runs"]:
            print("  " + _run_line(run))
    return EXIT_OK


def _run_line(run: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(run["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
    if run.get("ended_at") is None:
        return f"run {run['run']} started {started} (PID {run['pid']}): did not finish"
    return (f"run {run['run']} started {started}: exit {run.get('exit_code', '?')}, "
            f"uploaded {run.get('files_uploaded', 0)}, failed {run.get('files_failed', 0)}, "
            f"skipped {run.get('files_skipped', 0)}, gone {run.get('files_gone', 0)}; "
            f"jobs {', '.join(run.get('job_handles', [])) or '-'}")


def _report_failed(args: argparse.Namespace) -> int:
    path = _journals(args.journal)[0]
    journal = Journal(path)
    try:
        failures = journal.last_run_failures()
    finally:
        journal.close()
    if args.json:
        print(json.dumps({"journal": str(path), "failures": failures}, indent=2,
                         ensure_ascii=False))
        return EXIT_OK
    print(f"{len(failures)} failed in the last run of {path}")
    for failure in failures:
        print(f"  {failure['path']}: {failure['reason']}")
    return EXIT_OK
