"""``getActiveJobs``, ``getJobLogs`` and ``getJobLogDetails`` (spec §5.2-§5.4, §5.6, D-23, D-24)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from .conftest import Emulator
from .soapwire import (
    assert_soap_fault,
    auth_header,
    call,
    fields,
    flat,
    items,
    listed,
    names,
    sub,
    text,
)
from .wire import REQUIRED_OPTIONS, files, params_xml

IPS = "ipsApiFault"
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
NO_OVERWRITE = REQUIRED_OPTIONS.replace("<overwrite>true", "<overwrite>false")
ACTIVE_JOB_FIELDS = [
    "companyHandle",
    "jobHandle",
    "name",
    "originalName",
    "type",
    "state",
    "submitUserEmail",
    "locale",
    "description",
    "serverName",
    "startDate",
    "totalSize",
    "progress",
    "lastProgressUpdate",
    "uploadPostJob",
]
COUNTERS = [
    "fileSuccessCount",
    "fileErrorCount",
    "fileWarningCount",
    "fileDuplicateCount",
    "fileUpdateCount",
    "totalFileCount",
    "transferSuccessCount",
    "transferErrorCount",
    "transferWarningCount",
]
JOB_LOG_HEAD = [
    "companyHandle",
    "jobHandle",
    "jobName",
    "originalJobName",
    "submitUserEmail",
    "logType",
    "startDate",
]


async def active_jobs(emu: Emulator, **params: Any) -> list[ET.Element]:
    reply = await call(emu.soap_url, "getActiveJobs", fields(**params))
    return listed(reply.answer("getActiveJobs"), "jobArray")


async def job_logs(emu: Emulator, **params: Any) -> list[ET.Element]:
    reply = await call(emu.soap_url, "getJobLogs", fields(**params))
    return listed(reply.answer("getJobLogs"), "jobLogArray")


async def job_log(
    emu: Emulator, handle: str, extra: str = "", **params: Any
) -> tuple[ET.Element, list[dict[str, str]]]:
    """(the job's JobLog, its detail rows as dicts) from one getJobLogDetails page."""
    inner = fields(companyHandle="c|42", jobHandle=handle, **params) + extra
    reply = await call(emu.soap_url, "getJobLogDetails", inner)
    [log] = listed(reply.answer("getJobLogDetails"), "jobLogArray")
    return log, [flat(item) for item in listed(log, "detailArray")]


def file_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return rows[4:-2]


class TestGetActiveJobs:
    """§5.2 and D-23."""

    async def test_empty(self, emu: Emulator) -> None:
        """No job: an empty ``<jobArray/>``."""
        reply = await call(emu.soap_url, "getActiveJobs")
        answer = reply.answer("getActiveJobs")
        assert names(answer) == ["jobArray"] and len(sub(answer, "jobArray")) == 0

    async def test_active_job_fields(self, emu: Emulator) -> None:
        """An ActiveJob carries the D-23 fields, in §5.6 order, with the job's options."""
        options = (
            REQUIRED_OPTIONS + "<unsharpMaskOptions><amount>1.5</amount></unsharpMaskOptions>"
            "<projectHandleArray><items>p|1</items><items>p|2</items></projectHandleArray>"
        )
        xml = params_xml(
            job_name="fields",
            options=options,
            extra="<description>d &amp; e</description><locale>de-DE</locale>",
        )
        handle = (await emu.send(xml)).job_handle()
        (await emu.upload(handle, {"a.jpg": b"abc", "b.jpg": b"defgh"})).job_handle()
        [job] = await active_jobs(emu)
        assert names(job) == ACTIVE_JOB_FIELDS
        got = flat(job)
        assert {k: got[k] for k in ACTIVE_JOB_FIELDS[:10]} == {
            "companyHandle": "c|42",
            "jobHandle": handle,
            "name": "fields",
            "originalName": "fields",
            "type": "UploadPost",
            "state": "WaitingClient",
            "submitUserEmail": "uploader@example.com",
            "locale": "de-DE",
            "description": "d & e",
            "serverName": "emulator",
        }
        assert (got["totalSize"], got["progress"]) == ("8", "100")
        assert DATE.fullmatch(got["startDate"]) and DATE.fullmatch(got["lastProgressUpdate"])
        options_el = sub(job, "uploadPostJob")
        assert names(options_el) == [
            "overwrite",
            "readyForPublish",
            "preservePublishState",
            "createMask",
            "projectHandleArray",
            "emailSetting",
            "unsharpMaskOptions",
        ]
        assert [i.text for i in listed(options_el, "projectHandleArray")] == ["p|1", "p|2"]
        assert flat(sub(options_el, "unsharpMaskOptions")) == {"amount": "1.5"}
        assert text(options_el, "overwrite") == "true"

    async def test_states_new_and_done(self, emu: Emulator) -> None:
        """§1.4: New before any file; Done (still listed) right after endJob."""
        handle = await emu.open_job("states")
        assert [text(j, "state") for j in await active_jobs(emu)] == ["New"]
        (await emu.end_job(handle)).job_handle()
        assert [text(j, "state") for j in await active_jobs(emu)] == ["Done"]

    async def test_filters(self, emu: Emulator) -> None:
        """companyHandle, jobHandle and originalName each restrict the list."""
        first, second = await emu.open_job("dup"), await emu.open_job("dup")
        third = await emu.open_job("other")
        elsewhere = await emu.open_job("dup", company="c|43")
        handles = [text(j, "jobHandle") for j in await active_jobs(emu)]
        assert handles == [first, second, third, elsewhere]
        assert [text(j, "jobHandle") for j in await active_jobs(emu, companyHandle="c|43")] == [
            elsewhere
        ]
        assert [text(j, "jobHandle") for j in await active_jobs(emu, jobHandle=third)] == [third]
        by_name = await active_jobs(emu, companyHandle="c|42", originalName="dup")
        assert [text(j, "name") for j in by_name] == ["dup", "dup-1"]
        assert await active_jobs(emu, jobHandle="j|42||none|1") == []

    async def test_only_member_companies(self, emu: Emulator) -> None:
        """Without companyHandle, only jobs of the caller's companies are listed."""
        await emu.open_job("acme")
        mine = await emu.open_job("other-co", company="c|43")
        reply = await call(
            emu.soap_url, "getActiveJobs", auth=auth_header("outsider@example.com", "pw-outsider")
        )
        jobs = listed(reply.answer("getActiveJobs"), "jobArray")
        assert [text(j, "jobHandle") for j in jobs] == [mine]


class TestGetJobLogs:
    """§5.3: summaries, sorting, window, numRows."""

    async def test_summary(self, emu: Emulator) -> None:
        """A JobLog without details: counters, logType, endDate once done."""
        handle = await emu.open_job("sum")
        (await emu.upload(handle, {"a.jpg": b"a", "b.foo": b"b"})).job_handle()
        [log] = await job_logs(emu)
        assert names(log) == JOB_LOG_HEAD + COUNTERS + ["fatalError"]
        assert text(log, "logType") == "BeginUpload"
        (await emu.end_job(handle)).job_handle()
        [log] = await job_logs(emu, companyHandle="c|42")
        assert names(log) == JOB_LOG_HEAD + ["endDate"] + COUNTERS + ["fatalError"]
        got = flat(log)
        assert (got["logType"], got["jobName"], got["originalJobName"]) == (
            "EndUpload",
            "sum",
            "sum",
        )
        assert [got[c] for c in COUNTERS] == ["1", "1", "0", "0", "0", "2", "2", "0", "0"]
        assert got["fatalError"] == "false" and DATE.fullmatch(got["endDate"])

    async def test_sort_window_and_rows(self, emu: Emulator) -> None:
        """StartDate sorting both ways, the startDate/endDate window, numRows."""
        handles = []
        for name in ("j1", "j2", "j3"):
            handles.append(await emu.open_job(name))
            emu.clock.advance(10)
        logs = await job_logs(emu, sortBy="StartDate", sortDirection="Descending")
        assert [text(log, "jobHandle") for log in logs] == handles[::-1]
        starts = [text(log, "startDate") for log in await job_logs(emu)]
        assert starts == sorted(starts) and len(set(starts)) == 3
        window = await job_logs(emu, startDate=starts[1], endDate=starts[1])
        assert [text(log, "jobHandle") for log in window] == [handles[1]]
        after = await job_logs(emu, startDate=starts[1].replace("+00:00", "Z"))
        assert [text(log, "jobHandle") for log in after] == handles[1:]
        assert [text(log, "jobName") for log in await job_logs(emu, numRows=2)] == ["j1", "j2"]
        by_name = await job_logs(emu, sortBy="JobName", sortDirection="Descending", userHandle="u")
        assert [text(log, "jobName") for log in by_name] == ["j3", "j2", "j1"]

    @pytest.mark.parametrize(
        "inner",
        [
            fields(startDate="2026-01-01T00:00:00"),
            fields(endDate="yesterday"),
            fields(sortBy="Size"),
            fields(sortDirection="descending"),
            fields(numRows=0),
            fields(numRows="many"),
        ],
    )
    async def test_invalid_parameters(self, emu: Emulator, inner: str) -> None:
        """A date without zone, unknown sort field/direction or bad numRows: 30001."""
        assert_soap_fault(await call(emu.soap_url, "getJobLogs", inner), IPS, 30001)


class TestJobLogDetails:
    """§5.4 and D-24: the lines of one job, filters and paging."""

    async def test_lines_of_finished_job(self, emu: Emulator) -> None:
        """D-24 order: header lines, one line per file, TotalFileCount, EndUpload."""
        handle = await emu.open_job("lines")
        (await emu.upload(handle, {"Acme/a/b.jpg": b"1", "doc.pdf": b"2"})).job_handle()
        (await emu.end_job(handle)).job_handle()
        log, rows = await job_log(emu, handle)
        assert names(log)[-2:] == ["detailTotalRows", "detailArray"]
        assert text(log, "detailTotalRows") == "8" and text(log, "logType") == "EndUpload"
        assert [(r["logType"], r["logMessage"]) for r in rows[:4]] == [
            ("BeginUpload", "Upload job lines started"),
            ("OriginalJobName", "lines"),
            ("JobClient", "emu-tests 1"),
            ("JobType", "UploadPost"),
        ]
        jpg, pdf = file_rows(rows)
        assert {k: v for k, v in jpg.items() if k != "assetHandle"} == {
            "logMessage": "Acme/a/b.jpg was processed into IPS",
            "logType": "UploadSuccess",
            "assetName": "b",
            "assetType": "MasterImage",
        }
        assert jpg["assetHandle"].startswith("a|42|1|")
        assert (pdf["assetName"], pdf["assetType"]) == ("doc", "Pdf")
        assert rows[-2:] == [
            {"logMessage": "2", "logType": "TotalFileCount"},
            {"logMessage": "Upload job lines ended: closed by endJob", "logType": "EndUpload"},
        ]

    async def test_per_file_problems(self, emu: Emulator) -> None:
        """Error and duplicate lines begin with the target path (name as sent when refused)."""
        handle = await emu.open_job("problems", options=NO_OVERWRITE)
        (await emu.upload(handle, {"c.jpg": b"1"})).job_handle()
        named = {
            "x.jpg": b"",
            "x.foo": b"1",
            "c.png": b"2",
            "Acme/c.jpg": b"3",
            "../evil.jpg": b"4",
        }
        (await emu.upload(handle, named)).job_handle()
        _, rows = await job_log(emu, handle)
        first, *rest = rows[4:]
        assert [(r["logType"], r["logMessage"]) for r in rest] == [
            ("UploadError", "Acme/x.jpg: file is empty (0 bytes)"),
            ("UploadError", "Acme/x.foo: unsupported file type: .foo"),
            ("UploadError", "Acme/c.png: name conflict: asset 'c' already exists as Acme/c.jpg"),
            ("DuplicateSkipped", "Acme/c.jpg: already exists; not overwritten"),
            ("UploadError", "../evil.jpg: path segment '..' is not allowed"),
        ]
        assert [(r["assetName"], r["assetType"]) for r in rest] == [
            ("x", "MasterImage"),
            ("x", "NoType"),
            ("c", "MasterImage"),
            ("c", "MasterImage"),
            ("evil", "MasterImage"),
        ]
        assert [r.get("assetHandle") for r in rest] == [
            None,
            None,
            None,
            first["assetHandle"],
            None,
        ]

    async def test_update_and_counters(self, emu: Emulator) -> None:
        """FileUpdated keeps the asset handle; the counters follow every outcome."""
        handle = await emu.open_job("update")
        (await emu.upload(handle, {"u.jpg": b"1"})).job_handle()
        (await emu.upload(handle, {"u.jpg": b"2", "bad.foo": b"3"})).job_handle()
        log, rows = await job_log(emu, handle)
        new, updated, _ = rows[4:]
        assert (updated["logType"], updated["logMessage"]) == (
            "FileUpdated",
            "Acme/u.jpg was processed into IPS (updated)",
        )
        assert updated["assetHandle"] == new["assetHandle"]
        got = flat(log)
        assert [got[c] for c in COUNTERS] == ["1", "1", "0", "0", "1", "3", "3", "0", "0"]
        assert "endDate" not in got and got["logType"] == "BeginUpload"

    async def test_missing_company(self, emu: Emulator) -> None:
        """companyHandle is required: 30002."""
        handle = await emu.open_job()
        reply = await call(emu.soap_url, "getJobLogDetails", fields(jobHandle=handle))
        assert_soap_fault(reply, IPS, 30002)

    async def test_log_type_filter(self, emu: Emulator) -> None:
        """logTypeArray keeps only those types; detailTotalRows counts the matching rows."""
        handle = await emu.open_job("filter")
        (await emu.upload(handle, {"f1.jpg": b"1", "f2.foo": b"2", "f3.jpg": b""})).job_handle()
        (await emu.end_job(handle)).job_handle()
        wanted = items("logTypeArray", ["UploadError", "EndUpload"])
        log, rows = await job_log(emu, handle, wanted)
        assert [r["logType"] for r in rows] == ["UploadError", "UploadError", "EndUpload"]
        assert text(log, "detailTotalRows") == "3"

    async def test_sorting(self, emu: Emulator) -> None:
        """sortBy LogType groups by type (stable); Descending reverses the Date order."""
        handle = await emu.open_job("sort")
        (await emu.upload(handle, {"s1.jpg": b"1", "s2.foo": b"2"})).job_handle()
        (await emu.end_job(handle)).job_handle()
        _, plain = await job_log(emu, handle)
        _, backwards = await job_log(emu, handle, sortDirection="Descending")
        assert backwards == plain[::-1]
        _, by_type = await job_log(emu, handle, sortBy="LogType")
        assert [r["logType"] for r in by_type] == sorted(r["logType"] for r in plain)

    async def test_paging_2500_files(self, emu: Emulator) -> None:
        """Pages of 1000 cover every row once; detailTotalRows is the total; 5000 → 1000."""
        handle = await emu.open_job("big")
        named = {f"big/f{i:04d}.jpg": b"x" for i in range(2500)}
        await emu.send(params_xml(job_handle=handle, end_job="true"), files(named))
        pages = []
        for page in (1, 2, 3, 4):
            log, rows = await job_log(emu, handle, recordsPerPage=1000, resultsPage=page)
            assert text(log, "detailTotalRows") == "2506"
            pages.append(rows)
        assert [len(rows) for rows in pages] == [1000, 1000, 506, 0]
        every = [r["logMessage"] for rows in pages for r in rows]
        assert len(set(every)) == len(every) == 2506
        assert [f"Acme/big/f{i:04d}.jpg was processed into IPS" for i in range(2500)] == [
            m for m in every if m.startswith("Acme/")
        ]
        backwards = []
        for page in (1, 2, 3):
            _, rows = await job_log(
                emu, handle, recordsPerPage=1000, resultsPage=page, sortDirection="Descending"
            )
            backwards += [r["logMessage"] for r in rows]
        assert backwards == every[::-1]  # newest first, across pages
        log, rows = await job_log(emu, handle, recordsPerPage=5000)
        assert len(rows) == 1000 and text(log, "detailTotalRows") == "2506"
        log, rows = await job_log(emu, handle)
        assert len(rows) == 1000

    @pytest.mark.parametrize(
        "inner",
        [
            fields(recordsPerPage=0),
            fields(resultsPage=0),
            fields(sortBy="Date,LogType"),
            fields(sortDirection="Up"),
        ],
    )
    async def test_invalid_paging(self, emu: Emulator, inner: str) -> None:
        """Page size or number below 1, unknown sortBy/sortDirection: 30001."""
        handle = await emu.open_job()
        base = fields(companyHandle="c|42", jobHandle=handle)
        assert_soap_fault(await call(emu.soap_url, "getJobLogDetails", base + inner), IPS, 30001)

    async def test_by_original_name_and_unknown_handle(self, emu: Emulator) -> None:
        """originalName finds every job sent under that name; an unknown handle finds none."""
        first, second = await emu.open_job("same"), await emu.open_job("same")
        await emu.open_job("different")
        inner = fields(companyHandle="c|42", originalName="same")
        reply = await call(emu.soap_url, "getJobLogDetails", inner)
        logs = listed(reply.answer("getJobLogDetails"), "jobLogArray")
        assert [text(log, "jobHandle") for log in logs] == [first, second]
        inner = fields(companyHandle="c|42", jobHandle="j|42||nope|1")
        reply = await call(emu.soap_url, "getJobLogDetails", inner)
        assert listed(reply.answer("getJobLogDetails"), "jobLogArray") == []

    async def test_idle_timeout_end_message(self, emu: Emulator) -> None:
        """D-08: a job closed by its idle timeout says so in its EndUpload line."""
        handle = await emu.open_job("idle")
        emu.clock.advance(61)
        log, rows = await job_log(emu, handle)
        assert rows[-1] == {
            "logType": "EndUpload",
            "logMessage": "Upload job idle ended: closed by idle timeout (no POST for 60 s)",
        }
        assert text(log, "fatalError") == "false"
