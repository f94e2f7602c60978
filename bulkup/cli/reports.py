"""``bulkup report merge REPORT...``: one fleet summary from the JSON reports of N shards.

Each report (``--report FILE`` of a run with ``--shard K/N``) names its shard. The merge adds
up the counts (``duration_s`` is the longest shard's: they run side by side), prints one line
per shard and every failure, names the shards without a report, and exits with the worst exit
code of the shards, in this order: 0 < 1 (files failed) < 130 (interrupted) < 3 (fatal) < 2
(usage or journal). A missing shard counts as 3 (its files were not sent, as far as anyone
knows); shards of ``--shard-by size`` whose plans differ (they listed different trees) count as
1 at least, since a large file may then be in two shards or in none. ``--json`` prints the same
as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bulkup.config.shard import parse_shard
from bulkup.errors import ConfigError
from bulkup.report import EXIT_FATAL, EXIT_FILES_FAILED, EXIT_USAGE
from bulkup.targets import escaped

__all__ = ["add_merge_arguments", "merge_reports", "run_report_merge"]

SUMMED = (
    "files_found",
    "files_uploaded",
    "files_failed",
    "files_skipped",
    "bytes_uploaded",
    "posts",
    "retries",
    "files_confirmed",
    "files_skipped_by_server",
    "files_unconfirmed",
    "files_refused",
    "files_failed_locally",
    "files_gone",
    "jobs_stopped",
)
_SEVERITY = {0: 0, 1: 1, 130: 2, 3: 3, 2: 4}


def add_merge_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``bulkup report merge``."""
    p.add_argument(
        "reports",
        nargs="+",
        metavar="REPORT",
        type=Path,
        help="the shards' JSON reports (--report FILE of each run)",
    )
    p.add_argument("--json", action="store_true", help="JSON for scripts")


def run_report_merge(args: argparse.Namespace) -> int:
    """Print the fleet summary; returns the worst exit code (2 for unreadable reports)."""
    try:
        merged = merge_reports([(str(path), _read(path)) for path in args.reports])
    except ConfigError as exc:
        print(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(merged, indent=2, ensure_ascii=False))
    else:
        print("\n".join(escaped(line) for line in merged_lines(merged)))
    return int(merged["exit_code"])


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"report {path}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"report {path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or "exit_code" not in data:
        raise ConfigError(f"report {path}: not a bulkup report (no exit_code)")
    return data


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The fleet's view of ``(name, report)`` pairs (see the module's notes).

    Raises:
        ConfigError: a report without a shard, shards of different N, or one shard twice.
    """
    count, by_index = _by_shard(reports)
    present = [by_index[i] for i in sorted(by_index)]
    totals: dict[str, Any] = {key: sum(int(r.get(key) or 0) for _, r in present) for key in SUMMED}
    totals["duration_s"] = max((float(r.get("duration_s") or 0) for _, r in present), default=0.0)
    missing = [f"{i}/{count}" for i in range(count) if i not in by_index]
    warnings = _plan_warnings(present)
    worst = max((int(r["exit_code"]) for _, r in present), key=_rank, default=0)
    if missing:
        worst = max(worst, EXIT_FATAL, key=_rank)
    if warnings:
        worst = max(worst, EXIT_FILES_FAILED, key=_rank)
    return {
        "shards": count,
        "missing": missing,
        "totals": totals,
        "job_handles": [h for _, r in present for h in r.get("job_handles", [])],
        "per_shard": [_shard_view(name, r) for name, r in present],
        "failures": [{**f, "shard": r["shard"]} for _, r in present for f in r.get("failures", [])],
        "warnings": warnings,
        "exit_code": worst,
    }


def _by_shard(
    reports: list[tuple[str, dict[str, Any]]],
) -> tuple[int, dict[int, tuple[str, dict[str, Any]]]]:
    counts: set[int] = set()
    by_index: dict[int, tuple[str, dict[str, Any]]] = {}
    for name, report in reports:
        shard = report.get("shard")
        if not isinstance(shard, str):
            raise ConfigError(f"report {name}: no shard (a run without --shard K/N)")
        spec = parse_shard(shard, f"report {name}: shard")
        assert spec.index is not None
        counts.add(spec.count)
        if spec.index in by_index:
            raise ConfigError(
                f"reports {by_index[spec.index][0]} and {name} are both of shard {shard}"
            )
        by_index[spec.index] = (name, report)
    if len(counts) != 1:
        raise ConfigError(f"the reports are of different shard counts: {sorted(counts)}")
    return counts.pop(), by_index


def _plan_warnings(present: list[tuple[str, dict[str, Any]]]) -> list[str]:
    plans = {r.get("shard_plan") for _, r in present if r.get("shard_by") == "size"}
    rules = {r.get("shard_by") for _, r in present}
    warnings = []
    if len(rules) > 1:
        warnings.append(
            f"the shards used different rules ({', '.join(sorted(map(str, rules)))}"
            "): files may have been sent twice or not at all; run again with one"
        )
    if len(plans) > 1:
        warnings.append(
            "the shards' size plans differ (they listed different trees): a large "
            "file may be in two shards or in none; run again"
        )
    return warnings


def _shard_view(name: str, report: dict[str, Any]) -> dict[str, Any]:
    return {
        "shard": report["shard"],
        "report": name,
        "exit_code": report["exit_code"],
        **{key: report.get(key, 0) for key in SUMMED},
        "duration_s": report.get("duration_s", 0),
        "job_handles": report.get("job_handles", []),
        "fatal_error": report.get("fatal_error"),
        "interrupted": report.get("interrupted", False),
    }


def _rank(code: int) -> int:
    return _SEVERITY.get(code, 5)


def merged_lines(merged: dict[str, Any]) -> list[str]:
    """The human summary of :func:`merge_reports`."""
    t, count = merged["totals"], merged["shards"]
    lines = [
        f"fleet of {count} shards: {len(merged['per_shard'])} reported"
        + (f", missing {', '.join(merged['missing'])}" if merged["missing"] else ""),
        f"found {t['files_found']:,} files; sent {t['files_uploaded']:,} "
        f"({_mb(t['bytes_uploaded'])}) in {t['duration_s']:.2f} s (the longest shard); "
        f"skipped {t['files_skipped']:,} unchanged; failed {t['files_failed']:,}",
        f"server verdict: {t['files_confirmed']:,} confirmed, {t['files_refused']:,} refused, "
        f"{t['files_unconfirmed']:,} unconfirmed; {t['posts']:,} POSTs, {t['retries']:,} "
        f"retries; {t['files_gone']:,} gone from disk",
    ]
    for s in merged["per_shard"]:
        state = (
            f"stopped: {s['fatal_error']}"
            if s["fatal_error"]
            else ("interrupted" if s["interrupted"] else "")
        )
        lines.append(
            f"  shard {s['shard']:>5}  exit {s['exit_code']:<3}  found {s['files_found']:>7,}  "
            f"sent {s['files_uploaded']:>7,} {_mb(s['bytes_uploaded']):>10}  skipped "
            f"{s['files_skipped']:>6,}  failed {s['files_failed']:>4,}  "
            f"{s['duration_s']:.2f} s  job {', '.join(s['job_handles']) or '-'}"
            + (f"  {state}" if state else "")
        )
    lines += [f"  missing shard {m}: no report" for m in merged["missing"]]
    lines += [f"  FAILED [{f['shard']}] {f['path']}: {f['reason']}" for f in merged["failures"]]
    lines += [f"WARNING: {w}" for w in merged["warnings"]]
    lines.append(f"exit {merged['exit_code']}")
    return lines


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
