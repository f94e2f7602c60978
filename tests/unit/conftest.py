"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bulkup.transport.reader import InProcessReader, SmallFileReader

from .parts import started_helper


@pytest.fixture(params=["in_process", "helper"])
async def reader(request: pytest.FixtureRequest) -> AsyncIterator[SmallFileReader]:
    """Both ways small files are read: on the loop's thread, and by the read helper process."""
    if request.param == "in_process":
        yield InProcessReader()
        return
    async with started_helper() as helper:
        yield helper
