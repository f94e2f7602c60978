"""Turning a complete, accepted POST into a job's files (spec D-13, D-16).

Runs without awaiting anything, so a POST is committed atomically with respect to every other
request: a POST racing a closing POST is judged by which one the emulator finished first (D-12).
"""

from __future__ import annotations

import time

from bulkup.emulator.assets import CompanyAssets
from bulkup.emulator.authorize import PostContext
from bulkup.emulator.jobs import PENDING, FileRecord, Job, JobStore
from bulkup.emulator.paths import Target, TargetRefused, asset_type, target_path
from bulkup.emulator.processing import FileWork, Processor
from bulkup.emulator.receive import ReceivedPost, StagedFile
from bulkup.emulator.responses import Fault


def check_file_parts(
    post: ReceivedPost, context: PostContext, strict_part_order: bool, max_file_size: int
) -> None:
    """Rows 18 and 19 of the fault table."""
    file_name = context.params.file_name
    if post.file_before_xml and strict_part_order:
        raise Fault.ips(30002, "Missing parameter: auth and uploadParams must precede file parts")
    for staged in post.files:
        if not staged.filename and file_name is None:
            raise Fault.ips(30002, f"Missing parameter: filename of part {staged.part_name!r}")
    if file_name is not None and len(post.files) > 1:
        raise Fault.ips(30001, "Invalid parameter: fileName given with more than one file part")
    if post.oversize is not None:
        raise Fault.ips(
            30001,
            f"Invalid parameter: file part {post.oversize.part_name!r} is "
            f"larger than {max_file_size} bytes",
        )


def commit(
    post: ReceivedPost,
    context: PostContext,
    store: JobStore,
    assets: CompanyAssets,
    *,
    peer: str,
    received_ns: int,
    processor: Processor,
) -> Job:
    """Open the job if needed, hand every file to the processor in arrival order, close on
    ``endJob``.

    Each accepted POST is also logged in ``job.post_log`` (when it arrived and was answered,
    in ``time.monotonic_ns``), which lets tests check the client's ordering rules.
    """
    job = context.job
    if job is None:
        job = _open(context, store, peer)
    elif not job.open:
        raise Fault.ips(30001, f"Invalid jobHandle: {job.handle} is closed ({job.closed_by})")
    for staged in post.files:
        work = _prepare(staged, context, job, assets)
        job.files.append(work.record)
        processor.submit(work)
        staged.temp_path = None  # moved, held or removed by the processor: nothing to discard
    store.touch(job)
    job.post_log.append(
        {
            "opening": context.job is None,
            "files": len(post.files),
            "file_bytes": sum(f.size for f in post.files),
            "end_job": context.params.end_job,
            "received_ns": received_ns,
            "answered_ns": time.monotonic_ns(),
        }
    )
    if context.params.end_job:
        job.close("endJob")
    return job


def _open(context: PostContext, store: JobStore, peer: str) -> Job:
    creds = context.credentials
    client = " ".join(filter(None, (creds.app_name, creds.app_version)))
    return store.open_job(
        company_handle=context.company.handle,
        job_name=context.params.job_name or "",
        user_email=context.user.email,
        peer=peer,
        options=context.options or {},
        description=context.params.description,
        locale=context.params.locale or creds.locale,
        client=client,
    )


def _prepare(staged: StagedFile, context: PostContext, job: Job, assets: CompanyAssets) -> FileWork:
    """The file's record (outcome Pending) and its target, or why the target is refused."""
    base = context.params.file_name
    if base is None:
        base = staged.filename or ""
    company = context.company
    record = FileRecord(
        target_path=base, size=staged.size, sha256=staged.sha256, outcome=PENDING, message=""
    )
    work = FileWork(
        job=job,
        record=record,
        path=staged.temp_path,
        target=None,
        refused=None,
        company=company,
        assets=assets,
    )
    try:
        target = target_path(base, context.params.dest_folder, company.root_folder)
    except TargetRefused as exc:
        work.refused = str(exc)
        target = Target(folder="", name=base.replace("\\", "/").rpartition("/")[2])
    else:
        work.target = target
        record.target_path = company.root_path + target.path
    record.asset_name, record.asset_type = target.asset_name, asset_type(target)
    return work
