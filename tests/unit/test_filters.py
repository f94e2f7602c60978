"""Filters as rclone users expect (issue 14, item 6): the pattern table, the walker's use of it
(the issue's failing cases on real trees), pattern files, size and age limits with a fixed
clock, and the warning for a pattern that matched nothing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bulkup.config.filters import FileFilter, age_seconds_before, read_patterns
from bulkup.config.model import UploadConfig
from bulkup.errors import ConfigError
from bulkup.models import FileEntry
from bulkup.pipeline.pipe import Pipe
from bulkup.pipeline.walker import Walker

NOW = 1_700_000_000.0  # the run's start, fixed
DAY = 86400.0

# (pattern, relative path of a file, matches?)
TABLE: list[tuple[str, str, bool]] = [
    # a pattern without "/" matches the base name at any depth
    ("*.jpg", "a.jpg", True),
    ("*.jpg", "x/y/a.jpg", True),
    ("*.jpg", "a.jpeg", False),
    ("Thumbs.db", "sub/Thumbs.db", True),
    # "*" never crosses "/", "**" does
    ("a*", "a/b.jpg", False),
    ("x/*.jpg", "x/y/a.jpg", False),
    ("x/*.jpg", "x/a.jpg", True),
    ("x/**.jpg", "x/y/a.jpg", False),  # ** is special only as a whole segment
    ("x/**/*.jpg", "x/y/z/a.jpg", True),
    ("x/**/*.jpg", "x/a.jpg", True),
    ("**/raw/**", "raw/a.tif", True),
    ("**/raw/**", "shoot/raw/deep/a.tif", True),
    ("**/raw/**", "rawer/a.tif", False),
    ("**/raw/**", "raw", False),
    # unanchored patterns with "/" match whole segments at the end of the path
    ("raw/*.tif", "shoot/raw/a.tif", True),
    ("raw/*.tif", "xraw/a.tif", False),
    # a leading "/" anchors to the source root
    ("/top/*.jpg", "top/a.jpg", True),
    ("/top/*.jpg", "deep/top/a.jpg", False),
    ("/top/*.jpg", "top/sub/a.jpg", False),
    ("/a.jpg", "a.jpg", True),
    ("/a.jpg", "x/a.jpg", False),
    # a trailing "/" is a directory and everything below it
    ("weird/", "weird/a.jpg", True),
    ("weird/", "x/weird/y/a.jpg", True),
    ("weird/", "weird", False),  # a file named weird
    ("weird/", "weirdo/a.jpg", False),
    ("/weird/", "x/weird/a.jpg", False),
    ("weird", "weird", True),  # without the slash: files only
    # {a,b} alternatives
    ("*.{tif,psd}", "a.tif", True),
    ("*.{tif,psd}", "x/b.psd", True),
    ("*.{tif,psd}", "c.tiff", False),
    ("{raw,tmp}/", "tmp/a.jpg", True),
    # character classes
    ("[abc]*.jpg", "b1.jpg", True),
    ("[!abc]*.jpg", "b1.jpg", False),
    ("img[0-9].jpg", "img7.jpg", True),
    ("img[[:digit:]].jpg", "imgx.jpg", False),
    ("?.jpg", "a.jpg", True),
    ("?.jpg", "ab.jpg", False),
    # names starting with a dot are matched by * and **
    ("*", ".hidden", True),
    ("**/*.jpg", ".cache/a.jpg", True),
    (".git/", ".git/objects/ab", True),
    # escapes, and case
    (r"\*.jpg", "*.jpg", True),
    (r"\*.jpg", "a.jpg", False),
    ("*.JPG", "a.jpg", False),
    ("*.jpg", "a.JPG", False),
    # NFC on both sides
    ("\u0065\u0301t\u00e9.jpg", "\u00e9t\u00e9.jpg", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), TABLE)
def test_pattern_table(pattern: str, path: str, expected: bool) -> None:
    """Each pattern matches (as an exclude) exactly the paths rclone's rules say."""
    rules = FileFilter(exclude=[pattern])
    assert rules.accepts(path, 1, 0) is not expected
    assert FileFilter(include=[pattern]).accepts(path, 1, 0) is expected


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("*.JPG", "a.jpg"),
        ("*.jpg", "x/A.JPG"),
        ("/Top/*.Jpg", "top/a.JPG"),
        ("WEIRD/", "weird/a"),
        ("*.{TIF,psd}", "a.tif"),
        ("[A-C]*.jpg", "b.jpg"),
        ("\u00c9t\u00e9.jpg", "\u00e9t\u00e9.jpg"),
    ],
)
def test_ignore_case_applies_to_every_pattern(pattern: str, path: str) -> None:
    """With ignore_case a pattern matches whatever the case of pattern and path."""
    assert FileFilter(exclude=[pattern], ignore_case=True).accepts(path, 1, 0) is False
    assert FileFilter(exclude=[pattern]).accepts(path, 1, 0) is True


