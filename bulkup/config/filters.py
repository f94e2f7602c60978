"""Which walked files are sent: include/exclude patterns (rclone's rules) and size/age limits.

Patterns are matched on a file's path relative to its source root, ``/``-separated and NFC
(as the walker builds it; the patterns are normalised the same way), with wcmatch's glob
syntax compiled once into one regular expression per list. The rules, as in rclone:

* ``*`` matches within one path segment (never ``/``); ``?`` one character that is not ``/``;
  ``**`` (a whole segment) any number of segments; ``[abc]``, ``[!a-z]``, ``[[:digit:]]``
  character classes; ``{jpg,png}`` alternatives; ``\\`` escapes the next character. ``*`` and
  ``**`` match names that start with a dot.
* A pattern that does not start with ``/`` matches at the end of the path, on whole segments:
  ``*.jpg`` matches ``a.jpg`` and ``x/y/a.jpg``; ``raw/*.tif`` matches ``raw/a.tif`` and
  ``shoot/raw/a.tif``. A leading ``/`` anchors it to the source root: ``/top/*.jpg`` matches
  ``top/a.jpg`` only.
* A pattern that ends with ``/`` names a directory and everything below it (``weird/`` is
  ``weird/**``). A pattern without the trailing ``/`` matches files only (``--exclude raw``
  leaves a directory ``raw`` alone: rclone's rule; the warning below says so).
* Exclude wins over include. With include patterns, only files matching one are sent.
  Include patterns never stop the walk from entering a directory.
* An excluded directory is not descended into: an exclude pattern that ends with ``/`` or
  ``/**`` is matched against each directory's path too (``rel/dir/``), so ``--exclude raw/``
  and ``--exclude '**/raw/**'`` cost one match per directory, never one per file below it.
* ``ignore_case`` applies to every pattern.
* ``--include-from FILE`` / ``--exclude-from FILE``: one pattern per line, leading and trailing
  white space stripped, blank lines and lines starting with ``#`` ignored; added after the
  patterns given directly. A file that cannot be read is a :class:`~bulkup.errors.ConfigError`
  naming it.
* A pattern that matched nothing by the end of a complete walk is named in one
  ``filter_matched_nothing`` warning (with a hint when it matched a directory's path: it
  probably wants a trailing ``/``).

Size and age limits apply to files that pass the patterns: ``min_size``/``max_size`` in bytes
(a file smaller than ``min_size`` or larger than ``max_size`` is left out); ages (``30s``,
``10m``, ``2h``, ``7d``, ``1w``, combinations such as ``1d12h``, or an ISO date
``2024-05-01``/``2024-05-01T12:00:00+02:00``, a date without a zone in local time) measured
from the run's start (``now``, injected): ``max_age`` leaves out files modified before
``now - max_age`` (older), ``min_age`` files modified after ``now - min_age`` (younger).
A file exactly on a limit is sent. Files left out are counted as ``excluded``.

wcmatch is imported only when patterns are given, so a run without them does not load it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from bulkup.errors import ConfigError
from bulkup.targets import escaped

__all__ = ["AGE_HELP", "FileFilter", "PatternSet", "age_seconds_before", "read_patterns"]

log = structlog.get_logger(__name__)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+\Z")
_UNIT_S = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "y": 365 * 86400,
}
AGE_HELP = "an age such as 30s, 10m, 2h, 7d, 1w (or 1d12h), or an ISO date such as 2024-05-01"


def age_seconds_before(text: str, now: float) -> float:
    """The epoch time an age names: ``now`` minus a duration, or an absolute ISO date.

    Raises:
        ValueError: ``text`` is neither (the message says what is expected).
    """
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return now - float(value)  # a bare number: seconds, as rclone
    if _DURATION.match(value):
        return now - sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(value))
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"expected {AGE_HELP}, got {text!r}") from None


def read_patterns(path: Path, key: str) -> tuple[str, ...]:
    """The patterns of a ``--include-from``/``--exclude-from`` file.

    Raises:
        ConfigError: the file cannot be read or is not UTF-8 (naming ``key`` and the file).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot read {escaped(str(path))}: {exc.strerror or type(exc).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {escaped(str(path))} is not UTF-8 text") from None
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True, slots=True)
class _Compiled:
    pattern: str  # as given (NFC), for the warning
    regex: re.Pattern[str]  # matched on the base name (on_base) or the relative path
    on_base: bool  # no "/" at all: matched on the base name alone (the cheap, usual case)
    dir_rule: bool  # ends with / or /**: matched on a directory's path plus "/" too

    def matches(self, path: str) -> bool:
        subject = path.rpartition("/")[2] if self.on_base else path
        return self.regex.match(subject) is not None


