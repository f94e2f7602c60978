"""A shaped link: bulkup and curl over a 200 Mbit/s link to a server 50 ms away.

The script runs in a network namespace of its own (as root it re-executes itself under
``unshare -n``; otherwise, or without ``tc``/``unshare``/``ip``, it says why and exits 0),
brings ``lo`` up and shapes it with a token bucket filter (``tc qdisc ... tbf``; this kernel
has no netem, so there is no propagation delay: the server's answer delay stands in for it).
Everything that crosses the link crosses ``lo`` in that namespace, so ``lo``'s byte counter is
the link's: it is sampled every 50 ms while each client runs.

Scenarios (``--scenarios``):

- ``sink``: the bench kit's nginx sink (``sinks.py``) answering each POST ``--delay-ms`` after
  its body is in (nginx echo's ``echo_sleep``); clients: bulkup with its defaults, bulkup at
  fixed concurrencies, and curl-peer (8 in parallel, bulkup's default packing).
- ``emulator``: ``bulkup serve --response-delay-ms`` (a fresh one per run); bulkup only
  (curl-peer sends no credentials).
- ``pushback``: the emulator with ``--max-inflight 4`` too: bulkup with its defaults against
  bulkup ``--concurrency 4`` (no file should fail).

Rounds are interleaved (every client once per round). Per client, the medians of the rounds:
link utilisation (bytes that crossed the link while it was busy, over the link's capacity in
that time: from the first to the last 50 ms sample in which more than 4 KiB moved), goodput
(the corpus's file bytes over that same capacity: what was not headers, answers, ACKs or
bodies sent again), files/s over the client's whole process (start-up and shutdown included),
failed files and retries (bulkup's report; for curl, files of POSTs the sink did not answer
200). A PNG plots the link's
throughput over time per client (the median round), one panel per scenario and corpus.

Client argument lists come from ``BULKUP_VARIANTS`` (and ``--client LABEL=ARGS``), so options
still being built (``--concurrency auto``, ``--bwlimit``) can be added without editing this file.

usage: python benchmarks/wan.py [--quick] [--rounds 3] [--rate-mbit 200] [--delay-ms 50]
       [--scenarios sink,pushback] [--corpora large,small] [--client 'LABEL=--opt value']
       [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from local_servers import bulkup_upload, start_emulator  # noqa: E402
from sinks import ANSWER, ECHO_MODULE, NGINX_CONF, NginxSink  # noqa: E402
from throughput import DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES  # noqa: E402
from upload_e2e import cached_corpus  # noqa: E402

INSIDE = "BULKUP_WAN_NAMESPACE"
KiB, MiB = 1024, 1024 * 1024
CORPORA = {"large": (1_000, MiB), "small": (20_000, 16 * KiB)}
QUICK_CORPORA = {"large": (100, MiB), "small": (2_000, 16 * KiB)}
# label -> bulkup's extra arguments; --client LABEL=ARGS adds more.
BULKUP_VARIANTS: dict[str, list[str]] = {
    "bulkup": [],
    "bulkup -c 4": ["--concurrency", "4"],
    "bulkup -c 16": ["--concurrency", "16"],
}
CURL_PARALLEL = 8
PUSHBACK_LIMIT = 4
PUSHBACK_VARIANTS = {"bulkup": [], "bulkup -c 4": ["--concurrency", str(PUSHBACK_LIMIT)]}
SAMPLE_S = 0.05
USER, PASSWORD, COMPANY = "bench@example.com", "pw", "c|1"


# --- the namespace and the link ---------------------------------------------------------------


def enter_namespace() -> None:
    """Re-execute under ``unshare -n`` as root; otherwise say why not and exit 0."""
    missing = [tool for tool in ("unshare", "tc", "ip") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        why = f"missing {', '.join(missing)}" if missing else "needs root (unshare -n, tc)"
        print(f"wan.py: skipped: {why}")
        sys.exit(0)
    env = {**os.environ, INSIDE: "1"}
    os.execvpe("unshare", ["unshare", "-n", sys.executable, __file__, *sys.argv[1:]], env)


def shape_link(rate_mbit: float, queue_ms: float) -> str:
    """``lo`` up, with a token bucket of ``rate_mbit``; returns the qdisc as tc shows it."""
    burst = max(128 * KiB, int(rate_mbit * 1e6 / 8 * 0.005))  # 5 ms of the rate, >= 2 GSO packets
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(
        [
            "tc",
            "qdisc",
            "replace",
            "dev",
            "lo",
            "root",
            "tbf",
            "rate",
            f"{rate_mbit}mbit",
            "burst",
            str(burst),
            "latency",
            f"{queue_ms}ms",
        ],
        check=True,
    )
    return subprocess.run(
        ["tc", "qdisc", "show", "dev", "lo"], check=True, capture_output=True, text=True
    ).stdout.strip()


def lo_bytes() -> int:
    """Bytes received on this namespace's ``lo`` (/proc/net/dev follows the namespace; /sys
    would show the host's)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            return int(counters.split()[0])
    raise RuntimeError("no lo in /proc/net/dev")


