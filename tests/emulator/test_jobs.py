"""Job life cycle (§1.4, D-05 to D-11): opening, follow-ups, endJob, same IP, idle timeout."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest

from .conftest import PASSWORD, USER, Emulator, RawPost, StartEmulator, wait_until
from .wire import (
    assert_fault,
    auth_xml,
    body,
    file_part,
    files,
    params_xml,
    xml_part,
)

IPS = "ipsApiFault"
OTHER_IP = "127.0.0.2"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TestLifeCycle:
    async def test_opening_post_creates_new_job(self, emu: Emulator) -> None:
        """§1.4: an opening POST without files creates an open job in state New."""
        handle = await emu.open_job("first")
        job = await emu.job(handle)
        assert (job["state"], job["open"], job["file_count"], job["posts"]) == ("New", True, 0, 1)
        assert (job["name"], job["original_name"], job["user"], job["company"]) == (
            "first",
            "first",
            USER,
            "c|42",
        )
        assert job["client"] == "emu-tests 1"
        assert emu.stored() == {}

    async def test_follow_up_stores_files(self, emu: Emulator) -> None:
        """D-13: a follow-up's files are stored byte-exact and listed with size and sha256."""
        handle = await emu.open_job()
        payload = {
            "Acme/shoes/2025/shoe-001.jpg": bytes(range(256)) * 40,
            "shoes/shoe-002.png": b"\x00\r\n--emu-test\r\n\x00",
        }
        reply = await emu.upload(handle, payload)
        assert reply.job_handle() == handle
        assert emu.stored() == {
            "shoes/2025/shoe-001.jpg": payload["Acme/shoes/2025/shoe-001.jpg"],
            "shoes/shoe-002.png": payload["shoes/shoe-002.png"],
        }
        job = await emu.job(handle)
        assert job["state"] == "WaitingClient"
        assert [(f["target_path"], f["size"], f["sha256"], f["outcome"]) for f in job["files"]] == [
            (
                "Acme/shoes/2025/shoe-001.jpg",
                10240,
                sha(payload["Acme/shoes/2025/shoe-001.jpg"]),
                "UploadSuccess",
            ),
            ("Acme/shoes/shoe-002.png", 16, sha(payload["shoes/shoe-002.png"]), "UploadSuccess"),
        ]
        assert all(f["asset_handle"].startswith("a|42|1|") for f in job["files"])

    async def test_end_job_closes(self, emu: Emulator) -> None:
        """D-07: endJob closes the job; a later POST is 30001 and stores nothing."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"a.jpg": b"a"})).job_handle()
        assert (await emu.end_job(handle)).job_handle() == handle
        job = await emu.job(handle)
        assert (job["open"], job["closed_by"], job["state"]) == (False, "endJob", "Done")
        assert job["ended_at"]
        reply = await emu.upload(handle, {"b.jpg": b"b"})
        assert "closed" in assert_fault(reply, IPS, 30001)
        assert emu.stored() == {"a.jpg": b"a"}
        assert (await emu.job(handle))["file_count"] == 1
        assert emu.staged() == []

    async def test_closing_post_may_carry_files(self, emu: Emulator) -> None:
        """D-09: a closing POST with files stores them, then closes the job."""
        handle = await emu.open_job()
        reply = await emu.send(params_xml(job_handle=handle, end_job="1"), files({"z.jpg": b"z"}))
        reply.job_handle()
        assert emu.stored() == {"z.jpg": b"z"}
        assert (await emu.job(handle))["closed_by"] == "endJob"

    async def test_opening_post_may_carry_files(self, emu: Emulator) -> None:
        """§1.2 rule 10: files are optional in every POST, the opening one included."""
        reply = await emu.send(params_xml(job_name="with-files"), files({"o.jpg": b"o"}))
        job = await emu.job(reply.job_handle())
        assert (job["state"], job["file_count"]) == ("WaitingClient", 1)
        assert emu.stored() == {"o.jpg": b"o"}

    async def test_bad_end_job_value(self, emu: Emulator) -> None:
        """D-19: ``endJob`` accepts true/false/1/0 only; ``yes`` is 30001."""
        handle = await emu.open_job()
        assert_fault(await emu.send(params_xml(job_handle=handle, end_job="yes")), IPS, 30001)
        assert (await emu.job(handle))["open"] is True

    async def test_follow_up_options_ignored(self, emu: Emulator) -> None:
        """D-19: uploadParams on a follow-up POST is not validated and does not change the job."""
        handle = await emu.open_job()
        xml = params_xml(job_handle=handle, extra="<uploadParams><bogus/></uploadParams>")
        (await emu.send(xml)).job_handle()
        assert (await emu.job(handle))["options"]["overwrite"] is True


class TestJobNames:
    async def test_duplicate_name_gets_suffix(self, emu: Emulator) -> None:
        """D-06: a reused jobName opens a new job named ``<name>-1``, then ``-2``."""
        handles = [await emu.open_job("dup") for _ in range(3)]
        assert len(set(handles)) == 3
        jobs = {j["handle"]: j for j in await emu.jobs()}
        assert [jobs[h]["name"] for h in handles] == ["dup", "dup-1", "dup-2"]
        assert [jobs[h]["original_name"] for h in handles] == ["dup"] * 3
        assert [h.split("|")[3] for h in handles] == ["dup", "dup-1", "dup-2"]

    async def test_duplicate_of_closed_job(self, emu: Emulator) -> None:
        """D-06: a name used by a closed (logged) job still counts as used."""
        first = await emu.open_job("again")
        (await emu.end_job(first)).job_handle()
        second = await emu.open_job("again")
        assert (await emu.job(second))["name"] == "again-1"

    async def test_suffixed_names_stay_unique(self, emu: Emulator) -> None:
        """D-06: the unique name never repeats, even when a client sent ``x-1`` itself."""
        for name in ("x", "x-1", "x", "x"):
            await emu.open_job(name)
        names = [j["name"] for j in await emu.jobs()]
        assert len(set(names)) == 4, names

    async def test_names_are_per_company(self, emu: Emulator) -> None:
        """D-06: the same name in another company needs no suffix."""
        await emu.open_job("shared")
        handle = await emu.open_job("shared", company="c|43")
        assert (await emu.job(handle))["name"] == "shared"

    async def test_pipe_in_job_name(self, emu: Emulator) -> None:
        """D-06: ``|`` in jobName is 30001 and no job is opened."""
        assert_fault(await emu.send(params_xml(job_name="a|b")), IPS, 30001)
        assert await emu.jobs() == []

    async def test_job_handle_wins_over_job_name(self, emu: Emulator) -> None:
        """D-05: with both jobName and jobHandle the handle wins; no job is opened."""
        handle = await emu.open_job("real")
        xml = params_xml(job_name="ignored", job_handle=handle)
        assert (await emu.send(xml, files({"w.jpg": b"w"}))).job_handle() == handle
        jobs = await emu.jobs()
        assert [j["name"] for j in jobs] == ["real"]
        assert jobs[0]["file_count"] == 1

    async def test_job_of_another_company(self, emu: Emulator) -> None:
        """D-11: a jobHandle of company c|42 posted for company c|43 is 30001."""
        handle = await emu.open_job()
        reply = await emu.upload(handle, {"a.jpg": b"a"}, company="c|43")
        assert "another company" in assert_fault(reply, IPS, 30001)
        assert emu.stored() == {} and emu.stored("Other") == {}

    async def test_job_of_another_user(self, emu: Emulator) -> None:
        """D-11: a job opened by another user is authorizationFault 20005."""
        handle = await emu.open_job()
        reply = await emu.upload(
            handle, {"a.jpg": b"a"}, user="second@example.com", password="pw-second"
        )
        assert_fault(reply, "authorizationFault", 20005)
        assert emu.stored() == {}

    async def test_user_email_case_insensitive(self, emu: Emulator) -> None:
        """The same user in another letter case may continue its job."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"a.jpg": b"a"}, user=USER.upper())).job_handle()


