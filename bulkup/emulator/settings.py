"""The emulator's settings: users, companies and the knobs of spec §6.1, from TOML or flags.

A TOML file holds a ``[serve]`` table (so one file can configure both the client and the
emulator)::

    [serve]
    idle_timeout_s = 1800
    max_inflight = 4           # a server that pushes back (all off by default)
    response_delay_ms = 50
    ingest_rate = "50M"        # bytes per second (k, M, G: 1024 multiples), or an integer

    [[serve.companies]]
    name = "Acme"              # root folder "Acme/" unless root_path is given
    handle = "c|42"
    overwrite_mode = "OverwriteFullName"

    [[serve.users]]
    email = "uploader@example.com"
    password = "s3cret"
    role = "IpsUser"
    companies = ["c|42"]       # every company when left out
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo"
DEMO_COMPANY = "Demo"

ROLES = frozenset(
    {
        "IpsAdmin",
        "IpsCompanyAdmin",
        "IpsUser",
        "WebServiceUser",
        "TrialSiteAdmin",
        "TrialSiteUser",
        "ImagePortalAdmin",
        "ImagePortalUser",
        "ImagePortalContrib",
        "ImagePortalContribUser",
    }
)
OVERWRITE_MODES = frozenset(
    {
        "OverwriteFullName",
        "OverwriteAnyExt",
        "OverwriteFullNameAnyFolder",
        "OverwriteAnyExtAnyFolder",
    }
)
_COMPANY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")


class SettingsError(ValueError):
    """A bad emulator setting; the message names the flag or key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Company:
    """A company: its handle (``c|<n>``), its name and its root folder (``Name/``)."""

    handle: str
    name: str
    root_path: str
    overwrite_mode: str = "OverwriteFullName"
    retain_publish_state: bool = True
    javascript_upload_enabled: bool = False

    @property
    def root_folder(self) -> str:
        """The root path without its trailing slash: the folder under the emulator root."""
        return self.root_path.rstrip("/")


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """An IPS user; ``companies`` holds the handles it belongs to."""

    email: str
    password: str = field(repr=False)
    role: str = "IpsUser"
    companies: tuple[str, ...] = ()
    disabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorSettings:
    """Everything the emulator needs; spec §6.1 lists the knobs and their defaults.

    A server that pushes back (issue 17), all off by default:

    - ``max_inflight``: upload POSTs (``/scene7/UploadFile``, never SOAP calls) in flight at
      once per company; 0 = no limit. A POST counts from the moment its company is known (its
      first file part's headers, or the end of a POST without files) until its answer is sent,
      ``response_delay_ms`` included. One beyond the limit is read to its end and dropped (as a
      fault is, up to ``drain_limit_bytes``, so the connection stays usable) and answered
      ``pushback_status`` with ``Retry-After: retry_after_s`` and a plain-text body.
    - ``retry_after_s``: the ``Retry-After`` of that answer, whole seconds (default 1).
    - ``pushback_status``: 503 (default) or 429.
    - ``response_delay_ms``: every answer of the upload servlet and the SOAP service waits
      this long before it is sent (the injected sleep), as a far server does; 0 = none.
    - ``ingest_rate``: the server's intake of request body bytes, in bytes per second, shared
      by every request at once (one token bucket); 0 = unpaced. Reading from the socket is
      paced, so TCP flow control slows the senders down to it.
    """

    root: Path
    host: str = "127.0.0.1"
    port: int = 8080
    users: tuple[User, ...] = ()
    companies: tuple[Company, ...] = ()
    idle_timeout_s: float = 1800.0
    max_file_size: int = 2 * 1024**3
    done_linger_s: float = 60.0
    processing_delay_s: float = 0.0
    strict_part_order: bool = True
    strict_element_order: bool = False
    trust_forwarded_for: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    faults: str = ""
    drain_limit_bytes: int = 64 * 1024**2
    max_parts_per_post: int = 10_000
    header_timeout_s: float = 30.0
    body_idle_timeout_s: float = 60.0
    max_connections: int = 1_000
    max_inflight: int = 0
    retry_after_s: int = 1
    pushback_status: int = 503
    response_delay_ms: float = 0.0
    ingest_rate: int = 0
    demo: bool = False

    def company(self, handle: str) -> Company | None:
        """The company with this handle, if any."""
        return next((c for c in self.companies if c.handle == handle), None)

    def user(self, email: str) -> User | None:
        """The user with this e-mail address (case-insensitive), if any."""
        wanted = email.casefold()
        return next((u for u in self.users if u.email.casefold() == wanted), None)