class PatternSet:
    """One list of patterns: two combined regexes on the hot path (one on the base name for
    the patterns without ``/``, one on the whole path for the others), and which ones matched.

    Args:
        patterns: glob patterns in the rules of the module's notes.
        ignore_case: match case-insensitively.

    Raises:
        ConfigError: a pattern wcmatch refuses (too many ``{}`` expansions, say).
    """

    def __init__(self, patterns: Sequence[str], *, ignore_case: bool) -> None:
        self._compiled = tuple(_compile(_nfc(p), ignore_case) for p in dict.fromkeys(patterns))
        self._base = _union(c.regex for c in self._compiled if c.on_base)
        self._paths = _union(c.regex for c in self._compiled if not c.on_base)
        self._any_base = any(c.on_base for c in self._compiled)
        self._dirs = _union(c.regex for c in self._compiled if c.dir_rule)
        self._unused = list(range(len(self._compiled)))
        self._dir_hints: dict[int, str] = {}

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def matches_file(self, rel_path: str) -> bool:
        """Whether any pattern matches this file's relative path."""
        if (
            not self._any_base or self._base.match(rel_path.rpartition("/")[2]) is None
        ) and self._paths.match(rel_path) is None:
            return False
        if self._unused:
            self._note_used(rel_path, dir_rules_only=False)
        return True

    def matches_dir(self, rel_path: str) -> bool:
        """Whether a directory rule (``dir/``, ``.../**``) matches this directory: then every
        file below it matches too."""
        path = rel_path + "/"
        if self._dirs.match(path) is not None:
            if self._unused:
                self._note_used(path, dir_rules_only=True)
            return True
        if self._unused:
            self._note_dir_hint(rel_path)
        return False

    def unmatched(self) -> list[tuple[str, str | None]]:
        """The patterns that matched nothing so far, each with a hint (or None)."""
        return [(self._compiled[i].pattern, self._dir_hints.get(i)) for i in self._unused]

    def _note_used(self, path: str, *, dir_rules_only: bool) -> None:
        self._unused = [
            i
            for i in self._unused
            if (dir_rules_only and not self._compiled[i].dir_rule)
            or not self._compiled[i].matches(path)
        ]

    def _note_dir_hint(self, rel_path: str) -> None:
        """A file-only pattern that matches a directory's path: the user probably meant
        the directory (rclone needs ``dir/``)."""
        for i in self._unused:
            compiled = self._compiled[i]
            if not compiled.dir_rule and i not in self._dir_hints and compiled.matches(rel_path):
                self._dir_hints[i] = (
                    f"it matches the directory {escaped(rel_path)}, but a "
                    f"pattern without a trailing / matches files only; for "
                    f"the directory and everything below write "
                    f"{escaped(compiled.pattern.rstrip('/'))}/"
                )


