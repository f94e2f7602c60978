"""The emulator's aiohttp application: ``POST /scene7/UploadFile``, the SOAP monitoring service
``POST /scene7/services/IpsApiService`` and ``GET /_emulator/jobs``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from bulkup.emulator.authorize import AuthOutcome, PostContext, check_post
from bulkup.emulator.faultplan import FaultPlan, Injected
from bulkup.emulator.guard import IdleWatchdog
from bulkup.emulator.ingest import check_file_parts, commit
from bulkup.emulator.jobs import Clock, Job, JobStore
from bulkup.emulator.multipart import boundary_of
from bulkup.emulator.operations import answer_soap
from bulkup.emulator.processing import Processor, Sleep
from bulkup.emulator.pushback import Pushback, Slot
from bulkup.emulator.receive import BodyReader, ReceivedPost
from bulkup.emulator.responses import (
    XML_CONTENT_TYPE,
    Fault,
    compress,
    fault_document,
    upload_post_return,
    wants_gzip,
)
from bulkup.emulator.settings import EmulatorSettings
from bulkup.emulator.state import EmulatorState
from bulkup.emulator.xmlread import read_post_params

log = structlog.get_logger("bulkup.emulator")
UPLOAD_ROUTE = "/scene7/UploadFile"
SOAP_ROUTE = "/scene7/services/IpsApiService"
JOBS_ROUTE = "/_emulator/jobs"
STAGING = ".bulkup-emulator/staging"
SWEEP_INTERVAL_S = 5.0
MAX_SMALL_BODY_BYTES = 64 * 1024  # a SOAP call's body (a few KiB); bounds memory per connection


STATE = web.AppKey("state", EmulatorState)


def make_app(
    settings: EmulatorSettings, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
) -> web.Application:
    """The emulator as an aiohttp application.

    ``clock`` drives the idle timeout, the Done linger, the reported date-times and the intake
    bucket (``ingest_rate``); ``sleep`` paces background processing (``processing_delay_s``),
    the answer delay (``response_delay_ms``) and the intake. Tests pass a fake pair.
    """
    root = settings.root.resolve()
    staging = root / STAGING
    state = EmulatorState(
        settings=settings,
        store=JobStore(idle_timeout_s=settings.idle_timeout_s, clock=clock),
        faults=FaultPlan.parse(settings.faults),
        staging_dir=staging,
        processor=Processor(delay_s=settings.processing_delay_s, staging_dir=staging, sleep=sleep),
        pushback=Pushback.from_settings(settings, clock=clock, sleep=sleep),
    )
    app = web.Application(client_max_size=MAX_SMALL_BODY_BYTES)
    app[STATE] = state
    app.router.add_post(UPLOAD_ROUTE, handle_upload)
    app.router.add_post(SOAP_ROUTE, handle_soap)
    app.router.add_get(JOBS_ROUTE, handle_jobs)
    app.on_startup.append(_prepare_root)
    app.cleanup_ctx.append(_sweeper)
    app.cleanup_ctx.append(_processing)
    return app


async def _prepare_root(app: web.Application) -> None:
    state = app[STATE]
    await asyncio.to_thread(_reset_staging, state.staging_dir)
    for company in state.settings.companies:
        await asyncio.to_thread(state.assets_of, company)


def _reset_staging(staging: Path) -> None:
    """Staging files left by a crash are never ingested: start empty."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)


