"""The SOAP monitoring service (spec §5): authentication, roles and the eight operations.

Order of checks for one call: envelope (30003), operation known (30000), ``checkLogin`` (no
credentials needed), credentials from ``authHeader`` or HTTP Basic (10000/10001/10002), role
(20003), then the operation's own parameters (20000/20006 company, 30002 missing, 30001 invalid).
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from bulkup.emulator.authorize import AuthOutcome, authenticate
from bulkup.emulator.joblog import write_active_job
from bulkup.emulator.jobs import Job
from bulkup.emulator.logqueries import get_job_log_details, get_job_logs
from bulkup.emulator.params import Call, optional, required
from bulkup.emulator.responses import Fault, compress, wants_gzip
from bulkup.emulator.settings import ROLES
from bulkup.emulator.soap import (
    CONTENT_TYPES,
    SoapRequest,
    add,
    answer_document,
    answer_element,
    fault_document,
    guess_envelope,
    read_request,
)
from bulkup.emulator.state import EmulatorState
from bulkup.emulator.xmlread import Credentials, auth_from_element

log = structlog.get_logger("bulkup.emulator")
IPS_VERSION = "6.8 emulator"
COMPANY_EXPIRES = "2099-12-31T23:59:59.000+00:00"
# §5.2 (getActiveJobs; stopJob and deleteJob by analogy, D-28); §5.3/§5.4 add ImagePortalUser
JOB_ROLES = frozenset(
    {
        "IpsUser",
        "IpsAdmin",
        "IpsCompanyAdmin",
        "TrialSiteAdmin",
        "TrialSiteUser",
        "ImagePortalAdmin",
        "ImagePortalContrib",
        "ImagePortalContribUser",
    }
)
LOG_ROLES = JOB_ROLES | {"ImagePortalUser"}


@dataclass(frozen=True, slots=True)
class SoapReply:
    """What goes back over HTTP."""

    status: int
    body: bytes
    headers: dict[str, str]


def answer_soap(state: EmulatorState, raw: bytes, headers: Mapping[str, str]) -> SoapReply:
    """Answer one SOAP request: ``<op>Return`` (200) or a SOAP fault (500 or the override)."""
    envelope_ns = guess_envelope(headers.get("Content-Type", ""))
    seen = AuthOutcome()
    try:
        request = read_request(raw, headers.get("Content-Type", ""))
        envelope_ns = request.envelope_ns
        body, status = answer_document(envelope_ns, _dispatch(state, request, headers, seen)), 200
    except Fault as fault:
        log.debug("soap_faulted", fault=fault.kind, code=fault.code, reason=fault.reason)
        body, status = fault_document(envelope_ns, fault), seen.fault_status or 500
    except Exception as exc:  # an unexpected internal error is a 30000 fault
        log.exception("soap_failed")
        internal = Fault.ips(30000, f"{type(exc).__name__}: {exc}")
        body, status = fault_document(envelope_ns, internal), seen.fault_status or 500
    reply_headers = {"Content-Type": CONTENT_TYPES[envelope_ns]}
    if wants_gzip(seen.gzip_response, headers.get("Accept-Encoding", "")):
        body = compress(body)
        reply_headers["Content-Encoding"] = "gzip"
    return SoapReply(status, body, reply_headers)


def _dispatch(
    state: EmulatorState, request: SoapRequest, headers: Mapping[str, str], seen: AuthOutcome
) -> ET.Element:
    credentials = _credentials(request, headers.get("Authorization"), seen)
    entry = OPERATIONS.get(request.operation or "")
    if entry is None:
        raise Fault.ips(30000, f"Unknown operation: {request.element}")
    roles, operation = entry
    answer = answer_element(request)
    if roles is None:  # checkLogin
        operation(Call(state, request.param, None), answer)
        return answer
    if credentials is None:
        raise Fault.authentication(10000, "No credentials")
    user = authenticate(credentials, state.settings)
    if user.role not in roles:
        raise Fault.authorization(20003, f"No permission for operation {request.operation}")
    operation(Call(state, request.param, user), answer)
    return answer


def _credentials(
    request: SoapRequest, authorization: str | None, seen: AuthOutcome
) -> Credentials | None:
    """``authHeader`` credentials when complete, else HTTP Basic; None when neither."""
    credentials: Credentials | None = None
    if request.auth is not None:
        credentials, seen.fault_status = auth_from_element(request.auth)
        seen.gzip_response = credentials.gzip_response if credentials else None
    return credentials or _basic(authorization)


def _basic(authorization: str | None) -> Credentials | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        return None
    return Credentials(
        user=user,
        password=password,
        locale=None,
        app_name=None,
        app_version=None,
        gzip_response=None,
        fault_http_status=None,
    )


def get_active_jobs(call: Call, answer: ET.Element) -> None:
    """§5.2: active (or recently Done) jobs of the user's companies, filtered."""
    handles = {company.handle for company in call.companies(optional(call, "companyHandle"))}
    job_handle = optional(call, "jobHandle")
    original = optional(call, "originalName", strip=False)
    array = add(answer, "jobArray")
    for job in call.state.store.active(call.state.settings.done_linger_s):
        if (
            job.company_handle in handles
            and job_handle in (None, job.handle)
            and original in (None, job.original_name)
        ):
            write_active_job(add(array, "items"), job)