class TestSameIp:
    async def test_follow_up_from_other_address(self, emu: Emulator) -> None:
        """D-10: a follow-up from 127.0.0.2 to a job opened from 127.0.0.1 is 30001."""
        handle = await emu.open_job()
        reply = await emu.upload(handle, {"a.jpg": b"a"}, local_addr=(OTHER_IP, 0))
        reason = assert_fault(reply, IPS, 30001)
        assert "127.0.0.1" in reason and OTHER_IP in reason
        assert emu.stored() == {}
        (await emu.upload(handle, {"a.jpg": b"a"}, local_addr=("127.0.0.1", 0))).job_handle()
        assert emu.stored() == {"a.jpg": b"a"}

    async def test_job_opened_from_other_address(self, emu: Emulator) -> None:
        """D-10: the job records the opening POST's address; only that address may continue."""
        handle = await emu.open_job(local_addr=(OTHER_IP, 0))
        assert (await emu.job(handle))["peer"] == OTHER_IP
        assert_fault(await emu.upload(handle, {"a.jpg": b"a"}), IPS, 30001)
        (await emu.upload(handle, {"a.jpg": b"a"}, local_addr=(OTHER_IP, 0))).job_handle()

    async def test_other_address_and_other_user(self, emu: Emulator) -> None:
        """D-21 row 13 before 14: another user from another address gets 30001."""
        handle = await emu.open_job()
        reply = await emu.upload(
            handle,
            {"a.jpg": b"a"},
            user="second@example.com",
            password="pw-second",
            local_addr=(OTHER_IP, 0),
        )
        assert_fault(reply, IPS, 30001)

    async def test_end_job_from_other_address(self, emu: Emulator) -> None:
        """D-10: even a closing POST must come from the job's address."""
        handle = await emu.open_job()
        assert_fault(await emu.end_job(handle, local_addr=(OTHER_IP, 0)), IPS, 30001)
        assert (await emu.job(handle))["open"] is True

    @pytest.mark.parametrize("trusted", [True, False])
    async def test_forwarded_for(self, start_emulator: StartEmulator, trusted: bool) -> None:
        """D-10: X-Forwarded-For counts only when trust_forwarded_for is on."""
        emu = await start_emulator(trust_forwarded_for=trusted)
        handle = await emu.open_job(headers={"X-Forwarded-For": "10.1.2.3, 10.9.9.9"})
        assert (await emu.job(handle))["peer"] == ("10.1.2.3" if trusted else "127.0.0.1")
        reply = await emu.upload(handle, {"a.jpg": b"a"})
        if trusted:
            assert_fault(reply, IPS, 30001)
        else:
            reply.job_handle()


