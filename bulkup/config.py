"""The uploader's configuration: one frozen dataclass, and its loader.

:class:`UploadConfig` holds every option, with units in the field names, and validates itself on
construction. :func:`load_config` builds one from four layers, highest first:

1. flags (``overrides``, keyed by field name; None means "not given");
2. the environment: ``BULKUP_<FIELD>`` (``BULKUP_CONCURRENCY=16``), ``BULKUP_PASSWORD``;
3. a TOML file: top-level keys are the field names, ``[upload_params]`` holds the job options,
   a ``[serve]`` table belongs to the emulator and is ignored here;
4. the defaults.

Every :class:`~bulkup.errors.ConfigError` names the offending key and where it came from (the
file or the environment variable). The password is never read from the file or a flag (a flag
shows in ``ps``), and never appears in a ``repr`` or a message.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

from bulkup.errors import ConfigError, ProtocolValueError
from bulkup.protocol.enums import EmailSetting
from bulkup.protocol.namespaces import KNOWN_NAMESPACES, NS_2014_04_03
from bulkup.protocol.options import UploadPostJob

__all__ = [
    "ENV_PREFIX",
    "PASSWORD_ENV",
    "UploadConfig",
    "load_config",
    "parse_size",
]

ENV_PREFIX = "BULKUP_"
"""Prefix of the environment variables: ``BULKUP_<FIELD_NAME_IN_UPPER_CASE>``."""
PASSWORD_ENV = "BULKUP_PASSWORD"
"""The environment variable that holds the password."""

KiB = 1024
MiB = 1024**2
GiB = 1024**3

Region = Literal["na", "emea", "apac"]
AddressFamily = Literal["ipv4", "ipv6", "any"]
LogFormat = Literal["auto", "console", "json"]
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]

_REGIONS: tuple[str, ...] = get_args(Region)
_ADDRESS_FAMILIES: tuple[str, ...] = get_args(AddressFamily)
_LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)

# Spec §1.1: (region, staging) -> upload servlet URL, and -> SOAP API base.
_UPLOAD_URLS: dict[tuple[str, bool], str] = {
    ("na", False): "https://s7sps1ssl.scene7.com/scene7/UploadFile",
    ("na", True): "https://s7sps1ssl-staging.scene7.com/scene7/UploadFile",
    ("emea", False): "https://s7sps3ssl.scene7.com/scene7/UploadFile",
    ("emea", True): "https://s7sps3ssl-staging.scene7.com/scene7/UploadFile",
    ("apac", False): "https://s7sps5ssl.scene7.com/scene7/UploadFile",
    ("apac", True): "https://s7sps5ssl-staging.scene7.com/scene7/UploadFile",
}
_API_BASES: dict[tuple[str, bool], str] = {
    ("na", False): "https://s7sps1apissl.scene7.com/scene7/",
    ("na", True): "https://s7sps1apissl-staging.scene7.com/scene7/",
    ("emea", False): "https://s7sps3apissl.scene7.com/scene7/",
    ("emea", True): "https://s7sps3apissl-staging.scene7.com/scene7/",
    ("apac", False): "https://s7sps5apissl.scene7.com/scene7/",
    ("apac", True): "https://s7sps5apissl-staging.scene7.com/scene7/",
}
_API_SERVICE = "services/IpsApiService"
_EMULATOR_API_PATH = "/scene7/services/IpsApiService"

# D-06 allows [A-Za-z0-9._-], at most 100 characters; 90 leaves room for the "-r<k>" suffix of
# a job reopened after it was lost (D-14).
_JOB_NAME = re.compile(r"[A-Za-z0-9._-]{1,90}\Z")
_LOCALE = re.compile(r"[a-z]{2}(-[A-Z]{2})?\Z")


def _default_upload_params() -> UploadPostJob:
    return UploadPostJob(
        overwrite=True,
        ready_for_publish=False,
        preserve_publish_state=True,
        create_mask=False,
        email_setting=EmailSetting.NONE,
    )


# The same defaults as a table, under which a file's [upload_params] table is merged.
_UPLOAD_PARAMS_TABLE: dict[str, Any] = {
    "overwrite": True,
    "ready_for_publish": False,
    "preserve_publish_state": True,
    "create_mask": False,
    "email_setting": EmailSetting.NONE.value,
}


class _FieldProblem(ConfigError):
    """A ConfigError about named fields; the loader prefixes it with where the value came from."""

    def __init__(self, keys: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.keys = keys


def _fail(name: str, problem: str, *others: str) -> NoReturn:
    raise _FieldProblem((name, *others), f"{name} {problem}")


def _shown(value: object) -> str:
    """A short rendering of a rejected value, in TOML-like (JSON) notation where possible."""
    if value is None:
        return "None"
    if isinstance(value, Path):
        value = str(value)
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadConfig:
    """Every option of an upload run; validated on construction (raises ConfigError naming the key).

    Memory: peak memory ≈ ``queue_size`` × ~1 KiB (one walked-file record each)
    + ``concurrency`` × ``chunk_size`` × 2 (a chunk being read and one being sent per POST).

    Attributes:
        server_url: URL of the UploadFile servlet (http or https); excludes ``region``.
        region: ``na``, ``emea`` or ``apac``: use the vendor's URLs of that region (spec §1.1).
        staging: With ``region``, use the region's pre-production (staging) hosts.
        api_url: URL of the SOAP ``IpsApiService`` (job monitoring); derived when None
            (see :attr:`resolved_api_url`).
        user: E-mail address of the IPS user.
        password: That user's password; from ``BULKUP_PASSWORD`` or ``password_file`` only,
            never shown in ``repr``.
        password_file: File holding the password (its trailing newline is stripped).
        company_handle: Handle of the company uploaded to (``c|<n>``).
        company_root: The company's root folder (``rootPath``), normalised to end with ``/``.
        dest_folder: Folder under the company root the files go to.
        job_name: Base name of the upload job (``[A-Za-z0-9._-]``, at most 90 characters);
            None generates ``bulkup-<UTC time>-<random>``.
        description: Job description sent with the opening POST.
        locale: ``en`` or ``en-US`` style locale for server messages.
        concurrency: POSTs in flight at once (1..256).
        max_post_bytes: Byte cap of the files of one POST; a larger file travels alone.
        max_files_per_post: File-count cap of one POST.
        max_file_size: Largest file sent, in bytes (the server's ``UploadPostMaxFileSize``, D-18).
        chunk_size: Bytes read from disk at a time while a file part streams (at least 4 KiB).
        queue_size: Walked files buffered between the walker and the workers.
        source_ip: Local address every connection binds to (the same-IP rule, D-10).
        address_family: ``ipv4``, ``ipv6`` or ``any``: which addresses of the host are used.
        include: Glob patterns; when given, only matching files are sent.
        exclude: Glob patterns of files never sent.
        follow_symlinks: Follow symbolic links while walking.
        connect_timeout_s: Connect timeout, seconds.
        read_timeout_s: Timeout waiting for the answer once a body is sent, seconds.
        max_attempts: Attempts per POST for retryable failures (1 = no retry).
        backoff_base_s: First retry delay, seconds; doubles per attempt (with jitter).
        backoff_cap_s: Longest retry delay, seconds.
        fault30000_retries: Retries of a POST answered with ``ipsApiFault`` 30000.
        keepalive_after_s: Idle seconds after which a file-less keep-alive POST is sent.
        job_idle_timeout_s: Idle seconds after which the server closes a job (D-08).
        ca_bundle: PEM file of CA certificates to trust instead of the system's.
        insecure: Do not verify TLS certificates (refused together with ``ca_bundle``).
        namespace: XML namespace of the ``uploadPostParam`` part (spec §2.6).
        auth_namespace: XML namespace of the ``authHeader`` part.
        fault_http_status_code: HTTP status the server should use for faults (200..599);
            None leaves the server's default (500).
        dry_run: Walk and plan the batches, but send nothing.
        report: Where to write the JSON report; None writes none.
        log_format: ``auto`` (console on a terminal, else JSON), ``console`` or ``json``.
        journal: The run journal (SQLite) to use; None picks one per upload target under
            ``$XDG_STATE_HOME/bulkup/`` (else ``~/.local/state/bulkup/``).
        no_journal: Keep no journal: no resume, no skipping of unchanged files.
        checksum: Decide "unchanged" by sha256 instead of size and mtime.
        force: Send every file, changed or not.
        retry_failed: Send only the files that failed in the journal's last record of them.
        no_wait: Do not wait for the job to finish and read its log after ``endJob``.
        require_confirmation: Count files the job log could not confirm (API unreachable,
            no log line) as failed.
        wait_timeout_s: Longest wait for the server to finish processing the job, seconds.
        event_loop: ``auto`` (asyncio's own loop for plain HTTP, where it can ``sendfile()``
            large files from the page cache; uvloop for HTTPS), ``uvloop`` or ``asyncio``.
        read_helper: Read small files in a helper process (off the event loop's core); when
            false, or when the helper cannot start, they are read in process.
        upload_params: The job's processing options (``UploadPostJob``, spec §3.2).
    """

    server_url: str | None = None
    region: Region | None = None
    staging: bool = False
    api_url: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    company_handle: str | None = None
    company_root: str | None = None
    dest_folder: str | None = None
    job_name: str | None = None
    description: str | None = None
    locale: str | None = None
    concurrency: int = 8
    max_post_bytes: int = 16 * MiB
    max_files_per_post: int = 100
    max_file_size: int = 2 * GiB
    chunk_size: int = 1 * MiB
    queue_size: int = 1000
    source_ip: str | None = None
    address_family: AddressFamily = "ipv4"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 300.0
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    fault30000_retries: int = 2
    keepalive_after_s: float = 1200.0
    job_idle_timeout_s: float = 1800.0
    ca_bundle: Path | None = None
    insecure: bool = False
    namespace: str = NS_2014_04_03
    auth_namespace: str = NS_2014_04_03
    fault_http_status_code: int | None = None
    dry_run: bool = False
    report: Path | None = None
    log_format: LogFormat = "auto"
    journal: Path | None = None
    no_journal: bool = False
    checksum: bool = False
    force: bool = False
    retry_failed: bool = False
    no_wait: bool = False
    require_confirmation: bool = False
    wait_timeout_s: float = 3600.0
    event_loop: EventLoopChoice = "auto"
    read_helper: bool = True
    upload_params: UploadPostJob = field(default_factory=_default_upload_params)

    def __post_init__(self) -> None:
        _check_url(self, "server_url")
        _check_choice(self, "region", _REGIONS, optional=True)
        _check_bool(self, "staging")
        _check_url(self, "api_url")
        _check_str(self, "user", non_empty=True)
        _check_password(self)
        _check_path(self, "password_file")
        _check_str(self, "company_handle", non_empty=True)
        _check_str(self, "company_root", non_empty=True)
        if self.company_root is not None and not self.company_root.endswith("/"):
            object.__setattr__(self, "company_root", self.company_root + "/")
        _check_str(self, "dest_folder")
        _check_pattern(self, "job_name", _JOB_NAME, "1-90 characters of A-Z a-z 0-9 . _ -")
        _check_str(self, "description")
        _check_pattern(self, "locale", _LOCALE, "<language>[-<COUNTRY>] such as en or en-US")
        _check_int(self, "concurrency", 1, 256)
        _check_int(self, "max_post_bytes", 1)
        _check_int(self, "max_files_per_post", 1)
        _check_int(self, "max_file_size", 1)
        _check_int(self, "chunk_size", 4 * KiB)
        _check_int(self, "queue_size", 1)
        _check_source_ip(self)
        _check_choice(self, "address_family", _ADDRESS_FAMILIES)
        _check_patterns(self, "include")
        _check_patterns(self, "exclude")
        _check_bool(self, "follow_symlinks")
        _check_seconds(self, "connect_timeout_s")
        _check_seconds(self, "read_timeout_s")
        _check_int(self, "max_attempts", 1)
        _check_seconds(self, "backoff_base_s")
        _check_seconds(self, "backoff_cap_s")
        _check_int(self, "fault30000_retries", 0)
        _check_seconds(self, "keepalive_after_s")
        _check_seconds(self, "job_idle_timeout_s")
        _check_path(self, "ca_bundle")
        _check_bool(self, "insecure")
        _check_choice(self, "namespace", KNOWN_NAMESPACES)
        _check_choice(self, "auth_namespace", KNOWN_NAMESPACES)
        _check_int(self, "fault_http_status_code", 200, 599, optional=True)
        _check_bool(self, "dry_run")
        _check_path(self, "report")
        _check_choice(self, "log_format", _LOG_FORMATS)
        _check_path(self, "journal")
        for name in ("no_journal", "checksum", "force", "retry_failed", "no_wait",
                     "require_confirmation", "read_helper"):
            _check_bool(self, name)
        _check_seconds(self, "wait_timeout_s")
        _check_choice(self, "event_loop", ("auto", "uvloop", "asyncio"))
        if not isinstance(self.upload_params, UploadPostJob):
            got = type(self.upload_params).__name__
            _fail("upload_params", f"must be an UploadPostJob, got {got}")
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.server_url is not None and self.region is not None:
            _fail("server_url", "and region are mutually exclusive: give one", "region")
        if self.staging and self.server_url is not None:
            _fail("staging", "applies to a region's URLs, not to server_url", "server_url")
        if self.insecure and self.ca_bundle is not None:
            _fail("insecure", "and ca_bundle contradict each other: give one", "ca_bundle")
        if self.keepalive_after_s >= self.job_idle_timeout_s:
            _fail(
                "keepalive_after_s",
                f"({self.keepalive_after_s:g}) must be less than job_idle_timeout_s "
                f"({self.job_idle_timeout_s:g})",
                "job_idle_timeout_s",
            )
        if self.no_journal and self.journal is not None:
            _fail("no_journal", "and journal contradict each other: give one", "journal")
        if self.no_wait and self.require_confirmation:
            _fail("no_wait", "and require_confirmation contradict each other: give one",
                  "require_confirmation")
        if self.force and self.retry_failed:
            _fail("force", "and retry_failed contradict each other: give one", "retry_failed")
        if self.backoff_cap_s < self.backoff_base_s:
            _fail(
                "backoff_cap_s",
                f"({self.backoff_cap_s:g}) must be at least backoff_base_s "
                f"({self.backoff_base_s:g})",
                "backoff_base_s",
            )

    @property
    def upload_url(self) -> str | None:
        """The servlet URL: ``server_url``, else the region's (staging honoured), else None."""
        if self.server_url is not None:
            return self.server_url
        if self.region is not None:
            return _UPLOAD_URLS[self.region, self.staging]
        return None

    @property
    def resolved_api_url(self) -> str | None:
        """The SOAP service URL: ``api_url``; else derived from the region or ``server_url``.

        A region gives its API host (spec §1.1, which differs from its upload host); a custom
        ``server_url`` gives ``/scene7/services/IpsApiService`` on the same origin, as the
        emulator serves it. None when neither is set.
        """
        if self.api_url is not None:
            return self.api_url
        if self.region is not None:
            return _API_BASES[self.region, self.staging] + _API_SERVICE
        if self.server_url is not None:
            parts = urlsplit(self.server_url)
            return f"{parts.scheme}://{parts.netloc}{_EMULATOR_API_PATH}"
        return None

    @property
    def use_uvloop(self) -> bool:
        """Whether to run on uvloop: ``auto`` takes it for HTTPS only (measured in
        benchmarks/README.md: asyncio's sendfile() wins on plain HTTP)."""
        if self.event_loop == "auto":
            return (self.upload_url or "").startswith("https:")
        return self.event_loop == "uvloop"

    def with_overrides(self, **changes: Any) -> UploadConfig:
        """A copy with ``changes`` (field name → value) applied and validated again.

        Raises:
            ConfigError: an unknown field name, or a value that fails validation.
        """
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}")
        return replace(self, **changes)


# --- field checks (each reads getattr(obj, name), may store a normalised value) ---------------


def _check_bool(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, bool):
        _fail(name, f"must be true or false, got {_shown(value)}")


def _check_str(obj: object, name: str, *, non_empty: bool = False) -> None:
    value = getattr(obj, name)
    if value is None:
        return
    if not isinstance(value, str):
        _fail(name, f"must be a string, got {_shown(value)}")
    if non_empty and not value:
        _fail(name, "must not be empty")


def _check_password(obj: UploadConfig) -> None:
    # The value is never shown, whatever it is.
    value = obj.password
    if value is not None and not (isinstance(value, str) and value):
        _fail("password", "must be a non-empty string")


def _check_pattern(obj: object, name: str, pattern: re.Pattern[str], what: str) -> None:
    _check_str(obj, name)
    value = getattr(obj, name)
    if value is not None and not pattern.match(value):
        _fail(name, f"must be {what}, got {_shown(value)}")


def _check_choice(
    obj: object, name: str, allowed: tuple[str, ...], *, optional: bool = False
) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if value not in allowed or not isinstance(value, str):
        _fail(name, f"must be one of {', '.join(map(_shown, allowed))}, got {_shown(value)}")


def _check_int(
    obj: object, name: str, lo: int, hi: int | None = None, *, optional: bool = False
) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(name, f"must be an integer, got {_shown(value)}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"within {lo}..{hi}"
        _fail(name, f"must be {bounds}, got {value}")


def _check_seconds(obj: object, name: str) -> None:
    """A positive, finite number of seconds; an int is stored as a float."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, f"must be a number of seconds, got {_shown(value)}")
    if not (math.isfinite(value) and value > 0):
        _fail(name, f"must be a positive number of seconds, got {value}")
    object.__setattr__(obj, name, float(value))


def _check_path(obj: object, name: str) -> None:
    """A Path or None; a str is accepted and stored as a Path."""
    value = getattr(obj, name)
    if value is None or isinstance(value, Path):
        return
    if not isinstance(value, str) or not value:
        _fail(name, f"must be a path, got {_shown(value)}")
    object.__setattr__(obj, name, Path(value))


def _check_patterns(obj: object, name: str) -> None:
    """A sequence of non-empty strings, stored as a tuple."""
    value = getattr(obj, name)
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        _fail(name, f"must be a list of glob patterns, got {_shown(value)}")
    for item in value:
        if not isinstance(item, str) or not item:
            _fail(name, f"items must be non-empty strings, got {_shown(item)}")
    object.__setattr__(obj, name, tuple(value))


def _check_url(obj: object, name: str) -> None:
    value = getattr(obj, name)
    if value is None:
        return
    if not isinstance(value, str):
        _fail(name, f"must be a URL, got {_shown(value)}")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        _fail(name, f"must be an http or https URL, got {_shown(value)}")
    if parts.username is not None or parts.password is not None:
        # Not echoed: the part before "@" may be a password.
        _fail(name, "must not hold credentials (user:password@); use user and BULKUP_PASSWORD")
    if parts.scheme not in ("http", "https") or not hostname:
        _fail(name, f"must be an http or https URL with a host, got {_shown(value)}")


def _check_source_ip(obj: UploadConfig) -> None:
    value = obj.source_ip
    if value is None:
        return
    if not isinstance(value, str):
        _fail("source_ip", f"must be an IP address, got {_shown(value)}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        _fail("source_ip", f"must be an IPv4 or IPv6 address, got {_shown(value)}")
    family = obj.address_family
    if (family == "ipv4" and address.version == 6) or (family == "ipv6" and address.version == 4):
        _fail(
            "source_ip",
            f"{_shown(value)} is an IPv{address.version} address but address_family is "
            f"{_shown(family)}",
            "address_family",
        )
    object.__setattr__(obj, "source_ip", str(address))


# --- sizes ------------------------------------------------------------------------------------

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*\Z")
_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_HELP = (
    "a size in bytes: an integer, or a number with a unit: K, M, G, T, KB, MB, GB, TB "
    "(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
)


def _size_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.match(value)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        return None
    size = Fraction(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return int(size) if size.denominator == 1 else None


def parse_size(value: str | int) -> int:
    """A size in bytes from ``"64MiB"``, ``"1.5 GB"``, ``"4096"`` or an int (case-insensitive).

    ``K``/``M``/``G``/``T`` and ``KB``/``MB``/``GB``/``TB`` are powers of 1000,
    ``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024. The result must be a whole number of bytes.

    Raises:
        ConfigError: the value is not such a size (or negative).
    """
    size = _size_or_none(value)
    if size is None:
        raise ConfigError(f"expected {_SIZE_HELP}, got {_shown(value)}")
    return size


# --- loading ----------------------------------------------------------------------------------

_FIELD_NAMES = frozenset(f.name for f in fields(UploadConfig))
_SIZE_FIELDS = frozenset({"max_post_bytes", "max_file_size", "chunk_size"})
_T = TypeVar("_T")


def _kind(name: str, hint: Any) -> str:
    """How the loader converts a field: from its type (None stripped) and the size list."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    if name in _SIZE_FIELDS:
        return "size"
    if get_origin(hint) is Literal or hint is str:
        return "str"
    if get_origin(hint) is tuple:
        return "strs"
    kinds: dict[Any, str] = {
        bool: "bool",
        int: "int",
        float: "float",
        Path: "path",
        UploadPostJob: "params",
    }
    if hint not in kinds:
        raise TypeError(f"UploadConfig.{name}: no loader for {hint!r}")
    return kinds[hint]


_KINDS: dict[str, str] = {
    name: _kind(name, hint) for name, hint in typing.get_type_hints(UploadConfig).items()
}
_FILE_REFUSED = "password is not read from a config file; use password_file or BULKUP_PASSWORD"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# Layers, lowest first; the password's source is weighed against password_file's by these.
_RANK_FILE, _RANK_ENV, _RANK_FLAG = 1, 2, 3


def load_config(
    *, path: Path | None, environ: Mapping[str, str], overrides: Mapping[str, Any]
) -> UploadConfig:
    """Build the configuration: flags over environment over file over defaults.

    Args:
        path: A TOML config file, or None for none. Relative paths in it (``password_file``,
            ``ca_bundle``, ``report``) are relative to its folder; sizes may be strings such as
            ``"64MiB"``; its ``[serve]`` table is ignored.
        environ: The environment; ``BULKUP_<FIELD>`` for the scalar fields (``include`` and
            ``exclude`` take comma-separated patterns), ``BULKUP_PASSWORD`` for the password.
            Empty values count as unset; other ``BULKUP_*`` names are ignored.
        overrides: Flag values keyed by field name; None means "not given". ``upload_params``
            may be an ``UploadPostJob`` or a mapping merged over the file's table.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: naming the key and the file or variable it came from. ``password`` in the
            file or in ``overrides`` is refused; the password itself is never shown.
    """
    values: dict[str, Any] = {}
    origins: dict[str, tuple[int, str]] = {}
    params_table: dict[str, Any] = {}
    params_job: UploadPostJob | None = None

    if path is not None:
        file_values, params_table = _read_file(path)
        for key, value in file_values.items():
            values[key] = value
            origins[key] = (_RANK_FILE, str(path))
        if params_table:
            params_job = _params_from_table(params_table, str(path))

    env_password = environ.get(PASSWORD_ENV) or None
    for key, kind in _KINDS.items():
        variable = ENV_PREFIX + key.upper()
        text = environ.get(variable)
        if key == "password" or not text:
            continue
        with _prefixed(variable):
            values[key] = _from_env(key, kind, text)
        origins[key] = (_RANK_ENV, variable)

    for key, value in overrides.items():
        if value is None:
            continue
        if key == "password":
            raise ConfigError(
                "password cannot be given as a flag (it would show in ps); "
                "set BULKUP_PASSWORD or password_file"
            )
        if key not in _KINDS:
            raise ConfigError(f"unknown option {key!r}{_did_you_mean(key, _KINDS)}")
        if key == "upload_params":
            params_job = _params_override(value, params_table)
            continue
        values[key] = _from_value(key, _KINDS[key], value, None)
        origins[key] = (_RANK_FLAG, "")

    if params_job is not None:
        values["upload_params"] = params_job
    password = _resolve_password(env_password, values.get("password_file"), origins)
    if password is not None:
        values["password"] = password
    try:
        return UploadConfig(**values)
    except _FieldProblem as exc:
        where = sorted({origins[k][1] for k in exc.keys if k in origins and origins[k][1]})
        if not where:
            raise
        raise ConfigError(f"{', '.join(where)}: {exc}") from None


@contextmanager
def _prefixed(where: str) -> Iterator[None]:
    """Re-raise a ConfigError with ``<where>: `` in front of its message."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _did_you_mean(key: str, choices: Mapping[str, object] | frozenset[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's top-level values (converted) and its ``[upload_params]`` table."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    with _prefixed(str(path)):
        for key, value in data.items():
            if key == "serve":  # the emulator's table (bulkup serve)
                continue
            if key == "password":
                raise ConfigError(_FILE_REFUSED)
            if key not in _KINDS:
                raise ConfigError(f"unknown key {key!r}{_did_you_mean(key, _KINDS)}")
            if key == "upload_params":
                if not isinstance(value, dict):
                    raise ConfigError(f"upload_params must be a table, got {_shown(value)}")
                params = value
                continue
            values[key] = _from_value(key, _KINDS[key], value, path.parent)
    return values, params


def _from_value(key: str, kind: str, value: Any, base: Path | None) -> Any:
    """Convert a typed value (TOML or flag); a value of the wrong type passes on unchanged,
    for ``UploadConfig`` to reject with the same message whatever its source."""
    if kind == "size" and isinstance(value, str):
        size = _size_or_none(value)
        if size is None:
            _fail(key, f'must be a size such as "16MiB" or 1048576, got {_shown(value)}')
        return size
    if kind == "path" and isinstance(value, str) and value:
        resolved = Path(value).expanduser()
        return base / resolved if base is not None and not resolved.is_absolute() else resolved
    if kind == "strs" and isinstance(value, list):
        return tuple(value)
    return value


def _from_env(key: str, kind: str, text: str) -> Any:
    """Convert an environment string to the field's type."""
    if kind == "bool":
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        _fail(key, f"must be true or false (1/0, yes/no, on/off), got {_shown(text)}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            _fail(key, f"must be an integer, got {_shown(text)}")
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            _fail(key, f"must be a number, got {_shown(text)}")
    if kind == "strs":
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if kind == "params":
        _fail(key, "cannot be set from the environment; use the [upload_params] table")
    return _from_value(key, kind, text, None)


def _resolve_password(
    env_password: str | None, password_file: Any, origins: Mapping[str, tuple[int, str]]
) -> str | None:
    """The password from ``BULKUP_PASSWORD`` or ``password_file``, whichever layer is higher.

    Both from the environment is ambiguous and refused. A ``password_file`` of the wrong type
    is left for ``UploadConfig`` to reject.
    """
    if not isinstance(password_file, Path):
        return env_password
    rank, where = origins["password_file"]
    if env_password is not None:
        if rank == _RANK_ENV:
            raise ConfigError("BULKUP_PASSWORD and BULKUP_PASSWORD_FILE are both set; set one")
        if rank < _RANK_ENV:
            return env_password
    prefix = f"{where}: " if where else ""
    try:
        text = password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{prefix}password_file {_shown(password_file)} cannot be read ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{prefix}password_file {_shown(password_file)} is not UTF-8 text"
        ) from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(f"{prefix}password_file {_shown(password_file)} is empty")
    return password


def _params_override(value: Any, file_table: Mapping[str, Any]) -> UploadPostJob:
    if isinstance(value, UploadPostJob):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"upload_params must be an UploadPostJob or a mapping, got {_shown(value)}"
        )
    return _params_from_table(_deep_merge(file_table, value), None)


def _deep_merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _params_from_table(table: Mapping[str, Any], where: str | None) -> UploadPostJob:
    """Build the job options from a table merged over the defaults."""
    merged = {**_UPLOAD_PARAMS_TABLE, **table}
    if where is None:
        return _build_options(UploadPostJob, merged, "upload_params")
    with _prefixed(where):
        return _build_options(UploadPostJob, merged, "upload_params")


_CLASS_FIELD = re.compile(r"(\w+)\.(\w+): (.*)\Z", re.DOTALL)


def _build_options(cls: type[_T], table: Mapping[str, Any], key: str) -> _T:
    """Construct ``cls`` from ``table``, nested tables becoming nested option objects.

    ProtocolValueErrors become ConfigErrors naming ``<key>.<field>``.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(f"unknown key '{key}.{name}'{_did_you_mean(name, known)}")
        nested = _nested_class(hints[name])
        if nested is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}.{name} must be a table, got {_shown(value)}")
            value = _build_options(nested, value, f"{key}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    for name, spec in known.items():
        if spec.default is MISSING and spec.default_factory is MISSING and name not in kwargs:
            raise ConfigError(f"{key}.{name} is required")
    try:
        return cls(**kwargs)
    except ProtocolValueError as exc:
        match = _CLASS_FIELD.match(str(exc))
        if match is not None and match.group(1) == cls.__name__:
            raise ConfigError(f"{key}.{match.group(2)}: {match.group(3)}") from None
        raise ConfigError(f"{key}: {exc}") from None


def _nested_class(hint: Any) -> type[Any] | None:
    """The option dataclass in ``X | None``, if the field holds one."""
    for arg in get_args(hint) or (hint,):
        if isinstance(arg, type) and hasattr(arg, "__dataclass_fields__"):
            return arg
    return None
