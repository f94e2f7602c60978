"""Rows 2-17 of the fault table (spec D-21): who is posting, for which company, into which job.

Everything here depends only on the two XML parts and the job store, so it can run as soon as
both parts have arrived (before any file byte is kept) and again when the body is complete.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from bulkup.emulator.jobparams import validate_upload_params
from bulkup.emulator.jobs import Job, JobStore, job_name_problem
from bulkup.emulator.receive import XmlPart
from bulkup.emulator.responses import Fault
from bulkup.emulator.settings import Company, EmulatorSettings, User
from bulkup.emulator.xmlread import Credentials, PostParams, read_auth, read_post_params

NO_UPLOAD_ROLES = frozenset({"ImagePortalUser"})


@dataclass(frozen=True, slots=True)
class PostContext:
    """A POST that passed rows 2-17: its user, company, params and job (None = open one)."""

    credentials: Credentials
    user: User
    company: Company
    params: PostParams
    job: Job | None
    options: dict[str, Any] | None


@dataclass(slots=True)
class AuthOutcome:
    """The fault status override and gzip wish, known once the auth part parsed."""

    fault_status: int | None = None
    gzip_response: bool | None = None


def check_post(
    xml: dict[str, XmlPart],
    settings: EmulatorSettings,
    store: JobStore,
    peer: str,
    seen: AuthOutcome,
) -> PostContext:
    """Apply rows 2-17 in table order; raises the first matching Fault."""
    credentials = _credentials(xml.get("auth"), seen)
    user = authenticate(credentials, settings)
    params = _params(xml.get("uploadParams"))
    company = _company(params, user, settings)
    if params.job_handle:
        job = _follow_up_job(params.job_handle, company, user, store, peer)
        _check_end_job(params)
        return PostContext(credentials, user, company, params, job, None)
    options = _opening_options(params, settings)
    _check_end_job(params)
    return PostContext(credentials, user, company, params, None, options)


def _check_end_job(params: PostParams) -> None:
    if params.end_job_invalid:
        raise Fault.ips(30001, "Invalid parameter: endJob")


def _credentials(part: XmlPart | None, seen: AuthOutcome) -> Credentials:
    if part is None:
        raise Fault.authentication(10000, "No credentials")
    if part.too_large:
        raise Fault.ips(30003, "Invalid authHeader XML")
    credentials, seen.fault_status = read_auth(bytes(part.raw), part.charset)
    if credentials is None:
        raise Fault.authentication(10000, "No credentials")
    seen.gzip_response = credentials.gzip_response
    return credentials


def authenticate(credentials: Credentials, settings: EmulatorSettings) -> User:
    """Rows 5-6: the user, if the password matches exactly and the user is enabled."""
    user = settings.user(credentials.user)
    expected = user.password if user else "\x00never-matches"
    good = hmac.compare_digest(credentials.password.encode(), expected.encode())
    if user is None or not good:
        raise Fault.authentication(10001, "Invalid username/password")
    if user.disabled:
        raise Fault.authentication(10002, "Invalid user")
    return user


def _params(part: XmlPart | None) -> PostParams:
    if part is None:
        raise Fault.ips(30002, "Missing parameter: uploadParams")
    if part.too_large:
        raise Fault.ips(30003, "Invalid uploadPostParam XML")
    params = read_post_params(bytes(part.raw), part.charset)
    if not params.company_handle:
        raise Fault.ips(30002, "Missing parameter: companyHandle")
    if params.job_handle is None and params.job_name is None:
        raise Fault.ips(30002, "Missing parameter: jobName or jobHandle")
    if not params.job_handle and job_name_problem(params.job_name or "") == "missing":
        raise Fault.ips(30002, "Missing parameter: jobName")
    return params


def _company(params: PostParams, user: User, settings: EmulatorSettings) -> Company:
    company = settings.company(params.company_handle or "")
    if company is None:
        raise Fault.authorization(20000, "Invalid company")
    if company.handle not in user.companies:
        raise Fault.authorization(20006, "Illegal company")
    if user.role in NO_UPLOAD_ROLES:
        raise Fault.authorization(20003, "No permission for operation UploadFile")
    return company


def _follow_up_job(handle: str, company: Company, user: User, store: JobStore, peer: str) -> Job:
    job = store.get(handle)
    if job is None:
        raise Fault.ips(30001, f"Invalid jobHandle: {handle} is unknown")
    if not job.open:
        raise Fault.ips(30001, f"Invalid jobHandle: {handle} is closed ({job.closed_by})")
    if job.company_handle != company.handle:
        raise Fault.ips(30001, f"Invalid jobHandle: {handle} belongs to another company")
    if job.peer != peer:
        raise Fault.ips(
            30001,
            f"Invalid jobHandle: {handle} was opened from {job.peer}, this POST comes from {peer}",
        )
    if job.user_email.casefold() != user.email.casefold():
        raise Fault.authorization(20005, "Illegal parameter value: jobHandle")
    return job


def _opening_options(params: PostParams, settings: EmulatorSettings) -> dict[str, Any]:
    if job_name_problem(params.job_name or "") == "invalid":
        raise Fault.ips(30001, "Invalid parameter: jobName")
    return validate_upload_params(params.upload_params, strict_order=settings.strict_element_order)