class TestIdleTimeout:
    async def test_expired_job_refuses_posts(self, emu: Emulator) -> None:
        """D-08: after idle_timeout_s without POSTs the job is closed by idle_timeout."""
        handle = await emu.open_job()
        emu.clock.now += 60.0
        reply = await emu.upload(handle, {"late.jpg": b"x"})
        assert "idle_timeout" in assert_fault(reply, IPS, 30001)
        job = await emu.job(handle)
        assert (job["open"], job["closed_by"], job["file_count"]) == (False, "idle_timeout", 0)
        assert emu.stored() == {}

    async def test_expiry_visible_without_posts(self, emu: Emulator) -> None:
        """D-08: the inspection route shows the timeout without any further POST."""
        handle = await emu.open_job()
        emu.clock.now += 59.5
        assert (await emu.job(handle))["open"] is True
        emu.clock.now += 0.5
        assert (await emu.job(handle))["closed_by"] == "idle_timeout"

    async def test_post_just_before_deadline_keeps_job_alive(self, emu: Emulator) -> None:
        """D-08: the deadline counts from the last accepted POST's completion."""
        handle = await emu.open_job()
        emu.clock.now += 59.999
        (await emu.upload(handle, {"a.jpg": b"a"})).job_handle()
        emu.clock.now += 59.999
        (await emu.send(params_xml(job_handle=handle))).job_handle()  # file-less keep-alive
        emu.clock.now += 59.999
        (await emu.upload(handle, {"b.jpg": b"b"})).job_handle()
        assert (await emu.job(handle))["open"] is True
        emu.clock.now += 60.0
        assert_fault(await emu.upload(handle, {"c.jpg": b"c"}), IPS, 30001)
        assert sorted(emu.stored()) == ["a.jpg", "b.jpg"]

    async def test_faulted_post_is_not_activity(self, emu: Emulator) -> None:
        """D-08: a POST that faults does not move the deadline."""
        handle = await emu.open_job()
        emu.clock.now += 50.0
        reply = await emu.send(params_xml(job_handle=handle), [file_part(None, b"x")])
        assert_fault(reply, IPS, 30002)
        emu.clock.now += 10.0
        assert_fault(await emu.upload(handle, {"a.jpg": b"a"}), IPS, 30001)

    async def test_no_expiry_while_receiving(self, emu: Emulator) -> None:
        """D-08: no expiry while a POST of the job is being received; deadline from its end."""
        handle = await emu.open_job()
        head = body(
            [
                xml_part("auth", auth_xml(USER, PASSWORD)),
                xml_part("uploadParams", params_xml(job_handle=handle)),
                file_part("slow.jpg", b""),
            ]
        )
        head = head[: head.rindex(b"\r\n--emu-test-5b1c0e--")]  # up to the file's content
        content = b"s" * 50_000
        rest = b"\r\n--emu-test-5b1c0e--\r\n"
        async with RawPost(emu, len(head) + len(content) + len(rest)) as post:
            await post.send(head + content[:1000])

            async def running() -> bool:
                return bool((await emu.job(handle))["state"] == "Running")

            await wait_until(running)
            emu.clock.now += 600.0  # far past the deadline while the body is still arriving
            assert (await emu.job(handle))["open"] is True
            await post.send(content[1000:] + rest)
            reply = await post.response()
        assert reply.job_handle() == handle
        assert emu.stored() == {"slow.jpg": content}
        emu.clock.now += 59.0
        assert (await emu.job(handle))["open"] is True
        emu.clock.now += 1.0
        assert (await emu.job(handle))["closed_by"] == "idle_timeout"


