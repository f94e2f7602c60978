"""The live progress line on a terminal: files and bytes done out of those found so far, rate,
and an ETA once the walk has finished. It only reads stats snapshots."""

from __future__ import annotations

import sys
from typing import TextIO

from bulkup.stats import StatsSnapshot


def progress_line(snap: StatsSnapshot) -> str:
    """One line describing where the run stands."""
    rate = snap.bytes_uploaded / snap.elapsed_s / 1e6 if snap.elapsed_s > 0 else 0.0
    files_rate = snap.files_uploaded / snap.elapsed_s if snap.elapsed_s > 0 else 0.0
    found = f"{snap.files_found}" + ("" if snap.walk_done else "+")
    line = (f"{snap.files_uploaded}/{found} files, {snap.bytes_uploaded / 1e6:.1f}/"
            f"{snap.bytes_found / 1e6:.1f} MB, {rate:.1f} MB/s, {files_rate:.0f} files/s")
    if snap.files_failed:
        line += f", {snap.files_failed} failed"
    if snap.walk_done and rate > 0:
        left = max(snap.bytes_found - snap.bytes_uploaded, 0) / 1e6 / rate
        line += f", ETA {left:.0f} s"
    return line


class TerminalProgress:
    """Rewrites one line on a terminal; does nothing elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()

    def __call__(self, snap: StatsSnapshot) -> None:
        if self.enabled:
            self._stream.write("\r\x1b[K" + progress_line(snap))
            self._stream.flush()

    def finish(self) -> None:
        """End the progress line so the summary starts on a fresh line."""
        if self.enabled:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
