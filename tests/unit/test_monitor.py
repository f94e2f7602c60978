"""The job monitor on its own, against a fake SOAP API behind the client protocol: the file
limit, a job's state, waiting for it, its log page by page, stopping it; transport failures
retried on a recorded sleep, faults raised as they are."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bulkup.config.model import UploadConfig
from bulkup.errors import AuthenticationFault, ConnectError, JobStopped
from bulkup.monitoring.api import PAGE_ROWS, ActiveJob, JobMonitor, MonitorSettings

API = "http://127.0.0.1:1/scene7/services/IpsApiService"
Answer = dict[str, Any] | BaseException | Callable[[dict[str, str]], dict[str, Any]]


@dataclass
class FakeApi:
    """Answers each operation from its list in turn (the last one again once it is the only
    one left); records every call with its parameters."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def soap(self, url: str, operation: str, envelope: bytes) -> dict[str, Any]:
        assert url == API
        text = envelope.decode()
        assert "<user>u@x.y</user>" in text
        body = text.split(f"<{operation}Param", 1)[1]
        params = dict(re.findall(r"<(\w+)>([^<]*)</\1>", body))
        self.calls.append((operation, params))
        queue = self.answers[operation]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer(params) if callable(answer) else answer

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def monitor(api: FakeApi, sleeps: Sleeps | None = None, **changes: Any) -> JobMonitor:
    config = UploadConfig(
        server_url="http://127.0.0.1:1/scene7/UploadFile",
        user="u@x.y",
        password="pw",
        company_handle="c|1",
        **changes,
    )
    return JobMonitor(
        MonitorSettings.from_config(config, API),
        client=api,
        sleep=sleeps or Sleeps(),
        rng=lambda: 0.5,
    )


def jobs(*rows: tuple[str, str]) -> dict[str, Any]:
    """A getActiveJobs answer listing (handle, state) rows."""
    items = [
        {"jobHandle": handle, "state": state, "progress": "40", "name": f"n-{handle}"}
        for handle, state in rows
    ]
    return {"jobArray": {"items": items[0] if len(items) == 1 else items}} if items else {}


class TestFileLimit:
    @pytest.mark.parametrize(
        ("answer", "limit"),
        [
            ({"value": "2147483648"}, 2147483648),
            ({"value": " 42 "}, 42),
            ({"value": "unlimited"}, None),
            ({}, None),
        ],
    )
    async def test_the_server_s_upload_limit(
        self, answer: dict[str, Any], limit: int | None
    ) -> None:
        api = FakeApi({"getProperty": [answer]})
        assert await monitor(api).max_file_size() == limit
        assert api.calls == [("getProperty", {"name": "UploadPostMaxFileSize"})]

    async def test_the_probe_s_own_attempts_with_the_policy_s_waits(self) -> None:
        """Transport failures are retried (the run's back-off, on the injected sleep); the
        start-of-run probe gives its own smaller number of attempts."""
        api, sleeps = FakeApi({"getProperty": [ConnectError("refused")]}), Sleeps()
        with pytest.raises(ConnectError):
            await monitor(api, sleeps, max_attempts=5, backoff_base_s=2.0).max_file_size(attempts=2)
        assert api.operations() == ["getProperty"] * 2 and sleeps.waits == [1.0]

    async def test_a_fault_is_raised_at_once(self) -> None:
        api = FakeApi(
            {
                "getProperty": [
                    AuthenticationFault(10001, "Invalid username/password", http_status=500)
                ]
            }
        )
        with pytest.raises(AuthenticationFault):
            await monitor(api).max_file_size()
        assert len(api.calls) == 1


