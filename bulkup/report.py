"""The outcome of a run: the JSON report, the final summary, and the exit code.

Exit codes: 0 everything uploaded (or nothing to do), 1 some files failed, 2 usage or config
error, 3 fatal (authentication, authorization, server unreachable), 130 interrupted.

Every line of the summary goes through :func:`~bulkup.targets.escaped`, so a name that is not
valid UTF-8 or holds control characters is shown as ``caf\\xe9.jpg`` and never reaches the
terminal raw. The JSON report keeps names exact (its encoder escapes control characters); only
bytes that are not UTF-8 are shown as ``\\xNN`` there (:func:`~bulkup.targets.storable`).
The report file is written whole or not at all (a temporary file, then ``os.replace``); when
it cannot be written, :class:`~bulkup.errors.ReportError` names the path.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bulkup.errors import ReportError
from bulkup.models import FileFailure
from bulkup.targets import escaped, storable

# The exit codes of every command, defined here once (README, "Exit codes"):
EXIT_OK = 0  # everything asked for was done
EXIT_FILES_FAILED = 1  # some files failed (upload); the job asked for is unknown (job)
EXIT_NO_SUCH_JOB = EXIT_FILES_FAILED
EXIT_USAGE = 2  # a mistake found before any work, or the surroundings (journal, report file)
EXIT_FATAL = 3  # the run stopped: server unreachable, refused credentials, internal error
EXIT_INTERRUPTED = 130  # stopped by a signal (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # the output's reader went away (128 + SIGPIPE)


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadReport:
    """What one ``bulkup upload`` run did."""

    job_handles: tuple[str, ...]
    files_found: int
    files_uploaded: int
    files_failed: int
    files_skipped: int
    bytes_uploaded: int
    posts: int
    retries: int
    duration_s: float
    failures: tuple[FileFailure, ...] = ()
    interrupted: bool = False
    fatal_error: str | None = None
    fatal_exit_code: int | None = None  # 2 when the surroundings stopped it (the journal)
    emulator_root: str | None = None
    dry_run: bool = False
    planned_posts: int = 0
    bytes_planned: int = 0
    files_gone: int = 0
    gone: tuple[str, ...] = ()
    files_confirmed: int = 0
    files_skipped_by_server: int = 0
    files_unconfirmed: int = 0
    files_refused: int = 0
    files_failed_locally: int = 0
    confirmation: str = "not waited for"
    jobs_stopped: int = 0
    shard: str | None = None  # "K/N": this run sent shard K of N of the files (--shard)
    shard_by: str | None = None  # "hash" or "size"
    shard_plan: str | None = None  # with shard_by "size": the plan's fingerprint

    @property
    def exit_code(self) -> int:
        """The process exit code this outcome maps to."""
        if self.fatal_error is not None:
            return self.fatal_exit_code or EXIT_FATAL
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.dry_run:  # files that would fail are listed; the run itself went well
            return EXIT_OK
        return EXIT_FILES_FAILED if self.files_failed else EXIT_OK

    @property
    def mb_per_s(self) -> float:
        """Uploaded megabytes (10^6 bytes) per second."""
        return self.bytes_uploaded / 1e6 / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def files_per_s(self) -> float:
        """Uploaded files per second."""
        return self.files_uploaded / self.duration_s if self.duration_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        """The JSON report (keys are part of the CLI contract), every string escaped."""
        data = asdict(self)
        data["job_handles"] = list(self.job_handles)
        data["gone"] = list(self.gone)
        data["failures"] = [
            {"path": f.path, "reason": f.reason, "target": f.target} for f in self.failures
        ]
        data["exit_code"] = self.exit_code
        data["duration_s"] = round(self.duration_s, 3)
        data["mb_per_s"] = round(self.mb_per_s, 3)
        data["files_per_s"] = round(self.files_per_s, 1)
        return {storable(key): _storable_strings(value) for key, value in data.items()}

    def json_text(self) -> str:
        """The JSON report, as ``write_json`` writes it."""
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n"

    def write_json(self, path: Path) -> None:
        """Write the JSON report (UTF-8) atomically: a temporary file beside ``path``, flushed
        to disk, then renamed over it; a reader sees the old file or the whole new one.

        Raises:
            ReportError: the report cannot be written (the message names the path and why);
                ``path`` is then left as it was.
        """
        text = self.json_text()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as out:
                out.write(text.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temporary)
            reason = exc.strerror or type(exc).__name__
            raise ReportError(f"cannot write the report to {escaped(str(path))}: {reason}") from exc

    def summary_lines(self) -> list[str]:
        """The human summary printed at the end of a run (escaped: safe for any terminal)."""
        if self.dry_run:
            return [escaped(line) for line in self._dry_run_lines()]
        lines = [
            f"found {_count(self.files_found, 'file')}; sent {self.files_uploaded:,} "
            f"({_size(self.bytes_uploaded)}) in {self.duration_s:.2f} s: "
            f"{self.mb_per_s:.1f} MB/s, {self.files_per_s:.0f} files/s",
            f"failed locally {self.files_failed_locally:,}, skipped "
            f"{self.files_skipped:,} unchanged; {_count(self.posts, 'POST')}, "
            f"{_count(self.retries, 'retry', 'retries')}; "
            f"{'job' if len(self.job_handles) < 2 else 'jobs'} "
            f"{', '.join(self.job_handles) or '(none opened)'}",
        ]
        lines.append(self._verdict_line())
        if self.shard is not None:
            lines.insert(0, self._shard_line())
        if self.files_gone:
            lines.append(
                f"{_count(self.files_gone, 'file')} uploaded before are gone from disk "
                "(listed in the JSON report; nothing was deleted on the server)"
            )
        if self.interrupted:
            lines.append("interrupted: files not yet sent were left out")
        if self.fatal_error:
            lines.append(f"stopped: {self.fatal_error}")
        for failure in self.failures:
            lines.append(f"  FAILED {failure.path}: {failure.reason}")
        if self.files_failed > len(self.failures):
            lines.append(f"  ... and {self.files_failed - len(self.failures):,} more")
        if self.emulator_root:
            lines.append(f"files landed under {self.emulator_root}")
        return [escaped(line) for line in lines]

    def _shard_line(self) -> str:
        plan = f", plan {self.shard_plan}" if self.shard_plan else ""
        return f"shard {self.shard} (by {self.shard_by}{plan}): its share of the files only"

    def _dry_run_lines(self) -> list[str]:
        lines = [
            f"dry run: {self.files_found} files, {_size(self.bytes_planned)}, "
            f"{self.planned_posts} POSTs planned; nothing was sent"
        ]
        if self.shard is not None:
            lines.insert(0, self._shard_line())
        if self.files_failed:
            lines.append(f"{_count(self.files_failed, 'file')} would fail:")
        lines.extend(f"  FAILED {failure.path}: {failure.reason}" for failure in self.failures)
        if self.files_failed > len(self.failures):
            lines.append(f"  ... and {self.files_failed - len(self.failures):,} more")
        return lines

    def _verdict_line(self) -> str:
        if self.confirmation == "complete":
            line = (
                f"server verdict: {self.files_confirmed:,} confirmed "
                f"({self.files_skipped_by_server:,} kept as duplicates), "
                f"{self.files_refused:,} refused"
            )
            if self.files_unconfirmed:
                line += f", {self.files_unconfirmed:,} without a job log line"
        else:
            line = (
                f"server verdict {self.confirmation}; {self.files_refused:,} refused, "
                f"{_count(self.files_unconfirmed, 'file')} unconfirmed"
            )
        if self.jobs_stopped:
            line += f"; {_count(self.jobs_stopped, 'job')} stopped on the server"
        return line


def _storable_strings(value: Any) -> Any:
    """``value`` with every string in it (keys included) passed through ``storable``."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(k): _storable_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_strings(item) for item in value]
    return value


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,234 files``."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
