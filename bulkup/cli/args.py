"""Argument groups and output helpers shared by the commands."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, TextIO


def say(*parts: object, file: TextIO | None = None, end: str = "\n") -> None:
    """``print``, except that a reader gone away (``| head``) or a closed stream is no error:
    the run's own exit code stands."""
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(*parts, file=file or sys.stdout, end=end, flush=True)


def add_log_level_arguments(group: Any) -> None:
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const="debug",
        help="log debug events too",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        dest="log_level",
        action="store_const",
        const="warning",
        help="log warnings and errors only",
    )
    loudness.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="least severe events logged (default info)",
    )
    group.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="append the log to PATH as JSON lines instead of stderr",
    )


def add_server_arguments(group: Any) -> None:
    """--server, --region and --staging (upload and job alike)."""
    group.add_argument(
        "--server",
        dest="server_url",
        metavar="URL",
        help="the UploadFile servlet URL (the API is on its origin)",
    )
    group.add_argument(
        "--region", choices=("na", "emea", "apac"), help="use the region's production servers"
    )
    group.add_argument(
        "--staging", action="store_true", default=None, help="with --region: the staging servers"
    )