@pytest.mark.parametrize(
    ("pattern", "directory", "pruned"),
    [
        ("weird/", "weird", True),
        ("weird/", "a/b/weird", True),
        ("/weird/", "a/weird", False),
        ("**/raw/**", "shoot/raw", True),
        ("raw/**", "raw", True),
        ("raw", "raw", False),  # files only: the directory is walked
        ("*.jpg", "x.jpg", False),
        ("raw/*", "raw", False),
    ],
)
def test_which_directories_are_pruned(pattern: str, directory: str, pruned: bool) -> None:
    """Only directory rules (a trailing / or /**) stop the walk at a directory."""
    assert FileFilter(exclude=[pattern]).prunes(directory) is pruned


def test_include_patterns_never_prune() -> None:
    rules = FileFilter(include=["keep/"])
    assert not rules.prunes("other")
    assert rules.accepts("keep/a.jpg", 1, 0) and not rules.accepts("other/a.jpg", 1, 0)


def test_exclude_wins_over_include() -> None:
    rules = FileFilter(include=["*.jpg"], exclude=["secret*"])
    assert not rules.accepts("secret.jpg", 1, 0)
    assert rules.accepts("open.jpg", 1, 0)
    assert not rules.accepts("open.png", 1, 0)


# --- the walker on real trees: the issue's cases ----------------------------------------------

ISSUE_TREE = [
    "a.jpg",
    "B.JPG",
    "x.tif",
    "y.psd",
    "weird/c.jpg",
    "deep/weird/d.jpg",
    "top/e.jpg",
    "top/sub/f.jpg",
    "deep/top/g.jpg",
    "shoot/raw/h.jpg",
    "shoot/raw/deeper/i.jpg",
    "shoot/k.jpg",
]


def _tree(root: Path, rels: list[str]) -> Path:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
    return root


async def _walk(walker: Walker) -> list[str]:
    pipe: Pipe[FileEntry] = Pipe(10**6)
    await walker.run(pipe)
    return [entry.rel_path async for chunk in pipe.chunks(1000) for entry in chunk]


ISSUE_CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "exclude weird/": ({"exclude": ["weird/"]}, {"weird/c.jpg", "deep/weird/d.jpg"}),
    "exclude *.{tif,psd}": ({"exclude": ["*.{tif,psd}"]}, {"x.tif", "y.psd"}),
    "include *.JPG --ignore-case": (
        {"include": ["*.JPG"], "ignore_case": True},
        {"x.tif", "y.psd"},
    ),
    "* does not cross /": ({"exclude": ["top*"]}, set()),
    "anchored /top/*.jpg": ({"exclude": ["/top/*.jpg"]}, {"top/e.jpg"}),
    "**/raw/**": ({"exclude": ["**/raw/**"]}, {"shoot/raw/h.jpg", "shoot/raw/deeper/i.jpg"}),
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
async def test_issue_cases_on_a_real_tree(case: str, tmp_path: Path) -> None:
    """The filters the issue found doing nothing (or too much) leave out exactly these files."""
    options, left_out = ISSUE_CASES[case]
    root = _tree(tmp_path, ISSUE_TREE)
    walker = Walker([str(root)], max_file_size=10**9, file_filter=FileFilter(**options))
    assert set(await _walk(walker)) == set(ISSUE_TREE) - left_out
    assert (walker.stats.excluded > 0) == bool(left_out)


