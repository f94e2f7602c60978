"""Shards: the hash (fixed vectors), K/N and auto/N, the filter, the size plan, the journal key,
the job name, and merging the shards' reports."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import random
from pathlib import Path
from typing import Any

import pytest

from bulkup.cli.reports import merge_reports, merged_lines
from bulkup.config.filters import FileFilter
from bulkup.config.load import load_config
from bulkup.config.model import UploadConfig
from bulkup.config.shard import ShardSpec, parse_shard, resolve_auto, shard_key, shard_of
from bulkup.errors import ConfigError
from bulkup.journal.session import default_journal_path, target_digest
from bulkup.models import FileEntry
from bulkup.pipeline.shard import (
    ShardFilter,
    Tally,
    deviation,
    left_out,
    list_tree,
    named_for_shard,
)
from bulkup.pipeline.walker import Walker

# (key, its 64-bit hash, its shard of 4, of 7 and of 1000). Any change to the rule breaks
# these: every shard of a fleet must agree, whatever machine or Python runs it.
VECTORS = [
    ("incoming/a.jpg", 2740289610251505955, 3, 6, 955),
    ("a.jpg", 18322877502207469449, 1, 6, 449),
    ("dir/caf\u00e9.jpg", 8901562349649916278, 2, 3, 278),
    ("x/caf\udce9.jpg", 467767733047489623, 3, 0, 623),  # the bytes caf\xe9 (not UTF-8)
    ("", 16476032584258269876, 0, 0, 876),
]


@pytest.mark.parametrize(("key", "value", "of4", "of7", "of1000"), VECTORS)
def test_the_hash_is_fixed(key: str, value: int, of4: int, of7: int, of1000: int) -> None:
    data = key.encode("utf-8", "surrogateescape")
    assert int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") == value
    assert (shard_of(key, 4), shard_of(key, 7), shard_of(key, 1000)) == (of4, of7, of1000)
    assert shard_of(key, 1) == 0


def test_nfd_and_nfc_names_are_one_key() -> None:
    assert shard_of("dir/cafe\u0301.jpg", 1000) == shard_of("dir/caf\u00e9.jpg", 1000) == 278
    assert shard_key("cafe\u0301.jpg", "in//coming/") == "in/coming/caf\u00e9.jpg"
    assert shard_key("a.jpg", None) == "a.jpg"


def test_a_lone_surrogate_still_hashes() -> None:
    assert 0 <= shard_of("x/\ud800.jpg", 4) < 4


def test_the_hash_spreads_evenly() -> None:
    counts = [0] * 8
    for i in range(8000):
        counts[shard_of(f"photos/{i:06d}.jpg", 8)] += 1
    assert min(counts) > 900 and max(counts) < 1100


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0/1", ShardSpec(0, 1)),
        ("3/4", ShardSpec(3, 4)),
        (" 2/10 ", ShardSpec(2, 10)),
        ("auto/4", ShardSpec(None, 4)),
    ],
)
def test_parse(text: str, spec: ShardSpec) -> None:
    assert parse_shard(text) == spec


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("4/4", "K must be below N"),
        ("1/0", "N must be 1 to"),
        ("-1/4", "must be K/N"),
        ("1of4", "must be K/N"),
        ("a/4", "must be K/N"),
        ("1/4/2", "must be K/N"),
        ("0/10001", "N must be 1 to 10000"),
    ],
)
def test_parse_refuses(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_shard(text)


def test_auto_takes_the_completion_index() -> None:
    assert resolve_auto("auto/4", {"JOB_COMPLETION_INDEX": "3"}) == "3/4"
    assert resolve_auto("1/4", {}) == "1/4"
    with pytest.raises(ConfigError, match="JOB_COMPLETION_INDEX, which is not set"):
        resolve_auto("auto/4", {})
    with pytest.raises(ConfigError, match="JOB_COMPLETION_INDEX=4 is not below 4"):
        resolve_auto("auto/4", {"JOB_COMPLETION_INDEX": "4"})
    with pytest.raises(ConfigError, match="'x', not a number"):
        resolve_auto("auto/4", {"JOB_COMPLETION_INDEX": "x"})


def test_shard_is_an_option_like_every_other(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('shard = "auto/3"\nshard_by = "size"\n')
    env = {"JOB_COMPLETION_INDEX": "2"}
    config = load_config(path=toml, environ=env, overrides={})
    assert (config.shard, config.shard_by) == ("2/3", "size")
    config = load_config(path=toml, environ={**env, "BULKUP_SHARD": "0/5"}, overrides={})
    assert config.shard == "0/5"
    config = load_config(
        path=toml,
        environ={**env, "BULKUP_SHARD": "0/5"},
        overrides={"shard": "1/2", "shard_by": "hash"},
    )
    assert (config.shard, config.shard_by) == ("1/2", "hash")
    with pytest.raises(ConfigError, match="BULKUP_SHARD: shard '9/5'"):
        load_config(path=None, environ={"BULKUP_SHARD": "9/5"}, overrides={})
    with pytest.raises(ConfigError, match=f"{toml}: shard 'auto/3' takes K"):
        load_config(path=toml, environ={}, overrides={})
    with pytest.raises(ConfigError, match="shard_by must be one of"):
        UploadConfig(shard="0/2", shard_by="random")  # type: ignore[arg-type]
    assert UploadConfig(shard=" 1/2").shard == "1/2"


def test_the_shard_is_part_of_the_journal_key() -> None:
    base = UploadConfig(
        server_url="https://x.example/scene7/UploadFile",
        company_handle="c|1",
        company_root="Acme/",
        dest_folder="in",
    )
    digests = {target_digest(base.with_overrides(shard=f"{k}/4"), ["/data"]) for k in range(4)}
    digests.add(target_digest(base.with_overrides(shard="0/4", shard_by="size"), ["/data"]))
    digests.add(target_digest(base, ["/data"]))
    assert len(digests) == 6
    path = default_journal_path(
        base.with_overrides(shard="2/4"), ["/data"], {"XDG_STATE_HOME": "/s"}
    )
    assert path.name.startswith("Acme--in-s2of4-") and path.parent == Path("/s/bulkup")
    # an unsharded run keeps the digest it always had (its journal is found again)
    before = {
        "server": base.upload_url,
        "company": "c|1",
        "company_root": "Acme/",
        "dest_folder": "in",
        "sources": [str(Path("/data").resolve())],
    }
    assert (
        target_digest(base, ["/data"])
        == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    )


def test_the_job_name_carries_the_shard() -> None:
    config = UploadConfig(shard="2/4", job_name="nightly")
    assert named_for_shard(config).job_name == "nightly-s2of4"
    assert named_for_shard(named_for_shard(config)).job_name == "nightly-s2of4"
    long = named_for_shard(UploadConfig(shard="12/100", job_name="x" * 90)).job_name
    assert long is not None and len(long) == 90 and long.endswith("-s12of100")
    default = named_for_shard(UploadConfig(shard="0/2")).job_name
    assert default is not None and default.startswith("bulkup-") and default.endswith("-s0of2")
    assert named_for_shard(UploadConfig(job_name="n")).job_name == "n"


def _tree(root: Path, files: dict[str, int]) -> Path:
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    return root


async def _walk(root: Path, file_filter: FileFilter) -> tuple[list[FileEntry], Any]:
    """The run's walker over ``root`` with ``file_filter``: its entries and its counters."""
    walker = Walker(
        [str(root)],
        file_filter=file_filter,
        company_root="Acme/",
        dest_folder="in",
        max_file_size=1 << 30,
    )
    if "end_markers" in inspect.signature(Walker.run).parameters:  # the walker before pipes
        queue: asyncio.Queue[FileEntry | None] = asyncio.Queue()
        await walker.run(queue, end_markers=1)  # type: ignore[arg-type, call-arg, unused-ignore]
        entries = [e for e in iter(queue.get_nowait, None) if e is not None]
    else:
        from bulkup.pipeline.pipe import Pipe

        pipe: Pipe[FileEntry] = Pipe(10_000)
        await walker.run(pipe)
        entries = await pipe.take(10_000)
    return entries, walker.stats


