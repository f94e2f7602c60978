"""Applying ``--shard K/N`` to a run, and the balance of N shards.

A shard's walk sees the whole tree; :class:`ShardFilter` (wrapped around the run's
:class:`~bulkup.config.filters.FileFilter`) lets through only the files of its shard, so a
shard's counts (``files_found``, skipped, failed, gone) cover its own share and nothing else:
``files_found`` is the number of files of this shard that passed the filters. The files of
other shards are counted apart (``other_shards``) and do not make the walk "incomplete": gone
files are still reported, from the shard's own journal.

Two rules, the same on every machine (:mod:`bulkup.config.shard` for the hash):

* ``hash`` (default): a file's shard is the hash of its key modulo N. Nothing but the file's
  own name decides, so the assignment never changes as the tree changes; with a few huge files
  among many small ones it can be uneven in bytes (``bulkup plan`` says how much).
* ``size``: every shard first lists the whole tree (a walk without sending; sizes only) and
  computes the same :class:`SizePlan`: files of at least 1/(16·N) of the tree's bytes (at most
  16·N of them) are placed largest first, each on the shard with the fewest bytes so far, after
  the other files were hashed as above; ties go by key and by shard number, so the plan depends
  only on the listing, never on the machine or the order of the walk. Only these large files
  can move between shards when the tree changes, and only when the shards' listings differ (a
  file changed size between their walks) can a large file land in two shards or in none: each
  report carries the plan's fingerprint (``shard_plan``) and ``bulkup report merge`` says when
  the shards' fingerprints differ.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import stat
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from bulkup.config.filters import FileFilter
from bulkup.config.model import UploadConfig
from bulkup.config.shard import ShardSpec, parse_shard, shard_key, shard_of
from bulkup.pipeline.coordinator import default_job_name
from bulkup.report import UploadReport

__all__ = [
    "BIG_SHARE",
    "ShardFilter",
    "SizePlan",
    "Tally",
    "apply_shard",
    "left_out",
    "list_tree",
    "named_for_shard",
    "with_shard",
]

log = structlog.get_logger(__name__)

BIG_SHARE = 16
"""A file is placed by size when it holds at least 1/(BIG_SHARE·N) of the tree's bytes."""
UNEVEN = 0.20
"""Above this deviation from the mean (in bytes), ``bulkup plan`` suggests ``--shard-by size``."""


@dataclass(frozen=True, slots=True)
class SizePlan:
    """Where ``--shard-by size`` puts the large files (key → shard); others go by hash."""

    count: int
    placed: Mapping[str, int] = field(default_factory=dict)

    def shard_of(self, key: str) -> int:
        owner = self.placed.get(key)
        return shard_of(key, self.count) if owner is None else owner

    @property
    def fingerprint(self) -> str:
        """A short digest of the plan: equal on every shard that saw the same listing."""
        text = json.dumps([self.count, sorted(self.placed.items())], ensure_ascii=False)
        data = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=6).hexdigest()


class Tally:
    """Files and bytes per shard of a listing, by hash and (:meth:`size_plan`) by size.

    Memory: N counters and at most about 2·BIG_SHARE·N candidate large files."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.files = [0] * count
        self.bytes = [0] * count
        self.total_bytes = 0
        self.largest = 0
        self._big: list[tuple[int, str]] = []

    def add(self, key: str, size: int) -> None:
        index = shard_of(key, self.count)
        self.files[index] += 1
        self.bytes[index] += size
        self.total_bytes += size
        self.largest = max(self.largest, size)
        if self._is_big(size):  # total only grows: a file refused now is never large
            self._big.append((size, key))
            if len(self._big) > 2 * BIG_SHARE * self.count:
                self._big = [item for item in self._big if self._is_big(item[0])]

    def _is_big(self, size: int) -> bool:
        return size * BIG_SHARE * self.count > self.total_bytes

    def size_plan(self) -> tuple[SizePlan, list[int], list[int]]:
        """The size plan and the files and bytes per shard it gives."""
        big = sorted(
            (item for item in self._big if self._is_big(item[0])),
            key=lambda item: (-item[0], item[1]),
        )
        files, loads = list(self.files), list(self.bytes)
        for size, key in big:
            index = shard_of(key, self.count)
            files[index] -= 1
            loads[index] -= size
        placed: dict[str, int] = {}
        for size, key in big:
            target = min(range(self.count), key=lambda i: (loads[i], i))
            placed[key] = target
            loads[target] += size
            files[target] += 1
        return SizePlan(self.count, placed), files, loads


def deviation(loads: Sequence[int]) -> float:
    """The largest distance of a shard's bytes from the mean, as a share of the mean."""
    mean = sum(loads) / len(loads) if loads else 0
    return max(abs(load - mean) for load in loads) / mean if mean else 0.0


class ShardFilter(FileFilter):
    """The run's filter, then the shard rule (see the module's notes)."""

    def __init__(
        self,
        inner: FileFilter,
        spec: ShardSpec,
        dest_folder: str | None,
        plan: SizePlan | None = None,
    ) -> None:
        super().__init__()  # the base's state: a filter that lets everything through
        self._inner, self._spec, self._dest, self._plan = inner, spec, dest_folder, plan
        self.other_shards = 0
        self.own = 0

    @property
    def spec(self) -> ShardSpec:
        return self._spec

    @property
    def plan(self) -> SizePlan | None:
        return self._plan

    @property
    def accepts_everything(self) -> bool:
        """Never: the other shards' files are left out."""
        return False

    def prunes(self, rel_path: str) -> bool:
        return self._inner.prunes(rel_path)

    def accepts(self, rel_path: str, size: int, mtime_ns: int) -> bool:
        if not self._inner.accepts(rel_path, size, mtime_ns):
            return False
        key = shard_key(rel_path, self._dest)
        owner = (
            self._plan.shard_of(key) if self._plan is not None else shard_of(key, self._spec.count)
        )
        if owner == self._spec.index:
            self.own += 1
            return True
        self.other_shards += 1
        return False

    def warn_unmatched(self) -> None:
        self._inner.warn_unmatched()
        log.info(
            "shard_walked", shard=str(self._spec), files=self.own, other_shards=self.other_shards
        )


