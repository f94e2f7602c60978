"""``bulkup status``, ``bulkup report --failed`` and ``bulkup journal prune``: reading (and
tidying) journals for people and scripts."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkup.errors import JournalError
from bulkup.report import EXIT_OK, EXIT_USAGE
from bulkup.targets import escaped


def run_journal_command(args: argparse.Namespace) -> int:
    """Run ``status``, ``report`` or ``journal prune``; 2 when there is no journal or it
    cannot be read."""
    try:
        if args.command == "status":
            return _status(args)
        if args.command == "journal":
            return _prune(args)
        return _report_failed(args)
    except JournalError as exc:
        print(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _journals(explicit: Path | None) -> list[Path]:
    from bulkup.journal.session import state_dir

    if explicit is not None:
        if not explicit.exists():
            raise JournalError(f"no journal at {explicit}")
        return [explicit]
    found = sorted(state_dir().glob("*.journal"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise JournalError(f"no journal in {state_dir()} yet (nothing uploaded with a journal)")
    return found


def _status(args: argparse.Namespace) -> int:
    from bulkup.journal.store import Journal

    listing: list[dict[str, Any]] = []
    for path in _journals(args.journal):
        journal = Journal(path)
        try:
            listing.append(
                {
                    "journal": str(path),
                    "target": journal.target(),
                    "files": journal.file_counts(),
                    "runs": journal.recent_runs(args.runs),
                }
            )
        finally:
            journal.close()
    if args.json:
        print(json.dumps(listing, indent=2, ensure_ascii=False))
        return EXIT_OK
    for item in listing:
        print(escaped(item["journal"]))
        print("  " + escaped(_target_line(item["target"])))
        print(
            "  files: "
            + (
                ", ".join(f"{n} {state}" for state, n in sorted(item["files"].items()))
                or "none yet"
            )
        )
        for run in item["runs"]:
            print("  " + _run_line(run))
    return EXIT_OK


def _target_line(target: dict[str, Any]) -> str:
    where = "".join(filter(None, (target.get("company_root"), target.get("dest_folder"))))
    sources = ", ".join(target.get("sources") or []) or "?"
    return (
        f"{target.get('server') or '?'} company {target.get('company') or '?'} "
        f"into {where or '(company root)'} from {sources}"
    )


def last_job_handle(journal_path: Path | None) -> str:
    """The newest job handle of the newest finished run (``bulkup job ... --last``)."""
    from bulkup.journal.store import Journal

    path = _journals(journal_path)[0]
    journal = Journal(path)
    try:
        for run in journal.recent_runs(KEEP_LOOKBACK):
            handles = run.get("job_handles") or []
            if handles:
                return str(handles[-1])
    finally:
        journal.close()
    raise JournalError(f"no run in {path} opened a job")


KEEP_LOOKBACK = 50
DURATION = re.compile(r"^(\d+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` in seconds."""
    found = DURATION.match(text.strip())
    if found is None:
        raise JournalError(f"--older-than: {text!r} is not a duration like 30d, 12h or 2w")
    return int(found.group(1)) * SECONDS[found.group(2)]


def _prune(args: argparse.Namespace, now: float | None = None) -> int:
    """Remove the state folder's journals not used for ``--older-than`` (never one in use)."""
    from bulkup.journal.session import RunLock, state_dir

    cutoff = (now if now is not None else time.time()) - parse_age(args.older_than)
    removed = 0
    for path in sorted(state_dir().glob("*.journal")):
        if _last_used(path) >= cutoff:
            continue
        lock = RunLock(path)
        try:
            lock.acquire()
        except JournalError:
            print(f"kept {escaped(str(path))}: in use", file=sys.stderr)
            continue
        try:
            if not args.dry_run:
                for part in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                    part.unlink(missing_ok=True)
        finally:
            lock.release()
        removed += 1
        print(f"{'would remove' if args.dry_run else 'removed'} {escaped(str(path))}")
    print(f"{removed} journal(s) {'to remove' if args.dry_run else 'removed'}")
    return EXIT_OK


def _last_used(path: Path) -> float:
    """When the journal was last written (its WAL's time counts too)."""
    times = [p.stat().st_mtime for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    return max(times)


def _run_line(run: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(run["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
    if run.get("ended_at") is None:
        return f"run {run['run']} started {started} (PID {run['pid']}): did not finish"
    return (
        f"run {run['run']} started {started}: exit {run.get('exit_code', '?')}, "
        f"uploaded {run.get('files_uploaded', 0)}, failed {run.get('files_failed', 0)}, "
        f"skipped {run.get('files_skipped', 0)}, gone {run.get('files_gone', 0)}; "
        f"jobs {', '.join(run.get('job_handles', [])) or '-'}"
    )


def _report_failed(args: argparse.Namespace) -> int:
    from bulkup.journal.store import Journal

    path = _journals(args.journal)[0]
    journal = Journal(path)
    try:
        failures = journal.last_run_failures()
    finally:
        journal.close()
    if args.json:
        print(
            json.dumps({"journal": str(path), "failures": failures}, indent=2, ensure_ascii=False)
        )
        return EXIT_OK
    print(f"{len(failures)} failed in the last run of {path}")
    for failure in failures:
        print(f"  {failure['path']}: {failure['reason']}")
    return EXIT_OK


def add_journal_commands(commands: Any) -> None:
    status = commands.add_parser("status", help="recent runs recorded in the journals")
    status.add_argument(
        "--journal",
        type=Path,
        metavar="PATH",
        help="one journal (default: every journal in the state dir)",
    )
    status.add_argument("--runs", type=int, default=5, help="runs shown per journal")
    status.add_argument("--json", action="store_true", help="JSON for scripts")
    report = commands.add_parser(
        "report",
        help="what the last run of a journal left failed; merge the reports of a fleet's shards",
    )
    report.add_argument("--failed", action="store_true", help="list the failures of the last run")
    from bulkup.cli.reports import add_merge_arguments

    add_merge_arguments(
        report.add_subparsers(dest="report_action").add_parser(
            "merge",
            help="one fleet summary from the shards' JSON reports",
            description="One summary from the JSON reports of the shards of a fleet (--shard "
            "K/N): totals, one line per shard, every failure, missing shards named; exits with "
            "the worst exit code of the shards.",
        )
    )
    report.add_argument(
        "--journal",
        type=Path,
        metavar="PATH",
        help="the journal (default: the most recently used one)",
    )
    report.add_argument("--json", action="store_true", help="JSON for scripts")
    journal = commands.add_parser("journal", help="tidy the journals in the state folder")
    tidy = journal.add_subparsers(dest="action", required=True)
    prune = tidy.add_parser(
        "prune",
        help="remove journals not used for a while",
        description="Remove the state folder's journals (and their "
        "files) not written for --older-than; one in use is kept.",
    )
    prune.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="e.g. 30d, 12h, 2w: journals not written for that long",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed")
