"""The uploader's configuration: one frozen dataclass.

:class:`UploadConfig` holds every option, with units in the field names, and validates itself on
construction (the checks are in :mod:`bulkup.config.checks`).
:func:`bulkup.config.load.load_config` builds one from four layers, highest first:

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

import ipaddress
import math
import re
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from bulkup.config.checks import (
    check_bool,
    check_choice,
    check_int,
    check_int_or_auto,
    check_path,
    check_pattern,
    check_patterns,
    check_seconds,
    check_str,
    check_url,
    fail,
    parse_size,
    shown,
)
from bulkup.config.filters import AGE_HELP, age_seconds_before
from bulkup.config.proxy import DIRECT, parse_proxy
from bulkup.config.shard import SHARD_BY, parse_shard
from bulkup.config.timetable import parse_bwlimit
from bulkup.errors import ConfigError
from bulkup.protocol.enums import EmailSetting
from bulkup.protocol.namespaces import KNOWN_NAMESPACES, NS_2014_04_03
from bulkup.protocol.options import UploadPostJob
from bulkup.retry import RetryPolicy

__all__ = [
    "ENV_PREFIX",
    "FIELD_NAMES",
    "PASSWORD_ENV",
    "UPLOAD_PARAMS_TABLE",
    "UploadConfig",
    "parse_duration",
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
LogLevel = Literal["debug", "info", "warning", "error"]
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
ShardBy = Literal["hash", "size"]
Concurrency = int | Literal["auto"]

_REGIONS: tuple[str, ...] = get_args(Region)
_ADDRESS_FAMILIES: tuple[str, ...] = get_args(AddressFamily)
_LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
_LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)

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
UPLOAD_PARAMS_TABLE: dict[str, Any] = {
    "overwrite": True,
    "ready_for_publish": False,
    "preserve_publish_state": True,
    "create_mask": False,
    "email_setting": EmailSetting.NONE.value,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class UploadConfig:
    """Every option of an upload run; validated on construction (raises ConfigError naming the key).

    Memory: peak memory ≈ ``queue_size`` × ~1 KiB (one walked-file record each)
    + ``concurrency`` × ``chunk_size`` × 2 (a chunk being read and one being sent per POST;
    under ``auto``, ``max_concurrency`` in place of ``concurrency``).

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
        concurrency: POSTs in flight at once (1..256), or ``auto``: as many as pay, found
            while the run goes (from 8, up to ``max_concurrency``; backing off on pushback,
            timeouts and rising latency; see :mod:`bulkup.pipeline.concurrency`).
        max_concurrency: The most POSTs in flight under ``concurrency = "auto"`` (1..256;
            a fixed ``concurrency`` ignores it).
        max_post_bytes: Byte cap of the files of one POST; a larger file travels alone.
        max_files_per_post: File-count cap of one POST.
        max_file_size: Largest file sent, in bytes (the server's ``UploadPostMaxFileSize``, D-18).
        chunk_size: Bytes read from disk at a time while a file part streams (at least 4 KiB).
        queue_size: Walked files buffered between the walker and the workers.
        source_ip: Local address every connection binds to (the same-IP rule, D-10).
        address_family: ``ipv4``, ``ipv6`` or ``any``: which addresses of the host are used.
        include: Glob patterns; when given, only matching files are sent (rclone's rules, see
            :mod:`bulkup.config.filters`).
        exclude: Glob patterns of files never sent; ``dir/`` leaves out a directory and
            everything below it (not descended into). Exclude wins over include.
        include_from: File of include patterns, one a line (``#`` comments, blank lines).
        exclude_from: File of exclude patterns, one a line.
        ignore_case: Match every include/exclude pattern case-insensitively.
        min_size: Files smaller than this (bytes) are left out; None for no limit.
        max_size: Files larger than this (bytes) are left out; None for no limit (a file over
            ``max_file_size`` fails instead: the server would refuse it).
        min_age: Files modified less than this long before the run's start are left out
            (``30s``, ``10m``, ``2h``, ``7d``, ``1w``, or an ISO date); None for no limit.
        max_age: Files modified more than this long before the run's start (or before this
            ISO date) are left out; None for no limit.
        follow_symlinks: Follow symbolic links while walking, only those that resolve inside a
            source root (a link out of the roots is skipped with a reason).
        follow_external_symlinks: With ``follow_symlinks``, follow links out of the source
            roots too.
        connect_timeout_s: Connect timeout, seconds.
        read_timeout_s: Timeout waiting for the answer once a body is sent, seconds.
        stall_timeout_s: Seconds a connection may take no bytes of a body before it is dropped
            and the POST retried (Linux ``TCP_USER_TIMEOUT``; elsewhere no such limit).
        post_timeout_s: Deadline of one whole POST, from its first byte to the end of its
            answer; None sets it per POST to ``read_timeout_s`` plus the body's size at
            32 KiB/s (:func:`bulkup.transport.client.post_deadline_s`). An expired POST is retried.
        proxy: HTTP proxy URL for every request (``http://[user:password@]host:port``), or
            ``direct`` for none; None takes it from the environment as curl does
            (``https_proxy``, ``http_proxy``, ``all_proxy``, ``no_proxy``; see
            :mod:`bulkup.config.proxy`).
        stop_grace_s: After the first SIGINT or SIGTERM, how long the POSTs in flight may take
            to finish before they are abandoned (their files stay unacknowledged).
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
        list_files: With ``dry_run``, print every file planned: its POST number, target path
            and size, in packing order.
        report: Where to write the JSON report; None writes none.
        log_format: ``auto`` (console on a terminal, else JSON), ``console`` or ``json``.
        log_level: The least severe events logged: ``debug``, ``info``, ``warning`` or
            ``error`` (``-v`` is debug, ``-q`` warning).
        log_file: Append the log to this file as JSON lines instead of writing it to stderr.
        stats_interval_s: Seconds between two ``stats`` events (the progress display's
            figures as a log event; ``--stats 30s``); 0 for none; None: every 60 s when
            stderr is not a terminal, none on a terminal (the display shows them).
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
        read_helper: Read small files in a helper process (off the event loop's core) on
            plain HTTP; when false, over HTTPS, or when the helper cannot start, they are read
            in process.
        bwlimit: Cap on request body bytes a second for the whole run: a rate (``10M``,
            ``512k``, ``off``) or rclone's timetable (``"08:00,512k 19:00,off"``, local time,
            ``Mon-08:00,...`` for a weekday); see :mod:`bulkup.config.timetable`. SIGUSR2
            toggles it off and on. None: no limit.
        tpslimit: Cap on POSTs started a second for the whole run (0 or None: none).
        tpslimit_burst: POSTs that may start at once under ``tpslimit`` (default 1).
        shard: ``K/N``: send only shard K of N of the files (0 <= K < N; each shard is its
            own job, journal and report), or ``auto/N`` for K from ``JOB_COMPLETION_INDEX``
            (resolved by the loader); see :mod:`bulkup.config.shard`. None: every file.
        shard_by: ``hash`` (a file's shard is a hash of its target) or ``size`` (the largest
            files placed by bytes from a listing every shard computes alike; see
            :mod:`bulkup.pipeline.shard`).
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
    concurrency: Concurrency = 8  # "auto" is opt-in until it is level with 8 on loopback
    max_concurrency: int = 64
    max_post_bytes: int = 16 * MiB
    max_files_per_post: int = 100
    max_file_size: int = 2 * GiB
    chunk_size: int = 1 * MiB
    queue_size: int = 1000
    source_ip: str | None = None
    address_family: AddressFamily = "ipv4"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_from: Path | None = None
    exclude_from: Path | None = None
    ignore_case: bool = False
    min_size: int | None = None
    max_size: int | None = None
    min_age: str | None = None
    max_age: str | None = None
    follow_symlinks: bool = False
    follow_external_symlinks: bool = False
    connect_timeout_s: float = 30.0
    read_timeout_s: float = 300.0
    stall_timeout_s: float = 120.0
    post_timeout_s: float | None = None
    stop_grace_s: float = 30.0
    proxy: str | None = field(default=None, repr=False)
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
    list_files: bool = False
    report: Path | None = None
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    log_file: Path | None = None
    stats_interval_s: float | None = None
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
    bwlimit: str | None = None
    tpslimit: float | None = None
    tpslimit_burst: int = 1
    shard: str | None = None
    shard_by: ShardBy = "hash"
    upload_params: UploadPostJob = field(default_factory=_default_upload_params)

    def __post_init__(self) -> None:
        check_url(self, "server_url")
        check_choice(self, "region", _REGIONS, optional=True)
        check_bool(self, "staging")
        check_url(self, "api_url")
        check_str(self, "user", non_empty=True)
        _check_password(self)
        check_path(self, "password_file")
        check_str(self, "company_handle", non_empty=True)
        check_str(self, "company_root", non_empty=True)
        if self.company_root is not None and not self.company_root.endswith("/"):
            object.__setattr__(self, "company_root", self.company_root + "/")
        check_str(self, "dest_folder")
        check_pattern(self, "job_name", _JOB_NAME, "1-90 characters of A-Z a-z 0-9 . _ -")
        check_str(self, "description")
        check_pattern(self, "locale", _LOCALE, "<language>[-<COUNTRY>] such as en or en-US")
        check_int_or_auto(self, "concurrency", 1, 256)
        check_int(self, "max_concurrency", 1, 256)
        check_int(self, "max_post_bytes", 1)
        check_int(self, "max_files_per_post", 1)
        check_int(self, "max_file_size", 1)
        check_int(self, "chunk_size", 4 * KiB)
        check_int(self, "queue_size", 1)
        _check_source_ip(self)
        check_choice(self, "address_family", _ADDRESS_FAMILIES)
        check_patterns(self, "include")
        check_patterns(self, "exclude")
        check_path(self, "include_from")
        check_path(self, "exclude_from")
        check_bool(self, "ignore_case")
        check_int(self, "min_size", 0, optional=True)
        check_int(self, "max_size", 0, optional=True)
        _check_age(self, "min_age")
        _check_age(self, "max_age")
        check_bool(self, "follow_symlinks")
        check_bool(self, "follow_external_symlinks")
        check_seconds(self, "connect_timeout_s")
        check_seconds(self, "read_timeout_s")
        check_seconds(self, "stall_timeout_s")
        if self.post_timeout_s is not None:
            check_seconds(self, "post_timeout_s")
        check_seconds(self, "stop_grace_s")
        _check_stats_interval(self)
        _check_proxy(self)
        check_int(self, "max_attempts", 1)
        check_seconds(self, "backoff_base_s")
        check_seconds(self, "backoff_cap_s")
        check_int(self, "fault30000_retries", 0)
        check_seconds(self, "keepalive_after_s")
        check_seconds(self, "job_idle_timeout_s")
        check_path(self, "ca_bundle")
        check_bool(self, "insecure")
        check_choice(self, "namespace", KNOWN_NAMESPACES)
        check_choice(self, "auth_namespace", KNOWN_NAMESPACES)
        check_int(self, "fault_http_status_code", 200, 599, optional=True)
        check_bool(self, "dry_run")
        check_bool(self, "list_files")
        check_path(self, "report")
        check_choice(self, "log_format", _LOG_FORMATS)
        check_choice(self, "log_level", _LOG_LEVELS)
        check_path(self, "log_file")
        check_path(self, "journal")
        for name in (
            "no_journal",
            "checksum",
            "force",
            "retry_failed",
            "no_wait",
            "require_confirmation",
            "read_helper",
        ):
            check_bool(self, name)
        check_seconds(self, "wait_timeout_s")
        check_choice(self, "event_loop", ("auto", "uvloop", "asyncio"))
        _check_shard(self)
        _check_bwlimit(self)
        _check_tpslimit(self)
        check_int(self, "tpslimit_burst", 1)
        check_choice(self, "shard_by", SHARD_BY)
        if not isinstance(self.upload_params, UploadPostJob):
            got = type(self.upload_params).__name__
            fail("upload_params", f"must be an UploadPostJob, got {got}")
        self._check_combinations()

    def _check_combinations(self) -> None:
        if self.server_url is not None and self.region is not None:
            fail("server_url", "and region are mutually exclusive: give one", "region")
        if self.staging and self.server_url is not None:
            fail("staging", "applies to a region's URLs, not to server_url", "server_url")
        if self.insecure and self.ca_bundle is not None:
            fail("insecure", "and ca_bundle contradict each other: give one", "ca_bundle")
        if self.follow_external_symlinks and not self.follow_symlinks:
            fail(
                "follow_external_symlinks",
                "needs follow_symlinks too (no link is followed without it)",
                "follow_symlinks",
            )
        if self.keepalive_after_s >= self.job_idle_timeout_s:
            fail(
                "keepalive_after_s",
                f"({self.keepalive_after_s:g}) must be less than job_idle_timeout_s "
                f"({self.job_idle_timeout_s:g})",
                "job_idle_timeout_s",
            )
        self._check_filter_combinations()
        if self.no_journal and self.journal is not None:
            fail("no_journal", "and journal contradict each other: give one", "journal")
        if self.no_wait and self.require_confirmation:
            fail(
                "no_wait",
                "and require_confirmation contradict each other: give one",
                "require_confirmation",
            )
        if self.force and self.retry_failed:
            fail("force", "and retry_failed contradict each other: give one", "retry_failed")
        if self.backoff_cap_s < self.backoff_base_s:
            fail(
                "backoff_cap_s",
                f"({self.backoff_cap_s:g}) must be at least backoff_base_s "
                f"({self.backoff_base_s:g})",
                "backoff_base_s",
            )

    def _check_filter_combinations(self) -> None:
        if self.list_files and not self.dry_run:
            fail("list_files", "goes with dry_run (--dry-run --list)", "dry_run")
        if (
            self.min_size is not None
            and self.max_size is not None
            and self.min_size > self.max_size
        ):
            fail(
                "min_size",
                f"({self.min_size}) must be at most max_size ({self.max_size})",
                "max_size",
            )
        if self.min_age is not None and self.max_age is not None:
            now = time.time()  # a plausibility check only; the run measures from its start
            if age_seconds_before(self.min_age, now) < age_seconds_before(self.max_age, now):
                fail(
                    "min_age",
                    f"({self.min_age}) must be younger than max_age "
                    f"({self.max_age}): no file could pass both",
                    "max_age",
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
    def concurrency_cap(self) -> int:
        """The most POSTs ever in flight: the fixed ``concurrency``, or ``max_concurrency``
        under ``auto`` (the number of workers, and of connections kept)."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

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
        unknown = sorted(set(changes) - FIELD_NAMES)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}")
        return replace(self, **changes)


def _check_password(obj: UploadConfig) -> None:
    # The value is never shown, whatever it is.
    value = obj.password
    if value is not None and not (isinstance(value, str) and value):
        fail("password", "must be a non-empty string")


def parse_duration(text: str, name: str = "--stats") -> float:
    """Seconds from ``30s``, ``1m``, ``1h30m``, ``500ms`` or a bare number of seconds.

    Raises:
        ConfigError: ``text`` is no such duration (the message names ``name``).
    """
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + unit for n, unit in parts) != value:
        raise ConfigError(
            f"{name}: expected a duration such as 30s, 1m or 1h30m (0: off), got {shown(text)}"
        )
    return sum(float(n) * _DURATION_UNIT_S[unit] for n, unit in parts)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _check_stats_interval(obj: UploadConfig) -> None:
    value = obj.stats_interval_s
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        fail(
            "stats_interval_s",
            f"must be a number of seconds (0: no stats events), got {shown(value)}",
        )
    object.__setattr__(obj, "stats_interval_s", float(value))


def _check_age(obj: UploadConfig, name: str) -> None:
    value = getattr(obj, name)
    if value is None:
        return
    if not isinstance(value, str):
        fail(name, f"must be {AGE_HELP}, got {shown(value)}")
    try:
        age_seconds_before(value, 0.0)
    except ValueError:
        fail(name, f"must be {AGE_HELP}, got {shown(value)}")


def _check_proxy(obj: UploadConfig) -> None:
    # Never echoed: a proxy URL may hold a password.
    value = obj.proxy
    if value is None or value == DIRECT:
        return
    if not isinstance(value, str) or not value.strip():
        fail("proxy", f"must be a proxy URL (http://host:port) or {DIRECT!r}")
    parse_proxy(value, "proxy")


def _check_bwlimit(obj: UploadConfig) -> None:
    value = obj.bwlimit
    if value is None:
        return
    if not isinstance(value, str):
        fail("bwlimit", f"must be a rate (10M, 512k, off) or a timetable, got {shown(value)}")
    try:
        parse_bwlimit(value)
    except ConfigError as exc:
        fail("bwlimit", str(exc).removeprefix("bwlimit "))


def _check_tpslimit(obj: UploadConfig) -> None:
    value = obj.tpslimit
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        fail("tpslimit", f"must be a number of POSTs a second (0: no limit), got {shown(value)}")
    object.__setattr__(obj, "tpslimit", float(value))


def _check_shard(obj: UploadConfig) -> None:
    value = obj.shard
    if value is None:
        return
    try:
        spec = parse_shard(value)
    except ConfigError as exc:
        fail("shard", str(exc).removeprefix("shard "))
    object.__setattr__(obj, "shard", str(spec))


def _check_source_ip(obj: UploadConfig) -> None:
    value = obj.source_ip
    if value is None:
        return
    if not isinstance(value, str):
        fail("source_ip", f"must be an IP address, got {shown(value)}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        fail("source_ip", f"must be an IPv4 or IPv6 address, got {shown(value)}")
    family = obj.address_family
    if (family == "ipv4" and address.version == 6) or (family == "ipv6" and address.version == 4):
        fail(
            "source_ip",
            f"{shown(value)} is an IPv{address.version} address but address_family is "
            f"{shown(family)}",
            "address_family",
        )
    object.__setattr__(obj, "source_ip", str(address))


FIELD_NAMES = frozenset(f.name for f in fields(UploadConfig))


def policy_of(config: UploadConfig) -> RetryPolicy:
    """The retry policy the config asks for."""
    return RetryPolicy(
        max_attempts=config.max_attempts,
        base_s=config.backoff_base_s,
        cap_s=config.backoff_cap_s,
        fault30000_retries=config.fault30000_retries,
    )