class Sampler:
    """``lo``'s byte counter every ``SAMPLE_S`` seconds, in a thread, while a client runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - start, lo_bytes()))
            if self._stop.wait(SAMPLE_S):
                self.samples.append((time.monotonic() - start, lo_bytes()))
                return


def busy_window(samples: list[tuple[float, int]]) -> tuple[float, float, int]:
    """(first moving sample's start, last moving sample's end, bytes between): the link's busy
    time, leaving out the client's start-up and shutdown."""
    moving = [i for i in range(1, len(samples)) if samples[i][1] - samples[i - 1][1] > 4 * KiB]
    if not moving:
        return 0.0, 0.0, 0
    first, last = moving[0] - 1, moving[-1]
    return samples[first][0], samples[last][0], samples[last][1] - samples[first][1]


# --- servers ----------------------------------------------------------------------------------


class DelayedSink(NginxSink):
    """The bench kit's nginx sink, answering each POST ``delay_ms`` after its body is in."""

    def __init__(self, where: Path, delay_ms: float) -> None:
        super().__init__(where)
        self.delay_ms = delay_ms

    def start(self) -> None:
        if not Path(ECHO_MODULE).exists():
            sys.exit("the nginx sink needs: apt-get install -y nginx-light libnginx-mod-http-echo")
        for sub in ("logs", "body", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._make_certificate()
        sleep = f"echo_read_request_body; echo_sleep {self.delay_ms / 1000:.3f};"
        conf = NGINX_CONF.replace("echo_read_request_body;", sleep)
        (self.dir / "nginx.conf").write_text(
            conf.format(
                module=ECHO_MODULE,
                dir=self.dir,
                port=self.port,
                tls_port=self.tls_port,
                answer=ANSWER,
            )
        )
        subprocess.run(
            ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")], check=True
        )


def emulator_args(delay_ms: float, max_inflight: int) -> list[str]:
    extra = [
        "--response-delay-ms",
        str(delay_ms),
        "--user",
        f"{USER}:{PASSWORD}",
        "--company",
        f"Bench:{COMPANY}",
    ]
    return extra + (["--max-inflight", str(max_inflight)] if max_inflight else [])


# --- corpora and clients ----------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    files: int
    size: int

    @property
    def bytes(self) -> int:
        return self.files * self.size

    @property
    def per_post(self) -> int:
        """bulkup's default packing for these files, which curl-peer is given too."""
        return max(1, min(DEFAULT_FILES_PER_POST, DEFAULT_POST_BYTES // self.size))


def corpora(cache: Path, names: list[str], quick: bool) -> list[Corpus]:
    """Generated once into ``cache`` (``upload_e2e.cached_corpus``), reused afterwards."""
    table = QUICK_CORPORA if quick else CORPORA
    found = []
    for name in names:
        count, size = table[name]
        tree = cached_corpus(cache, f"wan-{name}", count, size)
        found.append(Corpus(name, tree, count, size))
    return found


@dataclass(frozen=True)
class Bench:
    """What every run shares."""

    work: Path
    rate_mbit: float
    delay_ms: float
    rounds: int
    bench_kit: Path

    @property
    def report(self) -> Path:
        return self.work / "report.json"


@dataclass
class Client:
    label: str
    kind: str  # "bulkup" or "curl"
    extra: list[str] = field(default_factory=list)

    def command(self, corpus: Corpus, url: str, bench: Bench) -> list[str]:
        if self.kind == "curl":
            return [
                sys.executable,
                str(bench.bench_kit / "curl-peer.py"),
                str(corpus.path),
                url,
                str(corpus.per_post),
                str(CURL_PARALLEL),
            ]
        stamp = time.monotonic_ns()  # a fresh journal: every run is a first upload
        return bulkup_upload(
            corpus.path,
            url,
            bench.work / f"j-{stamp}.journal",
            "--report",
            str(bench.report),
            *self.extra,
            user=USER,
            company=COMPANY,
        )


def clients_for(
    scenario: str, wanted: list[str] | None, added: dict[str, list[str]]
) -> list[Client]:
    """The clients of a scenario, from the tables (and ``--client``), maybe filtered."""
    if scenario == "pushback":
        return [Client(label, "bulkup", extra) for label, extra in PUSHBACK_VARIANTS.items()]
    table = {**BULKUP_VARIANTS, **added}
    chosen = [Client(label, "bulkup", extra) for label, extra in table.items()]
    if scenario == "sink":
        chosen.append(Client(f"curl x{CURL_PARALLEL}", "curl"))
    return [c for c in chosen if wanted is None or c.label in wanted]


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    corpus: str
    client: str
    round: int
    exit_code: int
    wall_s: float
    files_s: float
    utilisation: float
    goodput: float
    busy_s: float
    link_bytes: int
    failed: int
    retries: int
    series: list[tuple[float, int]] = field(repr=False)


def run_client(
    client: Client, corpus: Corpus, url: str, bench: Bench
) -> tuple[int, float, list[tuple[float, int]], dict[str, int]]:
    """Run one client; its exit code, wall time, link samples and bulkup's report counts."""
    env = {**os.environ, "BULKUP_PASSWORD": PASSWORD}
    report = bench.report
    report.unlink(missing_ok=True)
    with Sampler() as sampler:
        start = time.perf_counter()
        proc = subprocess.Popen(
            client.command(corpus, url, bench),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        code = proc.wait()
        wall = time.perf_counter() - start
    counts = {"failed": -1, "retries": 0}
    if client.kind == "bulkup" and report.exists():
        data = json.loads(report.read_text())
        counts = {"failed": int(data["files_failed"]), "retries": int(data["retries"])}
    return code, wall, sampler.samples, counts


def measure(
    scenario: str,
    client: Client,
    corpus: Corpus,
    round_no: int,
    url: str,
    bench: Bench,
    sink: NginxSink | None,
) -> Run:
    mark = sink.mark() if sink else 0
    code, wall, samples, counts = run_client(client, corpus, url, bench)
    if client.kind == "curl" and sink is not None:
        answered = sink.window(mark).posts
        posts = -(-corpus.files // corpus.per_post)
        counts["failed"] = min(corpus.files, max(0, posts - answered) * corpus.per_post)
    first, last, moved = busy_window(samples)
    busy = last - first
    capacity = bench.rate_mbit * 1e6 / 8 * busy
    utilisation = moved / capacity if busy else 0.0
    goodput = corpus.bytes / capacity if busy else 0.0
    failed = counts["failed"] if counts["failed"] >= 0 else corpus.files
    return Run(
        scenario,
        corpus.name,
        client.label,
        round_no,
        code,
        wall,
        (corpus.files - failed) / wall,
        utilisation,
        goodput,
        busy,
        moved,
        failed,
        counts["retries"],
        samples,
    )


def run_scenario(
    scenario: str, clients: list[Client], bench: Bench, found: list[Corpus]
) -> list[Run]:
    """Every corpus, round after round, each client once per round."""
    runs: list[Run] = []
    sink = DelayedSink(bench.work / "sink", bench.delay_ms) if scenario == "sink" else None
    try:
        if sink:
            sink.start()
        for corpus in found:
            for round_no in range(bench.rounds):
                for client in clients:
                    runs.append(one_run(scenario, client, corpus, round_no, bench, sink))
                    print(describe(runs[-1]), flush=True)
    finally:
        if sink:
            sink.stop()
    return runs


def one_run(
    scenario: str,
    client: Client,
    corpus: Corpus,
    round_no: int,
    bench: Bench,
    sink: NginxSink | None,
) -> Run:
    """One client once: into the sink, or into a fresh emulator."""
    if sink is not None:
        return measure(scenario, client, corpus, round_no, sink.url(False), bench, sink)
    root = Path(tempfile.mkdtemp(prefix="emu-", dir=bench.work))
    limit = PUSHBACK_LIMIT if scenario == "pushback" else 0
    proc, url = start_emulator(root, *emulator_args(bench.delay_ms, limit))
    try:
        return measure(scenario, client, corpus, round_no, url, bench, None)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def describe(run: Run) -> str:
    return (
        f"  {run.scenario:8} {run.corpus:5} round {run.round}  {run.client:14} "
        f"{run.wall_s:7.2f} s  {run.files_s:8.1f} files/s  link {run.utilisation:6.1%}  "
        f"goodput {run.goodput:6.1%}  "
        f"failed {run.failed}  retries {run.retries}  exit {run.exit_code}"
    )


# --- medians, table, chart --------------------------------------------------------------------


def medians(runs: list[Run]) -> list[dict[str, object]]:
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.corpus, run.client), []).append(run)
    rows = []
    for (scenario, corpus, client), items in groups.items():
        rows.append(
            {
                "scenario": scenario,
                "corpus": corpus,
                "client": client,
                "rounds": len(items),
                **{
                    key: statistics.median(getattr(r, key) for r in items)
                    for key in (
                        "utilisation",
                        "goodput",
                        "files_s",
                        "wall_s",
                        "busy_s",
                        "failed",
                        "retries",
                    )
                },
            }
        )
    return rows


def markdown(rows: list[dict[str, object]], header: str) -> str:
    lines = [
        header,
        "",
        "| scenario | corpus | client | link utilisation | goodput | files/s | wall s "
        "| busy s | failed files | retries |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['corpus']} | {r['client']} | "
            f"{float(r['utilisation']):.0%} | {float(r['goodput']):.0%} | "  # type: ignore[arg-type]
            f"{float(r['files_s']):,.0f} | "  # type: ignore[arg-type]
            f"{float(r['wall_s']):.2f} | {float(r['busy_s']):.2f} | "  # type: ignore[arg-type]
            f"{r['failed']:g} | {r['retries']:g} |"
        )
    return "\n".join(lines) + "\n"


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.wall_s)
    return ordered[len(ordered) // 2]


def chart(runs: list[Run], rate_mbit: float, path: Path, title: str) -> None:
    """The link's throughput over time (250 ms bins), per client, one panel per scenario and
    corpus."""
    try:
        import matplotlib
    except ImportError:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r.scenario, r.corpus) for r in runs))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (scenario, corpus) in zip(axes[:, 0], panels, strict=True):
        here = [r for r in runs if (r.scenario, r.corpus) == (scenario, corpus)]
        for client in dict.fromkeys(r.client for r in here):
            times, mbit = binned(median_run([r for r in here if r.client == client]).series)
            ax.plot(times, mbit, label=client, linewidth=1.2)
        ax.axhline(rate_mbit, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"{scenario}: {corpus} corpus", fontsize=10)
        ax.set_ylabel("Mbit/s on the link")
        ax.set_ylim(0, rate_mbit * 1.15)
        ax.legend(fontsize=8, loc="lower right")
    axes[-1, 0].set_xlabel("seconds since the client started (median round)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def binned(
    samples: list[tuple[float, int]], width: float = 0.25
) -> tuple[list[float], list[float]]:
    """(bin end, Mbit/s in the bin) from cumulative byte samples."""
    times, mbit = [], []
    start = 0
    for i in range(1, len(samples)):
        if samples[i][0] - samples[start][0] >= width or i == len(samples) - 1:
            span = samples[i][0] - samples[start][0]
            times.append(samples[i][0])
            mbit.append((samples[i][1] - samples[start][1]) * 8 / 1e6 / span if span else 0.0)
            start = i
    return times, mbit