class TestJobState:
    async def test_active_jobs_of_the_company(self) -> None:
        api = FakeApi({"getActiveJobs": [jobs(("j|1", "Running"), ("j|2", "New"))]})
        found = await monitor(api).active_jobs()
        assert found == [
            ActiveJob("j|1", "Running", "40", "n-j|1"),
            ActiveJob("j|2", "New", "40", "n-j|2"),
        ]
        assert api.calls == [("getActiveJobs", {"companyHandle": "c|1"})]

    async def test_one_job_asked_by_handle_or_none_once_it_left(self) -> None:
        api = FakeApi({"getActiveJobs": [jobs(("j|1", "Running")), jobs()]})
        watch = monitor(api)
        assert (await watch.active_job("j|1")) == ActiveJob("j|1", "Running", "40", "n-j|1")
        assert await watch.active_job("j|1") is None
        assert api.calls[0] == ("getActiveJobs", {"companyHandle": "c|1", "jobHandle": "j|1"})

    async def test_rows_without_a_handle_are_dropped_and_a_missing_state_is_unknown(self) -> None:
        api = FakeApi(
            {
                "getActiveJobs": [
                    {"jobArray": {"items": [{"jobHandle": "j|1"}, {"state": "Running"}, "junk"]}}
                ]
            }
        )
        assert await monitor(api).active_jobs() == [ActiveJob("j|1", "Unknown", None, None)]

    @pytest.mark.parametrize(
        ("state", "done", "idle_open", "stopping"),
        [
            ("Done", True, False, False),
            ("New", False, True, False),
            ("WaitingClient", False, True, False),
            ("Running", False, False, False),
            ("Stopping", False, False, True),
        ],
    )
    def test_what_a_state_means(
        self, state: str, done: bool, idle_open: bool, stopping: bool
    ) -> None:
        job = ActiveJob("j|1", state, None)
        assert (job.done, job.idle_open, job.stopping) == (done, idle_open, stopping)

    @pytest.mark.parametrize("state", ["New", "WaitingClient", "Running", "Unknown"])
    async def test_an_open_job_takes_posts(self, state: str) -> None:
        api = FakeApi({"getActiveJobs": [jobs(("j|1", state))]})
        assert await monitor(api).job_takes_posts("j|1") is True

    async def test_a_job_stopping_on_the_server_is_job_stopped(self) -> None:
        api = FakeApi({"getActiveJobs": [jobs(("j|1", "Stopping"))]})
        with pytest.raises(JobStopped, match="j|1 was stopped on the server"):
            await monitor(api).job_takes_posts("j|1")

    @pytest.mark.parametrize(("fatal", "stopped"), [("true", True), ("false", False)])
    async def test_a_job_gone_from_the_list_asks_its_log(self, fatal: str, stopped: bool) -> None:
        """Not listed: stopped if its log ended in a fatal error (stopJob), else closed."""
        api = FakeApi(
            {
                "getActiveJobs": [jobs()],
                "getJobLogDetails": [{"jobLogArray": {"items": {"fatalError": fatal}}}],
            }
        )
        watch = monitor(api)
        if stopped:
            with pytest.raises(JobStopped):
                await watch.job_takes_posts("j|1")
        else:
            assert await watch.job_takes_posts("j|1") is False
        assert api.calls[-1] == (
            "getJobLogDetails",
            {"companyHandle": "c|1", "jobHandle": "j|1", "recordsPerPage": "1", "resultsPage": "1"},
        )


class TestWaiting:
    async def test_polls_with_growing_capped_waits_until_done(self) -> None:
        answers: list[Answer] = [jobs(("j|1", "Running"))] * 6
        api, sleeps = FakeApi({"getActiveJobs": [*answers, jobs(("j|1", "Done"))]}), Sleeps()
        job = await monitor(api, sleeps).wait_until_done("j|1", first_wait_s=1.0, max_wait_s=3.0)
        assert job is not None and job.done
        assert sleeps.waits == [1.0, 1.5, 2.25, 3.0, 3.0, 3.0]

    async def test_returns_early_for_an_idle_open_job_or_a_job_gone(self) -> None:
        sleeps = Sleeps()
        idle = await monitor(
            FakeApi({"getActiveJobs": [jobs(("j|1", "WaitingClient"))]}), sleeps
        ).wait_until_done("j|1")
        gone = await monitor(FakeApi({"getActiveJobs": [jobs()]}), sleeps).wait_until_done("j|1")
        assert idle is not None and idle.idle_open and gone is None and sleeps.waits == []


def log_pages(total: int, per_page: int = PAGE_ROWS) -> Callable[[dict[str, str]], Any]:
    """A job log of ``total`` detail lines, served page by page as asked."""

    def answer(params: dict[str, str]) -> dict[str, Any]:
        page = int(params["resultsPage"])
        first = (page - 1) * per_page
        lines = [
            {"logType": "UploadSuccess", "logMessage": f"f{n}"}
            for n in range(first, min(first + per_page, total))
        ]
        return {
            "jobLogArray": {
                "items": {
                    "jobName": "n",
                    "detailTotalRows": str(total),
                    "detailArray": {"items": lines},
                }
            }
        }

    return answer


class TestJobLog:
    @pytest.mark.parametrize(
        ("total", "pages"), [(1, 1), (PAGE_ROWS, 1), (PAGE_ROWS + 1, 2), (2500, 3)]
    )
    async def test_every_page_once(self, total: int, pages: int) -> None:
        api = FakeApi({"getJobLogDetails": [log_pages(total)]})
        seen = [
            (summary["jobName"], len(details))
            async for summary, details in monitor(api).job_log("j|1")
        ]
        assert sum(n for _, n in seen) == total and len(seen) == pages
        assert [p["resultsPage"] for _, p in api.calls] == [str(n) for n in range(1, pages + 1)]
        assert {p["recordsPerPage"] for _, p in api.calls} == {str(PAGE_ROWS)}

    async def test_a_log_that_says_no_total_ends_at_a_short_page(self) -> None:
        api = FakeApi(
            {
                "getJobLogDetails": [
                    {
                        "jobLogArray": {
                            "items": {"detailArray": {"items": [{"logType": "UploadSuccess"}] * 3}}
                        }
                    }
                ]
            }
        )
        pages = [details async for _, details in monitor(api).job_log("j|1")]
        assert [len(p) for p in pages] == [3] and len(api.calls) == 1

    async def test_no_log_no_page(self) -> None:
        api = FakeApi({"getJobLogDetails": [{}]})
        assert [page async for page in monitor(api).job_log("j|1")] == []


async def test_stop_asks_the_server_to_stop_the_job() -> None:
    api = FakeApi({"stopJob": [{}]})
    await monitor(api).stop("j|7")
    assert api.calls == [("stopJob", {"companyHandle": "c|1", "jobHandle": "j|7"})]