async def _sweeper(app: web.Application):  # type: ignore[no-untyped-def]
    """Close idle jobs even when nobody asks about them."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            app[STATE].store.expire_idle()

    task = asyncio.create_task(sweep())
    yield
    task.cancel()


async def _processing(app: web.Application) -> AsyncIterator[None]:
    """The background processor (D-13): started with the app, cancelled on shutdown."""
    processor = app[STATE].processor
    task = asyncio.create_task(processor.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    processor.discard_held()


def peer_of(request: web.Request, settings: EmulatorSettings) -> str:
    """The socket peer, or the first X-Forwarded-For entry when trusted (D-10)."""
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.remote or "unknown"


async def handle_upload(request: web.Request) -> web.StreamResponse:
    """``POST /scene7/UploadFile``: one POST of an upload job.

    The POST's slot among its company's POSTs in flight (``max_inflight``) is held until the
    answer is ready to go, the answer delay included.
    """
    pushback = request.app[STATE].pushback
    with _watchdog(request) as watchdog, pushback.inflight.slot() as slot:
        try:
            response = await _handle_upload(request, watchdog, slot)
        except ConnectionError as exc:
            return client_gone(request, exc, watchdog)
        await pushback.delay_answer()
        return response


def _watchdog(request: web.Request) -> IdleWatchdog:
    """Drops the connection when the request body stalls (``body_idle_timeout_s``)."""
    timeout = request.app[STATE].settings.body_idle_timeout_s
    return IdleWatchdog(request.transport, timeout, request.remote)


def client_gone(request: web.Request, exc: BaseException, watchdog: IdleWatchdog) -> web.Response:
    """The client went away mid-request (or stalled and was cut, already logged): one log
    line, no traceback, nobody to answer."""
    if not watchdog.expired:
        log.info(
            "client_gone",
            peer=request.remote,
            path=request.path,
            reason=str(exc) or type(exc).__name__,
        )
    return web.Response(status=400)  # never delivered; aiohttp drops it quietly


async def _handle_upload(
    request: web.Request, watchdog: IdleWatchdog, slot: Slot
) -> web.StreamResponse:
    state = request.app[STATE]
    injected = state.faults.next()
    if state.faults.latency_ms:
        await asyncio.sleep(state.faults.latency_ms / 1000)
    if injected is Injected.DROP:
        return await _cut_mid_body(request, watchdog)
    boundary = boundary_of(request.headers.get("Content-Type", ""))
    seen = AuthOutcome()
    if boundary is None:
        await _drain(request, state.settings.drain_limit_bytes, watchdog)
        return _fault_response(request, Fault.ips(30001, "Invalid multipart request"), seen)
    return await _upload(request, state, boundary, injected, seen, watchdog, slot)


async def _upload(
    request: web.Request,
    state: EmulatorState,
    boundary: str,
    injected: Injected,
    seen: AuthOutcome,
    watchdog: IdleWatchdog,
    slot: Slot,
) -> web.StreamResponse:
    peer = peer_of(request, state.settings)
    received_ns = time.monotonic_ns()
    tracked: list[Job] = []
    reader = BodyReader(
        staging_dir=state.staging_dir,
        max_file_size=state.settings.max_file_size,
        drain_limit_bytes=state.settings.drain_limit_bytes,
        max_parts=state.settings.max_parts_per_post,
        strict_part_order=state.settings.strict_part_order,
        keep_files=lambda post: _early_verdict(post, state, peer, tracked, slot),
    )
    try:
        post = await reader.read(request, boundary, watchdog.touch, state.pushback.pace)
        if injected is Injected.HTTP_503:
            return web.Response(status=503, text="Service Unavailable (injected)")
        if slot.refused is not None:  # beyond max_inflight at its first file: read, dropped
            return _refused(state, slot.refused, post)
        context = _checked(post, state, peer, seen)
        if not slot.take(context.company.handle):  # a POST without files, beyond the limit
            return _refused(state, context.company.handle, post)
        if injected is Injected.FAULT_30000:  # after the checks: faultHttpStatusCode applies
            raise Fault.ips(30000, "Internal error (injected fault)")
        job = commit(
            post,
            context,
            state.store,
            state.assets_of(context.company),
            peer=peer,
            received_ns=received_ns,
            processor=state.processor,
        )
        return _success_response(request, job, post, seen)
    except Fault as fault:
        response = _fault_response(request, fault, seen)
        if reader.post.drained_past_limit:
            response.force_close()
        return response
    except ConnectionError:
        raise  # the client went away mid-body: handle_upload logs it
    except Exception as exc:  # D-21 row 21: an unexpected internal error is a 30000 fault
        log.exception("post_failed")
        return _fault_response(request, Fault.ips(30000, f"{type(exc).__name__}: {exc}"), seen)
    finally:
        reader.post.discard()
        for job in tracked:
            job.in_flight -= 1


def _early_verdict(
    post: ReceivedPost, state: EmulatorState, peer: str, tracked: list[Job], slot: Slot
) -> bool:
    """Before the first file byte: keep the files only if no fault is already certain and
    the company has room for one more POST in flight (its slot is taken here)."""
    try:
        context = check_post(post.xml, state.settings, state.store, peer, AuthOutcome())
    except Fault:
        return False
    if not slot.take(context.company.handle):
        return False  # refused once read to its end (``_upload``)
    if context.job is not None:
        context.job.in_flight += 1  # no idle expiry while this POST is being received
        tracked.append(context.job)
    return True


def _refused(state: EmulatorState, company: str, post: ReceivedPost) -> web.Response:
    """A POST beyond ``max_inflight``, read to its end: 503/429 with ``Retry-After``."""
    response = state.pushback.refusal(company)
    if post.drained_past_limit:
        response.force_close()
    return response


def _checked(post: ReceivedPost, state: EmulatorState, peer: str, seen: AuthOutcome) -> PostContext:
    """Every check of the POST (framing, auth, parameters, file parts); faults raised."""
    if post.too_many_parts:
        raise Fault.ips(
            30001, f"Invalid multipart request: more than {state.settings.max_parts_per_post} parts"
        )
    if post.framing_error or post.duplicate_part or post.drained_past_limit:
        raise Fault.ips(30001, "Invalid multipart request")
    context: PostContext = check_post(post.xml, state.settings, state.store, peer, seen)
    check_file_parts(post, context, state.settings.strict_part_order, state.settings.max_file_size)
    return context


def _success_response(
    request: web.Request, job: Job, post: ReceivedPost, seen: AuthOutcome
) -> web.Response:
    params_ns = _request_namespace(post)
    log.debug("post_accepted", job=job.handle, files=len(post.files), closed=not job.open)
    return _xml_response(request, upload_post_return(job.handle, params_ns), 200, seen)


def _request_namespace(post: ReceivedPost) -> str | None:
    part = post.xml.get("uploadParams")
    return read_post_params(bytes(part.raw), part.charset).namespace if part else None


def _fault_response(request: web.Request, fault: Fault, seen: AuthOutcome) -> web.Response:
    log.debug("post_faulted", fault=fault.kind, code=fault.code, reason=fault.reason)
    return _xml_response(request, fault_document(fault), seen.fault_status or 500, seen)


def _xml_response(
    request: web.Request, body: bytes, status: int, seen: AuthOutcome
) -> web.Response:
    headers = {"Content-Type": XML_CONTENT_TYPE}
    if wants_gzip(seen.gzip_response, request.headers.get("Accept-Encoding", "")):
        body = compress(body)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, status=status, headers=headers)


async def _pace(request: web.Request, size: int, watchdog: IdleWatchdog) -> None:
    """Pay the intake bucket (``ingest_rate``) for ``size`` bytes just read; the time spent
    waiting on it is the server's, not idle time of the client's."""
    pace = request.app[STATE].pushback.pace
    if pace is not None:
        await pace(size)
        watchdog.touch()


async def _drain(request: web.Request, limit: int, watchdog: IdleWatchdog) -> None:
    read = 0
    async for chunk in request.content.iter_any():
        watchdog.touch()
        read += len(chunk)
        await _pace(request, len(chunk), watchdog)
        if read > limit:
            break


async def _cut_mid_body(request: web.Request, watchdog: IdleWatchdog) -> web.StreamResponse:
    """Injected fault: read about half the body, then drop the connection without answering."""
    length = request.content_length or 0
    read = 0
    async for chunk in request.content.iter_any():
        watchdog.touch()
        read += len(chunk)
        await _pace(request, len(chunk), watchdog)
        if read >= length // 2:
            break
    log.info("post_dropped", read_bytes=read)
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


async def handle_soap(request: web.Request) -> web.Response:
    """``POST /scene7/services/IpsApiService``: one SOAP call (spec §5); never counted in
    ``max_inflight``, but its answer waits ``response_delay_ms`` too."""
    state = request.app[STATE]
    with _watchdog(request) as watchdog:
        try:
            raw = await _read_whole(request, watchdog)
        except ConnectionError as exc:
            return client_gone(request, exc, watchdog)
    reply = answer_soap(state, raw, request.headers)
    await state.pushback.delay_answer()
    return web.Response(body=reply.body, status=reply.status, headers=reply.headers)


async def _read_whole(request: web.Request, watchdog: IdleWatchdog) -> bytes:
    """The whole (small) body, as ``request.read`` would read it, with the idle watchdog."""
    limit = MAX_SMALL_BODY_BYTES
    raw = bytearray()
    async for chunk in request.content.iter_any():
        watchdog.touch()
        raw += chunk
        await _pace(request, len(chunk), watchdog)
        if len(raw) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(raw))
    return bytes(raw)


async def handle_jobs(request: web.Request) -> web.Response:
    """``GET /_emulator/jobs[?handle=H][&files=0]``: every job, as JSON."""
    state = request.app[STATE]
    handle = request.query.get("handle")
    with_files = request.query.get("files", "1") not in ("0", "false")
    jobs = [
        job.as_json(with_files=with_files)
        for job in state.store.jobs()
        if handle is None or job.handle == handle
    ]
    return web.json_response({"jobs": jobs, "injected": state.faults.counts})
