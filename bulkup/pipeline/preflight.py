"""What a run checks before its first POST, so that a routine mistake ends at once with exit 2
and a message naming the culprit, not with a traceback or after the whole upload.

Checked: the credentials (user, password, company), the CA bundle (exists and holds PEM
certificates), the report's folder, ``source_ip`` (an address of this host) and the sources
(each exists). The journal's folder is checked where the journal is opened
(:mod:`bulkup.journal.session`).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

from bulkup.config.model import UploadConfig
from bulkup.errors import ConfigError

STDOUT = "-"


def check_before_upload(config: UploadConfig, sources: Sequence[str]) -> None:
    """Raise :class:`ConfigError` for the first mistake found; nothing is sent."""
    check_sources(sources)
    check_report_folder(config.report)
    if config.dry_run:
        return
    check_credentials(config)
    check_ca_bundle(config.ca_bundle)
    check_source_ip(config.source_ip)


def check_credentials(config: UploadConfig) -> None:
    """User, password and company handle are all given."""
    if not config.user:
        raise ConfigError("no user: give --user (or BULKUP_USER, or user in the config)")
    if not config.password:
        raise ConfigError(
            "no password: set BULKUP_PASSWORD (or password_file in the config); "
            "it is never taken from a flag"
        )
    if not config.company_handle:
        raise ConfigError(
            "no company handle: give --company-handle (or "
            "BULKUP_COMPANY_HANDLE, or company_handle in the config)"
        )


def check_ca_bundle(path: Path | None) -> None:
    """The CA bundle can be read and holds at least one PEM certificate."""
    if path is None:
        return
    try:
        ssl.create_default_context(cafile=str(path))
    except OSError as exc:
        reason = exc.strerror or "cannot be read"
        if isinstance(exc, ssl.SSLError):
            reason = "holds no PEM certificate"
        raise ConfigError(
            f"ca_bundle: {_shown(path)}: {reason}; give a PEM file of CA "
            "certificates with --ca-bundle"
        ) from None


def check_report_folder(path: Path | None) -> None:
    """The report's folder exists and may be written (``-`` is standard output)."""
    if path is None or str(path) == STDOUT:
        return
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(
            f"report: the folder {_shown(folder)} does not exist; create it or "
            "give another --report path"
        )
    if not os.access(folder, os.W_OK) or path.is_dir():
        raise ConfigError(f"report: cannot write {_shown(path)}; give a writable --report path")


def check_source_ip(address: str | None) -> None:
    """``source_ip`` is an address of this host (a socket can be bound to it)."""
    if address is None:
        return
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                raise ConfigError(f"source_ip: cannot bind to {address} ({exc.strerror})") from None
            raise ConfigError(
                f"source_ip: {address} is not an address of this host; give "
                "one of its addresses with --source-ip"
            ) from None


def check_sources(sources: Sequence[str]) -> None:
    """Every source exists (a file or a folder; a dangling link counts as missing)."""
    for source in sources:
        if not os.path.exists(source):
            raise ConfigError(
                f"{_shown(Path(source))}: no such file or folder (a SRC of the upload)"
            )


def _shown(path: Path) -> str:
    """A path as a message may show it: undecodable bytes and control characters escaped."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