def parse_company_flag(value: str, number: int) -> Company:
    """``NAME[:HANDLE]`` → a company; the handle defaults to ``c|<number>``."""
    name, _, handle = value.partition(":")
    _check_company_name(name, "--company")
    return Company(handle=handle or f"c|{number}", name=name, root_path=f"{name}/")


def parse_user_flag(value: str, company_handles: tuple[str, ...]) -> User:
    """``EMAIL:PASSWORD`` → an ``IpsUser`` member of every given company."""
    email, sep, password = value.partition(":")
    if not sep or not email or not password:
        raise SettingsError("--user expects EMAIL:PASSWORD")
    return User(email=email, password=password, companies=company_handles)


def build_settings(
    *,
    root: Path,
    config: Path | None = None,
    users: list[str] | None = None,
    companies: list[str] | None = None,
    **knobs: Any,
) -> EmulatorSettings:
    """Settings from an optional TOML file, then flags on top; demo fixtures when none given."""
    base = load_toml(config, root) if config else EmulatorSettings(root=root)
    knobs = {k: v for k, v in knobs.items() if v is not None}
    settings = replace(base, **knobs)
    if companies:
        found = tuple(parse_company_flag(c, i) for i, c in enumerate(companies, 1))
        settings = replace(settings, companies=found)
    if not settings.companies:
        settings = replace(settings, companies=(parse_company_flag(DEMO_COMPANY, 1),))
    handles = tuple(c.handle for c in settings.companies)
    if users:
        settings = replace(settings, users=tuple(parse_user_flag(u, handles) for u in users))
    if not settings.users:
        demo = User(email=DEMO_EMAIL, password=DEMO_PASSWORD, companies=handles)
        settings = replace(settings, users=(demo,), demo=True)
    _check_consistency(settings)
    return settings


