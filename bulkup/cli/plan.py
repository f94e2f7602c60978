"""``bulkup plan --shards N SRC...``: how N shards would split the files (files and bytes each).

The tree is listed once (as ``--shard-by size`` lists it; filters and ``--dest-folder`` apply,
nothing is sent and no credentials are needed), then each shard's files and bytes are printed
under the hash rule and under the size rule, with how far the fullest or emptiest shard is
from the mean in bytes. When hashing is off by more than 20% the plan says so and suggests
``--shard-by size``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from bulkup.config.model import parse_size
from bulkup.errors import ConfigError
from bulkup.report import EXIT_USAGE

__all__ = ["add_plan_arguments", "run_plan"]

_PASSED = (
    "dest_folder",
    "include_from",
    "exclude_from",
    "ignore_case",
    "min_age",
    "max_age",
    "follow_symlinks",
    "follow_external_symlinks",
)


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``bulkup plan``."""
    p.add_argument("sources", nargs="+", metavar="SRC", help="folders or files to upload")
    p.add_argument(
        "--shards",
        type=int,
        required=True,
        metavar="N",
        help="how many shards (machines) to split the files over",
    )
    p.add_argument(
        "--shard-by",
        choices=("hash", "size"),
        help="the rule shown first (default: the config's, else hash)",
    )
    p.add_argument("--dest-folder", help="folder under the company root (part of the hash)")
    p.add_argument("--include", action="append", metavar="GLOB", help="as for upload")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="as for upload")
    p.add_argument("--include-from", type=Path, metavar="FILE", help="as for upload")
    p.add_argument("--exclude-from", type=Path, metavar="FILE", help="as for upload")
    p.add_argument("--ignore-case", action="store_true", default=None, help="as for upload")
    p.add_argument("--min-size", metavar="SIZE", help="as for upload")
    p.add_argument("--max-size", metavar="SIZE", help="as for upload")
    p.add_argument("--min-age", metavar="AGE", help="as for upload")
    p.add_argument("--max-age", metavar="AGE", help="as for upload")
    p.add_argument("--follow-symlinks", action="store_true", default=None, help="as for upload")
    p.add_argument(
        "--follow-external-symlinks", action="store_true", default=None, help="as for upload"
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    p.add_argument("--json", action="store_true", help="JSON for scripts")


def run_plan(args: argparse.Namespace) -> int:
    """Print the balance of ``--shards`` shards; exit 0, or 2 for a usage error."""
    from bulkup.config.load import load_config
    from bulkup.config.shard import MAX_SHARDS

    try:
        if not 1 <= args.shards <= MAX_SHARDS:
            raise ConfigError(f"--shards must be 1 to {MAX_SHARDS}, got {args.shards}")
        missing = [src for src in args.sources if not os.path.exists(src)]
        if missing:
            raise ConfigError(f"SRC {missing[0]!r} does not exist")
        overrides: dict[str, Any] = {key: getattr(args, key) for key in _PASSED}
        overrides["include"] = tuple(args.include) if args.include else None
        overrides["exclude"] = tuple(args.exclude) if args.exclude else None
        for key in ("min_size", "max_size"):
            value = getattr(args, key)
            overrides[key] = parse_size(value) if value is not None else None
        config = load_config(
            path=args.config, environ=_without_shard(os.environ), overrides=overrides
        )
        balance = asyncio.run(_balance(config, args.sources, args.shards))
    except ConfigError as exc:
        print(f"bulkup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    first = args.shard_by or config.shard_by
    if args.json:
        print(json.dumps({**balance, "shown_first": first}, indent=2))
    else:
        print("\n".join(plan_lines(balance, first)))
    return 0


def _without_shard(environ: Any) -> dict[str, str]:
    """The environment without ``BULKUP_SHARD`` (a plan covers every shard; a config file's
    ``shard = "auto/N"`` is given an index so that it loads)."""
    kept = {k: v for k, v in environ.items() if k != "BULKUP_SHARD"}
    return {**kept, "JOB_COMPLETION_INDEX": "0"}


async def _balance(config: Any, sources: list[str], count: int) -> dict[str, Any]:
    import time

    from bulkup.config.filters import FileFilter
    from bulkup.pipeline.shard import deviation, list_tree

    tally = await list_tree(config, sources, FileFilter.from_config(config, now=time.time()), count)
    plan, size_files, size_bytes = tally.size_plan()
    return {
        "shards": count,
        "files": sum(tally.files),
        "bytes": tally.total_bytes,
        "largest_file": tally.largest,
        "hash": {
            "files": tally.files,
            "bytes": tally.bytes,
            "deviation": round(deviation(tally.bytes), 4),
        },
        "size": {
            "files": size_files,
            "bytes": size_bytes,
            "deviation": round(deviation(size_bytes), 4),
            "placed_by_size": len(plan.placed),
            "fingerprint": plan.fingerprint,
        },
    }


def plan_lines(balance: dict[str, Any], first: str) -> list[str]:
    """The human view: one table per rule (``first`` first), then the advice."""
    from bulkup.pipeline.shard import UNEVEN

    count = balance["shards"]
    lines = [f"{balance['files']:,} files, {_mb(balance['bytes'])} over {count} shards"]
    for rule in (first, "size" if first == "hash" else "hash"):
        data = balance[rule]
        extra = (
            f"; {data['placed_by_size']} large files placed by size, plan {data['fingerprint']}"
            if rule == "size"
            else ""
        )
        lines.append(
            f"--shard-by {rule}: bytes off the mean by up to {data['deviation']:.1%}{extra}"
        )
        lines += [
            f"  shard {i}/{count}: {data['files'][i]:>9,} files {_mb(data['bytes'][i]):>12}"
            for i in range(count)
        ]
    hashed, sized = balance["hash"]["deviation"], balance["size"]["deviation"]
    mean = balance["bytes"] / count if count else 0
    if hashed > UNEVEN:
        lines.append(
            f"hashing is off by {hashed:.0%} (more than {UNEVEN:.0%}): "
            f"--shard-by size gives {sized:.1%} (every shard must use it)"
        )
    if sized > UNEVEN and mean and balance["largest_file"] > UNEVEN * mean:
        lines.append(
            f"the largest file ({_mb(balance['largest_file'])}) alone is "
            f"{balance['largest_file'] / mean:.0%} of a shard's mean share: no rule "
            "can even that out; fewer shards would"
        )
    if hashed <= UNEVEN:
        lines.append(
            f"hashing is within {UNEVEN:.0%} of the mean: --shard-by hash (the default) is fine"
        )
    return lines


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"
