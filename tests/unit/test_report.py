"""The summary says what happened in separate, honestly named counts; the JSON keeps names exact."""

from __future__ import annotations

import json

from bulkup.models import FileFailure
from bulkup.report import UploadReport


def report(**changes: object) -> UploadReport:
    base: dict[str, object] = dict(
        job_handles=("j|1",),
        files_found=3101,
        files_uploaded=3010,
        files_failed=91,
        files_skipped=0,
        bytes_uploaded=12_000_000,
        posts=31,
        retries=1,
        duration_s=2.0,
        files_confirmed=2923,
        files_refused=87,
        files_failed_locally=4,
        confirmation="complete",
    )
    base.update(changes)
    return UploadReport(**base)  # type: ignore[arg-type]


def test_refused_files_are_not_called_uploaded() -> None:
    """The issue's run: 87 of the 3,010 sent were refused by the server, 4 failed locally."""
    text = "\n".join(report().summary_lines())
    assert "found 3,101 files; sent 3,010 (12.0 MB)" in text
    assert "server verdict: 2,923 confirmed (0 kept as duplicates), 87 refused" in text
    assert "failed locally 4, skipped 0 unchanged; 31 POSTs, 1 retry; job j|1" in text
    assert "uploaded" not in text


def test_plurals() -> None:
    text = "\n".join(
        report(
            files_found=1,
            posts=1,
            retries=2,
            files_unconfirmed=1,
            confirmation="not waited for (--no-wait)",
        ).summary_lines()
    )
    assert "found 1 file;" in text and "1 POST," in text and "2 retries" in text
    assert "1 file unconfirmed" in text


def test_json_has_the_new_counts_beside_the_old_keys() -> None:
    data = report().as_json()
    assert (data["files_refused"], data["files_failed_locally"]) == (87, 4)
    assert (data["files_uploaded"], data["files_failed"]) == (3010, 91)


def test_terminal_gets_names_escaped_and_json_gets_them_exact() -> None:
    """A name with an escape sequence (it would retitle the terminal) is escaped in the
    summary; the JSON report carries it exactly; undecodable bytes become \\xNN in both."""
    name = "title\x1b]0;PWNED\x07.jpg"
    failures = (
        FileFailure(f"/src/{name}", "refused", name),
        FileFailure("/src/caf\udce9.jpg", "not UTF-8", "caf\udce9.jpg"),
    )
    made = report(failures=failures, files_failed=2)
    text = "\n".join(made.summary_lines())
    assert "\x1b" not in text and "\x07" not in text
    assert "title\\x1b]0;PWNED\\x07.jpg" in text and "caf\\xe9.jpg" in text
    parsed = json.loads(made.json_text())
    assert parsed["failures"][0]["path"] == f"/src/{name}"
    assert parsed["failures"][1]["path"] == "/src/caf\\xe9.jpg"
