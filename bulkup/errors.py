"""The bulkup exception tree.

Every public error derives from :class:`BulkupError`. Each class says how it behaves through
two class attributes, and callers (the retry loop, the coordinator, the CLI) ask the behaviour
through :func:`is_retryable` and :func:`is_fatal`, never the type::

    BulkupError                           root
    ├── ConfigError(ValueError)           bad flag, variable or config key    fatal, exit 2
    ├── ProtocolValueError(ValueError)    a value the wire cannot carry       fatal
    ├── SourceError                       a local file cannot be sent         fails that file
    │   ├── SourceChangedError            size changed since the walk         fails that file
    │   │   └── SourceChangedWhileSent    changed by its last byte's read     POST cut, resent
    │   └── TargetNameError               a name the server would refuse      fails that file
    ├── TransportError                    no usable HTTP response             retryable
    │   ├── ConnectError                  cannot connect                      retryable
    │   │   ├── CertificateError          TLS certificate not trusted         fatal
    │   │   └── ProxyRefused              the proxy refused (407, 403)        fatal
    │   ├── RequestTimeout                connect or read timeout             retryable
    │   └── HelperLost                    the read helper died mid-body       retryable
    ├── HelperUnavailable                 the read helper cannot serve        reads in process
    ├── ApiError                          the server answered a failure       .http_status
    │   ├── ServerUnavailable             5xx/429/408 without a fault body    retryable
    │   ├── RequestRejected               other 4xx without a fault body      fatal
    │   └── ServerFault                   a fault document: .fault_type .code .reason
    │       ├── AuthenticationFault       10000-10002                         fatal
    │       ├── AuthorizationFault        20000-20009                         fatal
    │       └── IpsApiFault               30000 retryable (bounded); 30001 on a follow-up
    │                                     may mean the job is lost; others fail the batch
    ├── ProtocolError                     a body that is no valid answer      retryable once
    │   ├── HandleMismatch                an answer naming another job        retryable once
    │   └── RedirectRefused               a 3xx (never followed)              fails the POST
    ├── JournalError                      journal locked, damaged or newer    fatal, exit 2
    ├── ReportError                       --report file cannot be written     exit 2 (or 3, 130)
    ├── JobStopped                        the job was stopped on the server   fatal
    ├── SourceAddressChanged              the job refuses this machine's address  fatal
    ├── RunStopping                       stop asked: no new POST or retry    files unsent
    └── UploadFailed                      the run cannot go on; .causes       fatal

A 3xx on the opening POST fails the opening, and so the run (exit 3): :class:`RedirectRefused`
is not retryable, and the coordinator turns a failed opening into :class:`UploadFailed`.

Credentials never appear in any message built here: faults carry only the server's type, code
and reason.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthenticationFault",
    "AuthorizationFault",
    "BulkupError",
    "CertificateError",
    "ConfigError",
    "ConnectError",
    "HandleMismatch",
    "HelperLost",
    "HelperUnavailable",
    "IpsApiFault",
    "JobStopped",
    "JournalError",
    "ProtocolError",
    "ProtocolValueError",
    "ProxyRefused",
    "RedirectRefused",
    "ReportError",
    "RequestRejected",
    "RequestTimeout",
    "RunStopping",
    "ServerFault",
    "ServerUnavailable",
    "SourceAddressChanged",
    "SourceChangedError",
    "SourceChangedWhileSent",
    "SourceError",
    "TargetNameError",
    "TransportError",
    "UploadFailed",
    "is_fatal",
    "is_retryable",
]

IPS_API_FAULT_EXCEPTION = 30000
IPS_API_FAULT_INVALID_PARAMETER = 30001


class BulkupError(Exception):
    """Root of every error bulkup raises on purpose."""

    retryable: bool = False
    fatal: bool = False


class ConfigError(BulkupError, ValueError):
    """A flag, environment variable or config file key is wrong; the message names it."""

    fatal = True


class ProtocolValueError(BulkupError, ValueError):
    """A value cannot be written to the wire (out of range, wrong enum, unrepresentable char)."""

    fatal = True


class SourceError(BulkupError):
    """A local file cannot be sent (unreadable, vanished, too large); fails that file only."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class SourceChangedError(SourceError):
    """A file's size changed between the walk and the send."""


class SourceChangedWhileSent(SourceChangedError):
    """A file no longer matched the walk (size, ``mtime_ns`` or inode) once its last byte was
    read, or it grew or shrank while it was sent: the bytes read may mix old and new content.

    Raised from the body before the POST's closing boundary, so the POST is cut (the servlet
    drops a cut POST whole, spec D-13). The sender stats the file again and resends the batch
    with it (at most twice more), then fails it with "changed while being sent".
    """


class TargetNameError(SourceError):
    """A file's target path is one the server would refuse (control characters, `..`)."""


class TransportError(BulkupError):
    """No usable HTTP response: connection reset, dropped, or a body cut short."""

    retryable = True


class ConnectError(TransportError):
    """The connection (or its TLS handshake) could not be established."""