def _job_to_control(call: Call) -> Job:
    company = call.company(required(call, "companyHandle"))
    handle = required(call, "jobHandle")
    job = call.state.store.get(handle)
    if job is None or job.company_handle != company.handle:
        raise Fault.ips(30001, f"Invalid jobHandle: {handle} is unknown in {company.handle}")
    return job


def stop_job(call: Call, answer: ET.Element) -> None:
    """D-30: state Stopping, waiting files cancelled, further POSTs refused, then Done."""
    call.state.processor.stop(_job_to_control(call), "stopJob")


def delete_job(call: Call, answer: ET.Element) -> None:
    """D-30: as stopJob, and the job leaves getActiveJobs at once (its log remains)."""
    call.state.processor.stop(_job_to_control(call), "deleteJob")


def get_property(call: Call, answer: ET.Element) -> None:
    """``UploadPostMaxFileSize`` and ``IpsVersion``; any other name is 30001."""
    name = required(call, "name")
    values = {
        "UploadPostMaxFileSize": str(call.state.settings.max_file_size),
        "IpsVersion": IPS_VERSION,
    }
    if name not in values:
        raise Fault.ips(30001, f"Invalid parameter: name (unknown property {name!r})")
    add(answer, "value", values[name])


def get_company_info(call: Call, answer: ET.Element) -> None:
    """``companyHandle`` or ``companyName`` → handle, name, root path, expiry."""
    handle, name = optional(call, "companyHandle"), optional(call, "companyName")
    if handle is None and name is None:
        raise Fault.ips(30002, "Missing parameter: companyHandle or companyName")
    if handle is None:
        wanted = (name or "").casefold()
        found = next(
            (c for c in call.state.settings.companies if c.name.casefold() == wanted), None
        )
        handle = found.handle if found else ""
    company = call.company(handle)
    info = add(answer, "companyInfo")
    add(info, "companyHandle", company.handle)
    add(info, "name", company.name)
    add(info, "rootPath", company.root_path)
    add(info, "expires", COMPANY_EXPIRES)


def check_login(call: Call, answer: ET.Element) -> None:
    """``ValidLogin`` when the e-mail/password pair is right (and, if given, the user belongs
    to the company); ``InvalidLogin`` otherwise. Needs no credentials of its own."""
    email = required(call, "email")
    password = required(call, "password", strip=False)
    company = optional(call, "companyHandle")
    credentials = Credentials(
        user=email,
        password=password,
        locale=None,
        app_name=None,
        app_version=None,
        gzip_response=None,
        fault_http_status=None,
    )
    try:
        user = authenticate(credentials, call.state.settings)
        valid = company is None or company in user.companies
    except Fault:
        valid = False
    add(answer, "status", "ValidLogin" if valid else "InvalidLogin")


Operation = Callable[[Call, ET.Element], None]
OPERATIONS: dict[str, tuple[frozenset[str] | None, Operation]] = {
    "getActiveJobs": (JOB_ROLES, get_active_jobs),
    "getJobLogs": (LOG_ROLES, get_job_logs),
    "getJobLogDetails": (LOG_ROLES, get_job_log_details),
    "stopJob": (JOB_ROLES, stop_job),
    "deleteJob": (JOB_ROLES, delete_job),
    "getProperty": (ROLES, get_property),
    "getCompanyInfo": (ROLES, get_company_info),
    "checkLogin": (None, check_login),
}