class FileFilter:
    """The walker's filter: patterns, then size and age limits (see the module's notes).

    Args:
        include: patterns; when any are given, only files matching one pass.
        exclude: patterns of files (and, for directory rules, directories) left out.
        ignore_case: match every pattern case-insensitively.
        min_size: smallest size sent, in bytes (None: no limit).
        max_size: largest size sent, in bytes (None: no limit).
        min_mtime: files modified before this epoch time are left out (None: no limit).
        max_mtime: files modified after this epoch time are left out (None: no limit).
    """

    def __init__(
        self,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        ignore_case: bool = False,
        min_size: int | None = None,
        max_size: int | None = None,
        min_mtime: float | None = None,
        max_mtime: float | None = None,
    ) -> None:
        self._include = PatternSet(include, ignore_case=ignore_case)
        self._exclude = PatternSet(exclude, ignore_case=ignore_case)
        self._sizes = (0 if min_size is None else min_size, None if max_size is None else max_size)
        self._mtimes_ns = (
            None if min_mtime is None else int(min_mtime * 1e9),
            None if max_mtime is None else int(max_mtime * 1e9),
        )
        self._limits = (
            min_size is not None
            or max_size is not None
            or min_mtime is not None
            or max_mtime is not None
        )
        self._all = not self._include and not self._exclude and not self._limits

    @classmethod
    def from_config(cls, config: Any, *, now: float) -> FileFilter:
        """The filter of an :class:`~bulkup.config.model.UploadConfig`, ages measured from ``now``
        (epoch seconds: the run's start).

        Raises:
            ConfigError: an include/exclude file cannot be read, or a pattern is refused.
        """
        include = tuple(config.include)
        exclude = tuple(config.exclude)
        if config.include_from is not None:
            include += read_patterns(config.include_from, "include_from")
        if config.exclude_from is not None:
            exclude += read_patterns(config.exclude_from, "exclude_from")
        return cls(
            include=include,
            exclude=exclude,
            ignore_case=config.ignore_case,
            min_size=config.min_size,
            max_size=config.max_size,
            min_mtime=_age(config.max_age, now),
            max_mtime=_age(config.min_age, now),
        )

    def prunes(self, rel_path: str) -> bool:
        """Whether a directory is excluded (and not descended into)."""
        if self._exclude and self._exclude.matches_dir(rel_path):
            return True
        if self._include:
            self._include.matches_dir(rel_path)  # notes use and hints; includes never prune
        return False

    @property
    def accepts_everything(self) -> bool:
        """True when no rule or limit is set (every file passes)."""
        return self._all

    def accepts(self, rel_path: str, size: int, mtime_ns: int) -> bool:
        """Whether a file passes: not excluded, included (when include patterns exist), and
        within the size and age limits."""
        if self._all:
            return True
        if self._exclude and self._exclude.matches_file(rel_path):
            return False
        if self._include and not self._include.matches_file(rel_path):
            return False
        return not self._limits or self._within_limits(size, mtime_ns)

    def warn_unmatched(self) -> None:
        """One ``filter_matched_nothing`` warning per pattern that matched nothing (to be
        called at the end of a complete walk)."""
        for kind, patterns in (("include", self._include), ("exclude", self._exclude)):
            for pattern, hint in patterns.unmatched():
                extra = {} if hint is None else {"hint": hint}
                log.warning("filter_matched_nothing", kind=kind, pattern=escaped(pattern), **extra)

    def _within_limits(self, size: int, mtime_ns: int) -> bool:
        low, high = self._sizes
        if size < low or (high is not None and size > high):
            return False
        oldest, newest = self._mtimes_ns
        return not (
            (oldest is not None and mtime_ns < oldest) or (newest is not None and mtime_ns > newest)
        )


def _age(text: str | None, now: float) -> float | None:
    return None if text is None else age_seconds_before(text, now)


def _compile(pattern: str, ignore_case: bool) -> _Compiled:
    """A pattern in rclone's rules as one regex (the module's notes say how)."""
    from wcmatch import glob  # here: only a run with patterns pays for the import

    body = pattern
    on_base = "/" not in body and body != "**"  # on the base name: as "**/" + body, cheaper
    dir_rule = body.endswith("/") or body.endswith("/**") or body == "**"
    if body.endswith("/"):
        body = body.rstrip("/") + "/**"
    if not on_base:
        body = body[1:] if body.startswith("/") else "**/" + body
    flags = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB | glob.FORCEUNIX
    if ignore_case:
        flags |= glob.IGNORECASE
    try:
        regexes, _ = glob.translate(body, flags=flags)
    except Exception as exc:  # wcmatch's limit on {} expansions, say
        raise ConfigError(f"filter pattern {escaped(pattern)!r}: {exc}") from None
    return _Compiled(pattern, re.compile("|".join(f"(?:{r})" for r in regexes)), on_base, dir_rule)


_NEVER = re.compile(r"(?!)")


def _union(regexes: Iterable[re.Pattern[str]]) -> re.Pattern[str]:
    """One regex matching what any of ``regexes`` matches (never anything when empty)."""
    parts = [f"(?:{regex.pattern})" for regex in regexes]
    return re.compile("|".join(parts)) if parts else _NEVER


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
