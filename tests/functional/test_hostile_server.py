"""Hostile servers (issue 13, rows 1-3, 8 and 9): a servlet that redirects, names another job,
trickles its answer, answers 2xx garbage, or keeps answering 503 while the run is asked to stop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkup.config.model import UploadConfig
from bulkup.pipeline.run import run_upload

from .conftest import PASSWORD, make_tree
from .scripted import JOB, OTHER_JOB, answer


def config(url: str, **changes: Any) -> UploadConfig:
    base: dict[str, Any] = dict(
        server_url=url,
        user="u@x.y",
        password=PASSWORD,
        company_handle="c|1",
        company_root="Acme/",
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
        max_attempts=4,
        no_journal=True,
        no_wait=True,
        concurrency=1,
    )
    base.update(changes)
    return UploadConfig(**base)


def tree(tmp_path: Path, count: int = 3) -> str:
    return str(make_tree(tmp_path / "src", {f"f{i}.jpg": b"x" * 10 for i in range(count)}))


class TestRedirects:
    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    async def test_follow_up_redirect_is_not_followed(
        self, scripted: Any, tmp_path: Path, status: int
    ) -> None:
        """Row 1/2: a follow-up answered with a redirect to another host: nothing (and no
        password) goes there, the files are failed with the status and the host named."""
        elsewhere = await scripted(
            lambda request, kind: _async(answer(OTHER_JOB)), host="127.0.0.2"
        )

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            return _redirect(status, elsewhere.url) if kind == "follow-up" else answer()

        servlet = await scripted(reply)
        report = await run_upload(config(servlet.url), [tree(tmp_path)])
        assert elsewhere.seen == []
        assert report.files_uploaded == 0 and report.files_failed == 3
        reason = report.failures[0].reason
        assert f"HTTP {status}" in reason and "127.0.0.2" in reason
        assert servlet.kinds().count("follow-up") == 1  # not retried: it would redirect again
        assert report.exit_code == 1

    async def test_opening_redirect_is_fatal(self, scripted: Any, tmp_path: Path) -> None:
        """A redirect on the opening POST ends the run (exit 3), naming the status and host;
        the password never leaves for the other host."""
        elsewhere = await scripted(lambda request, kind: _async(answer()), host="127.0.0.2")
        servlet = await scripted(lambda request, kind: _async(_redirect(308, elsewhere.url)))
        report = await run_upload(config(servlet.url), [tree(tmp_path)])
        assert elsewhere.seen == [] and servlet.kinds() == ["open"]
        assert report.exit_code == 3
        assert "HTTP 308" in (report.fatal_error or "")
        assert "127.0.0.2" in (report.fatal_error or "")
        assert PASSWORD not in (report.fatal_error or "")


class TestAnswersThatLie:
    async def test_follow_up_answer_naming_another_job_is_no_acknowledgement(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """Row 2: an answer carrying another job's handle acknowledges nothing: sent once
        more (a protocol error), then the files fail; none is counted uploaded."""

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            return answer(OTHER_JOB if kind == "follow-up" else JOB)

        servlet = await scripted(reply)
        report = await run_upload(config(servlet.url), [tree(tmp_path)])
        assert report.files_uploaded == 0 and report.files_failed == 3
        assert OTHER_JOB in report.failures[0].reason
        assert servlet.kinds() == ["open", "follow-up", "follow-up", "end"]

    async def test_end_job_answer_naming_another_job_is_reported(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """endJob's answer must name the job too, or the close is reported as failed."""

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            return answer(OTHER_JOB if kind == "end" else JOB)

        servlet = await scripted(reply)
        report = await run_upload(config(servlet.url), [tree(tmp_path)])
        assert report.files_uploaded == 3
        assert "could not close job" in (report.fatal_error or "")
        assert servlet.kinds().count("end") == 2

    @pytest.mark.parametrize("body", ["", "<html>OK</html>", "not xml at all"])
    async def test_2xx_garbage_on_a_follow_up_is_retried_once(
        self, scripted: Any, tmp_path: Path, body: str
    ) -> None:
        """Row 8: a 2xx answer that is no document is sent once more (spec §4.5), not up to
        max_attempts."""

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            return web.Response(text=body) if kind == "follow-up" else answer()

        servlet = await scripted(reply)
        report = await run_upload(config(servlet.url, max_attempts=5), [tree(tmp_path)])
        assert servlet.kinds() == ["open", "follow-up", "follow-up", "end"]
        assert report.files_failed == 3 and report.retries == 1

    async def test_2xx_garbage_on_the_opening_opens_at_most_two_jobs(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """Row 8: each opening POST may have opened a job on the server; two at most."""
        servlet = await scripted(lambda request, kind: _async(web.Response(text="OK")))
        report = await run_upload(config(servlet.url, max_attempts=5), [tree(tmp_path)])
        assert servlet.kinds() == ["open", "open"]
        assert report.exit_code == 3


class TestDeadline:
    async def test_trickled_answer_hits_the_post_deadline(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """Row 3: an answer trickled a byte at a time keeps resetting the read timeout; the
        POST's deadline ends it, it is retried, then its files fail; the run ends."""

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            if kind != "follow-up":
                return answer()
            return await _trickle(request)

        servlet = await scripted(reply)
        async with asyncio.timeout(30):  # a hang guard, far above the 2 x 0.5 s expected
            report = await run_upload(
                config(servlet.url, read_timeout_s=0.2, post_timeout_s=0.5, max_attempts=2),
                [tree(tmp_path)],
            )
        assert report.files_failed == 3 and report.files_uploaded == 0
        assert "deadline of 0.5 s" in report.failures[0].reason
        assert servlet.kinds() == ["open", "follow-up", "follow-up", "end"]


class TestStop:
    async def test_stop_during_503s_stops_retries_at_once(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """Row 9: after the stop no POST is retried and no back-off waited out (a 30 s
        back-off here); endJob is still sent once; exit 130; the files stay unsent."""
        stop = asyncio.Event()

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            if kind == "follow-up":
                stop.set()
                return web.Response(status=503)
            return answer()

        servlet = await scripted(reply)
        async with asyncio.timeout(20):  # a hang guard: the back-off alone would be 30 s
            report = await run_upload(
                config(servlet.url, backoff_base_s=30.0, backoff_cap_s=30.0, max_attempts=5),
                [tree(tmp_path)],
                stop=stop,
                hooks=_real_sleep_with_min(30.0),
            )
        assert servlet.kinds() == ["open", "follow-up", "end"]
        assert report.interrupted and report.exit_code == 130
        assert report.files_uploaded == 0 and report.files_failed == 0

    async def test_stop_abandons_a_post_after_the_grace_period(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """A POST in flight when the stop comes gets stop_grace_s, then is abandoned: its
        files are neither uploaded nor failed, and the journal holds no receipt for them,
        so the next run sends them."""
        stop, release = asyncio.Event(), asyncio.Event()

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            if kind == "follow-up" and not release.is_set():
                stop.set()
                await release.wait()
            return answer()

        servlet = await scripted(reply)
        journal = tmp_path / "j.sqlite"
        try:
            async with asyncio.timeout(20):
                report = await run_upload(
                    config(servlet.url, stop_grace_s=0.2, no_journal=False, journal=journal),
                    [tree(tmp_path)],
                    stop=stop,
                )
        finally:
            release.set()
        assert report.interrupted and report.exit_code == 130
        assert report.files_uploaded == 0 and report.files_failed == 0
        assert servlet.kinds() == ["open", "follow-up", "end"]
        again = await run_upload(
            config(servlet.url, no_journal=False, journal=journal), [tree(tmp_path)]
        )
        assert again.files_uploaded == 3 and again.exit_code == 0

    async def test_a_post_that_finishes_within_the_grace_period_counts(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """The POST in flight that is answered within stop_grace_s is acknowledged and
        counted; nothing after it is sent."""
        stop = asyncio.Event()

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            if kind == "follow-up":
                stop.set()
                await asyncio.sleep(0.05)
            return answer()

        servlet = await scripted(reply)
        report = await run_upload(
            config(servlet.url, stop_grace_s=30.0, max_files_per_post=1),
            [tree(tmp_path)],
            stop=stop,
        )
        assert servlet.kinds() == ["open", "follow-up", "end"]
        assert report.files_uploaded == 1 and report.interrupted

    async def test_abort_leaves_at_once_without_end_job(
        self, scripted: Any, tmp_path: Path
    ) -> None:
        """The second signal (``abort``) leaves a POST in flight at once, sends no endJob,
        and still returns the report."""
        stop, abort, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def reply(request: web.Request, kind: str) -> web.StreamResponse:
            if kind == "follow-up":
                stop.set()
                abort.set()
                await release.wait()
            return answer()

        servlet = await scripted(reply)
        try:
            async with asyncio.timeout(20):  # stop_grace_s is 60 s: only abort ends it
                report = await run_upload(
                    config(servlet.url, stop_grace_s=60.0), [tree(tmp_path)], stop=stop, abort=abort
                )
        finally:
            release.set()
        assert servlet.kinds() == ["open", "follow-up"]
        assert report.interrupted and report.exit_code == 130
        assert report.files_uploaded == 0


def _redirect(status: int, location: str) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


async def _async(response: web.StreamResponse) -> web.StreamResponse:
    return response


async def _trickle(request: web.Request) -> web.StreamResponse:
    """An answer sent a byte every 50 ms until the client goes away (200 bytes at most)."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/xml"})
    await response.prepare(request)
    try:
        for byte in (b"<uploadPostReturn><jobHandle>" * 10)[:200]:
            await response.write(bytes([byte]))
            await asyncio.sleep(0.05)
    except (ConnectionError, RuntimeError):
        pass
    return response


def _real_sleep_with_min(seconds: float) -> Any:
    """Hooks whose sleep really waits (so a back-off would be felt) at least ``seconds``."""
    from bulkup.pipeline.run import RunHooks

    async def sleep(wait_s: float) -> None:
        await asyncio.sleep(max(wait_s, seconds))

    return RunHooks(sleep=sleep)
