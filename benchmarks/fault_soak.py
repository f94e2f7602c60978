"""Fault soak: bulkup uploads a tree through the emulator's fault plan, once per seed, and every
file must land byte-exact with the report reconciling with the emulator's records.

Plan (per POST, seeded): 10% answered 503, 5% connections cut mid-body, 2% ipsApiFault 30000,
20 ms added latency. Checks per seed: exit 0; the emulator holds every file with the sha256 of
the local file; files_uploaded equals the emulator's accepted file records; the report's retries
equal the faults the emulator injected. Prints a table and the totals (for RELIABILITY.md).

usage: python benchmarks/fault_soak.py [--files 20000] [--seeds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from local_servers import start_emulator

PLAN = "http503=0.10,drop=0.05,fault30000=0.02,latency_ms=20"


def make_tree(root: Path, count: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    digests = {}
    for i in range(count):
        rel = f"d{i % 50:02d}/f{i:06d}.jpg"
        data = rng.randbytes(rng.randrange(1, 16 * 1024))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[f"Soak/{rel}"] = hashlib.sha256(data).hexdigest()
    return digests


def one_seed(seed: int, tree: Path, digests: dict[str, str], work: Path) -> dict[str, object]:
    server, url = start_emulator(
        work / f"root{seed}",
        "--user",
        "soak@example.com:pw",
        "--company",
        "Soak:c|1",
        "--faults",
        f"seed={seed},{PLAN}",
    )
    base = url.removesuffix("/scene7/UploadFile")
    try:
        report_path = work / f"report{seed}.json"
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bulkup",
                "upload",
                str(tree),
                "--server",
                f"{base}/scene7/UploadFile",
                "--user",
                "soak@example.com",
                "--company-handle",
                "c|1",
                "--company-root",
                "Soak/",
                "--no-journal",
                "--report",
                str(report_path),
                "--log-format",
                "json",
            ],
            env={
                **os.environ,
                "BULKUP_PASSWORD": "pw",
                "BULKUP_MAX_ATTEMPTS": "10",
                "BULKUP_FAULT30000_RETRIES": "10",
                "BULKUP_BACKOFF_BASE_S": "0.05",
                "BULKUP_BACKOFF_CAP_S": "1",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        wall = time.perf_counter() - start
        report = json.loads(report_path.read_text())
        with urllib.request.urlopen(f"{base}/_emulator/jobs") as answer:
            state = json.load(answer)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return _check(seed, done.returncode, report, state, digests, wall)


def _check(
    seed: int, code: int, report: dict, state: dict, digests: dict[str, str], wall: float
) -> dict[str, object]:
    records = [
        f
        for job in state["jobs"]
        for f in job["files"]
        if f["outcome"] in ("UploadSuccess", "FileUpdated")
    ]
    landed = {f["target_path"]: f["sha256"] for f in records}
    injected = state["injected"]
    faults = injected["http503"] + injected["drop"] + injected["fault30000"]
    result = {
        "seed": seed,
        "exit": code,
        "files": len(digests),
        "landed_exact": landed == digests,
        "uploaded": report["files_uploaded"],
        "server_records": len(records),
        "retries": report["retries"],
        "faults_injected": faults,
        "wall_s": round(wall, 1),
        "http503": injected["http503"],
        "drop": injected["drop"],
        "fault30000": injected["fault30000"],
        "lost": len(set(digests) - set(landed)),
    }
    result["ok"] = bool(
        code == 0
        and result["landed_exact"]
        and result["uploaded"] == result["server_records"] == len(digests)
        and result["retries"] == faults
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fault-soak-"))
    try:
        tree = work / "tree"
        digests = make_tree(tree, args.files, seed=12345)
        results = [one_seed(seed, tree, digests, work) for seed in range(1, args.seeds + 1)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fault plan: {PLAN}; {args.files} files per seed")
    print(
        "| seed | exit | 503 | cut | 30000 | retries | uploaded | server records | lost | "
        "byte-exact | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['seed']} | {r['exit']} | {r['http503']} | {r['drop']} | {r['fault30000']} "
            f"| {r['retries']} | {r['uploaded']} | {r['server_records']} | {r['lost']} | "
            f"{'yes' if r['landed_exact'] else 'NO'} | {r['wall_s']} |"
        )
    total = sum(int(r["faults_injected"]) for r in results)
    lost = sum(int(r["lost"]) for r in results)
    print(
        f"totals: {total} faults injected and survived, {lost} files lost, "
        f"{sum(bool(r['ok']) for r in results)}/{len(results)} seeds fully reconciled"
    )
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
