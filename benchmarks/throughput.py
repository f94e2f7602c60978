"""Throughput against the peers and the machine: bulkup beside curl and the in-house script.

One command generates deterministic corpora, starts an nginx sink (the bench kit's, which
reads every body whole before answering; ``sinks.py``), and runs, interleaved round by round:
bulkup with its default settings, curl with the same packing and parallelism
(``curl-peer.py``), and the in-house ``requests`` script (one file per POST). Each run is a
child process: wall time, client CPU seconds and peak RSS come from ``wait4``. The sink's
access log says how many POSTs and bytes arrived, which must cover the corpus, and how long the
transfer took at the sink (first request's first byte to last answer: the client's start-up
and shutdown left out), and how long the client took from its start to that first byte.
Then bulkup runs against the emulator (its own process) for the end-to-end figure. Plain
HTTP, and TLS with ``--tls``.

Writes ``results.json`` (every run, medians, ratios, machine), ``results.md`` (tables) and
``throughput.png`` (a chart, when matplotlib is installed) into ``--out``.

``--sweep KEY=V1,V2`` adds bulkup runs with one setting changed (through a config file), beside
the others, to choose defaults. ``--sink python`` uses ``py_sink.py`` where nginx is missing;
``--smoke`` shrinks every corpus to a few files (the test suite runs it that way). bulkup is
byte-compiled first, as a regular install is: this machine sets PYTHONDONTWRITEBYTECODE, and
without the compiled files every bulkup run would compile its sources again (about 40 ms).

usage: python benchmarks/throughput.py [--rounds 3] [--corpora small,large,huge,mixed] [--tls]
       [--out benchmarks/results] [--bench-kit ../shared/bench-kit] [--sweep KEY=V1,V2]
       [--clients bulkup,curl,requests] [--sink nginx|python] [--smoke] [--no-emulator]
       [--emulator-roots DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sinks import NginxSink, PySink, Sink  # noqa: E402
from upload_e2e import write_file  # noqa: E402

MiB = 1024 * 1024
DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES, DEFAULT_CONCURRENCY = 100, 16 * MiB, 8


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    files: int
    bytes: int
    per_post: int  # curl's packing: what bulkup's default caps give for these files


def make_corpora(where: Path, names: list[str], smoke: bool = False) -> list[Corpus]:
    specs = {"small": [16 * 1024] * 10_000, "large": [4 * MiB] * 200, "huge": [1024 * MiB],
             "mixed": _mixed_sizes()}
    if smoke:
        specs = {"small": [16 * 1024] * 40, "large": [4 * MiB] * 3, "huge": [8 * MiB],
                 "mixed": _mixed_sizes()[:30]}
    corpora = []
    for name in names:
        sizes = specs[name]
        root = where / name
        block = random.Random(len(sizes)).randbytes(4 * MiB)
        for i, size in enumerate(sizes):
            write_file(root / f"d{i % 20:02d}" / f"f{i:06d}.tif", size, block)
        typical = int(statistics.median(sizes))
        per_post = max(1, min(DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES // max(typical, 1)))
        corpora.append(Corpus(name, root, len(sizes), sum(sizes), per_post))
    return corpora


def _mixed_sizes() -> list[int]:
    rng = random.Random(7)
    return [rng.choice([2_000, 16_000, 120_000, 900_000, 6 * MiB]) for _ in range(2_000)]


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {err[-2000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024}


def client_commands(corpus: Corpus, url: str, tls: bool, args: argparse.Namespace,
                    sink: Sink, work: Path) -> dict[str, list[str]]:
    def bulkup(*extra: str) -> list[str]:
        journal = work / f"journal-{time.monotonic_ns()}.journal"  # a first run, every time
        return [sys.executable, "-m", "bulkup", "upload", str(corpus.path), "--server", url,
                "--user", "bench@example.com", "--company-handle", "c|1",
                "--company-root", "Bench/", "--journal", str(journal), "--log-format", "json",
                *(["--ca-bundle", str(sink.ca)] if tls else []), *extra]

    commands = {
        "bulkup": bulkup(),
        "curl": [sys.executable, str(args.bench_kit / "curl-peer.py"), str(corpus.path), url,
                 str(corpus.per_post), str(DEFAULT_CONCURRENCY)],
        "requests": [sys.executable, str(HERE / "inhouse_requests.py"), str(corpus.path), url,
                     "bench@example.com", "pw", "c|1", "insecure" if tls else "verify"],
    }
    commands = {name: cmd for name, cmd in commands.items() if name in args.clients}
    for label, config in sweep_configs(args.sweep, work):
        commands[f"bulkup {label}"] = bulkup("--config", str(config))
    return commands


def sweep_configs(sweep: str | None, work: Path) -> list[tuple[str, Path]]:
    """``KEY=V1,V2`` → one config file per value (labels like ``concurrency=4``)."""
    if not sweep:
        return []
    key, _, values = sweep.partition("=")
    configs = []
    for value in values.split(","):
        path = work / f"sweep-{key}-{value}.toml"
        literal = value if value.replace(".", "").isdigit() or value in ("true", "false") \
            else json.dumps(value)
        path.write_text(f"{key} = {literal}\n")
        configs.append((f"{key}={value}", path))
    return configs


def measure_sink(corpora: list[Corpus], args: argparse.Namespace, sink: Sink,
                 work: Path) -> list[dict[str, object]]:
    env = {**os.environ, "BULKUP_PASSWORD": "pw"}
    runs: list[dict[str, object]] = []
    for tls in ([False, True] if args.tls else [False]):
        for corpus in corpora:
            for round_no in range(args.rounds):
                commands = client_commands(corpus, sink.url(tls), tls, args, sink, work)
                for client, cmd in commands.items():
                    if client == "requests" and corpus.name == "huge" and round_no:
                        continue  # one slow round is enough for the baseline
                    mark = sink.mark()
                    started = time.time()  # the sink logs epoch times
                    result = run_child(cmd, env)
                    seen = sink.window(mark)
                    assert seen.bytes >= corpus.bytes, f"{client}: the sink got {seen.bytes} B"
                    runs.append({"target": "sink", "tls": tls, "corpus": corpus.name,
                                 "client": client, "round": round_no, "posts": seen.posts,
                                 "sink_bytes": seen.bytes, "transfer_s": seen.transfer_s,
                                 "first_byte_s": seen.first_at - started,
                                 **_rates(result, corpus)})
    return runs


def measure_emulator(corpora: list[Corpus], args: argparse.Namespace,
                     work: Path) -> list[dict[str, object]]:
    from upload_e2e import start_emulator

    runs: list[dict[str, object]] = []
    roots = args.emulator_roots or work
    for corpus in corpora:
        for round_no in range(args.rounds):
            root = Path(tempfile.mkdtemp(prefix=f"emu-{corpus.name}-{round_no}-", dir=roots))
            proc, url = start_emulator(root)
            try:
                cmd = [sys.executable, "-m", "bulkup", "upload", str(corpus.path), "--server",
                       url, "--user", "bench@example.com", "--company-handle", "c|1",
                       "--company-root", "Bench/", "--journal",
                       str(work / f"emu-{time.monotonic_ns()}.journal"), "--log-format", "json"]
                result = run_child(cmd, {**os.environ, "BULKUP_PASSWORD": "pw"})
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                shutil.rmtree(root, ignore_errors=True)
            runs.append({"target": "emulator", "tls": False, "corpus": corpus.name,
                         "client": "bulkup", "round": round_no, **_rates(result, corpus)})
    return runs


def _rates(result: dict[str, float], corpus: Corpus) -> dict[str, float]:
    return {**result, "files_s": corpus.files / result["wall_s"],
            "mb_s": corpus.bytes / 1e6 / result["wall_s"]}


def summarise(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    groups: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for run in runs:
        key = (run["target"], run["tls"], run["corpus"], run["client"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (target, tls, corpus, client), items in groups.items():
        keys = ["wall_s", "files_s", "mb_s", "cpu_s", "peak_rss_mib"]
        if all("transfer_s" in i for i in items):
            keys += ["transfer_s", "first_byte_s"]
        med = {k: statistics.median(float(i[k]) for i in items)  # type: ignore[arg-type]
               for k in keys}
        rows.append({"target": target, "tls": tls, "corpus": corpus, "client": client,
                     "runs": len(items), **med})
    for row in rows:
        curl = _peer(rows, row, "curl")
        row["vs_curl"] = _ratio(curl, row, "wall_s")
        row["vs_curl_transfer"] = _ratio(curl, row, "transfer_s")
        inhouse = _peer(rows, row, "requests")
        row["vs_requests"] = _ratio(inhouse, row, "wall_s") if row["target"] == "sink" else None
    return rows


def _peer(rows: list[dict[str, object]], row: dict[str, object],
          client: str) -> dict[str, object] | None:
    return next((r for r in rows if r["client"] == client and r["target"] == row["target"]
                 and r["tls"] == row["tls"] and r["corpus"] == row["corpus"]), None)


def _ratio(peer: dict[str, object] | None, row: dict[str, object], key: str) -> float | None:
    """``peer``'s time over ``row``'s: above 1, ``row`` is faster."""
    if peer is None or not row.get(key) or key not in peer:
        return None
    return float(peer[key]) / float(row[key])  # type: ignore[arg-type]


def markdown(rows: list[dict[str, object]], machine: dict[str, object]) -> str:
    lines = [f"Machine: {machine['machine']}, {machine['cores']} cores, Python "
             f"{machine['python']}, {machine['date']}; sink: {machine.get('sink', 'nginx')}; "
             f"`throughput.py {machine.get('command', '')}`; medians. files/s and MB/s are "
             "over the client's whole process; *transfer s* is the time at the sink from the "
             "first request's first byte to the last answer, *1st byte s* the time from the "
             "command's start to that first byte. Ratios are time ratios (above 1 = "
             "bulkup faster).", "",
             "| target | TLS | corpus | client | files/s | MB/s | client CPU s | peak RSS MiB "
             "| vs curl | vs requests | transfer s | vs curl, transfer | 1st byte s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (str(r["target"]), bool(r["tls"]), str(r["corpus"]),
                                         str(r["client"]))):
        lines.append(f"| {r['target']} | {'yes' if r['tls'] else 'no'} | {r['corpus']} | "
                     f"{r['client']} | {float(r['files_s']):,.0f} | {float(r['mb_s']):,.0f} | "
                     f"{float(r['cpu_s']):.2f} | {float(r['peak_rss_mib']):.0f} | "
                     f"{_times(r['vs_curl'], 2)} | {_times(r['vs_requests'], 1)} | "
                     f"{_seconds(r.get('transfer_s'))} | "
                     f"{_times(r.get('vs_curl_transfer'), 2)} | "
                     f"{_seconds(r.get('first_byte_s'))} |")
    return "\n".join(lines) + "\n"


def _times(ratio: object, digits: int) -> str:
    return f"{float(ratio):.{digits}f}x" if ratio else "-"  # type: ignore[arg-type]


def _seconds(value: object) -> str:
    return f"{float(value):.3f}" if value else "-"  # type: ignore[arg-type]


def chart(rows: list[dict[str, object]], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sink = [r for r in rows if r["target"] == "sink"]
    labels = sorted({f"{r['corpus']}{' TLS' if r['tls'] else ''}" for r in sink})
    clients = sorted({str(r["client"]) for r in sink}, key=lambda c: (c != "bulkup", c))
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(clients)
    for i, client in enumerate(clients):
        values = []
        for label in labels:
            match = [r for r in sink if r["client"] == client and
                     f"{r['corpus']}{' TLS' if r['tls'] else ''}" == label]
            values.append(float(match[0]["mb_s"]) if match else 0.0)
        ax.bar([x + i * width for x in range(len(labels))], values, width, label=client)
    ax.set_xticks([x + width * (len(clients) - 1) / 2 for x in range(len(labels))], labels)
    ax.set_ylabel("MB/s (median)")
    ax.set_title("Upload throughput into the nginx sink, by corpus and client")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpora", default="small,large,huge,mixed")
    parser.add_argument("--tls", action="store_true", help="also over TLS")
    parser.add_argument("--no-emulator", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--bench-kit", type=Path,
                        default=HERE.parent.parent / "shared" / "bench-kit")
    parser.add_argument("--clients", default="bulkup,curl,requests",
                        type=lambda text: text.split(","))
    parser.add_argument("--sweep", default=None, metavar="KEY=V1,V2",
                        help="also bulkup with KEY set to each value (config file keys)")
    parser.add_argument("--sink", choices=("nginx", "python"), default="nginx")
    parser.add_argument("--smoke", action="store_true", help="a few files per corpus")
    parser.add_argument("--emulator-roots", type=Path, default=None, metavar="DIR",
                        help="where the emulator's roots go (e.g. /dev/shm: the disk's file "
                             "creation out of the end-to-end figure)")
    args = parser.parse_args()
    compile_bulkup()
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    work.chmod(0o755)  # nginx's workers (not root) keep large bodies in a folder under it
    sink: Sink = (PySink(work / "sink", args.tls) if args.sink == "python"
                  else NginxSink(work / "sink"))
    try:
        corpora = make_corpora(work / "corpora", args.corpora.split(","), args.smoke)
        sink.start()
        runs = measure_sink(corpora, args, sink, work)
        if not args.no_emulator:
            runs += measure_emulator(corpora, args, work)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    machine = {"machine": platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version(), "platform": platform.platform(),
               "date": time.strftime("%Y-%m-%d"), "sink": args.sink,
               "command": " ".join(sys.argv[1:])}
    rows = summarise(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {"machine": machine, "medians": rows, "runs": runs}, indent=2))
    table = markdown(rows, machine)
    (args.out / "results.md").write_text(table)
    chart(rows, args.out / "throughput.png")
    print(table)


def compile_bulkup() -> None:
    """Byte-compile bulkup as pip does on install, so no run pays for compiling it."""
    import bulkup

    subprocess.run([sys.executable, "-m", "compileall", "-q",
                    str(Path(bulkup.__file__).parent)], check=True)


if __name__ == "__main__":
    main()