JOB_NAME_MAX = 90  # the config's limit, leaving room for "-r<k>" (D-06 allows 100)


def named_for_shard(config: UploadConfig) -> UploadConfig:
    """The config with the shard in its job name: ``<name>-s{K}of{N}`` (the name cut short
    to fit), so the N jobs of a fleet are told apart on the server; unchanged without a
    shard."""
    if config.shard is None:
        return config
    suffix = parse_shard(config.shard).suffix
    base = config.job_name or default_job_name()
    if base.endswith(suffix):
        return config
    return config.with_overrides(job_name=base[: JOB_NAME_MAX - len(suffix)] + suffix)


async def apply_shard(
    config: UploadConfig, sources: Sequence[str], make_filter: Callable[[], FileFilter]
) -> FileFilter:
    """The run's filter: ``make_filter()``, restricted to the shard when one is asked for
    (with ``shard_by = "size"``, after a listing walk of the whole tree)."""
    if config.shard is None:
        return make_filter()
    spec = parse_shard(config.shard)
    plan = None
    if config.shard_by == "size":
        tally = await list_tree(config, sources, make_filter(), spec.count)
        plan = tally.size_plan()[0]
        log.info(
            "shard_plan",
            shard=str(spec),
            fingerprint=plan.fingerprint,
            placed_by_size=len(plan.placed),
            files=sum(tally.files),
            bytes=tally.total_bytes,
        )
    return ShardFilter(make_filter(), spec, config.dest_folder, plan)


async def list_tree(
    config: UploadConfig, sources: Sequence[str], file_filter: FileFilter, count: int
) -> Tally:
    """List every source (on a thread; nothing is sent, nothing is reported failed) and tally
    N shards: the files the filters let through, by key and size. Every shard lists with this
    same code, so they agree with each other; a file the run's walker then refuses (a bad
    name, too large) only weighs in the balance."""
    return await asyncio.to_thread(_list_tree, config, tuple(sources), file_filter, count)


def _list_tree(
    config: UploadConfig, sources: tuple[str, ...], file_filter: FileFilter, count: int
) -> Tally:
    tally = Tally(count)
    inside = tuple(os.path.realpath(root) for root in sources)
    for root in sources:
        try:
            st = os.stat(root)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            _tally_file(tally, config, file_filter, _nfc(os.path.basename(root)), st)
        elif stat.S_ISDIR(st.st_mode):
            seen = {(st.st_dev, st.st_ino)}
            stack = [(root, "")]
            while stack:
                path, rel_dir = stack.pop()
                stack.extend(
                    reversed(_list_dir(tally, config, file_filter, path, rel_dir, seen, inside))
                )
    return tally


def _list_dir(
    tally: Tally,
    config: UploadConfig,
    file_filter: FileFilter,
    path: str,
    rel_dir: str,
    seen: set[tuple[int, int]],
    inside: tuple[str, ...],
) -> list[tuple[str, str]]:
    """Tally a directory's files; return its subdirectories to list."""
    try:
        with os.scandir(path) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError:
        return []
    subdirs: list[tuple[str, str]] = []
    for name in names:
        full = os.path.join(path, name)
        rel = f"{rel_dir}/{_nfc(name)}" if rel_dir else _nfc(name)
        st = _stat(full, config, inside)
        if st is None:
            continue
        if stat.S_ISREG(st.st_mode):
            _tally_file(tally, config, file_filter, rel, st)
        elif stat.S_ISDIR(st.st_mode) and not file_filter.prunes(rel):
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                subdirs.append((full, rel))
    return subdirs


def _stat(path: str, config: UploadConfig, inside: tuple[str, ...]) -> os.stat_result | None:
    """The entry's stat as the walker would take it: links followed only when asked (and,
    unless external ones are too, only into a source root); None when it is left out."""
    try:
        st = os.stat(path, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            return st
        if not config.follow_symlinks:
            return None
        if not config.follow_external_symlinks:
            real = os.path.realpath(path)
            if not any(
                real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in inside
            ):
                return None
        return os.stat(path)
    except OSError:
        return None


def _tally_file(
    tally: Tally, config: UploadConfig, file_filter: FileFilter, rel: str, st: os.stat_result
) -> None:
    if file_filter.accepts(rel, st.st_size, st.st_mtime_ns):
        tally.add(shard_key(rel, config.dest_folder), st.st_size)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def left_out(file_filter: FileFilter, excluded: int) -> int:
    """Of the walk's ``excluded`` count, the files the filters left out (not those of other
    shards): a shard's walk saw all of its share when this is 0."""
    if isinstance(file_filter, ShardFilter):
        return excluded - file_filter.other_shards
    return excluded


def with_shard(report: UploadReport, file_filter: FileFilter) -> UploadReport:
    """The report with its ``shard``, ``shard_by`` and ``shard_plan`` (unchanged without a
    shard)."""
    if not isinstance(file_filter, ShardFilter):
        return report
    plan = file_filter.plan
    return dataclasses.replace(
        report,
        shard=str(file_filter.spec),
        shard_by="hash" if plan is None else "size",
        shard_plan=None if plan is None else plan.fingerprint,
    )