async def test_an_excluded_directory_is_not_listed(tmp_path: Path) -> None:
    """`weird/` stops the walk at each weird directory: neither is listed (dirs_walked)."""
    root = _tree(tmp_path, ISSUE_TREE)
    walker = Walker([str(root)], max_file_size=10**9, exclude=["weird/"])
    await _walk(walker)
    everything = Walker([str(root)], max_file_size=10**9)
    await _walk(everything)
    assert everything.stats.dirs_walked - walker.stats.dirs_walked == 2
    assert walker.stats.excluded == 2  # the two directories, not the files below them


# --- pattern files ------------------------------------------------------------------------------


def test_pattern_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    listed = tmp_path / "exclude.txt"
    listed.write_text("# raw files\n*.{tif,psd}\n\n   \n  weird/  \n#not/this\n", encoding="utf-8")
    assert read_patterns(listed, "exclude_from") == ("*.{tif,psd}", "weird/")


def test_a_missing_pattern_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match=r"exclude_from: cannot read .*nope\.txt"):
        read_patterns(missing, "exclude_from")


def test_from_config_adds_the_files_patterns(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("*.jpg\n", encoding="utf-8")
    (tmp_path / "ex.txt").write_text("weird/\n", encoding="utf-8")
    config = UploadConfig(
        include=("*.png",), include_from=tmp_path / "in.txt", exclude_from=tmp_path / "ex.txt"
    )
    rules = FileFilter.from_config(config, now=NOW)
    assert rules.accepts("a.png", 1, 0) and rules.accepts("x/a.jpg", 1, 0)
    assert not rules.accepts("weird/a.jpg", 1, 0) and not rules.accepts("a.gif", 1, 0)


def test_from_config_with_a_missing_file_raises(tmp_path: Path) -> None:
    config = UploadConfig(include_from=tmp_path / "gone.txt")
    with pytest.raises(ConfigError, match="include_from: cannot read .*gone.txt"):
        FileFilter.from_config(config, now=NOW)


# --- sizes and ages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "passes"), [(99, False), (100, True), (4096, True), (4097, False)]
)
def test_size_limits(size: int, passes: bool) -> None:
    """min_size and max_size bound a file's size, both ends included."""
    config = UploadConfig(min_size=100, max_size=4096)
    assert FileFilter.from_config(config, now=NOW).accepts("a.jpg", size, 0) is passes


def test_sizes_from_config_text() -> None:
    """Sizes take the project's units (the loader parses "4KiB")."""
    from bulkup.config.load import load_config

    config = load_config(
        path=None, environ={"BULKUP_MIN_SIZE": "1KiB"}, overrides={"max_size": 4096}
    )
    assert (config.min_size, config.max_size) == (1024, 4096)


def _ns(epoch: float) -> int:
    return int(epoch * 1e9)


@pytest.mark.parametrize(
    ("age_days", "passes"),
    [
        (0.0, False),  # younger than min_age (1d)
        (0.5, False),
        (1.0, True),  # exactly on a limit: sent
        (3.0, True),
        (7.0, True),
        (7.5, False),  # older than max_age (1w)
    ],
)
def test_age_limits_measured_from_the_run_start(age_days: float, passes: bool) -> None:
    """max_age leaves out older files, min_age younger ones, measured from ``now``."""
    config = UploadConfig(min_age="1d", max_age="1w")
    rules = FileFilter.from_config(config, now=NOW)
    assert rules.accepts("a.jpg", 1, _ns(NOW - age_days * DAY)) is passes


def test_max_age_as_a_date() -> None:
    """An ISO date: files modified before it are left out."""
    rules = FileFilter.from_config(UploadConfig(max_age="2023-11-01T00:00:00+00:00"), now=NOW)
    cutoff = datetime(2023, 11, 1, tzinfo=UTC).timestamp()
    assert rules.accepts("a.jpg", 1, _ns(cutoff))
    assert not rules.accepts("a.jpg", 1, _ns(cutoff - 1))


