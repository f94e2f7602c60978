"""The one place that configures structlog: console lines on a terminal, JSON lines otherwise.

Library modules only call ``structlog.get_logger()``; events are fixed snake_case names with
key-value fields. Log output goes to stderr so stdout stays free for the summary, or to
``log_file`` (JSON lines, appended). A reader that went away (``bulkup ... 2>&1 | head``) or a
closed stream never stops a run: such a line is dropped. On a console every value is shown
with control characters escaped (a file name or a server's message cannot retitle or recolour
the terminal); JSON lines carry them exactly (the encoder escapes them).

While the progress display is on (:mod:`bulkup.cli.progress_display`), console lines (not a log
file's) go through :func:`route_console_output` to the display, which prints them above its
live area: a log line never lands inside the progress lines.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import structlog

from bulkup.errors import ConfigError
from bulkup.targets import escaped

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
ConsoleSink = Callable[[str], None]
_console_sink: ConsoleSink | None = None


def route_console_output(sink: ConsoleSink | None) -> None:
    """From now on, console log lines (one string each, no newline) go to ``sink`` instead of
    the stream; ``None`` writes them to the stream again. A log file is never routed."""
    global _console_sink
    _console_sink = sink


class TolerantPrintLogger:
    """structlog's print logger, except that a write to a gone reader is dropped; a console
    logger's lines go to the routed sink while there is one."""

    def __init__(self, stream: TextIO, *, console: bool = True) -> None:
        self._stream = stream
        self._console = console

    def msg(self, message: str) -> None:
        sink = _console_sink if self._console else None
        try:
            if sink is not None:
                sink(message)
                return
            self._stream.write(message + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left; the stream was closed
            pass

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def configure_logging(
    log_format: str = "auto",
    *,
    level: str | int = logging.INFO,
    stream: TextIO | None = None,
    log_file: Path | None = None,
) -> None:
    """Set up structlog for the CLI: ``auto`` picks console on a TTY, JSON elsewhere; with
    ``log_file``, JSON lines appended to that file."""
    stream = _open_log_file(log_file) if log_file is not None else stream or sys.stderr
    json_lines = (
        log_file is not None
        or log_format == "json"
        or (log_format == "auto" and not stream.isatty())
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *(() if json_lines else (escape_for_terminal,)),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            LEVELS[level] if isinstance(level, str) else level
        ),
        logger_factory=_factory(stream, console=log_file is None),
        cache_logger_on_first_use=True,
    )


def escape_for_terminal(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Every string value (and the strings inside lists) with control characters and
    undecodable bytes escaped."""
    return {key: _terminal_safe(value) for key, value in event.items()}


def _terminal_safe(value: Any) -> Any:
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, list | tuple):
        return [_terminal_safe(item) for item in value]
    return value


def _factory(stream: TextIO, *, console: bool) -> Any:
    def make(*_: Any) -> TolerantPrintLogger:
        return TolerantPrintLogger(stream, console=console)

    return make


def _open_log_file(path: Path) -> TextIO:
    try:
        return path.open("a", encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise ConfigError(
            f"log_file: cannot write {path} ({exc.strerror}); give a writable file with --log-file"
        ) from None
