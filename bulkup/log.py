"""The one place that configures structlog: console lines on a terminal, JSON lines otherwise.

Library modules only call ``structlog.get_logger()``; events are fixed snake_case names with
key-value fields. Log output goes to stderr so stdout stays free for the summary.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(log_format: str = "auto", *, level: int = logging.INFO,
                      stream: TextIO | None = None) -> None:
    """Set up structlog for the CLI: ``auto`` picks console on a TTY, JSON elsewhere."""
    stream = stream or sys.stderr
    json_lines = log_format == "json" or (log_format == "auto" and not stream.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_lines
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
