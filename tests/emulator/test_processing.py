"""Processing after the POST returns (D-13, D-23, D-24) and stopJob/deleteJob (D-30).

Driven by the fake clock: ``processing_delay_s`` is waited with the emulator's injected sleep,
so advancing the clock releases exactly the files whose time has come.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bulkup.emulator import build_settings, make_app
from bulkup.emulator.app import STATE
from bulkup.emulator.cli import add_serve_arguments
from bulkup.emulator.settings import SettingsError

from .conftest import Emulator, StartEmulator, wait_until
from .soapwire import (
    SOAP11,
    SOAP12,
    assert_soap_fault,
    call,
    fields,
    flat,
    listed,
    names,
    text,
)
from .wire import assert_fault, auth_xml, body, content_type, files, params_xml, xml_part

IPS = "ipsApiFault"
DELAY = 1.0
LINGER = 30.0


@pytest.fixture
async def slow(start_emulator: StartEmulator) -> Emulator:
    """An emulator that processes each file DELAY (fake) seconds after the previous one."""
    return await start_emulator(processing_delay_s=DELAY, done_linger_s=LINGER)


async def states(emu: Emulator) -> dict[str, tuple[str, str]]:
    """jobHandle → (state, progress) from getActiveJobs."""
    reply = await call(emu.soap_url, "getActiveJobs")
    return {
        text(j, "jobHandle") or "": (text(j, "state") or "", text(j, "progress") or "")
        for j in listed(reply.answer("getActiveJobs"), "jobArray")
    }


async def log_of(emu: Emulator, handle: str) -> tuple[ET.Element, list[dict[str, str]]]:
    inner = fields(companyHandle="c|42", jobHandle=handle)
    [log] = listed(
        (await call(emu.soap_url, "getJobLogDetails", inner)).answer("getJobLogDetails"),
        "jobLogArray",
    )
    return log, [flat(item) for item in listed(log, "detailArray")]


async def outcomes(emu: Emulator, handle: str) -> list[str]:
    return [f["outcome"] for f in (await emu.job(handle))["files"]]


async def release(emu: Emulator, seconds: float = DELAY) -> None:
    """Advance the fake clock once the processor waits on a file (so its delay has begun)."""
    processor = emu.app[STATE].processor
    await wait_until(lambda: processor.working is not None)
    emu.clock.advance(seconds)


def held(emu: Emulator) -> list[str]:
    return [name for name in emu.staged() if name.startswith("held-")]


async def control(emu: Emulator, operation: str, handle: str, soap: str = SOAP11) -> None:
    reply = await call(
        emu.soap_url, operation, fields(companyHandle="c|42", jobHandle=handle), soap=soap
    )
    assert names(reply.answer(operation, soap=soap)) == []


class TestDelayedProcessing:
    """processing_delay_s > 0: Running while files wait, Done once closed and drained."""

    async def test_running_then_done(self, slow: Emulator) -> None:
        """Files wait (Pending, held in staging), are processed one per delay, then Done."""
        handle = await slow.open_job("slow")
        (await slow.upload(handle, {"a.jpg": b"a", "b.jpg": b"b"})).job_handle()
        assert await states(slow) == {handle: ("Running", "0")}
        assert await outcomes(slow, handle) == ["Pending", "Pending"]
        assert len(held(slow)) == 2 and slow.stored() == {}
        _, rows = await log_of(slow, handle)
        assert [r["logType"] for r in rows] == [
            "BeginUpload",
            "OriginalJobName",
            "JobClient",
            "JobType",
        ]
        await release(slow)
        await wait_until(lambda: slow.stored() == {"a.jpg": b"a"})
        assert await states(slow) == {handle: ("Running", "50")}
        (await slow.end_job(handle)).job_handle()
        assert await states(slow) == {handle: ("Running", "50")}
        log, _ = await log_of(slow, handle)
        assert text(log, "endDate") is None
        await release(slow)
        await wait_until(lambda: len(slow.stored()) == 2)
        assert await states(slow) == {handle: ("Done", "100")}
        log, rows = await log_of(slow, handle)
        assert text(log, "logType") == "EndUpload" and text(log, "endDate")
        assert [r["logType"] for r in rows[4:]] == [
            "UploadSuccess",
            "UploadSuccess",
            "TotalFileCount",
            "EndUpload",
        ]
        assert held(slow) == [] and slow.staged() == []

    async def test_done_lingers_then_vanishes(self, slow: Emulator) -> None:
        """D-23: a Done job stays in getActiveJobs for done_linger_s, its log for good."""
        handle = await slow.open_job("linger")
        (await slow.end_job(handle)).job_handle()
        slow.clock.advance(LINGER - 0.5)
        assert await states(slow) == {handle: ("Done", "100")}
        slow.clock.advance(0.5)
        assert await states(slow) == {}
        log, _ = await log_of(slow, handle)
        assert text(log, "logType") == "EndUpload"

    async def test_arrival_order_across_jobs(self, slow: Emulator) -> None:
        """D-12: files are processed in the arrival order of their POSTs, whatever the job."""
        first, second = await slow.open_job("one"), await slow.open_job("two")
        for handle, name in ((first, "p1.jpg"), (second, "q1.jpg"), (first, "p2.jpg")):
            (await slow.upload(handle, {name: b"x"})).job_handle()
        seen = []
        for _ in range(3):
            await release(slow)
            await wait_until(lambda: len(slow.stored()) == len(seen) + 1)
            seen.append(next(n for n in slow.stored() if n not in seen))
        assert seen == ["p1.jpg", "q1.jpg", "p2.jpg"]

    async def test_refused_and_failing_files_later(self, slow: Emulator) -> None:
        """Per-file errors found later are log lines (D-13); the POST itself was a 200."""
        handle = await slow.open_job("later")
        reply = await slow.send(
            params_xml(job_handle=handle, end_job="true"), files({"a/./b.jpg": b"1", "e.jpg": b""})
        )
        reply.job_handle()
        for left in (1, 0):
            await release(slow)
            await wait_until(lambda left=left: len(held(slow)) == left)  # type: ignore[misc]
        assert await states(slow) == {handle: ("Done", "100")}
        _, rows = await log_of(slow, handle)
        assert [r["logMessage"] for r in rows[4:6]] == [
            "a/./b.jpg: path segment '.' is not allowed",
            "Acme/e.jpg: file is empty (0 bytes)",
        ]

    async def test_idle_timeout_drains(self, slow: Emulator) -> None:
        """D-08: an idle-closed job still processes its files, then ends saying why."""
        handle = await slow.open_job("idle")
        (await slow.upload(handle, {"i.jpg": b"i"})).job_handle()
        await release(slow, 61)
        await wait_until(lambda: slow.stored() == {"i.jpg": b"i"})
        assert await states(slow) == {handle: ("Done", "100")}
        _, rows = await log_of(slow, handle)
        assert rows[-1]["logMessage"].endswith("closed by idle timeout (no POST for 60 s)")
        assert_fault(await slow.upload(handle, {"j.jpg": b"j"}), IPS, 30001)

    async def test_delay_zero_is_synchronous(self, emu: Emulator) -> None:
        """With the default delay 0, files are processed before the POST is answered."""
        handle = await emu.open_job("now")
        (await emu.upload(handle, {"n.jpg": b"n"})).job_handle()
        assert await outcomes(emu, handle) == ["UploadSuccess"]
        assert await states(emu) == {handle: ("WaitingClient", "100")}

    async def test_shutdown_discards_held_files(self, tmp_path: Path) -> None:
        """Files still waiting when the emulator stops are removed from staging."""
        settings = build_settings(root=tmp_path / "r", processing_delay_s=3600.0)
        runner = web.AppRunner(make_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/scene7/UploadFile"
        data = body(
            [
                xml_part("auth", auth_xml("demo@example.com", "demo")),
                xml_part("uploadParams", params_xml("c|1", job_name="bye")),
                *files({"z.jpg": b"z"}),
            ]
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=data, headers={"Content-Type": content_type()}) as response,
        ):
            assert response.status == 200
        staging = tmp_path / "r" / ".bulkup-emulator" / "staging"
        assert len(list(staging.iterdir())) == 1
        await runner.cleanup()
        assert list(staging.iterdir()) == []


class TestStopAndDelete:
    """D-30: stopJob and deleteJob."""

    async def test_stop_mid_job(self, slow: Emulator) -> None:
        """Stopping: waiting files are FileCancel, the one in work finishes, POSTs refused."""
        handle = await slow.open_job("stop")
        named = {"s1.jpg": b"1", "s2.jpg": b"2", "s3.jpg": b"3"}
        (await slow.upload(handle, named)).job_handle()
        processor = slow.app[STATE].processor
        await wait_until(lambda: processor.working == "Acme/s1.jpg")
        await control(slow, "stopJob", handle)
        assert (await states(slow))[handle][0] == "Stopping"
        assert await outcomes(slow, handle) == ["Pending", "FileCancel", "FileCancel"]
        assert len(held(slow)) == 1
        reply = await slow.upload(handle, {"s4.jpg": b"4"})
        assert "closed (stopJob)" in assert_fault(reply, IPS, 30001)
        await release(slow)
        await wait_until(lambda: slow.stored() == {"s1.jpg": b"1"})
        assert (await states(slow))[handle][0] == "Done"
        log, rows = await log_of(slow, handle)
        assert [(r["logType"], r["logMessage"]) for r in rows[4:]] == [
            ("UploadSuccess", "Acme/s1.jpg was processed into IPS"),
            ("FileCancel", "Acme/s2.jpg: cancelled by stopJob"),
            ("FileCancel", "Acme/s3.jpg: cancelled by stopJob"),
            ("TotalFileCount", "3"),
            ("EndUpload", "Upload job stop ended: stopped by stopJob"),
        ]
        assert "assetHandle" not in rows[5] and rows[5]["assetName"] == "s2"
        got = flat(log)
        assert (got["fatalError"], got["fileSuccessCount"], got["fileErrorCount"]) == (
            "true",
            "1",
            "2",
        )
        assert held(slow) == []

    async def test_stop_idle_job(self, emu: Emulator) -> None:
        """A job with nothing waiting is Done at once, fatalError true; later POSTs 30001."""
        handle = await emu.open_job("quiet")
        (await emu.upload(handle, {"q.jpg": b"q"})).job_handle()
        await control(emu, "stopJob", handle, soap=SOAP12)
        assert await states(emu) == {handle: ("Done", "100")}
        log, rows = await log_of(emu, handle)
        assert text(log, "fatalError") == "true" and rows[-1]["logType"] == "EndUpload"
        assert_fault(await emu.upload(handle, {"r.jpg": b"r"}), IPS, 30001)

    async def test_delete_job(self, slow: Emulator) -> None:
        """deleteJob: gone from getActiveJobs at once, files cancelled, the log remains."""
        handle = await slow.open_job("del")
        (await slow.upload(handle, {"d1.jpg": b"1", "d2.jpg": b"2"})).job_handle()
        processor = slow.app[STATE].processor
        await wait_until(lambda: processor.working == "Acme/d1.jpg")
        await control(slow, "deleteJob", handle)
        assert await states(slow) == {}
        assert (await slow.job(handle))["deleted"] is True
        await release(slow)
        await wait_until(lambda: held(slow) == [])
        log, rows = await log_of(slow, handle)
        assert [r["logType"] for r in rows[4:]] == [
            "UploadSuccess",
            "FileCancel",
            "TotalFileCount",
            "EndUpload",
        ]
        assert rows[5]["logMessage"] == "Acme/d2.jpg: cancelled by deleteJob"
        assert text(log, "fatalError") == "true"

    async def test_delete_done_job(self, emu: Emulator) -> None:
        """Deleting a Done job only drops it from getActiveJobs; its log is unchanged."""
        handle = await emu.open_job("finished")
        (await emu.end_job(handle)).job_handle()
        await control(emu, "deleteJob", handle)
        assert await states(emu) == {}
        log, _ = await log_of(emu, handle)
        assert text(log, "fatalError") == "false"

    @pytest.mark.parametrize(
        ("inner", "code"),
        [
            (fields(companyHandle="c|42", jobHandle="j|42||nope|1"), 30001),
            (fields(companyHandle="c|42"), 30002),
            (fields(jobHandle="j|42||x|1"), 30002),
        ],
    )
    async def test_stop_faults(self, emu: Emulator, inner: str, code: int) -> None:
        """An unknown jobHandle is 30001; a missing companyHandle or jobHandle 30002."""
        assert_soap_fault(await call(emu.soap_url, "stopJob", inner), IPS, code)

    async def test_job_of_other_company(self, emu: Emulator) -> None:
        """A job of another company, named with this one's handle: 30001, job untouched."""
        handle = await emu.open_job("theirs", company="c|43")
        inner = fields(companyHandle="c|42", jobHandle=handle)
        assert_soap_fault(await call(emu.soap_url, "deleteJob", inner), IPS, 30001)
        assert (await emu.job(handle))["open"] is True


