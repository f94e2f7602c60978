"""A server that pushes back (issue 17): ``max_inflight`` (503/429 with Retry-After, over real
TCP), ``response_delay_ms`` and ``ingest_rate`` (on a fake clock: the sleeps asked for are
checked, never the wall clock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bulkup.emulator.app import STATE
from bulkup.emulator.pushback import BURST_BYTES, IngestBucket, Pushback

from .conftest import PASSWORD, USER, Emulator, FakeClock, RawPost, StartEmulator, wait_until
from .soapwire import call, fields
from .wire import Reply, auth_xml, body, content_type, files, params_xml, xml_part

pytestmark = pytest.mark.timeout(30)
FILE = b"\x01pushback\xfe" * 400  # 4,400 bytes


class SteppingClock(FakeClock):
    """A fake clock whose sleep records the delay and moves the clock on to its deadline at
    once (never back), so paced reads and delayed answers cost no real time."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        deadline = self.now + delay
        await asyncio.sleep(0)
        self.now = max(self.now, deadline)


def pushback(emu: Emulator) -> Pushback:
    return emu.app[STATE].pushback


def upload_body(handle: str, name: str, content: bytes = FILE, company: str = "c|42") -> bytes:
    """A follow-up POST's body with one file."""
    return body(
        [
            xml_part("auth", auth_xml(USER, PASSWORD)),
            xml_part("uploadParams", params_xml(company, job_handle=handle)),
            *files({f"Acme/p/{name}.jpg": content}),
        ]
    )


@contextlib.asynccontextmanager
async def held_posts(emu: Emulator, handle: str, count: int) -> AsyncIterator[list[RawPost]]:
    """``count`` POSTs in flight: each has sent its XML parts and part of its file, no more."""
    posts = []
    async with contextlib.AsyncExitStack() as stack:
        for i in range(count):
            data = upload_body(handle, f"held{i}")
            post = await stack.enter_async_context(RawPost(emu, len(data)))
            await post.send(data[:-1000])
            post.rest = data[-1000:]  # type: ignore[attr-defined]
            posts.append(post)
        await wait_until(lambda: pushback(emu).inflight.counts.get("c|42") == count)
        yield posts


