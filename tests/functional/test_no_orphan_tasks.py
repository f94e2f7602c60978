"""No task outlives its run (issue 15, structured concurrency).

Every task a run starts belongs to a TaskGroup or to an owner that awaits it, so when
``run_upload`` returns (or is cancelled, as Ctrl-C cancels the main task) nothing of the
client is left on the loop: after a clean run, against a faulty server, after a stop, after
an abort, after an internal error, and after a cancellation mid-run. The emulator runs on the
same loop; its own tasks (aiohttp's request handlers, the emulator's processing) are told
apart by the code they run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import bulkup
from bulkup.pipeline.run import run_upload

from .conftest import make_tree

EMULATOR_DIR = os.path.join(os.path.dirname(bulkup.__file__), "emulator")
AIOHTTP_SERVER_FILES = ("web_protocol.py", "web_server.py", "web_runner.py", "web_app.py")
FILES = {f"d{d}/f{d}_{f}.jpg": bytes([65 + f]) * (100 + f) for d in range(3) for f in range(12)}


def _file_of(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    return code.co_filename if code is not None else repr(coro)


def _server_side(task: asyncio.Task[Any]) -> bool:
    where = _file_of(task)
    return where.startswith(EMULATOR_DIR) or (
        os.path.dirname(where) == os.path.dirname(aiohttp.__file__)
        and os.path.basename(where) in AIOHTTP_SERVER_FILES
    )


def _left_behind() -> list[str]:
    """The client's tasks still on the loop, named by their coroutine and file."""
    me = asyncio.current_task()
    return [
        f"{task.get_coro()!r} in {_file_of(task)}"
        for task in asyncio.all_tasks()
        if task is not me and not task.done() and not _server_side(task)
    ]


async def _settled() -> list[str]:
    # one turn of the loop: callbacks already scheduled (a cancelled task's last step) run
    await asyncio.sleep(0)
    return _left_behind()


def _on_upload(action: Callable[[], None], after: int = 1) -> Any:
    """A middleware that calls ``action`` when the ``after``-th upload POST arrives."""
    seen = 0

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        nonlocal seen
        if request.method == "POST" and "UploadFile" in request.path:
            seen += 1
            if seen == after:
                action()
        return await handler(request)

    return middleware


class TestNothingLeftBehind:
    async def test_clean_run_with_journal_and_verdicts(self, emulator: Any, tmp_path: Path) -> None:
        """A whole run (journal, several POSTs, the job log's verdicts) leaves no task."""
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(
            emulator.config(no_journal=False, journal=tmp_path / "j.sqlite", max_files_per_post=5),
            [str(source)],
        )
        assert report.exit_code == 0 and report.files_uploaded == len(FILES)
        assert await _settled() == []

    async def test_faulty_server(self, start_emulator: Any, tmp_path: Path) -> None:
        """503s and dropped connections, retried: nothing left once the run is over."""
        server = await start_emulator(faults="seed=7,http503=0.2,drop=0.2")
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(server.config(max_files_per_post=3, no_wait=True), [str(source)])
        assert report.files_uploaded + report.files_failed == len(FILES)
        assert await _settled() == []

    async def test_stop_mid_run(self, start_emulator: Any, tmp_path: Path) -> None:
        """A stop (the first Ctrl-C) after the second POST: the run winds down and leaves
        nothing."""
        stop = asyncio.Event()
        server = await start_emulator(middlewares=(_on_upload(stop.set, after=2),))
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(
            server.config(max_files_per_post=2, concurrency=2, no_wait=True),
            [str(source)],
            stop=stop,
        )
        assert report.interrupted and report.files_uploaded < len(FILES)
        assert await _settled() == []

    async def test_stop_with_full_pipes(self, start_emulator: Any, tmp_path: Path) -> None:
        """A stop while the walker and the planner wait on full pipes (room for one file,
        one worker): the stages that were held back end too (no end marker left waiting to be
        put into a pipe nobody reads)."""
        stop = asyncio.Event()
        server = await start_emulator(middlewares=(_on_upload(stop.set, after=2),))
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(
            server.config(max_files_per_post=1, concurrency=1, queue_size=1, no_wait=True),
            [str(source)],
            stop=stop,
        )
        assert report.interrupted and report.files_uploaded < len(FILES)
        assert await _settled() == []

    async def test_abort_mid_run(self, start_emulator: Any, tmp_path: Path) -> None:
        """The second signal leaves at once, and still leaves nothing running."""
        stop, abort = asyncio.Event(), asyncio.Event()

        def both() -> None:
            stop.set()
            abort.set()

        server = await start_emulator(middlewares=(_on_upload(both, after=2),))
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(
            server.config(max_files_per_post=2, stop_grace_s=60.0, no_wait=True),
            [str(source)],
            stop=stop,
            abort=abort,
        )
        assert report.interrupted
        assert await _settled() == []

    async def test_internal_error(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A bug in a stage ends the run with exit 3; the other stages are gone too."""
        from bulkup.pipeline.planner import SyncPlanner

        async def broken(self: Any, walked: Any, to_send: Any) -> None:
            await walked.take(1)
            raise RuntimeError("planner bug")

        monkeypatch.setattr(SyncPlanner, "run", broken)
        source = make_tree(tmp_path / "src", FILES)
        report = await run_upload(emulator.config(no_wait=True), [str(source)])
        assert report.exit_code == 3 and "planner bug" in (report.fatal_error or "")
        assert await _settled() == []

    async def test_cancelled_mid_run(self, start_emulator: Any, tmp_path: Path) -> None:
        """Cancelling the run (what Ctrl-C does to asyncio.run's main task) mid-upload:
        the cancellation propagates and every task of the run is gone."""
        posted = asyncio.Event()
        server = await start_emulator(middlewares=(_on_upload(posted.set, after=2),))
        source = make_tree(tmp_path / "src", FILES)
        run = asyncio.create_task(
            run_upload(server.config(max_files_per_post=2, no_wait=True), [str(source)])
        )
        await posted.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert await _settled() == []

    async def test_the_check_sees_a_task_left_behind(self) -> None:
        """The check is not blind: a client-side task still running is reported."""
        stray = asyncio.create_task(asyncio.Event().wait())  # runs until cancelled
        try:
            assert len(await _settled()) == 1
        finally:
            stray.cancel()
            await asyncio.wait({stray})