# --- main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 x 1 MiB and 2,000 x 16 KiB, one round (a fast look)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument("--rate-mbit", type=float, default=200.0, help="link rate (200)")
    parser.add_argument(
        "--queue-ms", type=float, default=25.0, help="tbf's queue, in ms of the rate (25)"
    )
    parser.add_argument(
        "--delay-ms", type=float, default=50.0, help="the server's delay before each answer (50)"
    )
    parser.add_argument(
        "--scenarios",
        default="sink,pushback",
        help="of sink, emulator, pushback (default sink,pushback)",
    )
    parser.add_argument("--corpora", default="large,small", help="of large, small")
    parser.add_argument(
        "--clients",
        default=None,
        type=lambda t: t.split(","),
        help="only these client labels (sink and emulator scenarios)",
    )
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="one more bulkup variant, e.g. 'auto=--concurrency auto'",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bulkup-wan",
        help="where the corpora are generated and kept",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--bench-kit", type=Path, default=HERE.parent.parent / "shared" / "bench-kit"
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.client = dict(_variant(text) for text in args.client)
    return args


def _variant(text: str) -> tuple[str, list[str]]:
    label, sep, rest = text.partition("=")
    if not sep:
        sys.exit(f"--client expects LABEL=ARGS, got {text!r}")
    return f"bulkup {label}", shlex.split(rest)