class TestSettings:
    """The two knobs: processing_delay_s and done_linger_s."""

    def test_flags(self, tmp_path: Path) -> None:
        """``bulkup serve --processing-delay-s --done-linger-s`` reach the settings."""
        parser = argparse.ArgumentParser()
        add_serve_arguments(parser)
        args = parser.parse_args(["--processing-delay-s", "0.25", "--done-linger-s", "5"])
        settings = build_settings(
            root=tmp_path,
            processing_delay_s=args.processing_delay_s,
            done_linger_s=args.done_linger_s,
        )
        assert (settings.processing_delay_s, settings.done_linger_s) == (0.25, 5.0)
        assert build_settings(root=tmp_path).processing_delay_s == 0.0

    def test_toml_keys(self, tmp_path: Path) -> None:
        """The [serve] table accepts processing_delay_s and done_linger_s."""
        config = tmp_path / "c.toml"
        config.write_text("[serve]\nprocessing_delay_s = 2\ndone_linger_s = 0\n")
        settings = build_settings(root=tmp_path, config=config)
        assert (settings.processing_delay_s, settings.done_linger_s) == (2.0, 0.0)

    @pytest.mark.parametrize("knob", ["processing_delay_s", "done_linger_s"])
    def test_negative_refused(self, tmp_path: Path, knob: str) -> None:
        """A negative delay or linger is a settings error."""
        with pytest.raises(SettingsError, match=knob.replace("_", "-")):
            build_settings(root=tmp_path, **{knob: -1.0})
