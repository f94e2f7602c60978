"""The seeded fault plan (``--faults``): reproducible 503s, dropped connections, 30000s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from bulkup.emulator import app as app_module
from bulkup.emulator import build_settings, make_app
from bulkup.emulator.faultplan import FaultPlan, FaultPlanError

from .conftest import PASSWORD, USER, Emulator, RawPost, StartEmulator, wait_until
from .wire import assert_fault, auth_xml, body, files, params_xml, xml_part

PLAN = "seed=7,http503=0.3,drop=0.2,fault30000=0.2"


async def outcome(emu: Emulator, n: int) -> str:
    """Classify one opening POST with a file: ok / 503 / drop / 30000."""
    try:
        reply = await emu.send(params_xml(job_name=f"fp-{n}"), files({f"f{n}.jpg": b"x" * 2000}))
    except aiohttp.ClientError:
        return "drop"
    if reply.status == 503:
        return "503"
    if reply.status == 200:
        reply.job_handle()
        return "ok"
    assert_fault(reply, "ipsApiFault", 30000)
    return "30000"


async def run_sequence(
    start_emulator: StartEmulator, tmp_path: Path, name: str, plan: str, count: int = 30
) -> tuple[list[str], Emulator]:
    emu = await start_emulator(root=tmp_path / name, faults=plan)
    return [await outcome(emu, n) for n in range(count)], emu


class TestSequence:
    async def test_same_seed_same_outcomes(
        self, start_emulator: StartEmulator, tmp_path: Path
    ) -> None:
        """The same seed gives the same outcome sequence on two fresh emulators."""
        first, emu1 = await run_sequence(start_emulator, tmp_path, "a", PLAN)
        second, emu2 = await run_sequence(start_emulator, tmp_path, "b", PLAN)
        assert first == second
        assert set(first) == {"ok", "503", "drop", "30000"}, first
        ok = first.count("ok")
        assert len(await emu1.jobs()) == ok == len(emu1.stored())
        assert sorted(emu1.stored()) == sorted(emu2.stored())

    async def test_other_seed_other_outcomes(
        self, start_emulator: StartEmulator, tmp_path: Path
    ) -> None:
        """Another seed gives another sequence (the seed really drives the draws)."""
        first, _ = await run_sequence(start_emulator, tmp_path, "a", PLAN)
        other, _ = await run_sequence(start_emulator, tmp_path, "b", PLAN.replace("7", "8", 1))
        assert first != other

    async def test_injected_counts(self, start_emulator: StartEmulator, tmp_path: Path) -> None:
        """The inspection route counts what was injected."""
        seen, emu = await run_sequence(start_emulator, tmp_path, "a", PLAN, count=12)
        url = f"http://{emu.host}:{emu.port}/_emulator/jobs"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            counts = (await response.json())["injected"]
        assert counts == {
            "none": seen.count("ok"),
            "http503": seen.count("503"),
            "drop": seen.count("drop"),
            "fault30000": seen.count("30000"),
        }


class TestEachFault:
    async def test_drop_closes_without_response(self, start_emulator: StartEmulator) -> None:
        """A dropped POST gets no response bytes at all and stores nothing."""
        emu = await start_emulator(faults="seed=3,drop=1")
        data = body(
            [
                xml_part("auth", auth_xml(USER, PASSWORD)),
                xml_part("uploadParams", params_xml(job_name="dropped")),
                *files({"d.jpg": b"d" * 100_000}),
            ]
        )
        async with RawPost(emu, len(data)) as post:
            try:
                await post.send(data)
                assert post.reader is not None
                received = await post.reader.read()
            except ConnectionError:
                received = b""
        assert received == b""
        assert await emu.jobs() == []
        assert emu.stored() == {} and emu.staged() == []

    async def test_injected_503_has_no_fault_body(self, start_emulator: StartEmulator) -> None:
        """An injected 503 is a bare 503: no fault document, nothing stored."""
        emu = await start_emulator(faults="http503=1")
        reply = await emu.send(params_xml(job_name="busy"), files({"b.jpg": b"b"}))
        assert reply.status == 503
        assert b"Fault" not in reply.body and not reply.body.startswith(b"<?xml")
        assert await emu.jobs() == []
        assert emu.stored() == {} and emu.staged() == []

    async def test_latency(
        self, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``latency_ms`` delays every POST: its answer waits for a 60 ms sleep (held here
        until released, so nothing is timed), one per POST."""
        emu = await start_emulator(faults="latency_ms=60")
        slept: list[float] = []
        released = asyncio.Event()

        async def held(delay: float) -> None:
            slept.append(delay)
            await released.wait()

        monkeypatch.setattr(
            app_module, "asyncio", SimpleNamespace(**{**vars(asyncio), "sleep": held})
        )
        sending = asyncio.create_task(emu.send(params_xml(job_name="slow")))
        await wait_until(lambda: slept == [0.06])
        assert await emu.jobs() == []  # held before the body is read: no job opened yet
        assert not sending.done()
        released.set()
        (await sending).job_handle()
        (await emu.send(params_xml(job_name="second"))).job_handle()
        assert slept == [0.06, 0.06]


class TestParsing:
    def test_parse(self) -> None:
        """A full plan parses into its numbers."""
        plan = FaultPlan.parse(" seed=7, http503=0.3,drop=0.2,fault30000=0.2,latency_ms=20 ")
        assert (plan.seed, plan.http503, plan.drop, plan.fault30000, plan.latency_ms) == (
            7,
            0.3,
            0.2,
            0.2,
            20.0,
        )
        assert plan.active

    def test_empty_plan(self) -> None:
        """An empty plan injects nothing."""
        plan = FaultPlan.parse("")
        assert not plan.active
        assert {plan.next().value for _ in range(50)} == {"none"}

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("bogus=1", "bogus"),
            ("http503=abc", "http503"),
            ("drop=1.5", "drop"),
            ("fault30000=-0.1", "fault30000"),
            ("latency_ms=-1", "latency_ms"),
            ("seed", "seed"),
            ("seed=x", "seed"),
            ("latency_ms=fast", "latency_ms"),
        ],
    )
    def test_bad_plan_names_key(self, text: str, key: str) -> None:
        """A bad plan raises FaultPlanError naming the offending key."""
        with pytest.raises(FaultPlanError, match=key):
            FaultPlan.parse(text)

    def test_shares_above_one(self) -> None:
        """Shares adding up to more than 1 are refused."""
        with pytest.raises(FaultPlanError, match="more than 1"):
            FaultPlan.parse("http503=0.6,drop=0.6")

    def test_make_app_refuses_bad_plan(self, tmp_path: Path) -> None:
        """make_app refuses a bad plan up front."""
        with pytest.raises(FaultPlanError, match="bogus"):
            make_app(build_settings(root=tmp_path, faults="bogus=1"))