async def test_shards_partition_the_tree(tmp_path: Path) -> None:
    """Every file in exactly one shard; each shard's walk counts its own files only, and the
    other shards' files do not make its walk look filtered (gone files stay reported)."""
    files = {f"d{i % 5}/f{i:03d}.jpg": i for i in range(200)}
    files["skip.tmp"] = 3
    root = _tree(tmp_path / "src", files)
    seen: list[str] = []
    for k in range(3):
        shard = ShardFilter(FileFilter(exclude=("*.tmp",)), ShardSpec(k, 3), "in")
        entries, stats = await _walk(root, shard)
        assert all(shard_of(shard_key(e.rel_path, "in"), 3) == k for e in entries)
        assert stats.files_found == len(entries) == shard.own
        assert left_out(shard, stats.excluded) == 1  # skip.tmp, in every shard's walk
        seen += [e.rel_path for e in entries]
    assert sorted(seen) == sorted(r for r in files if r != "skip.tmp")
    unsharded = FileFilter()
    assert left_out(unsharded, 5) == 5


def test_size_plan_is_the_same_whatever_the_order() -> None:
    rng = random.Random(5)
    listing = [(f"s/{i:05d}.jpg", rng.randrange(1, 50_000)) for i in range(3000)]
    listing += [
        (f"big/{i}.tif", size)
        for i, size in enumerate(
            (20_000_000, 18_000_000, 15_000_000, 12_000_000, 9_000_000, 8_000_000)
        )
    ]
    plans = set()
    for seed in range(4):
        rng.seed(seed)
        shuffled = listing[:]
        rng.shuffle(shuffled)
        tally = Tally(4)
        for key, size in shuffled:
            tally.add(key, size)
        plan, files, loads = tally.size_plan()
        plans.add((plan.fingerprint, tuple(loads)))
        assert sum(files) == len(listing) and sum(loads) == sum(s for _, s in listing)
        assert deviation(tally.bytes) > 0.3  # six huge files hashed over 4 shards: uneven
        assert deviation(loads) < 0.1
        assert all(
            plan.shard_of(key) == shard_of(key, 4) for key, size in listing if size < 1_000_000
        )
    assert len(plans) == 1


