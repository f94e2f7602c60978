"""Memory whatever the tree's shape, and the nightly run that finds nothing to do (issue 16
items 3 and 4): peak RSS and wall time of ``bulkup upload --dry-run``, a real upload and a
no-change sync, over N files in ONE folder (``flat``) and over N files in N/1,000 folders of
1,000 (``nested``), beside a stat-ing ``find`` over the same tree.

The trees hold empty files (the walk, the plan, the journal and the POSTs are what is
measured, not the bytes; a 0-byte file still gets its own part in a POST). They are generated
once into the cache (``--cache``, default ``~/.cache/bulkup-bench``; a ``MANIFEST.json`` written
last marks a complete tree) and reused by later invocations: a million empty files take a
million inodes and no data blocks. Each round, for each shape, in this order:

- ``--dry-run``: the plan of the whole tree, with a fresh journal (a first run's plan);
- upload: every file into the bench kit's nginx sink (``sinks.py``, plain HTTP) with
  ``--no-wait`` (the sink has no job log to read) and a fresh journal; the sink's count of
  POSTs must match bulkup's report, which must say every file was sent;
- no-change sync: the same command again with the same journal: the report must say every file
  was skipped and no POST was sent, and the sink must have logged none;
- ``find TREE -type f -printf '%s %T@\\n'``: a stat of every file, what the walk needs at the
  least; the no-change sync's target is at most 3x its time (issue 16 item 4).

Every command is its own child process: wall time and peak RSS (``ru_maxrss``) from ``wait4``.
A ``find`` over each tree runs first, untimed, so that round 1 does not pay for a cold cache of
inodes alone. Medians over ``--rounds``. Prints the tables (markdown) and writes
``memory_shapes.json`` and ``memory_shapes.md`` into ``--out``.

usage: python benchmarks/memory_shapes.py [--files 1000000] [--rounds 3]
       [--shapes flat,nested] [--cache DIR] [--at COMMIT] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sinks import NginxSink  # noqa: E402
from throughput import default_cache, use_bulkup_at  # noqa: E402

SHAPES_VERSION = 1  # bump when the trees' layout changes
PER_FOLDER = 1_000
RSS_TARGET_MIB = 100
NOCHANGE_TARGET = 3.0  # x the stat-ing find
COMMANDS = ("dry-run", "upload", "no-change sync", "find -printf")


def tree_for(cache: Path, shape: str, files: int) -> Path:
    """The tree of ``files`` empty files in ``shape``, generated unless already cached."""
    folder = cache / f"shape-{shape}-{files}"
    key = {"version": SHAPES_VERSION, "shape": shape, "files": files, "per_folder": PER_FOLDER}
    try:
        if json.loads((folder / "MANIFEST.json").read_text()) == key:
            return folder / "tree"
    except (OSError, ValueError):
        pass
    started = time.perf_counter()
    print(f"generating {files:,} empty files ({shape}) in {folder} ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    tree = folder / "tree"
    tree.mkdir(parents=True)
    where = tree
    for i in range(files):
        if shape == "nested" and i % PER_FOLDER == 0:
            where = tree / f"d{i // PER_FOLDER:04d}"
            where.mkdir()
        os.close(os.open(where / f"f{i:07d}.jpg", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    (folder / "MANIFEST.json").write_text(json.dumps(key))  # last: the tree is complete
    print(f"  {time.perf_counter() - started:.1f} s", flush=True)
    return tree


def timed(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak RSS MiB of one child process (stderr kept in ``log``)."""
    with log.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:4])} ... exited {code}: {log.read_text(errors='replace')[-2000:]}"
        )
    return {
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def one_round(
    shape: str, tree: Path, files: int, sink: NginxSink, work: Path, round_no: int
) -> list[dict[str, object]]:
    env = {**os.environ, "BULKUP_PASSWORD": "pw"}
    journal, report, log = (
        work / f"{shape}-{round_no}.journal",
        work / "report.json",
        work / "stderr.log",
    )

    def bulkup(journal: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bulkup",
            "upload",
            str(tree),
            "--server",
            sink.url(False),
            "--user",
            "bench@example.com",
            "--company-handle",
            "c|1",
            "--company-root",
            "Bench/",
            "--journal",
            str(journal),
            "--log-format",
            "json",
            "--no-wait",
            "--report",
            str(report),
            *extra,
        ]

    runs: list[dict[str, object]] = []

    def record(command: str, result: dict[str, float], **more: object) -> None:
        runs.append(
            {
                "shape": shape,
                "files": files,
                "round": round_no,
                "command": command,
                **result,
                **more,
            }
        )
        print(
            f"{shape} round {round_no} {command}: {result['wall_s']:.2f} s, "
            f"{result['peak_rss_mib']:.0f} MiB",
            flush=True,
        )

    mark = sink.mark()
    result = timed(bulkup(work / f"dry-{round_no}.journal", "--dry-run"), log, env)
    got = json.loads(report.read_text())
    assert got["files_found"] == files and sink.window(mark).posts == 0, got
    record("dry-run", result, posts=0, planned_posts=got["planned_posts"])

    for command in ("upload", "no-change sync"):
        mark = sink.mark()
        result = timed(bulkup(journal), log, env)
        got, seen = json.loads(report.read_text()), sink.window(mark)
        if command == "upload":
            assert got["files_uploaded"] == files and got["files_failed"] == 0, got
        else:
            assert got["files_skipped"] == files and got["posts"] == 0, got
        assert seen.posts == got["posts"], f"sink saw {seen.posts} POSTs, report {got['posts']}"
        record(command, result, posts=seen.posts, files_skipped=got["files_skipped"])

    result = timed(["find", str(tree), "-type", "f", "-printf", "%s %T@\n"], log)
    record("find -printf", result)
    for path in work.glob("*.journal*"):  # a million files' journal is ~100 MB
        path.unlink()
    return runs


def summarise(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    rows = []
    for shape in dict.fromkeys(str(r["shape"]) for r in runs):
        for command in COMMANDS:
            items = [r for r in runs if r["shape"] == shape and r["command"] == command]
            if not items:
                continue
            med = {
                k: statistics.median(float(i[k]) for i in items)  # type: ignore[arg-type]
                for k in ("wall_s", "peak_rss_mib", "cpu_s")
            }
            rows.append(
                {
                    "shape": shape,
                    "files": items[0]["files"],
                    "command": command,
                    "runs": len(items),
                    **med,
                    "max_peak_rss_mib": max(
                        float(i["peak_rss_mib"])  # type: ignore[arg-type]
                        for i in items
                    ),
                    "posts": [i.get("posts") for i in items],
                }
            )
    return rows


def markdown(rows: list[dict[str, object]], machine: dict[str, object]) -> str:
    def row(shape: str, command: str) -> dict[str, object]:
        return next(r for r in rows if r["shape"] == shape and r["command"] == command)

    shapes = list(dict.fromkeys(str(r["shape"]) for r in rows))
    files = int(rows[0]["files"])  # type: ignore[call-overload]
    lines = [
        f"Machine: {machine['machine']}, {machine['cores']} cores, Python "
        f"{machine['python']}, {machine['date']}; bulkup at {machine['commit']}; "
        f"`memory_shapes.py {machine['command']}`; medians of {machine['rounds']} "
        "interleaved rounds (peak RSS: median, and the largest of any round). "
        f"`flat`: {files:,} empty files in one folder; `nested`: {files:,} empty files in "
        f"{max(1, files // PER_FOLDER):,} folders of {PER_FOLDER:,}. Upload into the nginx "
        "sink, plain HTTP, `--no-wait`.",
        "",
        f"| shape | command | wall s | client CPU s | peak RSS MiB (max) | POSTs | "
        f"RSS < {RSS_TARGET_MIB} MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in shapes:
        for command in COMMANDS:
            r = row(shape, command)
            posts = r["posts"]
            shown = "-" if command == "find -printf" else ", ".join(f"{p:,}" for p in posts)  # type: ignore[attr-defined]
            met = (
                "-"
                if command == "find -printf"
                else (
                    "yes"
                    if float(r["max_peak_rss_mib"]) < RSS_TARGET_MIB  # type: ignore[arg-type]
                    else "no"
                )
            )
            lines.append(
                f"| {shape} | {command} | {float(r['wall_s']):.2f} | "  # type: ignore[arg-type]
                f"{float(r['cpu_s']):.2f} | {float(r['peak_rss_mib']):.0f} "  # type: ignore[arg-type]
                f"({float(r['max_peak_rss_mib']):.0f}) | {shown} | {met} |"
            )  # type: ignore[arg-type]
    lines += [
        "",
        "The nightly run that finds nothing to do (target: at most "
        f"{NOCHANGE_TARGET:g}x the stat-ing `find`, peak RSS < {RSS_TARGET_MIB} MiB, "
        "zero POSTs):",
        "",
        "| shape | no-change sync s | `find -printf` s | ratio | peak RSS MiB (max) | "
        "POSTs | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in shapes:
        sync, find = row(shape, "no-change sync"), row(shape, "find -printf")
        ratio = float(sync["wall_s"]) / float(find["wall_s"])  # type: ignore[arg-type]
        posts = sync["posts"]
        zero = all(p == 0 for p in posts)  # type: ignore[attr-defined]
        rss = float(sync["max_peak_rss_mib"])  # type: ignore[arg-type]
        met = ratio <= NOCHANGE_TARGET and rss < RSS_TARGET_MIB and zero
        lacking = [
            what
            for what, ok in (
                ("time", ratio <= NOCHANGE_TARGET),
                ("memory", rss < RSS_TARGET_MIB),
                ("POSTs", zero),
            )
            if not ok
        ]
        lines.append(
            f"| {shape} | {float(sync['wall_s']):.2f} | "  # type: ignore[arg-type]
            f"{float(find['wall_s']):.2f} | {ratio:.1f}x | "  # type: ignore[arg-type]
            f"{float(sync['peak_rss_mib']):.0f} ({rss:.0f}) | "  # type: ignore[arg-type]
            f"{', '.join(str(p) for p in posts)} | "  # type: ignore[attr-defined]
            f"{'yes' if met else 'no (' + ', '.join(lacking) + ')'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shapes", default="flat,nested", type=lambda t: t.split(","))
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the trees are generated once and kept (default ~/.cache/bulkup-bench)",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="COMMIT",
        help="measure bulkup as of COMMIT instead of the working tree",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    assert set(args.shapes) <= {"flat", "nested"}, args.shapes
    out, cache = args.out.resolve(), (args.cache or default_cache()).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(cache)  # empty files cost inodes, not blocks
    if stats.f_favail < args.files * len(args.shapes) * 1.1:
        sys.exit(
            f"{args.files * len(args.shapes):,} files need as many inodes; {stats.f_favail:,} free"
        )
    work = Path(tempfile.mkdtemp(prefix="bench-shapes-"))
    work.chmod(0o755)  # nginx's workers (not root) use a folder under it
    sink = NginxSink(work / "sink")
    runs: list[dict[str, object]] = []
    try:
        commit = use_bulkup_at(args.at, work)
        trees = {shape: tree_for(cache, shape, args.files) for shape in args.shapes}
        for tree in trees.values():  # warm the inode and dentry caches, untimed
            subprocess.run(
                ["find", str(tree), "-type", "f", "-printf", "%s %T@\n"],
                stdout=subprocess.DEVNULL,
                check=True,
            )
        sink.start()
        for round_no in range(args.rounds):
            for shape, tree in trees.items():
                runs += one_round(shape, tree, args.files, sink, work, round_no)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    machine = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "rounds": args.rounds,
        "command": " ".join(sys.argv[1:]),
    }
    if not runs:
        print("trees ready; no rounds run")
        return
    rows = summarise(runs)
    table = markdown(rows, machine)
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory_shapes.json").write_text(
        json.dumps({"machine": machine, "medians": rows, "runs": runs}, indent=2)
    )
    (out / "memory_shapes.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
