"""Log output: names escaped on a console, exact in JSON lines; a gone reader is no error."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from bulkup.cli.log import configure_logging

NAME = "title\x1b]0;PWNED\x07.jpg"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_console_lines_escape_control_characters() -> None:
    out = io.StringIO()
    configure_logging("console", stream=out)
    structlog.get_logger().warning("file_failed", path=NAME, reasons=[NAME])
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "title\\x1b]0;PWNED\\x07.jpg" in text


def test_json_lines_keep_names_exact() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    structlog.get_logger().warning("file_failed", path=NAME)
    assert json.loads(out.getvalue())["path"] == NAME


def test_a_closed_stream_drops_the_line() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    out.close()
    structlog.get_logger().error("anything")  # must not raise


def test_levels() -> None:
    out = io.StringIO()
    configure_logging("json", stream=out, level="warning")
    log = structlog.get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["loud"]
