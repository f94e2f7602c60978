"""`bulkup upload --dry-run --list` through the real command line: one line per file (POST
number, target, size, source) in packing order, names escaped; exit 0 when only files would
fail; filters from flags and files; a pattern file that is missing is exit 2 naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NOWHERE = "http://127.0.0.1:9/scene7/UploadFile"  # the discard port: nothing may be sent


def dry_run(src: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKUP_")}
    args = [
        "upload",
        str(src),
        "--server",
        NOWHERE,
        "--company-root",
        "Acme/",
        "--dest-folder",
        "in",
        "--no-journal",
        "--dry-run",
        "--log-format",
        "json",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "bulkup", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    for rel, size in [
        ("a.jpg", 10),
        ("b.jpg", 20),
        ("c.jpg", 30),
        ("sub/d.jpg", 40),
        ("sub/e.JPG", 50),
        ("weird/f.jpg", 60),
        ("x.tif", 70),
    ]:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"z" * size)
    return folder


def listed(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines() if "\t" in line]


def test_list_prints_each_file_with_its_post_and_target(src: Path) -> None:
    """Files come in packing order (2 a POST here), each with its POST number, target, size
    and source path; the summary follows; exit 0."""
    done = dry_run(src, "--list", "--max-files-per-post", "2")
    assert done.returncode == 0, done.stderr
    assert listed(done.stdout) == [
        ["1", "Acme/in/a.jpg", "10", str(src / "a.jpg")],
        ["1", "Acme/in/b.jpg", "20", str(src / "b.jpg")],
        ["2", "Acme/in/c.jpg", "30", str(src / "c.jpg")],
        ["2", "Acme/in/x.tif", "70", str(src / "x.tif")],
        ["3", "Acme/in/sub/d.jpg", "40", str(src / "sub/d.jpg")],
        ["3", "Acme/in/sub/e.JPG", "50", str(src / "sub/e.JPG")],
        ["4", "Acme/in/weird/f.jpg", "60", str(src / "weird/f.jpg")],
    ]
    assert (
        done.stdout.splitlines()[-1] == "dry run: 7 files, 280 B, 4 POSTs planned; nothing was sent"
    )


def test_without_list_only_the_counts(src: Path) -> None:
    done = dry_run(src)
    assert done.returncode == 0, done.stderr
    assert listed(done.stdout) == []
    assert "dry run: 7 files, 280 B, 1 POSTs planned" in done.stdout


def test_list_needs_dry_run(src: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKUP_")}
    done = subprocess.run(
        [sys.executable, "-m", "bulkup", "upload", str(src), "--server", NOWHERE, "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2 and "list_files goes with dry_run" in done.stderr


def test_files_that_would_fail_are_listed_and_the_dry_run_exits_0(src: Path) -> None:
    """A name with terminal escapes and a file too large fail in the plan; both are listed
    under the summary, escaped, and the dry run exits 0 (nothing was wrong with the run)."""
    (src / "ti\x1b]0;PWNED\x07tle.jpg").write_bytes(b"q")
    done = dry_run(src, "--list", "--max-file-size", "65")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "x.tif" not in [row[1].rpartition("/")[2] for row in listed(done.stdout)]
    assert "2 files would fail:" in done.stdout
    assert f"FAILED {src / 'x.tif'}: file too large: 70 bytes > max_file_size 65" in done.stdout
    assert "ti\\x1b]0;PWNED\\x07tle.jpg" in done.stdout


def test_a_source_path_with_control_characters_is_listed_escaped(tmp_path: Path) -> None:
    """The source column goes through the terminal escaping too (the target is clean here:
    it is built from the path below the root)."""
    root = tmp_path / "in\x1b[31mred"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"a")
    done = dry_run(root, "--list")
    assert done.returncode == 0, done.stderr
    assert listed(done.stdout) == [
        ["1", "Acme/in/a.jpg", "1", str(tmp_path / "in\\x1b[31mred" / "a.jpg")]
    ]
    assert "\x1b" not in done.stdout


def test_filters_from_flags_and_files(src: Path, tmp_path: Path) -> None:
    """--exclude-from (comments, a directory rule), --include with --ignore-case, sizes:
    exactly the expected files are planned, and an unused pattern is warned about."""
    patterns = tmp_path / "exclude.txt"
    patterns.write_text("# not these\nweird/\n*.{tif,psd}\n*.gif\n", encoding="utf-8")
    done = dry_run(
        src,
        "--list",
        "--exclude-from",
        str(patterns),
        "--include",
        "*.jpg",
        "--ignore-case",
        "--min-size",
        "20",
        "--max-size",
        "50",
    )
    assert done.returncode == 0, done.stderr
    assert [row[1] for row in listed(done.stdout)] == [
        "Acme/in/b.jpg",
        "Acme/in/c.jpg",
        "Acme/in/sub/d.jpg",
        "Acme/in/sub/e.JPG",
    ]
    warnings = [
        json.loads(line) for line in done.stderr.splitlines() if "filter_matched_nothing" in line
    ]
    assert [(w["kind"], w["pattern"]) for w in warnings] == [("exclude", "*.gif")]


def test_max_age_leaves_old_files_out(src: Path) -> None:
    ten_days_ago = os.stat(src / "a.jpg").st_mtime - 10 * 86400
    os.utime(src / "a.jpg", (ten_days_ago, ten_days_ago))
    done = dry_run(src, "--list", "--max-age", "7d")
    assert done.returncode == 0, done.stderr
    assert "Acme/in/a.jpg" not in [row[1] for row in listed(done.stdout)]
    assert "dry run: 6 files" in done.stdout


@pytest.mark.parametrize("flag", ["--include-from", "--exclude-from"])
def test_a_missing_pattern_file_exits_2_naming_it(src: Path, tmp_path: Path, flag: str) -> None:
    missing = tmp_path / "no-such-patterns.txt"
    done = dry_run(src, flag, str(missing))
    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr and flag[2:].replace("-", "_") in done.stderr
    assert "Traceback" not in done.stderr


def test_the_listing_streams_batch_by_batch() -> None:
    """A batch's lines are written as soon as the packer hands the batch out, and the listing
    keeps nothing: a million files never sit in memory."""
    import io

    from bulkup.models import FileEntry
    from bulkup.pipeline.packing import BatchPacker, PlanListing

    out = io.StringIO()
    plan, packer = PlanListing(out), BatchPacker(10**6, 2)
    entries = [
        FileEntry(
            path=f"/s/{i}.jpg",
            rel_path=f"{i}.jpg",
            target=f"A/{i}.jpg",
            size=i,
            mtime_ns=0,
            inode=i,
            needs_file_name_param=False,
        )
        for i in range(3)
    ]
    plan.add(packer.add(entries[0]))
    assert out.getvalue() == ""  # the open batch is not complete yet
    plan.add(packer.add(entries[1]))
    assert out.getvalue() == "1\tA/0.jpg\t0\t/s/0.jpg\n1\tA/1.jpg\t1\t/s/1.jpg\n"
    plan.add(packer.add(entries[2]))
    plan.add([packer.flush(), packer.flush()])  # the second flush is None: not a POST
    assert out.getvalue().splitlines()[-1] == "2\tA/2.jpg\t2\t/s/2.jpg"
    assert plan.posts == 2
    assert vars(plan).keys() == {"_out", "posts"}  # no entry is kept


async def test_a_file_left_out_by_a_filter_is_not_reported_gone(
    emulator: Any, tmp_path: Path
) -> None:
    """Uploaded once, then left out by --exclude (or --max-age): still on disk, so the journal
    must not call it gone; a file really deleted is reported again once no filter hides any."""
    from bulkup.pipeline.run import run_upload

    from .conftest import make_tree

    src = make_tree(tmp_path / "src", {"a.jpg": b"a", "b.tif": b"b", "c.jpg": b"c"})
    config = emulator.config(journal=tmp_path / "j.journal")
    await run_upload(config, [str(src)])
    filtered = await run_upload(config.with_overrides(exclude=("*.tif",)), [str(src)])
    assert (filtered.files_gone, filtered.gone) == (0, ())
    (src / "c.jpg").unlink()
    unfiltered = await run_upload(config, [str(src)])
    assert unfiltered.gone == (str(src / "c.jpg"),)


def test_list_into_a_reader_that_goes_away(tmp_path: Path) -> None:
    """`--dry-run --list | head -1`: the listing stops at the broken pipe with exit 141, no
    traceback (the listing's BrokenPipeError leaves as itself, not in an ExceptionGroup)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(3000):  # ~200 KB of listing: more than a pipe holds
        (folder / f"file-{index:05d}-with-a-longer-name.jpg").write_bytes(b"z")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULKUP_")}
    argv = [sys.executable, "-m", "bulkup", "upload", str(folder), "--server", NOWHERE]
    argv += ["--company-root", "Acme/", "--no-journal", "--dry-run", "--list", "-q"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its line
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141, err
    assert "\t" in first and "Traceback" not in err and "ExceptionGroup" not in err
