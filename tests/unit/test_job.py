"""The job coordinator's life cycle with a fake client, a fake clock and a fake sleep."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import AuthenticationFault, ConnectError, UploadFailed
from bulkup.monitoring.api import JobMonitor
from bulkup.pipeline.coordinator import Deps, JobCoordinator, JobSettings, default_job_name
from bulkup.pipeline.sender import BatchSender
from bulkup.protocol import UploadPostReturn
from bulkup.retry import RetryPolicy
from bulkup.stats import Stats
from bulkup.transport.body import BatchBody


class FakeClient:
    """Answers every POST with a handle and records the uploadParams part it carried."""

    def __init__(self, fail_with: list[BaseException] | None = None) -> None:
        self.params: list[str] = []
        self.fail_with = list(fail_with or [])
        self.opened = 0

    async def post(self, body: BatchBody) -> UploadPostReturn:
        head = body._head.decode()
        self.params.append(head.split('name="uploadParams"', 1)[1])
        if self.fail_with:
            raise self.fail_with.pop(0)
        if "<jobName>" in self.params[-1]:
            self.opened += 1
        return UploadPostReturn(job_handle=f"j|1||job|{self.opened}")


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, stop_after_sleeps: int = 1000) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.stop_after = stop_after_sleeps

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) > self.stop_after:
            raise asyncio.CancelledError
        self.now += seconds


def coordinator(client: FakeClient, time: FakeTime, **changes: Any) -> JobCoordinator:
    config = UploadConfig(
        server_url="http://127.0.0.1:1/scene7/UploadFile",
        user="u@x.y",
        password="pw",
        company_handle="c|1",
        **changes,
    )
    deps = Deps(
        client=client, stats=Stats(clock=time), clock=time, sleep=time.sleep, rng=lambda: 0.5
    )
    return JobCoordinator(JobSettings.from_config(config), deps=deps)


class TestOpening:
    async def test_one_opening_for_many_callers(self) -> None:
        """Concurrent callers wait for one opening POST and all get its handle."""
        client, time = FakeClient(), FakeTime()
        job = coordinator(client, time)
        handles = await asyncio.gather(*(job.current_handle() for _ in range(10)))
        assert set(handles) == {"j|1||job|1"} and client.opened == 1
        assert "<jobName>" in client.params[0] and "<uploadParams>" in client.params[0]

    async def test_opening_retried_then_given_up(self) -> None:
        """Transport failures are retried; when all attempts fail the run stops (fatal)."""
        client = FakeClient([ConnectError("down")] * 3)
        job = coordinator(client, FakeTime(), max_attempts=3)
        with pytest.raises(UploadFailed, match="cannot open an upload job"):
            await job.current_handle()
        assert len(client.params) == 3

    async def test_authentication_fault_propagates(self) -> None:
        """An authentication fault is not retried and not wrapped."""
        client = FakeClient(
            [AuthenticationFault(10001, "Invalid username/password", http_status=500)]
        )
        with pytest.raises(AuthenticationFault):
            await coordinator(client, FakeTime()).current_handle()
        assert len(client.params) == 1

    async def test_open_soon_opens_in_the_background(self) -> None:
        """open_soon starts the one opening POST; later callers get its handle, no second
        opening, and a second open_soon is a no-op."""
        client, time = FakeClient(), FakeTime()
        job = coordinator(client, time)
        job.open_soon()
        job.open_soon()
        assert client.params == []  # started, not yet run: nothing waits on the caller
        await job.settled()
        assert job.handle == "j|1||job|1" and client.opened == 1
        assert await job.current_handle() == "j|1||job|1" and len(client.params) == 1

    async def test_early_opening_failure_reaches_every_caller_once(self) -> None:
        """An opening that fails after its retries fails every caller with the same error,
        without a second round of attempts."""
        client = FakeClient([ConnectError("down")] * 6)
        job = coordinator(client, FakeTime(), max_attempts=3)
        job.open_soon()
        results = await asyncio.gather(
            job.current_handle(), job.current_handle(), return_exceptions=True
        )
        assert all(isinstance(r, UploadFailed) for r in results)
        assert len(client.params) == 3 and job.handle is None

    def test_default_job_name_shape(self) -> None:
        """Generated names follow D-06: bulkup-<UTC stamp>-<8 hex>, safe characters only."""
        name = default_job_name()
        prefix, stamp, suffix = name.split("-")
        assert prefix == "bulkup" and len(stamp) == 16 and stamp.endswith("Z")
        assert len(suffix) == 8 and int(suffix, 16) >= 0


class TestKeepAlive:
    async def test_keepalive_after_idle_interval(self) -> None:
        """With no activity, a file-less keep-alive POST goes out every keepalive_after_s."""
        client, time = FakeClient(), FakeTime(stop_after_sleeps=3)
        job = coordinator(client, time)
        await job.current_handle()
        with pytest.raises(asyncio.CancelledError):
            await job.keep_alive()
        assert time.sleeps[:3] == [1200.0, 1200.0, 1200.0]
        keepalives = client.params[1:]
        assert len(keepalives) == 3
        assert all(
            "<jobHandle>j|1||job|1</jobHandle>" in p
            and "<jobName>" not in p
            and "<endJob>" not in p
            for p in keepalives
        )

    async def test_activity_postpones_keepalive(self) -> None:
        """A POST acknowledged at t=1000 moves the next keep-alive to t=2200, not t=1200."""
        client, time = FakeClient(), FakeTime(stop_after_sleeps=1)
        job = coordinator(client, time)
        await job.current_handle()
        time.now = 1000.0
        job.touch()
        with pytest.raises(asyncio.CancelledError):
            await job.keep_alive()
        assert time.sleeps[0] == 1200.0
        assert len(client.params) == 2 and job.last_activity == 2200.0

    async def test_no_job_no_keepalive(self) -> None:
        """Before a job exists, the keep-alive loop only waits."""
        client, time = FakeClient(), FakeTime(stop_after_sleeps=2)
        with pytest.raises(asyncio.CancelledError):
            await coordinator(client, time).keep_alive()
        assert client.params == []


class TestClosing:
    async def test_end_job_posts_endjob_once(self) -> None:
        """endJob is a file-less follow-up with <endJob>true</endJob>; nothing opened: no POST."""
        client, time = FakeClient(), FakeTime()
        job = coordinator(client, time)
        await job.end_job()
        assert client.params == []
        await job.current_handle()
        await job.end_job()
        assert "<endJob>true</endJob>" in client.params[-1]
        assert job.handle is None and job.handles == ["j|1||job|1"]

    async def test_lost_job_replaced_once(self) -> None:
        """Two workers reporting the same lost job cause one new job named <name>-r1."""
        client, time = FakeClient(), FakeTime()
        job = coordinator(client, time, job_name="nightly")
        lost = await job.current_handle()
        await asyncio.gather(job.replace_lost_job(lost), job.replace_lost_job(lost))
        assert job.handles == ["j|1||job|1", "j|1||job|2"]
        assert "<jobName>nightly-r1</jobName>" in client.params[-1]


class TestUploadParamsEverywhere:
    async def test_every_post_carries_the_same_options(self) -> None:
        """Opening, follow-up, keep-alive and endJob POSTs all carry identical uploadParams."""
        client, time = FakeClient(), FakeTime(stop_after_sleeps=1)
        job = coordinator(client, time)
        handle = await job.current_handle()
        client.params.append(job.head("b", handle).decode().split('name="uploadParams"')[1])
        with pytest.raises(asyncio.CancelledError):
            await job.keep_alive()
        await job.end_job()
        options = {p[p.index("<uploadParams>") : p.index("</uploadParams>")] for p in client.params}
        assert len(client.params) == 4 and len(options) == 1

    async def test_refused_endjob_means_closed(self) -> None:
        """endJob refused with 30001 (an earlier attempt got through) is not an error."""
        from bulkup.errors import IpsApiFault

        client, time = FakeClient(), FakeTime()
        job = coordinator(client, time)
        await job.current_handle()
        client.fail_with = [IpsApiFault(30001, "Invalid jobHandle: closed", http_status=500)]
        await job.end_job()
        assert job.handle is None


class TestSettings:
    def test_the_settings_hold_what_the_config_says_built_once(self) -> None:
        """The coordinator reads its settings, not the config: the job's name, its options,
        the keep-alive interval and the retry policy, taken from the config once."""
        config = UploadConfig(
            server_url="http://127.0.0.1:1/scene7/UploadFile",
            user="u@x.y",
            password="pw",
            company_handle="c|1",
            job_name="nightly",
            keepalive_after_s=30.0,
            max_attempts=7,
            backoff_base_s=0.5,
            backoff_cap_s=9.0,
            fault30000_retries=4,
        )
        settings = JobSettings.from_config(config)
        assert (settings.job_name, settings.company_handle, settings.keepalive_after_s) == (
            "nightly",
            "c|1",
            30.0,
        )
        assert settings.retry == RetryPolicy(
            max_attempts=7, base_s=0.5, cap_s=9.0, fault30000_retries=4
        )
        assert settings.upload_params is config.upload_params
        assert "pw" not in repr(settings)

    def test_no_constructor_takes_more_than_five_parameters(self) -> None:
        for component in (JobCoordinator, BatchSender, JobMonitor):
            parameters = inspect.signature(component).parameters
            assert len(parameters) <= 5, (component.__name__, list(parameters))