class CertificateError(ConnectError):
    """The server's TLS certificate is not trusted: retrying cannot help."""

    retryable = False
    fatal = True


class ProxyRefused(ConnectError):
    """The HTTP proxy refused to carry the request (407 without valid credentials, 403):
    retrying cannot help."""

    retryable = False
    fatal = True


class RequestTimeout(TransportError):
    """The connect or read timeout ran out."""


class HelperLost(TransportError):
    """The read helper stopped while it was writing a POST's files into the connection: part
    of the body may be on the wire, so the POST is sent again on a fresh connection (never
    completed in process), and later reads are done in process."""


class HelperUnavailable(BulkupError):
    """The read helper could not start or stopped answering. Raised and caught inside
    :mod:`bulkup.transport`: the files it was asked for are read in process instead, and it
    only reaches a caller as :class:`HelperLost` when some bytes may already be on the wire."""


class ApiError(BulkupError):
    """The server answered, with a failure."""

    def __init__(self, message: str, *, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class ServerUnavailable(ApiError):
    """HTTP 5xx, 429 or 408 without a fault document: try again later."""

    retryable = True

    def __init__(self, message: str, *, http_status: int, retry_after_s: float | None = None):
        super().__init__(message, http_status=http_status)
        self.retry_after_s = retry_after_s


class RequestRejected(ApiError):
    """Any other 4xx without a fault document: the request itself is wrong."""

    fatal = True


class ServerFault(ApiError):
    """An IPS fault document (spec §4.2): ``fault_type``, ``code`` and ``reason``."""

    fault_type = "fault"

    def __init__(self, code: int, reason: str, *, http_status: int) -> None:
        super().__init__(f"{self.fault_type} {code}: {reason}", http_status=http_status)
        self.code = code
        self.reason = reason


class AuthenticationFault(ServerFault):
    """The caller could not be authenticated (10000-10002)."""

    fault_type = "authenticationFault"
    fatal = True


class AuthorizationFault(ServerFault):
    """The caller is authenticated but not allowed (20000-20009)."""

    fault_type = "authorizationFault"
    fatal = True


class IpsApiFault(ServerFault):
    """Any other servlet fault (30000-30003); only 30000 is worth retrying."""

    fault_type = "ipsApiFault"

    # mypy < 2 reports the override on the decorator line, mypy >= 2 on the def line.
    @property  # type: ignore[override, unused-ignore]
    def retryable(self) -> bool:  # type: ignore[override, unused-ignore]
        return self.code == IPS_API_FAULT_EXCEPTION

    @property
    def may_mean_job_lost(self) -> bool:
        """30001 on a follow-up POST: the job may be unknown or closed (spec D-14)."""
        return self.code == IPS_API_FAULT_INVALID_PARAMETER


class ProtocolError(BulkupError):
    """A response body that is neither a success document nor a fault (spec §4.5: the
    request is sent once more, then given up)."""

    retryable = True


class HandleMismatch(ProtocolError):
    """A follow-up's or endJob's answer named another job: not an acknowledgement."""


class RedirectRefused(ProtocolError):
    """The server answered with a redirect (3xx). bulkup never follows one: the body carries
    the credentials, and a POST re-sent elsewhere is not a POST the servlet acknowledged."""

    retryable = False

    def __init__(self, url: str, status: int, location: str | None) -> None:
        where = f"to host {location!r}" if location else "without a Location"
        super().__init__(
            f"{url} answered HTTP {status}, a redirect {where}; redirects are "
            "never followed (credentials stay with the configured server): "
            "check the server URL"
        )
        self.http_status = status
        self.location_host = location


class JournalError(BulkupError):
    """The run journal cannot be used: locked by another run, damaged, or from a newer bulkup."""

    fatal = True


class ReportError(BulkupError):
    """The JSON report cannot be written (its directory missing or read-only, the disk full);
    the message names the path. The run itself is over: the CLI says so and exits 2, or with
    the run's own code when that is worse (3, 130)."""


class JobStopped(BulkupError):
    """Somebody stopped the job on the server (``stopJob``): the run ends and says so."""

    fatal = True


class SourceAddressChanged(BulkupError):
    """The job is open on the server yet refuses our POSTs: our source address changed."""

    fatal = True


class RunStopping(BulkupError):
    """The run was asked to stop (SIGINT/SIGTERM): no new POST is started and no failed one
    is retried; the files concerned stay unacknowledged, for the next run."""


class UploadFailed(BulkupError):
    """Raised once by the uploader when the run cannot go on; carries every cause."""

    fatal = True

    def __init__(self, message: str, causes: list[BaseException] | None = None) -> None:
        super().__init__(message)
        self.causes = causes or []


def is_retryable(exc: BaseException) -> bool:
    """Whether the same request may be sent again."""
    return bool(getattr(exc, "retryable", False))


def is_fatal(exc: BaseException) -> bool:
    """Whether the whole run must stop."""
    return bool(getattr(exc, "fatal", False))


def describe(exc: BaseException) -> str:
    """A one-line reason for a report, without any credential."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:500]
