"""Issue 13, rows 12-15 and rule 9: the emulator is a server that can face a network.

Bounded memory whatever the part count, slow or silent clients dropped, a connection cap, no
traceback for a client that went away, backslashes kept in ``filename`` (D-16 step 3) and one
folder/asset name space per company (D-15). Everything on loopback, with sub-second timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bulkup.emulator import app as emulator_app

from .conftest import PASSWORD, USER, Emulator, RawPost, wait_until
from .wire import auth_xml, body, file_part, params_xml, xml_part

Events = list[dict[str, Any]]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[Events]:
    """The emulator's structured log events (fresh, uncached loggers while captured)."""
    with capture_logs() as captured:
        monkeypatch.setattr(emulator_app, "log", structlog.get_logger("bulkup.emulator"))
        yield captured


def named(captured: Events, event: str) -> Events:
    return [e for e in captured if e["event"] == event]


class TestBackslashKept:
    """Row 14: D-16 step 3 as written; a servlet's parser keeps ``\\`` in quoted values."""

    async def test_backslashes_become_folders(self, emu: Emulator) -> None:
        """``filename="A\\b\\c.jpg"`` is stored as ``A/b/c.jpg`` (not ``Abc.jpg``)."""
        handle = await emu.open_job()
        reply = await emu.send(params_xml(job_handle=handle),
                               [file_part(b'"A\\b\\c.jpg"', b"jpeg")])
        assert reply.job_handle() == handle
        assert emu.stored() == {"A/b/c.jpg": b"jpeg"}

    async def test_escaped_quote_does_not_end_the_value(self, emu: Emulator) -> None:
        """``\\"`` keeps the value open and the backslash stays: ``a\\"b.jpg`` → ``a/"b.jpg``,
        which D-25 refuses (``"`` in a name); nothing is stored."""
        handle = await emu.open_job()
        await emu.send(params_xml(job_handle=handle),
                       [file_part(b'"a\\"b.jpg"; x=1', b"jpeg")])
        record = (await emu.job(handle))["files"][0]
        assert record["target_path"] == 'Acme/a/"b.jpg'
        assert record["outcome"] == "UploadError"
        assert emu.stored() == {}


class TestClientGone:
    """Row 15: a client that cuts its body mid-POST costs one log line, not a traceback."""

    async def test_cut_body_logs_one_line(self, emu: Emulator, events: Events,
                                          caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="aiohttp")
        data = body([xml_part("auth", auth_xml(USER, PASSWORD)),
                     xml_part("uploadParams", params_xml()), file_part("x.jpg", b"x" * 100_000)])
        async with RawPost(emu, len(data)) as post:
            await post.send(data[: len(data) // 2])
        await wait_until(lambda: bool(named(events, "client_gone")))
        await asyncio.sleep(0.05)  # let aiohttp finish the request it was handling
        assert len(named(events, "client_gone")) == 1
        assert named(events, "client_gone")[0]["path"] == "/scene7/UploadFile"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert not [r for r in caplog.records if r.exc_info]
        assert emu.staged() == []
        assert await emu.jobs() == []