def main() -> None:
    args = parse_args()
    if os.environ.get(INSIDE) != "1":
        enter_namespace()
    qdisc = shape_link(args.rate_mbit, args.queue_ms)
    print(f"link: {qdisc}", flush=True)
    compile_bulkup()
    args.cache.mkdir(parents=True, exist_ok=True)
    found = corpora(args.cache, args.corpora.split(","), args.quick)
    work = Path(tempfile.mkdtemp(prefix="bench-wan-"))
    work.chmod(0o755)  # nginx's workers keep request bodies in a folder under it
    bench = Bench(work, args.rate_mbit, args.delay_ms, args.rounds, args.bench_kit)
    try:
        runs = [
            run
            for scenario in args.scenarios.split(",")
            for run in run_scenario(
                scenario, clients_for(scenario, args.clients, args.client), bench, found
            )
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs, args, qdisc)


def compile_bulkup() -> None:
    """Byte-compile bulkup as an install does (this machine sets PYTHONDONTWRITEBYTECODE)."""
    import bulkup

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(bulkup.__file__).parent)], check=True
    )


def report(runs: list[Run], args: argparse.Namespace, qdisc: str) -> None:
    stem = "wan-quick" if args.quick else "wan"
    header = (
        f"`wan.py {' '.join(sys.argv[1:])}` on {platform.machine()}, {os.cpu_count()} "
        f"cores, {time.strftime('%Y-%m-%d')}; link `{qdisc}`, server delay "
        f"{args.delay_ms:g} ms; medians of {args.rounds} interleaved round(s)."
    )
    rows = medians(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {
                "header": header,
                "medians": rows,
                "runs": [{k: v for k, v in asdict(r).items() if k != "series"} for r in runs],
            },
            indent=2,
        )
    )
    table = markdown(rows, header)
    (args.out / f"{stem}.md").write_text(table)
    chart(
        runs,
        args.rate_mbit,
        args.out / f"{stem}.png",
        f"{args.rate_mbit:g} Mbit/s link (tbf), server answers after {args.delay_ms:g} ms",
    )
    print(table)


if __name__ == "__main__":
    main()
