"""Crash torture: SIGKILL the client at 20 seeded points (mid-walk, mid-POST, after the server
took a POST but before the client heard, during endJob, while waiting for the job log), then
run the same command again. Nothing is lost, nothing acknowledged is sent twice, the journal
never claims a file the server lacks, and no POST ever names a job that was already closed
(spec D-07; the emulator refuses such a POST with 30001, which the client would survive)."""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.emulator.app import STATE
from bulkup.journal.store import Journal

from .conftest import PASSWORD, make_tree, upload_argv

MODES = ("walk", "mid-post", "after-post", "end-job", "job-log")
CASES = [(seed, MODES[seed % len(MODES)]) for seed in range(20)]


def journal_claims(path: Path) -> dict[str, str]:
    """target → state for every file the journal says the server acknowledged."""
    journal = Journal(path)
    try:
        return dict(
            journal._db.execute(
                "SELECT target, state FROM files WHERE state IN ('posted', 'confirmed')"
            ).fetchall()
        )
    finally:
        journal.close()


class Killer:
    """A middleware that SIGKILLs the client at the chosen point."""

    def __init__(self, mode: str, at: int) -> None:
        self.mode, self.at, self.pid, self.posts, self.fired = mode, at, 0, 0, False
        self.into_closed: list[str] = []  # the refusals of POSTs naming a closed job

    def fire(self) -> None:
        if not self.fired and self.pid:
            self.fired = True
            os.kill(self.pid, signal.SIGKILL)

    def middleware(self) -> Any:
        @web.middleware
        async def kill_at_point(request: web.Request, handler: Any) -> Any:
            return await self.handle(request, handler)

        return kill_at_point

    async def handle(self, request: web.Request, handler: Any) -> Any:
        if request.path.endswith("IpsApiService"):
            if self.mode == "job-log" and "getActiveJobs" in request.headers.get("SOAPAction", ""):
                self.fire()
            return await handler(request)
        self.posts += 1
        number = self.posts  # others may arrive while this one is handled
        if (self.mode == "walk" and number == 1) or (self.mode == "mid-post" and number == self.at):
            self.fire()
        response = await handler(request)
        self.note_post_into_closed_job(response)
        if self.mode == "after-post" and number == self.at:
            self.fire()
        if self.mode == "end-job" and any(
            j.closed_by == "endJob" for j in request.app[STATE].store.jobs()
        ):
            self.fire()
        return response

    def note_post_into_closed_job(self, response: Any) -> None:
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            return
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode("utf-8", "replace")
        if "Invalid jobHandle" in text and "is closed" in text:
            self.into_closed.append(text)


@pytest.mark.parametrize(("seed", "mode"), CASES, ids=[f"{s}-{m}" for s, m in CASES])
async def test_kill_and_resume(start_emulator: Any, tmp_path: Path, seed: int, mode: str) -> None:
    """Kill at a seeded point, check the journal against the server, resume, check all."""
    rng = random.Random(seed)
    killer = Killer(mode, rng.randint(2, 12))
    server = await start_emulator(middlewares=(killer.middleware(),))
    files = {
        f"d{i % 6}/f{i:03d}.jpg": rng.randbytes(rng.randrange(1, 3000))
        for i in range(rng.randint(30, 80))
    }
    src = make_tree(tmp_path / "src", files)
    journal = tmp_path / "j.journal"
    args = (
        *upload_argv(src, server.url),
        "--journal",
        str(journal),
        "--max-files-per-post",
        "3",
        "--concurrency",
        "2",
    )
    first = await _spawn(args, killer)
    assert first == -signal.SIGKILL and killer.fired
    claims = journal_claims(journal) if journal.exists() else {}
    stored = server.stored_files()
    for target in claims:  # the journal never claims a file the server lacks
        assert stored.get(target.removeprefix("Acme/")) == files[target.removeprefix("Acme/")]
    before = {job.handle: len(job.files) for job in server.jobs()}
    killer.mode = "never"
    assert await _spawn(args, killer) == 0
    resent = [
        f.target_path for job in server.jobs() for f in job.files[before.get(job.handle, 0) :]
    ]
    assert not set(resent) & set(claims)  # nothing acknowledged is sent twice
    assert server.stored_files() == files  # nothing lost, byte for byte
    final = journal_claims(journal)  # every file confirmed, the crashed run's ones included
    assert set(final) == {f"Acme/{rel}" for rel in files}
    assert set(final.values()) == {"confirmed"}
    assert killer.into_closed == []  # never a POST into a job already closed (D-07)


async def _spawn(args: tuple[str, ...], killer: Killer) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bulkup",
        *args,
        env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    killer.pid = proc.pid
    return await proc.wait()
