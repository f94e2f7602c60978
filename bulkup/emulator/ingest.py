"""Turning a complete, accepted POST into a job's files (spec D-13, D-15, D-16, D-25).

Runs without awaiting anything, so a POST is committed atomically with respect to every other
request: a POST racing a closing POST is judged by which one the emulator finished first (D-12).
"""

from __future__ import annotations

import time
from typing import Any

from bulkup.emulator.assets import CompanyAssets
from bulkup.emulator.authorize import PostContext
from bulkup.emulator.jobs import FileRecord, Job, JobStore
from bulkup.emulator.paths import TargetRefused, file_type_problem, target_path
from bulkup.emulator.receive import ReceivedPost, StagedFile
from bulkup.emulator.responses import Fault


def check_file_parts(post: ReceivedPost, context: PostContext, strict_part_order: bool,
                     max_file_size: int) -> None:
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
        raise Fault.ips(30001, f"Invalid parameter: file part {post.oversize.part_name!r} is "
                               f"larger than {max_file_size} bytes")


def commit(post: ReceivedPost, context: PostContext, store: JobStore, assets: CompanyAssets,
           *, peer: str, received_ns: int) -> Job:
    """Open the job if needed, process every file in arrival order, close on ``endJob``.

    Each accepted POST is also logged in ``job.post_log`` (when it arrived and was answered,
    in ``time.monotonic_ns``), which lets tests check the client's ordering rules.
    """
    job = context.job
    if job is None:
        job = _open(context, store, peer)
    elif not job.open:
        raise Fault.ips(30001, f"Invalid jobHandle: {job.handle} is closed ({job.closed_by})")
    for staged in post.files:
        job.files.append(_process(staged, context, job.options, assets))
    store.touch(job)
    job.post_log.append({
        "opening": context.job is None, "files": len(post.files),
        "file_bytes": sum(f.size for f in post.files), "end_job": context.params.end_job,
        "received_ns": received_ns, "answered_ns": time.monotonic_ns(),
    })
    if context.params.end_job:
        job.close("endJob")
    return job


def _open(context: PostContext, store: JobStore, peer: str) -> Job:
    creds = context.credentials
    client = " ".join(filter(None, (creds.app_name, creds.app_version)))
    return store.open_job(
        company_handle=context.company.handle, job_name=context.params.job_name or "",
        user_email=context.user.email, peer=peer, options=context.options or {},
        description=context.params.description,
        locale=context.params.locale or creds.locale, client=client,
    )


def _process(staged: StagedFile, context: PostContext, options: dict[str, Any],
             assets: CompanyAssets) -> FileRecord:
    base = context.params.file_name
    if base is None:
        base = staged.filename or ""
    company = context.company
    record = FileRecord(target_path=base, size=staged.size, sha256=staged.sha256,
                        outcome="UploadError", message="")
    try:
        target = target_path(base, context.params.dest_folder, company.root_folder)
    except TargetRefused as exc:
        record.message = str(exc)
        return record
    record.target_path = company.root_path + target.path
    problem = file_type_problem(target, staged.size,
                                javascript_enabled=company.javascript_upload_enabled)
    if problem or staged.temp_path is None:
        record.message = problem or "file was not received"
        return record
    keep_state = options.get("preservePublishState", company.retain_publish_state)
    try:
        outcome = assets.store(str(staged.temp_path), target,
                               overwrite=bool(options.get("overwrite")),
                               publish=bool(options.get("readyForPublish")),
                               keep_publish_state=bool(keep_state),
                               root_prefix=company.root_path)
    except OSError as exc:
        record.message = f"cannot store file: {exc.strerror or exc}"
        return record
    if outcome.log_type in ("UploadSuccess", "FileUpdated"):
        staged.temp_path = None  # moved into place
    record.outcome, record.message = outcome.log_type, outcome.message
    record.asset_handle = outcome.asset_handle
    return record