def test_size_plan_keeps_few_candidates() -> None:
    tally = Tally(2)
    for i in range(20_000):
        tally.add(f"f{i}", 10)
    assert len(tally._big) <= 2 * 16 * 2
    assert tally.size_plan()[0].placed == {}
    empty = Tally(3)
    for i in range(100):
        empty.add(f"e{i}", 0)
    assert empty._big == [] and deviation(empty.bytes) == 0.0


async def test_list_tree_agrees_with_the_walker(tmp_path: Path) -> None:
    files = {f"d{i % 3}/caf\u0065\u0301{i}.jpg": i * 10 for i in range(60)}
    files["raw/x.tif"] = 99
    root = _tree(tmp_path / "src", files)
    (root / "link.jpg").symlink_to(root / "d0" / files.__iter__().__next__().split("/")[1])
    config = UploadConfig(dest_folder="in", exclude=("raw/",))
    tally = await list_tree(config, [str(root)], FileFilter(exclude=("raw/",)), 3)
    for k in range(3):
        entries, _ = await _walk(
            root, ShardFilter(FileFilter(exclude=("raw/",)), ShardSpec(k, 3), "in")
        )
        assert (len(entries), sum(e.size for e in entries)) == (tally.files[k], tally.bytes[k])


def _report(shard: str, exit_code: int = 0, **counts: Any) -> dict[str, Any]:
    base = {
        "shard": shard,
        "shard_by": "hash",
        "shard_plan": None,
        "exit_code": exit_code,
        "files_found": 10,
        "files_uploaded": 8,
        "files_skipped": 2,
        "files_failed": 0,
        "bytes_uploaded": 800,
        "posts": 3,
        "retries": 1,
        "duration_s": 2.5,
        "job_handles": [f"j|{shard}"],
        "failures": [],
        "fatal_error": None,
        "interrupted": False,
    }
    return {**base, **counts}


