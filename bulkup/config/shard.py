"""Shards: one tree split over N machines, each uploading a disjoint share as its own job.

``--shard K/N`` (``0 <= K < N``): a file belongs to shard K when a stable hash of its **key**
modulo N is K. The key is the file's NFC target path *below the company root*: the destination
folder and the path relative to its source root (``incoming/2026/a.jpg``), so ``bulkup plan``
and ``--dry-run``, which may not know the company root (a run can ask the server for it),
assign every file exactly as the upload does. Two files with the same target have the same key,
so never land in two shards.

The hash: the first 8 bytes, big-endian, of ``blake2b(key, digest_size=8)`` over the key's
UTF-8 bytes (``surrogateescape``: a name that is not UTF-8 hashes as its raw bytes). It is the
standard library's, the same on every machine, Python version and byte order; the unit tests
hold it to fixed vectors.

``--shard auto/N`` takes K from ``JOB_COMPLETION_INDEX``, which a Kubernetes Indexed Job sets in
each pod (:func:`resolve_auto`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from bulkup.errors import ConfigError
from bulkup.targets import build_target

__all__ = [
    "COMPLETION_INDEX_ENV",
    "SHARD_BY",
    "ShardSpec",
    "parse_shard",
    "resolve_auto",
    "shard_key",
    "shard_of",
]

COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The variable a Kubernetes Indexed Job sets to each pod's index (0..completions-1)."""
SHARD_BY = ("hash", "size")
MAX_SHARDS = 10_000
_SPEC = re.compile(r"(\d+|auto)/(\d+)\Z")


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Shard ``index`` of ``count`` (``index`` is None for ``auto/N`` not yet resolved)."""

    index: int | None
    count: int

    def __str__(self) -> str:
        return f"{'auto' if self.index is None else self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """``-s{K}of{N}``: what the shard adds to its job's name."""
        return f"-s{self.index}of{self.count}"

    def owns(self, key: str) -> bool:
        """Whether the file of this key (:func:`shard_key`) belongs to this shard."""
        return shard_of(key, self.count) == self.index


def parse_shard(text: str, name: str = "shard") -> ShardSpec:
    """``K/N`` or ``auto/N`` as a :class:`ShardSpec`.

    Raises:
        ConfigError: not of that form, N outside 1..10000 or K not below N (naming ``name``).
    """
    match = _SPEC.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"{name} must be K/N (shard K of N, 0 <= K < N) or auto/N (K from "
            f"{COMPLETION_INDEX_ENV}), got {text!r}"
        )
    count = int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"{name} {text!r}: N must be 1 to {MAX_SHARDS}")
    if match.group(1) == "auto":
        return ShardSpec(None, count)
    index = int(match.group(1))
    if index >= count:
        raise ConfigError(f"{name} {text!r}: K must be below N (shards are 0 to {count - 1})")
    return ShardSpec(index, count)


def resolve_auto(text: str, environ: Mapping[str, str], name: str = "shard") -> str:
    """``auto/N`` with K taken from ``JOB_COMPLETION_INDEX``; ``K/N`` unchanged.

    Raises:
        ConfigError: the spec is malformed, or ``auto`` without a usable index.
    """
    spec = parse_shard(text, name)
    if spec.index is not None:
        return str(spec)
    raw = environ.get(COMPLETION_INDEX_ENV, "").strip()
    if not raw.isdigit():
        why = "is not set" if not raw else f"is {raw!r}, not a number"
        raise ConfigError(
            f"{name} {text!r} takes K from {COMPLETION_INDEX_ENV}, which {why} "
            "(it is set in the pods of a Kubernetes Indexed Job); give K/N"
        )
    resolved = f"{int(raw)}/{spec.count}"
    try:
        return str(parse_shard(resolved, name))
    except ConfigError:
        raise ConfigError(
            f"{name} {text!r}: {COMPLETION_INDEX_ENV}={raw} is not below "
            f"{spec.count}; completions of the Job and N must agree"
        ) from None


def shard_key(rel_path: str, dest_folder: str | None) -> str:
    """What a file is hashed on: its NFC target below the company root."""
    return build_target(rel_path, company_root=None, dest_folder=dest_folder)


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) a key belongs to (see the module's notes)."""
    text = unicodedata.normalize("NFC", key)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        data = text.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "big") % count
