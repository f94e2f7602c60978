"""Throughput against the peers and the machine: bulkup beside curl and the in-house script.

One command takes deterministic corpora (generated once into a cache folder and reused by later
invocations), starts an nginx sink (the bench kit's, which reads every body whole before
answering; ``sinks.py``), and runs, interleaved round by round: bulkup with its default
settings, curl with the same packing and parallelism (``curl-peer.py``), and the in-house
``requests`` script (one file per POST). Each run is a child process: wall time, client CPU
seconds (and per GB sent) and peak RSS come from ``wait4``. The sink's access log says how many
POSTs and bytes arrived, which must cover the corpus, and how long the transfer took at the
sink (first request's first byte to last answer: the client's start-up and shutdown left out),
and how long the client took from its start to that first byte. Then bulkup runs against the
emulator (its own process) for the end-to-end figure. Plain HTTP, and TLS with ``--tls``.
Before a corpus's rounds every file of it is read once, untimed, so that the first client of
the first round is not the only one reading from the disk.

Corpora at user scale (the default, issue 16): ``small`` 100,000 x 16 KiB in folders of 1,000,
``large`` 1,000 x 4 MiB, ``huge`` one 4 GiB file, ``mixed`` 2,000 files of 2 KB to 6 MiB. The
``requests`` script runs on a 10,000-file subset of ``small`` (hard links to its first ten
folders: it would take minutes on 100,000), so its ratio is per file; it skips ``huge`` (it
holds the whole body in memory, twice: about 8 GiB). bulkup runs with its defaults, but for
``--max-file-size`` on ``huge`` (the default 2 GiB would refuse a 4 GiB file). ``--quick``
takes the earlier small corpora (10,000 x 16 KiB, 200 x 4 MiB, 1 GiB, the mixed tree) for a
fast look.

Corpora are cached in ``--cache`` (default ``$XDG_CACHE_HOME/bulkup-bench``, else
``~/.cache/bulkup-bench``), one folder per corpus keyed by a hash of its spec, and reused when
its ``MANIFEST.json`` (written last) matches; delete the folder to reclaim the disk (about 13 GB
at user scale).

Writes ``user_scale.json`` (every run, medians, ratios, machine), ``user_scale.md`` (tables) and
``user_scale.png`` (a chart, when matplotlib is installed) into ``--out``; with ``--quick`` or
``--smoke``, ``results.json``, ``results.md`` and ``throughput.png`` as before.

``--sweep KEY=V1,V2`` adds bulkup runs with one setting changed (through a config file), beside
the others, to choose defaults. ``--sink python`` uses ``py_sink.py`` where nginx is missing;
``--smoke`` shrinks every corpus to a few files (the test suite runs it that way; its corpora go
to the run's temporary folder unless ``--cache`` is given). bulkup is byte-compiled first, as a
regular install is: this machine sets PYTHONDONTWRITEBYTECODE, and without the compiled files
every bulkup run would compile its sources again (about 40 ms).

usage: python benchmarks/throughput.py [--rounds 3] [--corpora small,large,huge,mixed] [--tls]
       [--quick | --smoke] [--cache DIR] [--out benchmarks/results]
       [--bench-kit ../shared/bench-kit] [--sweep KEY=V1,V2] [--clients bulkup,curl,requests]
       [--sink nginx|python] [--no-emulator] [--emulator-roots DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
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
from local_servers import bulkup_upload  # noqa: E402
from sinks import NginxSink, PySink, Sink  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES, DEFAULT_CONCURRENCY = 100, 16 * MiB, 8
DEFAULT_MAX_FILE_SIZE = 2 * GiB  # bulkup's default max_file_size
CACHE_VERSION = 1  # bump when the way files are written changes


@dataclass(frozen=True)
class CorpusSpec:
    """What a corpus is: its files' sizes, how they are spread over folders, and how many of
    its first files make the ``requests`` script's subset (None: the whole corpus)."""

    name: str
    sizes: tuple[int, ...]
    per_folder: int | None = None  # files per folder, in order; None: round-robin over 20
    subset: int | None = None

    def folder(self, i: int) -> str:
        return f"d{i // self.per_folder:03d}" if self.per_folder else f"d{i % 20:02d}"

    @property
    def key(self) -> str:
        text = json.dumps(
            [
                CACHE_VERSION,
                self.name,
                self.per_folder,
                self.subset,
                hashlib.sha256(repr(self.sizes).encode()).hexdigest(),
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    files: int
    bytes: int
    per_post: int  # curl's packing: what bulkup's default caps give for these files
    largest: int = 0
    subset: Path | None = None  # the requests script's part of it (hard links)
    subset_files: int = 0
    subset_bytes: int = 0


def corpus_specs(scale: str) -> dict[str, CorpusSpec]:
    """``user`` (issue 16), ``quick`` (the earlier corpora) or ``smoke`` (a few files)."""
    if scale == "smoke":
        return {
            "small": CorpusSpec("small", (16 * 1024,) * 40),
            "large": CorpusSpec("large", (4 * MiB,) * 3),
            "huge": CorpusSpec("huge", (8 * MiB,)),
            "mixed": CorpusSpec("mixed", _mixed_sizes()[:30]),
        }
    if scale == "quick":
        return {
            "small": CorpusSpec("small", (16 * 1024,) * 10_000),
            "large": CorpusSpec("large", (4 * MiB,) * 200),
            "huge": CorpusSpec("huge", (1024 * MiB,)),
            "mixed": CorpusSpec("mixed", _mixed_sizes()),
        }
    return {
        "small": CorpusSpec("small", (16 * 1024,) * 100_000, per_folder=1_000, subset=10_000),
        "large": CorpusSpec("large", (4 * MiB,) * 1_000, per_folder=1_000),
        "huge": CorpusSpec("huge", (4 * GiB,), per_folder=1),
        "mixed": CorpusSpec("mixed", _mixed_sizes()),
    }


def describe(spec: CorpusSpec) -> str:
    """``100,000 x 16 KiB in 100 folders`` and the like."""
    sizes = set(spec.sizes)
    what = (
        f"{len(spec.sizes):,} x {_size(spec.sizes[0])}"
        if len(sizes) == 1
        else f"{len(spec.sizes):,} files of {_size(min(sizes))} to {_size(max(sizes))} "
        f"({sum(spec.sizes) / 1e9:.1f} GB)"
    )
    folders = len({spec.folder(i) for i in range(len(spec.sizes))})
    where = f" in {folders:,} folder{'s' if folders > 1 else ''}"
    return what + where + (f"; requests on the first {spec.subset:,}" if spec.subset else "")


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} B"


def make_corpora(cache: Path, names: list[str], scale: str = "user") -> list[Corpus]:
    """The corpora ``names`` at ``scale``, generated into ``cache`` unless already there."""
    specs = corpus_specs(scale)
    corpora = []
    for name in names:
        spec = specs[name]
        folder = cache / f"{name}-{len(spec.sizes)}-{spec.key}"
        if not _cached(folder, spec):
            _generate(folder, spec)
        subset = folder / "subset" if spec.subset else None
        sizes = spec.sizes[: spec.subset] if spec.subset else spec.sizes
        typical = int(statistics.median(spec.sizes))
        per_post = max(1, min(DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES // max(typical, 1)))
        corpora.append(
            Corpus(
                name,
                folder / "tree",
                len(spec.sizes),
                sum(spec.sizes),
                per_post,
                max(spec.sizes),
                subset,
                len(sizes),
                sum(sizes),
            )
        )
    return corpora


def _cached(folder: Path, spec: CorpusSpec) -> bool:
    """The manifest is written last: present and matching means the tree is complete."""
    try:
        manifest = json.loads((folder / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("key") == spec.key
        and manifest.get("files") == len(spec.sizes)
        and (folder / "tree").is_dir()
    )


def _generate(folder: Path, spec: CorpusSpec) -> None:
    """Real bytes (no sparse files: every byte is on disk and is read), written in blocks of
    up to 4 MiB; the subset is hard links to the first files, so it shares their pages."""
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    need = sum(spec.sizes) + 4096 * len(spec.sizes)
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if need > free - 2 * GiB:
        sys.exit(
            f"corpus {spec.name}: needs about {need / 1e9:.1f} GB, "
            f"{free / 1e9:.1f} GB free under {folder.parent}"
        )
    print(f"generating corpus {spec.name} ({describe(spec)}) in {folder} ...", flush=True)
    tree = folder / "tree"
    block = random.Random(len(spec.sizes)).randbytes(4 * MiB)
    made: set[str] = set()
    for i, size in enumerate(spec.sizes):
        sub = spec.folder(i)
        if sub not in made:
            (tree / sub).mkdir(parents=True, exist_ok=True)
            made.add(sub)
        write_file(tree / sub / f"f{i:06d}.tif", size, block)
    if spec.subset:
        for i in range(spec.subset):
            sub = spec.folder(i)
            (folder / "subset" / sub).mkdir(parents=True, exist_ok=True)
            os.link(tree / sub / f"f{i:06d}.tif", folder / "subset" / sub / f"f{i:06d}.tif")
    (folder / "MANIFEST.json").write_text(
        json.dumps(
            {
                "key": spec.key,
                "name": spec.name,
                "files": len(spec.sizes),
                "bytes": sum(spec.sizes),
                "description": describe(spec),
                "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
            indent=2,
        )
    )
    print(f"  {time.perf_counter() - started:.1f} s", flush=True)


def write_file(path: Path, size: int, block: bytes) -> None:
    """``size`` bytes of ``block`` repeated, in writes of at most ``len(block)``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(block)
        left = size
        while left:
            left -= os.write(fd, view[: min(left, len(block))])
    finally:
        os.close(fd)


def _mixed_sizes() -> tuple[int, ...]:
    rng = random.Random(7)
    return tuple(rng.choice([2_000, 16_000, 120_000, 900_000, 6 * MiB]) for _ in range(2_000))


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {err[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def client_commands(
    corpus: Corpus, url: str, tls: bool, args: argparse.Namespace, sink: Sink, work: Path
) -> dict[str, list[str]]:
    def bulkup(*extra: str) -> list[str]:
        journal = work / f"journal-{time.monotonic_ns()}.journal"  # a first run, every time
        return bulkup_upload(
            corpus.path,
            url,
            journal,
            *(["--ca-bundle", str(sink.ca)] if tls else []),
            *max_file_size(corpus),
            *extra,
            user="bench@example.com",
            company="c|1",
        )

    commands = {
        "bulkup": bulkup(),
        "curl": [
            sys.executable,
            str(args.bench_kit / "curl-peer.py"),
            str(corpus.path),
            url,
            str(corpus.per_post),
            str(DEFAULT_CONCURRENCY),
        ],
        "requests": [
            sys.executable,
            str(HERE / "inhouse_requests.py"),
            str(corpus.subset or corpus.path),
            url,
            "bench@example.com",
            "pw",
            "c|1",
            "insecure" if tls else "verify",
        ],
    }
    commands = {name: cmd for name, cmd in commands.items() if name in args.clients}
    for label, config in sweep_configs(args.sweep, work):
        commands[f"bulkup {label}"] = bulkup("--config", str(config))
    return commands


def max_file_size(corpus: Corpus) -> list[str]:
    """bulkup's default refuses files over 2 GiB; the 4 GiB file needs a higher limit."""
    return (
        ["--max-file-size", str(2 * corpus.largest)]
        if corpus.largest > DEFAULT_MAX_FILE_SIZE
        else []
    )


def skip_requests(corpus: Corpus, round_no: int) -> bool:
    """The requests script builds the whole body in memory (twice the file: 2 GiB of RSS for
    a 1 GiB file): one round of it up to 1 GiB, none beyond."""
    return corpus.name == "huge" and (round_no > 0 or corpus.largest > GiB)


def sweep_configs(sweep: str | None, work: Path) -> list[tuple[str, Path]]:
    """``KEY=V1,V2`` → one config file per value (labels like ``concurrency=4``)."""
    if not sweep:
        return []
    key, _, values = sweep.partition("=")
    configs = []
    for value in values.split(","):
        path = work / f"sweep-{key}-{value}.toml"
        literal = (
            value
            if value.replace(".", "").isdigit() or value in ("true", "false")
            else json.dumps(value)
        )
        path.write_text(f"{key} = {literal}\n")
        configs.append((f"{key}={value}", path))
    return configs


def measure_sink(
    corpora: list[Corpus], args: argparse.Namespace, sink: Sink, work: Path
) -> list[dict[str, object]]:
    env = {**os.environ, "BULKUP_PASSWORD": "pw"}
    runs: list[dict[str, object]] = []
    for tls in [False, True] if args.tls else [False]:
        for corpus in corpora:
            warm(corpus)
            for round_no in range(args.rounds):
                commands = client_commands(corpus, sink.url(tls), tls, args, sink, work)
                for client, cmd in commands.items():
                    if client == "requests" and skip_requests(corpus, round_no):
                        continue
                    files, size = (
                        (corpus.subset_files, corpus.subset_bytes)
                        if client == "requests"
                        else (corpus.files, corpus.bytes)
                    )
                    mark = sink.mark()
                    started = time.time()  # the sink logs epoch times
                    result = run_child(cmd, env)
                    seen = sink.window(mark)
                    assert seen.bytes >= size, f"{client}: the sink got {seen.bytes} B"
                    runs.append(
                        {
                            "target": "sink",
                            "tls": tls,
                            "corpus": corpus.name,
                            "client": client,
                            "round": round_no,
                            "posts": seen.posts,
                            "sink_bytes": seen.bytes,
                            "transfer_s": seen.transfer_s,
                            "first_byte_s": seen.first_at - started,
                            **_rates(result, files, size),
                        }
                    )
                    print(
                        f"{'TLS' if tls else 'plain'} {corpus.name} round {round_no} "
                        f"{client}: {result['wall_s']:.2f} s",
                        flush=True,
                    )
    return runs


def warm(corpus: Corpus) -> None:
    """Read every file once, untimed, so that the first client of the first round does not
    read from the disk alone (at user scale the corpora, about 13 GB, evict one another)."""
    for folder, _, names in os.walk(corpus.path):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as source:
                while source.read(4 * MiB):
                    pass


def measure_emulator(
    corpora: list[Corpus], args: argparse.Namespace, work: Path
) -> list[dict[str, object]]:
    from upload_e2e import start_emulator

    runs: list[dict[str, object]] = []
    roots = args.emulator_roots or work
    for corpus in corpora:
        for round_no in range(args.rounds):
            root = Path(tempfile.mkdtemp(prefix=f"emu-{corpus.name}-{round_no}-", dir=roots))
            proc, url = start_emulator(
                root,
                *(["--max-file-size", str(2 * corpus.largest)] if max_file_size(corpus) else []),
            )
            try:
                cmd = [
                    sys.executable,
                    "-m",
                    "bulkup",
                    "upload",
                    str(corpus.path),
                    "--server",
                    url,
                    "--user",
                    "bench@example.com",
                    "--company-handle",
                    "c|1",
                    "--company-root",
                    "Bench/",
                    "--journal",
                    str(work / f"emu-{time.monotonic_ns()}.journal"),
                    "--log-format",
                    "json",
                    *max_file_size(corpus),
                ]
                result = run_child(cmd, {**os.environ, "BULKUP_PASSWORD": "pw"})
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                shutil.rmtree(root, ignore_errors=True)
            runs.append(
                {
                    "target": "emulator",
                    "tls": False,
                    "corpus": corpus.name,
                    "client": "bulkup",
                    "round": round_no,
                    **_rates(result, corpus.files, corpus.bytes),
                }
            )
            print(f"emulator {corpus.name} round {round_no}: {result['wall_s']:.2f} s", flush=True)
    return runs


def _rates(result: dict[str, float], files: int, size: int) -> dict[str, float]:
    return {
        **result,
        "files": files,
        "bytes": size,
        "files_s": files / result["wall_s"],
        "mb_s": size / 1e6 / result["wall_s"],
        "cpu_s_per_gb": result["cpu_s"] / (size / 1e9),
        "s_per_file": result["wall_s"] / files,
    }


def summarise(runs: list[dict[str, object]]) -> list[dict[str, object]]:
    groups: dict[tuple[object, ...], list[dict[str, object]]] = {}
    for run in runs:
        key = (run["target"], run["tls"], run["corpus"], run["client"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (target, tls, corpus, client), items in groups.items():
        keys = [
            "files",
            "bytes",
            "wall_s",
            "files_s",
            "mb_s",
            "cpu_s",
            "cpu_s_per_gb",
            "peak_rss_mib",
            "s_per_file",
        ]
        if all("transfer_s" in i for i in items):
            keys += ["transfer_s", "first_byte_s"]
        med = {
            k: statistics.median(float(i[k]) for i in items)  # type: ignore[arg-type]
            for k in keys
        }
        rows.append(
            {
                "target": target,
                "tls": tls,
                "corpus": corpus,
                "client": client,
                "runs": len(items),
                **med,
            }
        )
    for row in rows:
        curl = _peer(rows, row, "curl")
        row["vs_curl"] = _ratio(curl, row, "wall_s")
        row["vs_curl_transfer"] = _ratio(curl, row, "transfer_s")
        inhouse = _peer(rows, row, "requests")
        # per file: the requests script runs on a subset of the largest corpus
        row["vs_requests"] = _ratio(inhouse, row, "s_per_file") if row["target"] == "sink" else None
    return rows


def _peer(
    rows: list[dict[str, object]], row: dict[str, object], client: str
) -> dict[str, object] | None:
    return next(
        (
            r
            for r in rows
            if r["client"] == client
            and r["target"] == row["target"]
            and r["tls"] == row["tls"]
            and r["corpus"] == row["corpus"]
        ),
        None,
    )


def _ratio(peer: dict[str, object] | None, row: dict[str, object], key: str) -> float | None:
    """``peer``'s time over ``row``'s: above 1, ``row`` is faster."""
    if peer is None or not row.get(key) or key not in peer:
        return None
    return float(peer[key]) / float(row[key])  # type: ignore[arg-type]


def markdown(rows: list[dict[str, object]], machine: dict[str, object]) -> str:
    lines = [
        f"Machine: {machine['machine']}, {machine['cores']} cores, Python "
        f"{machine['python']}, {machine['date']}; sink: {machine.get('sink', 'nginx')}; "
        f"commit {machine.get('commit', '?')}; `throughput.py {machine.get('command', '')}`;"
        " medians. files/s and MB/s are over the client's whole process (*wall s*); "
        "*CPU s/GB* is the client's CPU seconds (user + system, children included) per GB "
        "it sent; *transfer s* is the time at the sink from the first request's first "
        "byte to the last answer, *1st byte s* the time from the command's start to that "
        "first byte. Ratios are time ratios (above 1 = bulkup faster); *vs requests* is "
        "per file (the requests script may run on a subset: see *files*).",
        "",
    ]
    for name, text in dict(machine.get("corpora", {})).items():  # type: ignore[call-overload]
        lines.append(f"- `{name}`: {text}")
    lines += [
        "",
        "| target | TLS | corpus | client | files | wall s | files/s | MB/s "
        "| client CPU s | CPU s/GB | peak RSS MiB | vs curl | vs requests | transfer s "
        "| vs curl, transfer | 1st byte s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=_order):
        lines.append(
            f"| {r['target']} | {'yes' if r['tls'] else 'no'} | {r['corpus']} | "
            f"{r['client']} | {int(float(r['files'])):,} | {float(r['wall_s']):.2f} | "
            f"{float(r['files_s']):,.0f} | {float(r['mb_s']):,.0f} | "
            f"{float(r['cpu_s']):.2f} | {float(r['cpu_s_per_gb']):.2f} | "
            f"{float(r['peak_rss_mib']):.0f} | "
            f"{_times(r['vs_curl'], 2)} | {_times(r['vs_requests'], 1)} | "
            f"{_seconds(r.get('transfer_s'))} | "
            f"{_times(r.get('vs_curl_transfer'), 2)} | "
            f"{_seconds(r.get('first_byte_s'))} |"
        )
    return "\n".join(lines + ["", first_byte_table(rows)]) + "\n"


def first_byte_table(rows: list[dict[str, object]]) -> str:
    """Start-up (issue 16 item 5): each client's time to its first byte at the sink, bulkup's
    beside curl's, by corpus."""
    sink = [r for r in rows if r["target"] == "sink" and r.get("first_byte_s")]
    clients = sorted({str(r["client"]) for r in sink}, key=lambda c: (c != "bulkup", c))
    lines = [
        "Time from the command's start to the first byte at the sink, s (medians):",
        "",
        "| TLS | corpus | " + " | ".join(clients) + " | bulkup - curl |",
        "|---|---|" + "---|" * len(clients) + "---|",
    ]
    for tls, corpus in sorted({(bool(r["tls"]), str(r["corpus"])) for r in sink}):
        got = {
            str(r["client"]): float(r["first_byte_s"])  # type: ignore[arg-type]
            for r in sink
            if r["tls"] == tls and r["corpus"] == corpus
        }
        gap = f"{got['bulkup'] - got['curl']:+.3f}" if "bulkup" in got and "curl" in got else "-"
        lines.append(
            f"| {'yes' if tls else 'no'} | {corpus} | "
            + " | ".join(f"{got[c]:.3f}" if c in got else "-" for c in clients)
            + f" | {gap} |"
        )
    return "\n".join(lines) + "\n"


def _order(r: dict[str, object]) -> tuple[object, ...]:
    return (
        str(r["target"]),
        bool(r["tls"]),
        str(r["corpus"]),
        (str(r["client"]) != "bulkup", str(r["client"])),
    )


def _times(ratio: object, digits: int) -> str:
    return f"{float(ratio):.{digits}f}x" if ratio else "-"  # type: ignore[arg-type]


def _seconds(value: object) -> str:
    return f"{float(value):.3f}" if value else "-"  # type: ignore[arg-type]


def chart(rows: list[dict[str, object]], path: Path, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sink = [r for r in rows if r["target"] == "sink"]
    if not sink:
        return
    labels = sorted({f"{r['corpus']}{' TLS' if r['tls'] else ''}" for r in sink})
    clients = sorted({str(r["client"]) for r in sink}, key=lambda c: (c != "bulkup", c))
    fig, axes = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    width = 0.8 / len(clients)
    for ax, key, ylabel in (
        (axes[0], "mb_s", "MB/s, whole process (median)"),
        (axes[1], "cpu_s_per_gb", "client CPU s per GB (median)"),
    ):
        for i, client in enumerate(clients):
            values = []
            for label in labels:
                match = [
                    r
                    for r in sink
                    if r["client"] == client
                    and f"{r['corpus']}{' TLS' if r['tls'] else ''}" == label
                ]
                values.append(float(match[0][key]) if match else 0.0)  # type: ignore[arg-type]
            ax.bar([x + i * width for x in range(len(labels))], values, width, label=client)
        ax.set_ylabel(ylabel)
    axes[1].set_yscale("log")  # the requests script's small files are 10x the others
    axes[1].set_xticks([x + width * (len(clients) - 1) / 2 for x in range(len(labels))], labels)
    axes[0].set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpora", default="small,large,huge,mixed")
    parser.add_argument("--tls", action="store_true", help="also over TLS")
    parser.add_argument("--no-emulator", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--bench-kit", type=Path, default=HERE.parent.parent / "shared" / "bench-kit"
    )
    parser.add_argument(
        "--clients", default="bulkup,curl,requests", type=lambda text: text.split(",")
    )
    parser.add_argument(
        "--sweep",
        default=None,
        metavar="KEY=V1,V2",
        help="also bulkup with KEY set to each value (config file keys)",
    )
    parser.add_argument("--sink", choices=("nginx", "python"), default="nginx")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--quick",
        action="store_true",
        help="the earlier small corpora (10,000 x 16 KiB, 200 x 4 MiB, 1 GiB)",
    )
    scale.add_argument("--smoke", action="store_true", help="a few files per corpus")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="where corpora are generated once and kept (default "
        "~/.cache/bulkup-bench; with --smoke, the run's temporary folder)",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="COMMIT",
        help="measure bulkup as of COMMIT (git archive of bulkup/ on "
        "PYTHONPATH) instead of the working tree",
    )
    parser.add_argument(
        "--emulator-roots",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the emulator's roots go (e.g. /dev/shm: the disk's file "
        "creation out of the end-to-end figure)",
    )
    args = parser.parse_args()
    for name in ("out", "bench_kit", "cache", "emulator_roots"):  # --at changes the folder
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).resolve())
    scale_name = "smoke" if args.smoke else "quick" if args.quick else "user"
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    work.chmod(0o755)  # nginx's workers (not root) keep large bodies in a folder under it
    cache = args.cache or (work / "corpora" if args.smoke else default_cache())
    sink: Sink = (
        PySink(work / "sink", args.tls) if args.sink == "python" else NginxSink(work / "sink")
    )
    try:
        commit = use_bulkup_at(args.at, work)
        corpora = make_corpora(cache, args.corpora.split(","), scale_name)
        sink.start()
        runs = measure_sink(corpora, args, sink, work)
        if not args.no_emulator:
            runs += measure_emulator(corpora, args, work)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    specs = corpus_specs(scale_name)
    machine = {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        "sink": args.sink,
        "commit": commit,
        "scale": scale_name,
        "command": " ".join(sys.argv[1:]),
        "corpora": {c.name: describe(specs[c.name]) for c in corpora},
    }
    rows = summarise(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    stem, png = (
        ("user_scale", "user_scale.png") if scale_name == "user" else ("results", "throughput.png")
    )
    (args.out / f"{stem}.json").write_text(
        json.dumps({"machine": machine, "medians": rows, "runs": runs}, indent=2)
    )
    table = markdown(rows, machine)
    (args.out / f"{stem}.md").write_text(table)
    chart(
        rows,
        args.out / png,
        "Upload into the nginx sink, by corpus and client"
        + (" (user scale)" if scale_name == "user" else f" ({scale_name} corpora)"),
    )
    print(table)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bulkup-bench"


def use_bulkup_at(commit: str | None, work: Path) -> str:
    """Make every child's ``python -m bulkup`` run bulkup as of ``commit`` (a ``git archive`` of
    bulkup/ first on PYTHONPATH), or the working tree when None; byte-compile it, as pip does on
    install, so no run pays for compiling it. Returns what is measured: the commit, with
    "+ uncommitted changes" when the working tree's bulkup/ differs from HEAD."""
    repo = HERE.parent
    if commit:
        full = _git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}")
        where = work / "bulkup-at"
        where.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", full, "bulkup"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(where), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        package = where / "bulkup"
        described = full[:10]
        os.chdir(work)  # ``python -m`` puts the current folder first: not the checkout's bulkup
        found = subprocess.run(
            [sys.executable, "-c", "import bulkup; print(bulkup.__file__)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert Path(found).parent == package, f"bulkup imported from {found}, not {package}"
    else:
        spec = importlib.util.find_spec("bulkup")  # found, not imported
        assert spec is not None and spec.origin, "bulkup is not installed"
        package = Path(spec.origin).parent
        head = _git(repo, "rev-parse", "HEAD")[:10]
        dirty = _git(repo, "status", "--porcelain", "--", "bulkup")
        described = head + (" + uncommitted changes in bulkup/" if dirty else "")
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)], capture_output=True, text=True
    )
    if compiled.returncode:  # a module that does not compile fails its runs, not this step
        print(f"warning: bulkup did not byte-compile:\n{compiled.stdout[-1000:]}", flush=True)
    return described


def _git(repo: Path, *argv: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *argv], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


if __name__ == "__main__":
    main()