def test_merge_adds_up_and_names_what_is_missing() -> None:
    failure = {"path": "/d/x.jpg", "reason": "unreadable", "target": "Acme/x.jpg"}
    merged = merge_reports(
        [
            ("r0", _report("0/4")),
            ("r1", _report("1/4", 1, files_failed=1, failures=[failure])),
            ("r3", _report("3/4", duration_s=7.0)),
        ]
    )
    assert merged["missing"] == ["2/4"]
    assert merged["totals"]["files_found"] == 30 and merged["totals"]["bytes_uploaded"] == 2400
    assert merged["totals"]["duration_s"] == 7.0
    assert merged["failures"] == [{**failure, "shard": "1/4"}]
    assert merged["exit_code"] == 3  # a shard without a report
    text = "\n".join(merged_lines(merged))
    assert "missing shard 2/4: no report" in text and "FAILED [1/4] /d/x.jpg" in text
    full = merge_reports([(f"r{k}", _report(f"{k}/2", code)) for k, code in ((0, 1), (1, 130))])
    assert full["missing"] == [] and full["exit_code"] == 130
    assert merge_reports([("a", _report("0/2", 2)), ("b", _report("1/2", 3))])["exit_code"] == 2
    assert merge_reports([("a", _report("0/1"))])["exit_code"] == 0


def test_merge_warns_when_size_plans_differ() -> None:
    merged = merge_reports(
        [
            ("a", _report("0/2", shard_by="size", shard_plan="aa")),
            ("b", _report("1/2", shard_by="size", shard_plan="bb")),
        ]
    )
    assert merged["exit_code"] == 1 and "size plans differ" in merged["warnings"][0]


@pytest.mark.parametrize(
    ("reports", "says"),
    [
        ([("a", _report("0/2")), ("b", _report("0/2"))], "are both of shard 0/2"),
        ([("a", _report("0/2")), ("b", _report("1/3"))], "different shard counts"),
        ([("a", {**_report("0/2"), "shard": None})], "a: no shard"),
    ],
)
def test_merge_refuses(reports: list[tuple[str, dict[str, Any]]], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        merge_reports(reports)


def test_plan_command_prints_the_balance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bulkup plan``: every shard's files and bytes under both rules, and the advice."""
    from bulkup.cli.main import main

    files = {f"s/{i:04d}.jpg": 1000 + i for i in range(400)}
    files.update({f"v/{i}.mp4": size for i, size in enumerate((110_000, 100_000, 90_000, 80_000))})
    root = _tree(tmp_path / "src", files)
    assert main(["plan", "--shards", "4", "--dest-folder", "in", "--json", str(root)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == len(files) and data["bytes"] == sum(files.values())
    for rule in ("hash", "size"):
        assert sum(data[rule]["files"]) == len(files)
        assert sum(data[rule]["bytes"]) == sum(files.values())
    expected = [0] * 4
    for rel, size in files.items():
        expected[shard_of(shard_key(rel, "in"), 4)] += size
    assert data["hash"]["bytes"] == expected
    assert data["hash"]["deviation"] > 0.2 > data["size"]["deviation"]
    assert main(["plan", "--shards", "4", "--dest-folder", "in", str(root)]) == 0
    assert "--shard-by size gives" in capsys.readouterr().out
    assert main(["plan", "--shards", "0", str(root)]) == 2
