"""Adaptive concurrency (issue 17 item 3): ``--concurrency auto`` beside a fixed concurrency.

Three scenarios, each against a fresh emulator (``bulkup serve``) per run, on loopback:

- ``loopback``: the emulator as it is; fixed 8 (the old default) against auto.
- ``delay``: the emulator with ``--response-delay-ms 50`` (a far server); fixed 8 against auto.
- ``pushback``: the emulator with ``--max-inflight 4`` (503 + ``Retry-After: 1``); fixed 4
  (the server's own limit, which it never refuses) against auto.

Rounds are interleaved (every client once per round, the order reversed every other round).
Per client, the medians of the rounds: wall time of the whole process (``--no-wait``), files/s,
MB/s, failed files and retries (bulkup's report), and for auto the ``concurrency_changed``
events of its log (how many, the last limit, the highest). The ratio is auto's median files/s
over the baseline's, and the median of the per-round ratios beside it.

usage: python benchmarks/concurrency.py [--quick] [--rounds 3]
       [--scenarios loopback,delay,pushback] [--corpora small,large]
       [--client 'LABEL=--concurrency 16'] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from local_servers import bulkup_upload, start_emulator  # noqa: E402
from upload_e2e import cached_corpus  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
CORPORA = {"small": (20_000, 16 * KiB), "large": (500, MiB)}
QUICK_CORPORA = {"small": (2_000, 16 * KiB), "large": (100, MiB)}
USER, PASSWORD, COMPANY = "bench@example.com", "pw", "c|1"
DELAY_MS = 50
PUSHBACK_LIMIT = 4
# scenario -> (emulator arguments, baseline label, baseline's bulkup arguments)
SCENARIOS: dict[str, tuple[list[str], str, list[str]]] = {
    "loopback": ([], "fixed 8", ["--concurrency", "8"]),
    "delay": (["--response-delay-ms", str(DELAY_MS)], "fixed 8", ["--concurrency", "8"]),
    "pushback": (
        ["--max-inflight", str(PUSHBACK_LIMIT)],
        f"fixed {PUSHBACK_LIMIT}",
        ["--concurrency", str(PUSHBACK_LIMIT)],
    ),
}
AUTO = ("auto", ["--concurrency", "auto"])


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    files: int
    size: int


@dataclass
class Run:
    scenario: str
    corpus: str
    client: str
    round: int
    exit_code: int
    wall_s: float
    files_s: float
    mb_s: float
    failed: int
    retries: int
    posts: int
    changes: int
    last_limit: int | None
    top_limit: int | None
    limits: list[int] = field(repr=False, default_factory=list)


def corpora(cache: Path, names: list[str], quick: bool) -> list[Corpus]:
    """Generated once into ``cache`` (``upload_e2e.cached_corpus``), reused afterwards."""
    table = QUICK_CORPORA if quick else CORPORA
    found = []
    for name in names:
        count, size = table[name]
        tree = cached_corpus(cache, f"concurrency-{name}", count, size)
        found.append(Corpus(name, tree, count, size))
    return found


def command(corpus: Corpus, url: str, work: Path, extra: list[str]) -> list[str]:
    stamp = time.monotonic_ns()  # a fresh journal: every run is a first upload
    return bulkup_upload(
        corpus.path,
        url,
        work / f"j-{stamp}.journal",
        "--no-wait",
        "--log-file",
        str(work / "log.jsonl"),
        "--report",
        str(work / "report.json"),
        *extra,
        user=USER,
        company=COMPANY,
    )


def one_run(
    scenario: str, label: str, extra: list[str], corpus: Corpus, round_no: int, work: Path
) -> Run:
    """One client once, into a fresh emulator."""
    root = Path(tempfile.mkdtemp(prefix="emu-", dir=work))
    proc, url = start_emulator(
        root,
        *SCENARIOS[scenario][0],
        "--user",
        f"{USER}:{PASSWORD}",
        "--company",
        f"Bench:{COMPANY}",
    )
    for name in ("report.json", "log.jsonl"):
        (work / name).unlink(missing_ok=True)
    try:
        start = time.perf_counter()
        code = subprocess.run(
            command(corpus, url, work, extra),
            env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ).returncode
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    report = (
        json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    )
    failed = int(report.get("files_failed", corpus.files))
    limits = changed_limits(work / "log.jsonl")
    uploaded = corpus.files - failed
    return Run(
        scenario,
        corpus.name,
        label,
        round_no,
        code,
        wall,
        uploaded / wall,
        uploaded * corpus.size / wall / 1e6,
        failed,
        int(report.get("retries", 0)),
        int(report.get("posts", 0)),
        len(limits),
        limits[-1] if limits else None,
        max(limits) if limits else None,
        limits,
    )


def changed_limits(log: Path) -> list[int]:
    """The new limit of every ``concurrency_changed`` event, in order."""
    if not log.exists():
        return []
    limits = []
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "concurrency_changed":
            limits.append(int(event["new"]))
    return limits


def describe(run: Run) -> str:
    limits = (
        f"  limit changes {run.changes}, last {run.last_limit}, top {run.top_limit}"
        if run.changes
        else ""
    )
    return (
        f"  {run.scenario:8} {run.corpus:5} round {run.round}  {run.client:10} "
        f"exit {run.exit_code}  {run.wall_s:6.2f} s  {run.files_s:8.0f} files/s  "
        f"{run.mb_s:7.1f} MB/s  failed {run.failed}  retries {run.retries}{limits}"
    )


def summary(
    runs: list[Run],
    scenarios: list[str],
    found: list[Corpus],
    clients: dict[str, list[tuple[str, list[str]]]],
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for scenario in scenarios:
        base_label = clients[scenario][0][0]
        for corpus in found:
            mine = [r for r in runs if r.scenario == scenario and r.corpus == corpus.name]
            base = sorted((r for r in mine if r.client == base_label), key=lambda r: r.round)
            for label, _ in clients[scenario]:
                these = sorted((r for r in mine if r.client == label), key=lambda r: r.round)
                rows.append(row(scenario, corpus, label, these, base))
    return rows


def row(
    scenario: str, corpus: Corpus, label: str, these: list[Run], base: list[Run]
) -> dict[str, object]:
    median = statistics.median
    files_s = median(r.files_s for r in these)
    paired = [a.files_s / b.files_s for a, b in zip(these, base, strict=True)]
    return {
        "scenario": scenario,
        "corpus": f"{corpus.files:,} x {corpus.size // KiB} KiB",
        "client": label,
        "rounds": len(these),
        "wall_s": median(r.wall_s for r in these),
        "files_s": files_s,
        "mb_s": median(r.mb_s for r in these),
        "failed": max(r.failed for r in these),
        "retries": median(r.retries for r in these),
        "posts": median(r.posts for r in these),
        "ratio": files_s / median(r.files_s for r in base),
        "paired": median(paired),
        "limits": " / ".join(
            f"{r.changes}:{r.last_limit}^{r.top_limit}" for r in these if r.changes
        )
        or "-",
        "exit_codes": sorted({r.exit_code for r in these}),
    }


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| scenario | corpus | client | wall s | files/s | MB/s | failed (max) | retries "
        "| POSTs | vs baseline (medians) | per-round ratio (median) | limit changes: "
        "last^top, per round |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['corpus']} | {r['client']} | {r['wall_s']:.2f} "
            f"| {r['files_s']:,.0f} | {r['mb_s']:.1f} | {r['failed']} | {r['retries']:g} "
            f"| {r['posts']:g} | {r['ratio']:.3f}x | {r['paired']:.3f}x | {r['limits']} |"
        )
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2,000 x 16 KiB and 100 x 1 MiB, one round (a fast look)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument(
        "--scenarios", default="loopback,delay,pushback", help="of loopback, delay, pushback"
    )
    parser.add_argument("--corpora", default="small,large", help="of small, large")
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="one more bulkup variant in every scenario, e.g. 'c16=--concurrency 16'",
    )
    parser.add_argument("--no-auto", action="store_true", help="leave --concurrency auto out")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "bulkup-bench",
        help="where the corpora are generated and kept",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def variant(text: str) -> tuple[str, list[str]]:
    label, sep, rest = text.partition("=")
    if not sep:
        sys.exit(f"--client expects LABEL=ARGS, got {text!r}")
    return label, shlex.split(rest)


def main() -> None:
    args = parse_args()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(HERE.parent / "bulkup")], check=True
    )  # as an install does (this machine sets PYTHONDONTWRITEBYTECODE)
    args.cache.mkdir(parents=True, exist_ok=True)
    found = corpora(args.cache, args.corpora.split(","), args.quick)
    scenarios = args.scenarios.split(",")
    extra = [variant(text) for text in args.client]
    clients = {
        s: [(SCENARIOS[s][1], SCENARIOS[s][2]), *([] if args.no_auto else [AUTO]), *extra]
        for s in scenarios
    }
    work = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    runs: list[Run] = []
    try:
        for scenario in scenarios:
            for corpus in found:
                for round_no in range(args.rounds):
                    order = clients[scenario] if round_no % 2 == 0 else clients[scenario][::-1]
                    for label, extra_args in order:
                        runs.append(one_run(scenario, label, extra_args, corpus, round_no, work))
                        print(describe(runs[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = summary(runs, scenarios, found, clients)
    table = markdown(rows)
    print(table)
    stem = "concurrency-quick" if args.quick else "concurrency"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(table)
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {"rows": rows, "runs": [asdict(r) for r in runs], "rounds": args.rounds}, indent=1
        )
    )


if __name__ == "__main__":
    main()