class TestConcurrency:
    async def test_concurrent_follow_ups(self, emu: Emulator) -> None:
        """D-12: follow-up POSTs of one job may run concurrently; every file is kept."""
        handle = await emu.open_job()
        payloads = [{f"c/{n}-{k}.jpg": bytes([n, k]) * 5000 for k in range(3)} for n in range(12)]
        replies = await asyncio.gather(*(emu.upload(handle, p) for p in payloads))
        assert {r.job_handle() for r in replies} == {handle}
        (await emu.end_job(handle)).job_handle()
        expected = {k: v for p in payloads for k, v in p.items()}
        assert emu.stored() == expected
        job = await emu.job(handle)
        assert (job["file_count"], job["posts"], job["closed_by"]) == (36, 14, "endJob")


class TestInspection:
    async def test_inspection_filters(self, emu: Emulator) -> None:
        """The inspection route filters by handle and can leave files out."""
        first = await emu.open_job("one")
        await emu.open_job("two")
        url = f"http://{emu.host}:{emu.port}/_emulator/jobs"
        query = {"handle": first, "files": "0"}
        async with aiohttp.ClientSession() as session, session.get(url, params=query) as response:
            jobs = (await response.json())["jobs"]
        assert [j["handle"] for j in jobs] == [first]
        assert "files" not in jobs[0]