async def finish(post: RawPost) -> Reply:
    await post.send(post.rest)  # type: ignore[attr-defined]
    return await post.response()


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, host: str
) -> Reply:
    """One keep-alive POST on an open connection, and its answer."""
    writer.write(
        f"POST /scene7/UploadFile HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: {content_type()}\r\nContent-Length: {len(data)}\r\n\r\n".encode("ascii")
        + data
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    raw = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return Reply(int(lines[0].split()[1]), headers, raw)


def assert_refused(reply: Reply, status: int = 503, retry_after: str = "1") -> None:
    assert reply.status == status, reply.body[:300]
    assert reply.headers["retry-after"] == retry_after
    assert reply.headers["content-type"].startswith("text/plain")
    assert b"uploads in flight for company c|42" in reply.body
    # Not a fault document: spec 4.5 makes a 5xx/429 without one a retryable transport failure.
    assert b"Fault" not in reply.body and not reply.body.startswith(b"<")


class TestMaxInflight:
    """``--max-inflight N``: the N+1th POST of a company is refused until one is answered."""

    async def test_one_beyond_the_limit_is_refused_then_accepted(
        self, start_emulator: StartEmulator
    ) -> None:
        """Two POSTs held in flight; a third gets 503 + Retry-After and nothing of it is kept;
        once the two are answered, the same POST is accepted."""
        emu = await start_emulator(max_inflight=2)
        handle = await emu.open_job("busy")
        async with held_posts(emu, handle, 2) as posts:
            refused = await emu.upload(handle, {"Acme/p/late.jpg": FILE})
            assert_refused(refused)
            assert pushback(emu).inflight.refused == 1
            replies = [await finish(post) for post in posts]
        assert [r.status for r in replies] == [200, 200]
        assert pushback(emu).inflight.counts == {}
        assert "p/late.jpg" not in emu.stored()
        again = await emu.upload(handle, {"Acme/p/late.jpg": FILE})
        assert again.job_handle() == handle
        assert emu.stored()["p/late.jpg"] == FILE
        assert emu.staged() == []

    async def test_429_and_retry_after_are_configurable(
        self, start_emulator: StartEmulator
    ) -> None:
        """``--pushback-status 429 --retry-after-s 7``."""
        emu = await start_emulator(max_inflight=1, pushback_status=429, retry_after_s=7)
        handle = await emu.open_job("busy")
        async with held_posts(emu, handle, 1) as posts:
            assert_refused(await emu.upload(handle, {"Acme/p/x.jpg": FILE}), 429, "7")
            assert (await finish(posts[0])).status == 200

    async def test_per_company_and_without_files_and_soap_not_counted(
        self, start_emulator: StartEmulator
    ) -> None:
        """The limit is per company: another company's POST goes through; a POST without
        files (opening a job) counts like any other; SOAP calls are neither counted nor
        refused."""
        emu = await start_emulator(max_inflight=1)
        handle = await emu.open_job("busy")
        async with held_posts(emu, handle, 1) as posts:
            opening = await emu.send(params_xml("c|42", job_name="second"))
            assert_refused(opening)
            other = await emu.send(params_xml("c|43", job_name="elsewhere"))
            assert other.job_handle().startswith("j|43|")
            soap = await call(emu.soap_url, "getProperty", fields(name="IpsVersion"))
            assert soap.status == 200
            assert (await finish(posts[0])).status == 200
        assert pushback(emu).inflight.refused == 1

    async def test_refused_post_leaves_the_connection_usable(
        self, start_emulator: StartEmulator
    ) -> None:
        """The refused POST's body is read to its end before the 503 (keep-alive kept), so the
        client retries on the same connection."""
        emu = await start_emulator(max_inflight=1)
        handle = await emu.open_job("busy")
        data = upload_body(handle, "retried")
        reader, writer = await asyncio.open_connection(emu.host, emu.port)
        try:
            async with held_posts(emu, handle, 1) as posts:
                first = await exchange(reader, writer, data, emu.host)
                assert_refused(first)
                assert first.headers.get("connection", "").lower() != "close"
                assert (await finish(posts[0])).status == 200
            second = await exchange(reader, writer, data, emu.host)
            assert second.job_handle() == handle
        finally:
            writer.close()
        assert emu.stored()["p/retried.jpg"] == FILE

    async def test_refused_body_past_the_drain_limit_closes(
        self, start_emulator: StartEmulator
    ) -> None:
        """A refused body longer than ``drain_limit_bytes`` is not read to its end: the answer
        says Connection: close."""
        emu = await start_emulator(max_inflight=1, drain_limit_bytes=2_000)
        handle = await emu.open_job("busy")
        data = upload_body(handle, "big", FILE * 10)
        async with held_posts(emu, handle, 1) as posts:
            async with RawPost(emu, len(data)) as late:
                await late.send(data)
                reply = await late.response()
            assert_refused(reply)
            assert reply.headers["connection"].lower() == "close"
            assert (await finish(posts[0])).status == 200

    async def test_off_by_default(self, emu: Emulator) -> None:
        """No limit unless asked: three POSTs held, a fourth accepted."""
        handle = await emu.open_job("free")
        async with held_posts(emu, handle, 3) as posts:
            assert (await emu.upload(handle, {"Acme/p/x.jpg": FILE})).status == 200
            for post in posts:
                assert (await finish(post)).status == 200
        assert pushback(emu).inflight.refused == 0


class TestResponseDelay:
    """``--response-delay-ms``: every answer waits, on the injected sleep."""

    async def test_every_answer_waits_on_the_injected_sleep(
        self, start_emulator: StartEmulator
    ) -> None:
        """Upload POSTs (opening, with files, refused) and SOAP calls each wait 50 ms."""
        clock = SteppingClock()
        emu = await start_emulator(response_delay_ms=50, clock=clock)
        handle = await emu.open_job("far")
        assert (await emu.upload(handle, {"Acme/p/a.jpg": FILE})).status == 200
        assert (await call(emu.soap_url, "getProperty", fields(name="IpsVersion"))).status == 200
        assert clock.sleeps == [0.05, 0.05, 0.05]

    async def test_the_wait_does_not_block_and_holds_the_slot(
        self, start_emulator: StartEmulator
    ) -> None:
        """While an answer waits (the clock not moved), the loop serves others; the POST keeps
        its place in flight, so with ``max_inflight`` 1 the next one is refused; moving the
        clock releases both answers."""
        clock = FakeClock()  # its sleep returns only once the test moves it
        emu = await start_emulator(response_delay_ms=50, max_inflight=1, clock=clock)
        opening = asyncio.create_task(emu.open_job("far"))
        await wait_until(lambda: pushback(emu).inflight.counts.get("c|42") == 1)
        assert len(await emu.jobs()) == 1  # committed; the inspection route is not delayed
        late = asyncio.create_task(emu.send(params_xml("c|42", job_name="late")))
        await wait_until(lambda: pushback(emu).inflight.refused == 1)
        assert not opening.done() and not late.done()
        clock.advance(0.05)
        assert (await opening).startswith("j|42||far|")
        assert_refused(await late)


class TestIngestRate:
    """``--ingest-rate``: one token bucket paces every body; the sleeps add up to bytes/rate."""

    async def test_bucket_sleeps_add_up_to_bytes_over_rate(self) -> None:
        clock = SteppingClock()
        bucket = IngestBucket(10_000, clock=clock, sleep=clock.sleep)
        for size in (1_000, 5_000, 70_000, 1):
            await bucket.take(size)
        assert sum(clock.sleeps) == pytest.approx(76_001 / 10_000)

    async def test_an_idle_bucket_saves_one_burst(self) -> None:
        clock = SteppingClock()
        bucket = IngestBucket(10_000, clock=clock, sleep=clock.sleep)
        clock.advance(3_600)
        await bucket.take(BURST_BYTES)
        assert clock.sleeps == []
        await bucket.take(500)
        assert clock.sleeps == [pytest.approx(0.05)]

    async def test_one_post_is_paced(self, start_emulator: StartEmulator) -> None:
        """Every byte of the body is paid for: the clock moves on by bytes / rate."""
        clock = SteppingClock()
        emu = await start_emulator(ingest_rate=256 * 1024, clock=clock)
        handle = await emu.open_job("slow")
        bucket = pushback(emu).bucket
        assert bucket is not None
        taken, start = bucket.taken, clock.now
        data = upload_body(handle, "paced", FILE * 100)  # 440 KB
        reply = await emu.post_raw(data)
        assert reply.job_handle() == handle
        assert bucket.taken - taken == len(data)
        assert clock.now - start == pytest.approx(len(data) / (256 * 1024))
        assert emu.stored()["p/paced.jpg"] == FILE * 100

    async def test_concurrent_posts_share_one_bucket(self, start_emulator: StartEmulator) -> None:
        """Three POSTs at once take as long as their bytes together at the rate (each paced
        on its own would take only as long as the largest)."""
        clock = SteppingClock()
        emu = await start_emulator(ingest_rate=100_000, clock=clock)
        handle = await emu.open_job("shared")
        start = clock.now
        bodies = [upload_body(handle, f"s{i}", FILE * (10 * (i + 1))) for i in range(3)]
        replies = await asyncio.gather(*(emu.post_raw(data) for data in bodies))
        assert all(reply.status == 200 for reply in replies)
        assert clock.now - start == pytest.approx(sum(map(len, bodies)) / 100_000)

    async def test_soap_bodies_are_paced_too(self, start_emulator: StartEmulator) -> None:
        clock = SteppingClock()
        emu = await start_emulator(ingest_rate=1_000, clock=clock)
        bucket = pushback(emu).bucket
        assert bucket is not None
        assert (await call(emu.soap_url, "getProperty", fields(name="IpsVersion"))).status == 200
        assert bucket.taken > 0
        assert sum(clock.sleeps) == pytest.approx(bucket.taken / 1_000)

    async def test_unpaced_by_default(self, emu: Emulator) -> None:
        assert pushback(emu).bucket is None
        assert pushback(emu).pace is None
