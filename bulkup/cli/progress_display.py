"""The live progress area on a terminal, drawn with rich; log lines print above it.

A ``rich.live.Live`` on stderr holds the two lines of :func:`bulkup.cli.progress.progress_lines`
(and a bar of the bytes acknowledged once the walk is done). While it is open, the console log
output is routed through the same rich Console (:func:`bulkup.cli.log.route_console_output`), and
anything else written to ``sys.stderr`` (or to ``sys.stdout`` when that is the same terminal)
goes through rich's proxy: rich clears the live area, prints the line, and draws the area again
below it, so a log line never starts on a progress line. The area is transient: on close it is
erased, and the summary starts on a clean line.

Imported only when stderr is a terminal and the display is wanted (rich is never imported by a
run in a pipe: see tests/unit/test_progress_display.py).
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from bulkup.cli.log import route_console_output
from bulkup.cli.progress import Figures, progress_lines

BAR_WIDTH = 20


class LiveDisplay:
    """The progress area on ``console``'s terminal (stderr unless given)."""

    def __init__(self, console: Console | None = None, *, stdout: TextIO | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        stdout = stdout or sys.stdout
        self._live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=_same_terminal(stdout, self.console),
            redirect_stderr=True,
        )
        self._open = False

    def __call__(self, fig: Figures) -> None:
        if not self._open:
            self._live.start()
            route_console_output(self.print_line)
            self._open = True
        self._live.update(render(fig), refresh=True)

    def print_line(self, line: str) -> None:
        """One log line above the live area (its colours kept, nothing else interpreted)."""
        self.console.print(Text.from_ansi(line), soft_wrap=True, markup=False, highlight=False)

    def close(self) -> None:
        """Erase the area and give the terminal back; idempotent."""
        if self._open:
            route_console_output(None)
            self._live.stop()
            self._open = False


def render(fig: Figures) -> Group:
    """The live area: two lines, each cut to the terminal's width (never wrapped, so the area's
    height is what rich thinks it is); once the walk is done, a bar of the bytes acknowledged
    (or skipped) before the first."""
    wire, files = progress_lines(fig)
    first: Text | Table = _line(wire)
    if fig.walk_done and fig.bytes_found:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=BAR_WIDTH)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        done = fig.bytes_acknowledged + fig.bytes_skipped
        grid.add_row(
            ProgressBar(
                total=fig.bytes_found, completed=min(done, fig.bytes_found), width=BAR_WIDTH
            ),
            _line(wire),
        )
        first = grid
    return Group(first, _line(files))


def _line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")


def _same_terminal(stream: TextIO, console: Console) -> bool:
    """Whether ``stream`` writes to the terminal the console draws on (then its writes must
    go above the area too); a stdout sent elsewhere is left alone."""
    try:
        return stream.isatty() and console.is_terminal
    except (AttributeError, ValueError):
        return False
