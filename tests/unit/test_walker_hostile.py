"""The walker against hostile trees (issue 13, rows 4 and 10).

Rule 4, a bad name fails alone: a name that is not valid UTF-8 (a file's, a directory's, a
root's) fails only the files it names, with the bytes shown escaped, and nothing raw leaves the
walker (no surrogate escape in a failure or a log event). Rule 8, links stay inside: with
``follow_symlinks`` only links that resolve inside a source root are followed; a link out of the
roots is skipped with a reason unless ``follow_external_symlinks``.

Bytes names are made with ``os.open(bytes)`` (Linux keeps any bytes but ``/`` and NUL).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bulkup.models import FileEntry, FileFailure
from bulkup.pipeline.pipe import Pipe
from bulkup.pipeline.walker import Walker
from bulkup.targets import escaped, undecodable_problem


def _write_bytes_name(path: bytes, data: bytes = b"x") -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _walker(
    roots: list[Path] | list[str], failures: list[FileFailure] | None = None, **options: Any
) -> Walker:
    options.setdefault("max_file_size", 10**9)
    on_failure = None if failures is None else failures.append
    return Walker([str(root) for root in roots], on_failure=on_failure, **options)


async def _walk(walker: Walker) -> list[FileEntry]:
    pipe: Pipe[FileEntry] = Pipe(10**6)
    await walker.run(pipe)
    return [entry async for chunk in pipe.chunks(1000) for entry in chunk]


def _rels(entries: list[FileEntry]) -> list[str]:
    return [entry.rel_path for entry in entries]


def _assert_clean(value: Any) -> None:
    """Every string in ``value`` encodes as strict UTF-8 and holds no control character."""
    if isinstance(value, str):
        value.encode("utf-8")  # raises on a surrogate escape
        assert value.isprintable(), value
    elif isinstance(value, MutableMapping | dict):
        for key, item in value.items():
            _assert_clean(key)
            _assert_clean(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _assert_clean(item)


class TestEscaping:
    """The one function every shown name goes through."""

    def test_undecodable_bytes_shown_as_hex(self) -> None:
        assert escaped(os.fsdecode(b"/t/caf\xe9.jpg")) == "/t/caf\\xe9.jpg"

    def test_control_characters_shown_as_hex(self) -> None:
        assert escaped("a\x1b[2Jb\nc") == "a\\x1b[2Jb\\x0ac"

    def test_valid_names_unchanged(self) -> None:
        for name in ("plain.jpg", "日本語/ファイル.jpg", "café.jpg", "a\\b"):
            assert escaped(name) == name

    def test_problem_names_the_bad_segment(self) -> None:
        assert undecodable_problem(os.fsdecode(b"/t/ok/caf\xe9.jpg")) == (
            "file name is not valid UTF-8: caf\\xe9.jpg"
        )
        assert undecodable_problem(os.fsdecode(b"/t/d\xff/e\xfe/ok.jpg")) == (
            "directory name is not valid UTF-8: d\\xff"
        )
        assert undecodable_problem("/t/日本/ok.jpg") is None


class TestBadNames:
    """Rule 4 in the walker."""

    async def test_bad_file_name_fails_alone(self, tmp_path: Path) -> None:
        """One bad file name: that file fails, escaped; its neighbours and the rest of the tree
        are queued; the failure and every log event are clean UTF-8."""
        _write(tmp_path / "a.jpg")
        _write_bytes_name(os.fsencode(tmp_path) + b"/caf\xe9.jpg")
        _write(tmp_path / "z" / "b.jpg")
        failures: list[FileFailure] = []
        walker = _walker([tmp_path], failures, company_root="Acme")
        with capture_logs() as logs:
            entries = await _walk(walker)
        assert _rels(entries) == ["a.jpg", "z/b.jpg"]
        assert failures == [
            FileFailure(
                f"{tmp_path}/caf\\xe9.jpg",
                "file name is not valid UTF-8: caf\\xe9.jpg",
                "Acme/caf\\xe9.jpg",
            )
        ]
        assert walker.stats.failed == 1 and walker.stats.done
        _assert_clean([(f.path, f.reason, f.target) for f in failures])
        _assert_clean(logs)

    async def test_bad_directory_fails_each_file_under_it(self, tmp_path: Path) -> None:
        """A directory with a bad name: each file under it fails (naming the directory), so
        the count says how many were not sent; the siblings are queued."""
        bad_dir = os.fsencode(tmp_path) + b"/photos\xff"
        os.makedirs(bad_dir + b"/deeper")
        _write_bytes_name(bad_dir + b"/one.jpg")
        _write_bytes_name(bad_dir + b"/deeper/two.jpg")
        _write(tmp_path / "good.jpg")
        failures: list[FileFailure] = []
        with capture_logs() as logs:
            entries = await _walk(_walker([tmp_path], failures))
        assert _rels(entries) == ["good.jpg"]
        assert [(f.path, f.reason) for f in failures] == [
            (f"{tmp_path}/photos\\xff/one.jpg", "directory name is not valid UTF-8: photos\\xff"),
            (
                f"{tmp_path}/photos\\xff/deeper/two.jpg",
                "directory name is not valid UTF-8: photos\\xff",
            ),
        ]
        _assert_clean([(f.path, f.reason, f.target) for f in failures])
        _assert_clean(logs)

    async def test_bad_root_path_fails_its_files_only(self, tmp_path: Path) -> None:
        """A root given with a bad name (as argv hands it over: surrogate escapes): its files
        fail, the other root is walked; the walk_started event shows the root escaped."""
        bad_root = os.fsencode(tmp_path) + b"/in\xe9"
        os.mkdir(bad_root)
        _write_bytes_name(bad_root + b"/a.jpg")
        good = _write(tmp_path / "good" / "b.jpg").parent
        failures: list[FileFailure] = []
        with capture_logs() as logs:
            entries = await _walk(_walker([os.fsdecode(bad_root), str(good)], failures))
        assert _rels(entries) == ["b.jpg"]
        assert [(f.path, f.reason) for f in failures] == [
            (f"{tmp_path}/in\\xe9/a.jpg", "directory name is not valid UTF-8: in\\xe9")
        ]
        (started,) = [line for line in logs if line["event"] == "walk_started"]
        assert started["roots"] == [f"{tmp_path}/in\\xe9", str(good)]
        _assert_clean(logs)

    async def test_bad_file_root(self, tmp_path: Path) -> None:
        """A single-file root with a bad name fails alone."""
        path = os.fsencode(tmp_path) + b"/r\xe9sum\xe9.jpg"
        _write_bytes_name(path)
        failures: list[FileFailure] = []
        assert await _walk(_walker([os.fsdecode(path)], failures)) == []
        assert [f.reason for f in failures] == ["file name is not valid UTF-8: r\\xe9sum\\xe9.jpg"]

    async def test_skipped_bad_name_logged_escaped(self, tmp_path: Path) -> None:
        """A FIFO with a bad name is skipped as before, and its log line is clean."""
        os.mkfifo(os.fsencode(tmp_path) + b"/pipe\xff")
        walker = _walker([tmp_path])
        with capture_logs() as logs:
            assert await _walk(walker) == []
        (skip,) = [line for line in logs if line["event"] == "walk_skipped"]
        assert skip["path"] == f"{tmp_path}/pipe\\xff"
        _assert_clean(logs)

    async def test_control_character_in_failure_escaped(self, tmp_path: Path) -> None:
        """A name with a terminal escape sequence fails (D-25) and is shown escaped."""
        _write(tmp_path / "x\x1b[2J.jpg")
        failures: list[FileFailure] = []
        assert await _walk(_walker([tmp_path], failures)) == []
        (failure,) = failures
        assert failure.path == f"{tmp_path}/x\\x1b[2J.jpg"
        _assert_clean([failure.path, failure.reason, failure.target])


class TestLinksStayInside:
    """Rule 8: with follow_symlinks, only links that resolve inside a source root."""

    @pytest.fixture
    def tree(self, tmp_path: Path) -> Path:
        src = tmp_path / "src"
        _write(src / "real.jpg", b"inside")
        _write(src / "dir" / "in.jpg", b"in-dir")
        _write(tmp_path / "secret" / "shadow", b"root:$6$hash")
        _write(tmp_path / "src-evil" / "f.jpg", b"evil")  # shares the root's name as prefix
        return src

    async def test_link_to_outside_file_skipped_with_reason(self, tree: Path) -> None:
        """The /etc/shadow case: a link to a file out of the roots is skipped, counted, and
        logged as a warning naming where it leads."""
        outside = tree.parent / "secret" / "shadow"
        (tree / "shadow.jpg").symlink_to(outside)
        walker = _walker([tree], follow_symlinks=True)
        with capture_logs() as logs:
            entries = await _walk(walker)
        assert _rels(entries) == ["real.jpg", "dir/in.jpg"]
        (skip,) = [line for line in logs if line["event"] == "walk_skipped"]
        assert skip == {
            "event": "walk_skipped",
            "log_level": "warning",
            "path": str(tree / "shadow.jpg"),
            "reason": "symlink out of the source roots",
            "leads_to": str(outside),
        }
        assert walker.stats.skipped == 1 and walker.stats.failed == 0

    async def test_link_to_outside_directory_not_descended(self, tree: Path) -> None:
        (tree / "etc").symlink_to(tree.parent / "secret")
        walker = _walker([tree], follow_symlinks=True)
        assert _rels(await _walk(walker)) == ["real.jpg", "dir/in.jpg"]
        assert walker.stats.skipped == 1 and walker.stats.dirs_walked == 2

    async def test_sibling_with_the_root_as_prefix_is_outside(self, tree: Path) -> None:
        """``/x/src-evil`` is not inside ``/x/src``: the check is by path segment."""
        (tree / "evil.jpg").symlink_to(tree.parent / "src-evil" / "f.jpg")
        walker = _walker([tree], follow_symlinks=True)
        assert _rels(await _walk(walker)) == ["real.jpg", "dir/in.jpg"]
        assert walker.stats.skipped == 1

    async def test_chain_ending_outside_skipped(self, tree: Path) -> None:
        """inside link → inside link → outside file: the whole chain is resolved."""
        (tree / "hop2").symlink_to(tree.parent / "secret" / "shadow")
        (tree / "hop1.jpg").symlink_to(tree / "hop2")
        walker = _walker([tree], follow_symlinks=True)
        assert _rels(await _walk(walker)) == ["real.jpg", "dir/in.jpg"]
        assert walker.stats.skipped == 2

    async def test_chain_through_outside_back_inside_followed(self, tree: Path) -> None:
        """A chain that passes outside but ends inside resolves inside: followed."""
        (tree.parent / "secret" / "back").symlink_to(tree / "real.jpg")
        (tree / "via.jpg").symlink_to(tree.parent / "secret" / "back")
        entries = await _walk(_walker([tree], follow_symlinks=True))
        assert _rels(entries) == ["real.jpg", "via.jpg", "dir/in.jpg"]

    async def test_relative_escape_below_an_inside_link(self, tree: Path) -> None:
        """Below a directory reached through an inside link, a relative link is resolved from
        where it really is, and ``../..`` out of the root is refused."""
        (tree / "dir" / "up.jpg").symlink_to(Path("..") / ".." / "secret" / "shadow")
        (tree / "alias").symlink_to(tree / "dir")
        walker = _walker([tree], follow_symlinks=True)
        entries = await _walk(walker)
        assert sorted(_rels(entries)) == ["alias/in.jpg", "real.jpg"]
        assert walker.stats.skipped == 2  # dir/up.jpg, and dir (walked once, as alias)

    async def test_inside_links_followed(self, tree: Path) -> None:
        (tree / "again.jpg").symlink_to(tree / "real.jpg")
        (tree / "a-link").symlink_to("dir")  # relative, to a directory (walked first)
        walker = _walker([tree], follow_symlinks=True)
        entries = await _walk(walker)
        assert _rels(entries) == ["again.jpg", "real.jpg", "a-link/in.jpg"]
        assert walker.stats.skipped == 1  # dir itself: already walked through a-link

    async def test_link_to_the_root_itself_is_a_loop(self, tree: Path) -> None:
        """A link whose target is the root is inside; following it is a loop, skipped."""
        (tree / "dir" / "top").symlink_to(tree)
        walker = _walker([tree], follow_symlinks=True)
        with capture_logs() as logs:
            assert _rels(await _walk(walker)) == ["real.jpg", "dir/in.jpg"]
        reasons = [line["reason"] for line in logs if line["event"] == "walk_skipped"]
        assert reasons == ["symlink loop"]

    async def test_link_into_another_root_followed(self, tree: Path) -> None:
        other = _write(tree.parent / "other" / "o.jpg").parent
        (tree / "o.jpg").symlink_to(other / "o.jpg")
        entries = await _walk(_walker([tree, other], follow_symlinks=True))
        assert _rels(entries) == ["o.jpg", "real.jpg", "dir/in.jpg", "o.jpg"]

    async def test_root_given_through_a_link(self, tree: Path) -> None:
        """A root named through a link is resolved too: links inside its target are inside."""
        (tree.parent / "alias").symlink_to(tree)
        (tree / "again.jpg").symlink_to(tree / "real.jpg")
        entries = await _walk(_walker([tree.parent / "alias"], follow_symlinks=True))
        assert _rels(entries) == ["again.jpg", "real.jpg", "dir/in.jpg"]

    async def test_external_followed_when_asked(self, tree: Path) -> None:
        (tree / "shadow.jpg").symlink_to(tree.parent / "secret" / "shadow")
        (tree / "etc").symlink_to(tree.parent / "secret")
        walker = _walker([tree], follow_symlinks=True, follow_external_symlinks=True)
        entries = await _walk(walker)
        assert _rels(entries) == ["real.jpg", "shadow.jpg", "dir/in.jpg", "etc/shadow"]
        assert walker.stats.skipped == 0

    async def test_without_follow_every_link_skipped(self, tree: Path) -> None:
        """follow_external_symlinks alone follows nothing: links need follow_symlinks."""
        (tree / "shadow.jpg").symlink_to(tree.parent / "secret" / "shadow")
        walker = _walker([tree], follow_external_symlinks=True)
        assert _rels(await _walk(walker)) == ["real.jpg", "dir/in.jpg"]
        assert walker.stats.skipped == 1
