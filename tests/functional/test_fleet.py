"""The Kubernetes Indexed Job, executed: each index of deploy/kubernetes/indexed-job.yaml runs as
a local process with the manifest's own command, arguments and environment (as the kubelet
would build them: the completion index, the Secret, ``$(VAR)`` references, the volumes' paths),
all against one emulator, each shard bound to its own loopback address as pods on different
nodes would be. One shard is SIGKILLed after some of its POSTs were acknowledged and started
again, as a restarted pod is.

What holds: the union of what landed is the tree, byte for byte; no file landed twice; N jobs,
each from one address; the restarted shard resumes its own journal and sends nothing that was
acknowledged; ``bulkup report merge`` of the shards' reports agrees with what landed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from .conftest import PASSWORD, make_tree

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
SECRETS = {("bulkup-credentials", "password"): PASSWORD}
VICTIM = 2  # the shard killed mid-run and started again


def indexed_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load((DEPLOY / "indexed-job.yaml").read_text())
    return job


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def address_of(index: int, attempt: int = 0) -> str:
    """The pod's address: pods on different nodes have different ones, and a new pod for a
    retried index gets a new one."""
    return f"127.0.0.{2 + index + 10 * attempt}"


class Pod:
    """What the kubelet makes of the manifest for one index: argv and environment, the
    volumes' mount paths mapped to local folders."""

    def __init__(
        self,
        job: dict[str, Any],
        index: int,
        mounts: dict[str, Path],
        node: dict[str, str],
        address: str,
    ) -> None:
        container = pod_spec(job)["containers"][0]
        self.mounts, self.address = mounts, address
        env = {"JOB_COMPLETION_INDEX": str(index)}  # set by the Job controller
        for item in container.get("env", []):
            env[item["name"]] = self._value(item, env, index)
        env.update(node)
        self.env = env
        argv = [_expand(arg, env) for arg in container["command"] + container.get("args", [])]
        self.argv = [self._local(arg) for arg in argv]
        self.argv[0] = str(Path(sys.executable).parent / self.argv[0])  # the installed script

    def _value(self, item: dict[str, Any], env: dict[str, str], index: int) -> str:
        if "value" in item:
            return self._local(_expand(str(item["value"]), env))
        source = item["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            assert path in (INDEX_ANNOTATION, "status.podIP")
            return str(index) if path == INDEX_ANNOTATION else self.address
        ref = source["secretKeyRef"]
        return SECRETS[ref["name"], ref["key"]]

    def _local(self, value: str) -> str:
        for mount, local in self.mounts.items():
            if value == mount or value.startswith(mount + "/"):
                return str(local) + value[len(mount) :]
        return value


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)``: replaced by a variable defined before; else left as it is."""
    return re.sub(
        r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text
    )


class Stall:
    """Lets the victim's first ``passing`` POSTs through and holds every later one (they never
    reach the servlet), so the victim can be killed with a known set acknowledged."""

    def __init__(self, peer: str, passing: int) -> None:
        self.peer, self.passing, self.arrived, self.answered = peer, passing, 0, 0
        self.passed = asyncio.Event()  # the passing POSTs were answered
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.refused_peers: list[str] = []
        self.active = True

    def middleware(self) -> Any:
        @web.middleware
        async def stall(request: web.Request, handler: Any) -> Any:
            mine = (
                request.path.endswith("UploadFile") and request.remote == self.peer and self.active
            )
            if mine:
                self.arrived += 1
                if self.arrived > self.passing:
                    self.holding.set()
                    await self.release.wait()
                    return web.Response(status=503, text="held by the test")
            response = await handler(request)
            if mine:
                self.answered += 1
                if self.answered == self.passing:
                    self.passed.set()
            body = getattr(response, "body", b"")
            if isinstance(body, bytes) and b"was opened from" in body:
                self.refused_peers.append(body.decode("utf-8", "replace"))
            return response

        return stall


def journal_claims(path: Path) -> set[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return {
            row[0]
            for row in db.execute("SELECT target FROM files WHERE state IN ('posted', 'confirmed')")
        }


async def _spawn(pod: Pod) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *pod.argv, env=pod.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode("utf-8", "replace")


def test_the_manifests_agree() -> None:
    """The Indexed Job is what the README says; the CronJob runs the same pods."""
    job = indexed_job()
    spec = job["spec"]
    count = spec["completions"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] <= count
    assert spec["backoffLimitPerIndex"] >= 1 and pod_spec(job)["restartPolicy"] == "Never"
    container = pod_spec(job)["containers"][0]
    args = container["args"]
    assert args[args.index("--shard") + 1] == f"auto/{count}"
    assert pod_spec(job)["terminationGracePeriodSeconds"] >= 30 + 10  # stop_grace_s + endJob
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data"]["readOnly"] is True
    env = {item["name"]: item for item in container["env"]}
    assert env["BULKUP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "bulkup-credentials"
    cron = yaml.safe_load((DEPLOY / "cronjob.yaml").read_text())
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"] == spec


@pytest.mark.parametrize("restart", ["same-address", "new-pod"])
async def test_indexed_job_runs_against_one_emulator(
    start_emulator: Any, tmp_path: Path, restart: str
) -> None:
    """``same-address``: the victim comes back with its address (its container restarted in
    place) and continues its job. ``new-pod``: the Job's retry of the index is a new pod with a
    new address; it opens a new job (the old one idles out on the server) and still sends
    only what its journal does not hold."""
    job = indexed_job()
    count = job["spec"]["completions"]
    assert count == 4
    stall = Stall(address_of(VICTIM), passing=3)  # the opening POST and two with files
    server = await start_emulator(middlewares=(stall.middleware(),))
    rng = random.Random(18)
    files = {f"d{i % 5}/f{i:03d}.jpg": rng.randbytes(rng.randrange(1, 4000)) for i in range(80)}
    files["d1/caf\u00e9.jpg"] = b"nfc"
    src = make_tree(tmp_path / "src", files)
    state = tmp_path / "state"
    state.mkdir()
    node = {
        "BULKUP_SERVER_URL": server.url,  # the cluster's way to the servlet: the emulator
        "BULKUP_MAX_FILES_PER_POST": "4",  # small POSTs, so a kill falls between them
        "BULKUP_BACKOFF_BASE_S": "0.01",
        "BULKUP_BACKOFF_CAP_S": "0.05",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
    }
    mounts = {"/data": src, "/state": state}
    pods = [Pod(job, k, mounts, node, address_of(k)) for k in range(count)]
    procs = [await _spawn(pod) for pod in pods]
    if restart == "new-pod":
        pods[VICTIM] = Pod(job, VICTIM, mounts, node, address_of(VICTIM, attempt=1))
    try:
        await _run_the_fleet(server, stall, pods, procs, files, state, count)
    finally:
        stall.release.set()
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _run_the_fleet(
    server: Any,
    stall: Stall,
    pods: list[Pod],
    procs: list[asyncio.subprocess.Process],
    files: dict[str, bytes],
    state: Path,
    count: int,
) -> None:
    # The victim: killed once two POSTs of files are acknowledged and in its journal.
    await asyncio.wait_for(stall.holding.wait(), 20)
    await asyncio.wait_for(stall.passed.wait(), 20)
    journal = next(state.glob(f"bulkup/*-s{VICTIM}of{count}-*.journal"))
    victim_job = next(j for j in server.jobs() if j.name.endswith(f"-s{VICTIM}of{count}"))
    landed_before = {f.target_path for f in victim_job.files}
    for _ in range(400):
        if journal_claims(journal) == landed_before:
            break
        await asyncio.sleep(0.05)
    claims = journal_claims(journal)
    # two POSTs of files: up to 4 files each (a worker's last batch of its share may hold fewer)
    assert claims == landed_before and 2 <= len(claims) <= 8
    procs[VICTIM].send_signal(signal.SIGKILL)
    assert await procs[VICTIM].wait() == -signal.SIGKILL
    stall.active = False
    stall.release.set()
    before = len(victim_job.files)
    procs[VICTIM] = await _spawn(pods[VICTIM])  # the pod restarted for its index

    outcomes = [await _finish(proc) for proc in procs]
    assert [code for code, _ in outcomes] == [0] * count, [err[-2000:] for _, err in outcomes]

    # What landed: the tree, byte for byte, each file once, four jobs from four addresses.
    assert server.stored_files() == {f"migration/{rel}": data for rel, data in files.items()}
    landed = Counter(f.target_path for j in server.jobs() for f in j.files)
    assert set(landed.values()) == {1} and len(landed) == len(files)
    closed = [j for j in server.jobs() if j.closed_by == "endJob"]
    jobs = {j.name.rpartition("-")[2]: j for j in closed}
    assert len(closed) == count and sorted(jobs) == [f"s{k}of{count}" for k in range(count)]
    victim_address = pods[VICTIM].address
    assert {k: jobs[f"s{k}of{count}"].peer for k in range(count)} == {
        k: victim_address if k == VICTIM else address_of(k) for k in range(count)
    }
    assert stall.refused_peers == []  # every POST of every job came from its job's address
    resent = {f.target_path for f in jobs[f"s{VICTIM}of{count}"].files}
    if victim_address == address_of(VICTIM):  # the same job, continued
        assert jobs[f"s{VICTIM}of{count}"] is victim_job and len(server.jobs()) == count
        resent = {f.target_path for f in victim_job.files[before:]}
    else:  # a new job; the first pod's stays open until the server's idle timeout
        assert victim_job.open and len(victim_job.files) == before
        assert len(server.jobs()) == count + 1
    assert resent and not resent & claims  # resumed: nothing acknowledged was sent again

    # The merged report, through the command the manifest names.
    reports = sorted(state.glob("report-shard-*.json"))
    assert [p.name for p in reports] == [f"report-shard-{k}.json" for k in range(count)]
    merge = await asyncio.create_subprocess_exec(
        pods[0].argv[0],
        "report",
        "merge",
        "--json",
        *map(str, reports),
        stdout=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "")},
    )
    out, _ = await merge.communicate()
    assert merge.returncode == 0
    merged = json.loads(out)
    totals = merged["totals"]
    assert merged["missing"] == [] and merged["failures"] == [] and merged["exit_code"] == 0
    assert totals["files_found"] == len(files)
    assert totals["files_uploaded"] == len(files) - len(claims)
    assert totals["files_skipped"] == len(claims)  # the victim's first run's, skipped on resume
    assert totals["files_confirmed"] == len(files)
    sizes = {f"Acme/migration/{rel}": len(data) for rel, data in files.items()}
    assert totals["bytes_uploaded"] == sum(sizes.values()) - sum(sizes[t] for t in claims)
    by_shard = {s["shard"]: s for s in merged["per_shard"]}
    for k in range(count):
        shard = by_shard[f"{k}/{count}"]
        assert shard["job_handles"] == [jobs[f"s{k}of{count}"].handle]
        share = [f for j in server.jobs() if j.name.endswith(f"-s{k}of{count}") for f in j.files]
        assert shard["files_found"] == len(share)  # its share, no other shard's file


@pytest.mark.parametrize("bad", ["", "9"])
async def test_a_pod_without_a_usable_index_stops_at_once(tmp_path: Path, bad: str) -> None:
    pod = Pod(
        indexed_job(),
        0,
        {"/data": tmp_path, "/state": tmp_path},
        {"PATH": os.environ.get("PATH", "")},
        address_of(0),
    )
    pod.env["JOB_COMPLETION_INDEX"] = bad
    code, err = await _finish(await _spawn(pod))
    assert code == 2 and "JOB_COMPLETION_INDEX" in err