def load_toml(path: Path, root: Path) -> EmulatorSettings:
    """Read the ``[serve]`` table of a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    table = data.get("serve", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [serve] must be a table")
    return _settings_from_table(table, root, path)


_SCALAR_KEYS: dict[str, type] = {
    "host": str,
    "port": int,
    "idle_timeout_s": float,
    "max_file_size": int,
    "done_linger_s": float,
    "processing_delay_s": float,
    "strict_part_order": bool,
    "strict_element_order": bool,
    "trust_forwarded_for": bool,
    "faults": str,
    "drain_limit_bytes": int,
    "tls_cert": str,
    "tls_key": str,
    "max_parts_per_post": int,
    "header_timeout_s": float,
    "body_idle_timeout_s": float,
    "max_connections": int,
    "max_inflight": int,
    "retry_after_s": int,
    "pushback_status": int,
    "response_delay_ms": float,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)
_RATE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_rate(text: str, where: str = "--ingest-rate") -> int:
    """``50M``, ``512k``, ``1.5G`` or ``100000`` → bytes per second (k, M, G are 1024
    multiples, as curl's ``--limit-rate``; a trailing ``B``, ``iB`` or ``/s`` is allowed)."""
    match = _RATE.match(text)
    if not match:
        raise SettingsError(f"{where}: {text!r} is not a rate such as 50M, 512k or 100000")
    return int(float(match.group(1)) * _RATE_UNITS[match.group(2).lower()])


def _settings_from_table(table: dict[str, Any], root: Path, path: Path) -> EmulatorSettings:
    knobs: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("companies", "users", "root"):
            continue
        if key == "ingest_rate":
            knobs[key] = _rate_value(value, f"{path}: serve.ingest_rate")
            continue
        kind = _SCALAR_KEYS.get(key)
        if kind is None:
            raise SettingsError(f"{path}: unknown key serve.{key}")
        knobs[key] = _typed(value, kind, f"{path}: serve.{key}")
        if key in ("tls_cert", "tls_key"):
            knobs[key] = (path.parent / knobs[key]).resolve()
    companies = tuple(_company(c, i, path) for i, c in enumerate(table.get("companies", []), 1))
    handles = tuple(c.handle for c in companies)
    users = tuple(_user(u, handles, path) for u in table.get("users", []))
    root = Path(table["root"]) if "root" in table else root
    return EmulatorSettings(root=root, companies=companies, users=users, **knobs)


def _rate_value(value: Any, where: str) -> int:
    """A rate from TOML: an integer (bytes per second) or a string such as ``"50M"``."""
    if isinstance(value, str):
        return parse_rate(value, where)
    return int(_typed(value, int, where))


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise SettingsError(f"{where} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _company(entry: Any, number: int, path: Path) -> Company:
    where = f"{path}: serve.companies[{number - 1}]"
    if not isinstance(entry, dict) or "name" not in entry:
        raise SettingsError(f"{where} needs a name")
    allowed = {
        "name",
        "handle",
        "root_path",
        "overwrite_mode",
        "retain_publish_state",
        "javascript_upload_enabled",
    }
    _no_unknown(entry, allowed, where)
    name = _typed(entry["name"], str, f"{where}.name")
    _check_company_name(name, f"{where}.name")
    company = Company(
        handle=_typed(entry.get("handle", f"c|{number}"), str, f"{where}.handle"),
        name=name,
        root_path=_typed(entry.get("root_path", f"{name}/"), str, f"{where}.root_path"),
        overwrite_mode=_typed(
            entry.get("overwrite_mode", "OverwriteFullName"), str, f"{where}.overwrite_mode"
        ),
        retain_publish_state=_typed(
            entry.get("retain_publish_state", True), bool, f"{where}.retain_publish_state"
        ),
        javascript_upload_enabled=_typed(
            entry.get("javascript_upload_enabled", False),
            bool,
            f"{where}.javascript_upload_enabled",
        ),
    )
    if company.overwrite_mode not in OVERWRITE_MODES:
        raise SettingsError(f"{where}.overwrite_mode: unknown mode {company.overwrite_mode!r}")
    _check_company_name(company.root_folder, f"{where}.root_path")
    return company


def _user(entry: Any, handles: tuple[str, ...], path: Path) -> User:
    where = f"{path}: serve.users"
    if not isinstance(entry, dict) or "email" not in entry or "password" not in entry:
        raise SettingsError(f"{where}: every user needs email and password")
    _no_unknown(entry, {"email", "password", "role", "companies", "disabled"}, where)
    user = User(
        email=_typed(entry["email"], str, f"{where}.email"),
        password=_typed(entry["password"], str, f"{where}.password"),
        role=_typed(entry.get("role", "IpsUser"), str, f"{where}.role"),
        companies=tuple(entry.get("companies", handles)),
        disabled=_typed(entry.get("disabled", False), bool, f"{where}.disabled"),
    )
    if user.role not in ROLES:
        raise SettingsError(f"{where}.role: unknown role {user.role!r}")
    return user


def _no_unknown(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]}")


def _check_company_name(name: str, where: str) -> None:
    if not _COMPANY_NAME.match(name):
        raise SettingsError(
            f"{where}: company name {name!r} must be 1-100 letters, digits, "
            "spaces, '_', '.' or '-', not starting with a dot"
        )


def _check_consistency(settings: EmulatorSettings) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("--tls-cert and --tls-key go together")
    handles = [c.handle for c in settings.companies]
    if len(set(handles)) != len(handles):
        raise SettingsError("two companies share a handle")
    folders = [c.root_folder.casefold() for c in settings.companies]
    if len(set(folders)) != len(folders):
        raise SettingsError("two companies share a root folder")
    if settings.idle_timeout_s <= 0:
        raise SettingsError("--idle-timeout-s must be positive")
    if settings.max_file_size < 0:
        raise SettingsError("max_file_size must not be negative")
    if not settings.processing_delay_s >= 0:  # also refuses NaN
        raise SettingsError("--processing-delay-s must not be negative")
    if not settings.done_linger_s >= 0:
        raise SettingsError("--done-linger-s must not be negative")
    _check_network_limits(settings)


def _check_network_limits(settings: EmulatorSettings) -> None:
    """The knobs that keep a hostile client from holding memory or connections (rule 9)."""
    for flag, value in (
        ("--max-parts-per-post", settings.max_parts_per_post),
        ("--max-connections", settings.max_connections),
    ):
        if value < 1:
            raise SettingsError(f"{flag} must be at least 1")
    for flag, seconds in (
        ("--header-timeout-s", settings.header_timeout_s),
        ("--body-idle-timeout-s", settings.body_idle_timeout_s),
    ):
        if not 0 < seconds < float("inf"):  # also refuses NaN
            raise SettingsError(f"{flag} must be a positive number of seconds")
    if settings.drain_limit_bytes < 0:
        raise SettingsError("drain_limit_bytes must not be negative")
    _check_pushback(settings)


def _check_pushback(settings: EmulatorSettings) -> None:
    """The knobs of a server that pushes back (issue 17)."""
    for flag, count in (
        ("--max-inflight", settings.max_inflight),
        ("--retry-after-s", settings.retry_after_s),
        ("--ingest-rate", settings.ingest_rate),
    ):
        if count < 0:
            raise SettingsError(f"{flag} must not be negative")
    if settings.pushback_status not in (429, 503):
        raise SettingsError("--pushback-status must be 503 or 429")
    if not 0 <= settings.response_delay_ms < float("inf"):  # also refuses NaN
        raise SettingsError("--response-delay-ms must be a non-negative number")