async def test_size_and_age_limits_in_a_walk(tmp_path: Path) -> None:
    """The walker passes each file's size and mtime; left-out files count as excluded."""
    root = _tree(tmp_path, ["old.jpg", "new.jpg", "tiny.jpg"])
    (root / "tiny.jpg").write_bytes(b"x")
    os.utime(root / "old.jpg", (NOW - 30 * DAY, NOW - 30 * DAY))
    os.utime(root / "new.jpg", (NOW - DAY, NOW - DAY))
    os.utime(root / "tiny.jpg", (NOW - DAY, NOW - DAY))
    config = UploadConfig(min_size=2, max_age="7d")
    walker = Walker(
        [str(root)], max_file_size=10**9, file_filter=FileFilter.from_config(config, now=NOW)
    )
    assert await _walk(walker) == ["new.jpg"]
    assert walker.stats.excluded == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("7d", 7 * DAY),
        ("1w", 7 * DAY),
        ("1d12h", 1.5 * DAY),
        ("1.5h", 5400),
        ("90", 90),
        (" 2h ", 7200),
        ("500ms", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert age_seconds_before(text, NOW) == pytest.approx(NOW - seconds)


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "1x", "d", "2024-13-01", "yesterday"])
def test_bad_ages_are_config_errors(text: str) -> None:
    with pytest.raises(ValueError, match="an age such as"):
        age_seconds_before(text, NOW)
    with pytest.raises(ConfigError, match="max_age must be an age such as"):
        UploadConfig(max_age=text)


@pytest.mark.parametrize(
    ("changes", "culprit"),
    [
        ({"min_size": 10, "max_size": 5}, "min_size"),
        ({"min_age": "2w", "max_age": "1w"}, "min_age"),
        ({"list_files": True}, "list_files"),
        ({"min_size": -1}, "min_size"),
    ],
)
def test_filter_options_that_cannot_work_are_refused(changes: dict[str, Any], culprit: str) -> None:
    with pytest.raises(ConfigError, match=culprit):
        UploadConfig(**changes)


# --- the pattern that matched nothing -----------------------------------------------------------


def _events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == "filter_matched_nothing"]


async def test_a_pattern_that_matched_nothing_is_named_once(tmp_path: Path) -> None:
    """At the end of a complete walk: one warning per unused pattern (include or exclude),
    none for the patterns that matched a file or pruned a directory."""
    root = _tree(tmp_path, ISSUE_TREE)
    rules = FileFilter(
        include=["*.jpg", "*.gif"], exclude=["weird/", "*.bak", "/top/*.jpg", "*.bak"]
    )
    with capture_logs() as logs:
        await _walk(Walker([str(root)], max_file_size=10**9, file_filter=rules))
    found = [(e["kind"], e["pattern"], e["log_level"]) for e in _events(logs)]
    assert found == [("include", "*.gif", "warning"), ("exclude", "*.bak", "warning")]


async def test_a_pattern_used_only_after_another_matched_counts(tmp_path: Path) -> None:
    """A file matched by two patterns marks both used, not only the first."""
    root = _tree(tmp_path, ["a.tmp"])
    with capture_logs() as logs:
        await _walk(Walker([str(root)], max_file_size=10**9, exclude=["*.tmp", "a.*"]))
    assert _events(logs) == []


async def test_a_file_pattern_naming_a_directory_gets_a_hint(tmp_path: Path) -> None:
    """`raw` (rclone: files only) matched nothing, but names a directory: the warning says
    to write `raw/`."""
    root = _tree(tmp_path, ["raw/a.jpg"])
    with capture_logs() as logs:
        await _walk(Walker([str(root)], max_file_size=10**9, exclude=["raw"]))
    [event] = _events(logs)
    assert event["pattern"] == "raw" and "raw/" in event["hint"]


async def test_no_warning_when_the_walk_did_not_complete(tmp_path: Path) -> None:
    """A walk cut short (cancelled) cannot say a pattern matches nothing."""
    root = _tree(tmp_path, ["a.jpg", "b.jpg"])
    pipe: Pipe[FileEntry] = Pipe(1)
    walker = Walker([str(root)], max_file_size=10**9, exclude=["*.gif"])
    with capture_logs() as logs:
        task = asyncio.create_task(walker.run(pipe))
        while not len(pipe):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not walker.stats.done
    assert _events(logs) == []
