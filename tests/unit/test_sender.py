"""The batch sender on its own: a fake server behind the client protocol, the real coordinator,
a recorded sleep. Every file of a batch ends up acknowledged, failed (with its reason) or, once
the run is stopping, neither."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import (
    AuthenticationFault,
    ConnectError,
    IpsApiFault,
    ServerUnavailable,
    SourceError,
)
from bulkup.models import Batch, FileEntry
from bulkup.pipeline.coordinator import Deps, JobCoordinator, JobSettings
from bulkup.pipeline.sender import BatchSender, Outcomes, SenderSettings
from bulkup.protocol import UploadPostReturn
from bulkup.stats import Failures, Stats
from bulkup.transport.body import BatchBody

Outcome = BaseException | str | None  # raise it / answer with this handle / acknowledge


@dataclass
class Posted:
    """One POST the fake server saw: the job it named (None: an opening) and its files."""

    job: str | None
    targets: list[str]


@dataclass
class FakeServer:
    """Opens a job per opening POST (``j|<n>``); answers file POSTs from ``script`` in turn
    (then acknowledges), and file-less follow-ups (probes) from ``probes``."""

    script: list[Outcome] = field(default_factory=list)
    probes: list[Outcome] = field(default_factory=list)
    posts: list[Posted] = field(default_factory=list)
    jobs: int = 0
    before_file_post: Callable[[], None] | None = None

    async def post(self, body: BatchBody) -> UploadPostReturn:
        head = body._head.decode()
        found = re.search(r"<jobHandle>(.*?)</jobHandle>", head)
        job = found.group(1) if found else None
        targets = [part.entry.target for part in body._files]
        self.posts.append(Posted(job, targets))
        if job is None:
            self.jobs += 1
            return UploadPostReturn(job_handle=f"j|{self.jobs}")
        if targets and self.before_file_post is not None:
            self.before_file_post()
        pending = self.script if targets else self.probes
        outcome = pending.pop(0) if pending else None
        if isinstance(outcome, BaseException):
            raise outcome
        return UploadPostReturn(job_handle=outcome or job)

    def file_posts(self) -> list[Posted]:
        return [p for p in self.posts if p.targets]


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Rig:
    server: FakeServer
    sender: BatchSender
    coordinator: JobCoordinator
    stats: Stats
    failures: Failures
    sleeps: Sleeps
    stop: asyncio.Event
    receipts: list[tuple[list[str], str]]


def rig(server: FakeServer, **changes: Any) -> Rig:
    config = UploadConfig(
        server_url="http://127.0.0.1:1/scene7/UploadFile",
        user="u@x.y",
        password="pw",
        company_handle="c|1",
        **changes,
    )
    stats, sleeps, stop = Stats(clock=lambda: 0.0), Sleeps(), asyncio.Event()
    deps = Deps(
        client=server, stats=stats, clock=lambda: 0.0, sleep=sleeps, rng=lambda: 0.5, stop=stop
    )
    coordinator = JobCoordinator(JobSettings.from_config(config), deps=deps)
    failures = Failures(stats)
    receipts: list[tuple[list[str], str]] = []

    async def on_posted(entries: list[FileEntry], handle: str) -> None:
        assert stats.files_uploaded == sum(len(r[0]) for r in receipts)  # receipt first
        receipts.append(([e.target for e in entries], handle))

    sender = BatchSender(
        SenderSettings.from_config(config),
        deps=deps,
        coordinator=coordinator,
        outcomes=Outcomes(failures, on_posted),
    )
    return Rig(server, sender, coordinator, stats, failures, sleeps, stop, receipts)


def batch(*names: str) -> Batch:
    return Batch(
        tuple(
            FileEntry(
                path=f"/src/{n}",
                rel_path=n,
                target=f"Acme/{n}",
                size=100 + i,
                mtime_ns=1,
                inode=1 + i,
            )
            for i, n in enumerate(names)
        )
    )


def failed(r: Rig) -> dict[str, str]:
    return {f.path: f.reason for f in r.failures.kept}


class TestDelivered:
    async def test_one_post_acknowledged_counts_every_file(self) -> None:
        r = rig(FakeServer())
        await r.sender.send(batch("a.jpg", "b.jpg", "c.jpg"))
        assert r.server.file_posts() == [Posted("j|1", ["Acme/a.jpg", "Acme/b.jpg", "Acme/c.jpg"])]
        assert r.receipts == [(["Acme/a.jpg", "Acme/b.jpg", "Acme/c.jpg"], "j|1")]
        snap = r.stats.snapshot()
        assert (snap.files_uploaded, snap.bytes_uploaded, snap.files_failed) == (3, 303, 0)
        assert (snap.posts, snap.retries) == (2, 0)  # the opening and the files

    async def test_retried_then_acknowledged(self) -> None:
        """A 503 and a dropped connection: two recorded back-offs, then the same files
        acknowledged once."""
        r = rig(
            FakeServer(
                script=[ServerUnavailable("HTTP 503", http_status=503), ConnectError("refused")]
            ),
            backoff_base_s=2.0,
        )
        await r.sender.send(batch("a.jpg", "b.jpg"))
        assert [p.targets for p in r.server.file_posts()] == [["Acme/a.jpg", "Acme/b.jpg"]] * 3
        assert r.sleeps.waits == [1.0, 2.0]  # rng 0.5 x ceilings 2 and 4
        assert r.stats.retries == 2 and r.stats.files_uploaded == 2
        assert len(r.receipts) == 1 and r.failures.kept == []


class TestFailed:
    async def test_a_file_that_cannot_be_read_fails_alone(self) -> None:
        """The body names the file it could not send: that file fails with the reason, the
        rest of the batch is sent again without it."""
        r = rig(FakeServer(script=[SourceError("/src/b.jpg", "vanished")]))
        await r.sender.send(batch("a.jpg", "b.jpg", "c.jpg"))
        assert failed(r) == {"/src/b.jpg": "vanished"}
        assert r.server.file_posts()[-1].targets == ["Acme/a.jpg", "Acme/c.jpg"]
        assert r.receipts == [(["Acme/a.jpg", "Acme/c.jpg"], "j|1")]
        assert (r.stats.files_uploaded, r.stats.files_failed) == (2, 1)

    async def test_retries_spent_fail_every_file_with_the_last_error(self) -> None:
        r = rig(FakeServer(script=[ConnectError(f"refused {n}") for n in range(3)]), max_attempts=3)
        await r.sender.send(batch("a.jpg", "b.jpg"))
        assert failed(r) == {
            "/src/a.jpg": "not delivered: refused 2",
            "/src/b.jpg": "not delivered: refused 2",
        }
        assert r.receipts == [] and r.stats.files_uploaded == 0 and r.stats.retries == 2

    async def test_a_fault_past_its_budget_is_the_server_refusing(self) -> None:
        r = rig(
            FakeServer(script=[IpsApiFault(30000, "Internal error", http_status=500)]),
            fault30000_retries=0,
        )
        await r.sender.send(batch("a.jpg"))
        assert failed(r)["/src/a.jpg"].startswith("server refused the POST: ")
        assert "30000" in failed(r)["/src/a.jpg"]

    async def test_an_answer_naming_another_job_is_no_acknowledgement(self) -> None:
        """Sent once more (an invalid answer), then the files fail; never counted."""
        r = rig(FakeServer(script=["j|99", "j|99"]))
        await r.sender.send(batch("a.jpg"))
        assert len(r.server.file_posts()) == 2 and r.receipts == []
        assert "named job 'j|99'" in failed(r)["/src/a.jpg"]

    async def test_a_fatal_error_stops_the_run(self) -> None:
        r = rig(
            FakeServer(
                script=[AuthenticationFault(10001, "Invalid username/password", http_status=500)]
            )
        )
        with pytest.raises(AuthenticationFault):
            await r.sender.send(batch("a.jpg"))
        assert len(r.server.file_posts()) == 1 and r.failures.kept == []


class TestLostJob:
    async def test_the_batch_goes_into_a_new_job(self) -> None:
        """30001 on the file POST, and the probe is refused too: the job is lost; a new one
        (<name>-r1) is opened and the same files go there, acknowledged once."""
        lost = IpsApiFault(30001, "Invalid jobHandle", http_status=500)
        r = rig(
            FakeServer(
                script=[lost], probes=[IpsApiFault(30001, "Invalid jobHandle", http_status=500)]
            ),
            job_name="nightly",
        )
        await r.sender.send(batch("a.jpg", "b.jpg"))
        assert r.coordinator.handles == ["j|1", "j|2"]
        assert [(p.job, p.targets) for p in r.server.posts] == [
            (None, []),
            ("j|1", ["Acme/a.jpg", "Acme/b.jpg"]),
            ("j|1", []),
            (None, []),
            ("j|2", ["Acme/a.jpg", "Acme/b.jpg"]),
        ]
        assert r.receipts == [(["Acme/a.jpg", "Acme/b.jpg"], "j|2")]
        assert r.failures.kept == []

    async def test_a_job_that_is_still_alive_is_kept_and_the_files_fail(self) -> None:
        """30001 but the probe gets in: the job was not lost, the POST itself was refused."""
        r = rig(FakeServer(script=[IpsApiFault(30001, "Invalid fileName", http_status=500)]))
        await r.sender.send(batch("a.jpg"))
        assert r.coordinator.handles == ["j|1"]
        assert "server refused the POST" in failed(r)["/src/a.jpg"]


class TestStop:
    async def test_once_stopping_no_post_is_started(self) -> None:
        r = rig(FakeServer())
        await r.coordinator.current_handle()
        r.stop.set()
        await r.sender.send(batch("a.jpg", "b.jpg"))
        assert r.server.file_posts() == [] and r.receipts == []
        assert r.failures.kept == [] and r.stats.files_uploaded == 0  # neither: next run

    async def test_a_stop_during_a_failing_post_retries_nothing(self) -> None:
        r = rig(FakeServer(script=[ServerUnavailable("HTTP 503", http_status=503)]))
        r.server.before_file_post = r.stop.set  # the stop comes while the POST is out
        await r.sender.send(batch("a.jpg"))
        assert len(r.server.file_posts()) == 1
        assert r.sleeps.waits == [] and r.failures.kept == [] and r.receipts == []
        assert r.stats.files_uploaded == 0
