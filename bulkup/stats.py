"""One model of a run's progress: counters, updated by the pipeline, read through snapshots.

The progress display, the periodic ``stats`` event and the final report only ever read
:meth:`Stats.snapshot`. Two counters move while a POST is under way, not when it is answered:
``bytes_sent`` (every body byte handed to a connection, by
:mod:`bulkup.transport.body`; a retried POST's
bytes count again, they were sent again) and ``posts_in_flight`` (by
:meth:`bulkup.transport.client.UploadClient.post`). What the server acknowledged is counted apart
(``bytes_uploaded``). Each is one integer add on the event loop's thread: no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog

from bulkup.models import FileFailure

log = structlog.get_logger("bulkup.stats")

MAX_FAILURES_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """The counters at one instant."""

    files_found: int  # regular files the walker queued or failed
    bytes_found: int  # their bytes
    walk_done: bool  # the walker has finished
    files_uploaded: int  # files in POSTs the server acknowledged
    bytes_uploaded: int  # their bytes
    files_failed: int  # files that will not be delivered by this run
    files_skipped: int  # files left out on purpose (unchanged, interrupted run)
    posts: int  # POSTs acknowledged, opening/keep-alive/closing included
    retries: int  # attempts beyond the first, over all POSTs
    elapsed_s: float  # since the run started
    bytes_sent: int = 0  # body bytes handed to a connection, retried POSTs' again
    posts_in_flight: int = 0  # POSTs started and not yet answered or failed
    bytes_skipped: int = 0  # bytes of the files left out as unchanged


class WalkStats(NamedTuple):
    """The walker's share of the counters, at one instant (:meth:`Stats.walk_snapshot`).

    Attributes:
        dirs_walked: directories listed.
        files_found: files handed on to the pipeline.
        bytes_found: the sum of their sizes.
        skipped: entries left out on purpose (FIFOs, sockets, devices, symlinks, loops).
        excluded: files and directories left out by the include/exclude patterns.
        failed: files and directories the walker reported failed.
        done: True once every root has been walked to the end.
        name_warnings: files sent whose target name the server may treat oddly.
    """

    dirs_walked: int = 0
    files_found: int = 0
    bytes_found: int = 0
    skipped: int = 0
    excluded: int = 0
    failed: int = 0
    done: bool = False
    name_warnings: int = 0


@dataclass(slots=True)
class Stats:
    """Mutable counters of one run; ``clock`` is injected for tests."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    files_found: int = 0
    bytes_found: int = 0
    walk_done: bool = False
    files_uploaded: int = 0
    bytes_uploaded: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    posts: int = 0
    retries: int = 0
    bytes_sent: int = 0
    posts_in_flight: int = 0
    bytes_skipped: int = 0
    dirs_walked: int = 0  # the walker's own counters (see WalkStats)
    walk_skipped: int = 0
    walk_excluded: int = 0
    walk_failed: int = 0
    name_warnings: int = 0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def snapshot(self) -> StatsSnapshot:
        """An immutable copy of the counters."""
        return StatsSnapshot(
            files_found=self.files_found,
            bytes_found=self.bytes_found,
            walk_done=self.walk_done,
            files_uploaded=self.files_uploaded,
            bytes_uploaded=self.bytes_uploaded,
            files_failed=self.files_failed,
            files_skipped=self.files_skipped,
            posts=self.posts,
            retries=self.retries,
            elapsed_s=self.clock() - self.started,
            bytes_sent=self.bytes_sent,
            posts_in_flight=self.posts_in_flight,
            bytes_skipped=self.bytes_skipped,
        )

    def walk_snapshot(self) -> WalkStats:
        """The walker's counters."""
        return WalkStats(
            dirs_walked=self.dirs_walked,
            files_found=self.files_found,
            bytes_found=self.bytes_found,
            skipped=self.walk_skipped,
            excluded=self.walk_excluded,
            failed=self.walk_failed,
            done=self.walk_done,
            name_warnings=self.name_warnings,
        )


@dataclass(slots=True)
class Failures:
    """Every file that will not be delivered; the first MAX_FAILURES_KEPT are kept in full
    (the journal, when there is one, gets every one through ``sink``)."""

    stats: Stats
    kept: list[FileFailure] = field(default_factory=list)
    sink: Callable[[FileFailure], None] | None = None

    def add(self, failure: FileFailure) -> None:
        self.stats.files_failed += 1
        if len(self.kept) < MAX_FAILURES_KEPT:
            self.kept.append(failure)
        if self.sink is not None:
            self.sink(failure)
        log.warning("file_failed", path=failure.path, reason=failure.reason)
