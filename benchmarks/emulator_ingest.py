"""How fast the emulator ingests, beside the naive aiohttp server, in one invocation.

Both servers run as their own processes and are fed by curl (C), so the client is not what is
measured: 10,000 files of 16 KiB in POSTs of 50 files, 8 POSTs in flight, then one 1 GiB file.
Rounds interleave the servers (emulator, naive, emulator, naive, ...); the report gives medians,
the ratio emulator/naive, and each server's peak RSS (VmHWM). The emulator's answers are checked:
every file is listed with the right size in /_emulator/jobs.

Between rounds each server's files are emptied (truncated), not deleted; everything is deleted
at the end. On an ext4 without a journal (this machine's root) a freed inode is skipped for a
minute or more by the inode allocator (ext4 ``find_inode_bit`` -> ``recently_deleted``), so
deleting a round's 10,000 files made every file creation of the next round scan past them:
~0.3-0.5 ms per ``open(O_CREAT)``, charged to whichever server ran next, which buried both
servers' own cost per file. Truncating drops the data and its page cache (no writeback) and
keeps the inodes. Leave a couple of minutes between invocations for the same reason.

usage: python benchmarks/emulator_ingest.py [--rounds 3] [--files 10000] [--big-mib 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from local_servers import free_ports, start_emulator

HERE = Path(__file__).resolve().parent
NS = "http://www.scene7.com/IpsApi/xsd/2014-04-03"
AUTH = (
    f'<authHeader xmlns="{NS}"><user>bench@example.com</user><password>pw</password></authHeader>'
)
OPTIONS = (
    "<uploadParams><overwrite>true</overwrite><readyForPublish>false</readyForPublish>"
    "<createMask>false</createMask><emailSetting>None</emailSetting></uploadParams>"
)


def make_corpus(where: Path, count: int, size: int, big_mib: int) -> tuple[Path, Path]:
    small = where / "small"
    small.mkdir(parents=True)
    rng = random.Random(1)
    for i in range(count):
        (small / f"f{i:06d}.jpg").write_bytes(rng.randbytes(size))
    big = where / "big.tif"
    with big.open("wb") as out:
        block = rng.randbytes(1024 * 1024)
        for _ in range(big_mib):
            out.write(block)
    return small, big


def start(kind: str, root: Path) -> tuple[subprocess.Popen[str], str]:
    if kind == "emulator":
        return start_emulator(root)
    port = free_ports(1)[0]
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "naive_server.py"), "--port", str(port), "--root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/scene7/UploadFile"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} did not start")


def peak_rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def curl_post(url: str, params: str, files: list[tuple[Path, str]] = ()) -> str:
    args = [
        "curl",
        "-sS",
        "-H",
        "Expect:",
        "--form-string",
        f"auth={AUTH}",
        "--form-string",
        f"uploadParams={params}",
    ]
    for i, (path, name) in enumerate(files, 1):
        args += ["-F", f"file{i}=@{path};filename={name}"]
    return subprocess.run(args + [url], check=True, capture_output=True, text=True).stdout


def open_job(url: str) -> str:
    body = curl_post(
        url,
        f'<uploadPostParam xmlns="{NS}"><companyHandle>c|1</companyHandle>'
        f"<jobName>bench</jobName>{OPTIONS}</uploadPostParam>",
    )
    return re.search(r"<jobHandle>([^<]+)</jobHandle>", body).group(1)


def follow_up(handle: str) -> str:
    return (
        f'<uploadPostParam xmlns="{NS}"><companyHandle>c|1</companyHandle>'
        f"<jobHandle>{handle}</jobHandle></uploadPostParam>"
    )


def upload_small(url: str, handle: str, files: list[Path], per_post: int, parallel: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as cfg:
        for i in range(0, len(files), per_post):
            if i:
                cfg.write("next\n")
            cfg.write(
                f'url = "{url}"\noutput = "/dev/null"\nheader = "Expect:"\nsilent\n'
                f"show-error\nfail\n"
            )
            cfg.write(f'form-string = "auth={AUTH.replace(chr(34), chr(92) + chr(34))}"\n')
            params = follow_up(handle).replace('"', '\\"')
            cfg.write(f'form-string = "uploadParams={params}"\n')
            for j, path in enumerate(files[i : i + per_post], 1):
                cfg.write(f'form = "file{j}=@{path};filename=Bench/small/{path.name}"\n')
    start_s = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "--no-progress-meter",
            "--parallel",
            "--parallel-max",
            str(parallel),
            "-K",
            cfg.name,
        ],
        check=True,
    )
    elapsed = time.perf_counter() - start_s
    os.unlink(cfg.name)
    return elapsed


def upload_big(url: str, handle: str, big: Path) -> float:
    start_s = time.perf_counter()
    curl_post(url, follow_up(handle), [(big, "Bench/big/big.tif")])
    return time.perf_counter() - start_s


def check_emulator(url: str, expected_files: int, big_size: int) -> None:
    jobs_url = url.replace("/scene7/UploadFile", "/_emulator/jobs")
    with urllib.request.urlopen(jobs_url) as answer:
        jobs = json.load(answer)["jobs"]
    files = [f for job in jobs for f in job["files"]]
    ok = [f for f in files if f["outcome"] in ("UploadSuccess", "FileUpdated")]
    sizes = sorted({f["size"] for f in ok})
    assert len(ok) == expected_files + 1, f"emulator stored {len(ok)} files"
    assert big_size in sizes, "the big file is missing"


def empty_files(root: Path) -> None:
    """Truncate every file under ``root`` to 0 bytes: frees the data, keeps the inodes."""
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.truncate(os.path.join(dirpath, name), 0)


def one_round(
    kind: str, small: list[Path], big: Path, args: argparse.Namespace, roots: list[Path]
) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    roots.append(root)
    proc, url = start(kind, root)
    try:
        handle = open_job(url)
        small_s = upload_small(url, handle, small, args.per_post, args.parallel)
        big_s = upload_big(url, handle, big)
        if kind == "emulator":
            check_emulator(url, len(small), big.stat().st_size)
        rss = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        empty_files(root)  # deleted at the end: see the module docstring
    small_mb = len(small) * args.size / 1e6
    return {
        "small_files_s": len(small) / small_s,
        "small_mb_s": small_mb / small_s,
        "big_mb_s": big.stat().st_size / 1e6 / big_s,
        "peak_rss_mib": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--per-post", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    roots: list[Path] = []
    try:
        small_dir, big = make_corpus(work, args.files, args.size, args.big_mib)
        small = sorted(small_dir.iterdir())
        runs: dict[str, list[dict]] = {"emulator": [], "naive": []}
        for _ in range(args.rounds):
            for kind in runs:
                runs[kind].append(one_round(kind, small, big, args, roots))
        report(runs, args)
    finally:
        for root in [work, *roots]:
            shutil.rmtree(root, ignore_errors=True)


def report(runs: dict[str, list[dict]], args: argparse.Namespace) -> None:
    medians = {
        kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; rounds: {args.rounds} (medians)"
    )
    print(
        f"corpus: {args.files} x {args.size} B in POSTs of {args.per_post}, "
        f"{args.parallel} in flight; one file of {args.big_mib} MiB; client: curl"
    )
    print("| server | small files/s | small MB/s | 1 file MB/s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for kind, m in medians.items():
        print(
            f"| {kind} | {m['small_files_s']:,.0f} | {m['small_mb_s']:,.0f} | "
            f"{m['big_mb_s']:,.0f} | {m['peak_rss_mib']:.0f} |"
        )
    e, n = medians["emulator"], medians["naive"]
    print(
        f"ratio emulator/naive: small files {e['small_files_s'] / n['small_files_s']:.2f}x, "
        f"large file {e['big_mb_s'] / n['big_mb_s']:.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
