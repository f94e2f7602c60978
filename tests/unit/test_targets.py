"""Target path tests: derivation, D-17 predicate, refusal reasons, warnings, placeholders."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkup import targets
from bulkup.targets import (
    build_target,
    folder_problem,
    header_file_name,
    name_problem,
    name_warnings,
    needs_file_name_param,
    target_problem,
)


class TestBuildTarget:
    """build_target joins prefixes, normalises and tidies slashes."""

    def test_nfd_becomes_nfc(self) -> None:
        """A name copied from macOS (NFD) reaches the server in NFC."""
        nfd = unicodedata.normalize("NFD", "été/chaussure-é.jpg")
        assert nfd != "été/chaussure-é.jpg"
        assert build_target(nfd, company_root=None, dest_folder=None) == "été/chaussure-é.jpg"

    def test_prefixes_joined(self) -> None:
        """Company root and destination folder go in front, joined with '/'."""
        got = build_target("2025/shoe.jpg", company_root="Acme", dest_folder="shoes")
        assert got == "Acme/shoes/2025/shoe.jpg"

    def test_prefixes_with_slashes_collapse(self) -> None:
        """Trailing and leading slashes of the prefixes leave no empty segment."""
        got = build_target("a//b.jpg", company_root="/Acme/", dest_folder="/shoes//x/")
        assert got == "Acme/shoes/x/a/b.jpg"

    @pytest.mark.parametrize(
        ("company_root", "dest_folder", "expected"),
        [
            (None, None, "a/b.jpg"),
            ("", "", "a/b.jpg"),
            ("Acme/", None, "Acme/a/b.jpg"),
            (None, "in", "in/a/b.jpg"),
        ],
    )
    def test_missing_prefixes(
        self, company_root: str | None, dest_folder: str | None, expected: str
    ) -> None:
        """A None or empty prefix is left out."""
        assert build_target("a/b.jpg", company_root=company_root, dest_folder=dest_folder) == (
            expected
        )

    def test_no_leading_slash(self) -> None:
        """A leading '/' in the relative path is dropped."""
        assert build_target("/a.jpg", company_root=None, dest_folder=None) == "a.jpg"


class TestNeedsFileNameParam:
    """The D-17 predicate."""

    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("Acme/shoes/shoe-001.jpg", False),
            ("Acme/with space/a b.jpg", False),
            ("Acme/#%&+,=~!/x.jpg", False),
            ("Acme/chaussure-été.jpg", True),
            ("Acme/日本.png", True),
            ('Acme/say "hi".jpg', True),
            ("Acme/back\\slash.jpg", True),
            ("Acme/semi;colon.jpg", True),
            ("Acme/tab\t.jpg", True),
            ("Acme/del\x7f.jpg", True),
        ],
    )
    def test_table(self, target: str, expected: bool) -> None:
        """Non-printable-ASCII or one of '\"', '\\\\', ';' needs fileName."""
        assert needs_file_name_param(target) is expected


class TestTargetProblem:
    """Every reason the server would refuse a target."""

    @pytest.mark.parametrize(
        "target",
        ["Acme/a.jpg", "Acme/été/ü.jpg", "Acme/with space/a#b.jpg", "a.jpg", "Acme/x;y.jpg"],
    )
    def test_acceptable(self, target: str) -> None:
        """Ordinary targets have no problem."""
        assert target_problem(target) is None

    @pytest.mark.parametrize(
        ("char", "code"),
        [("\n", "000A"), ("\r", "000D"), ("\x00", "0000"), ("\x7f", "007F"), ("\x85", "0085")],
    )
    def test_control_characters(self, char: str, code: str) -> None:
        """Control characters anywhere are refused, naming the code point."""
        assert target_problem(f"Acme/a{char}b/c.jpg") == f"path contains control character U+{code}"

    def test_undecodable_name(self) -> None:
        """A name with undecodable bytes (surrogate escapes) is refused."""
        assert target_problem("Acme/bad\udcff.jpg") == "path is not valid UTF-8"

    @pytest.mark.parametrize("segment", [".", ".."])
    def test_dot_segments(self, segment: str) -> None:
        """'.' and '..' segments are refused."""
        assert target_problem(f"Acme/{segment}/a.jpg") == f"path contains a '{segment}' segment"

    def test_dot_file_name(self) -> None:
        """A file name of '..' is refused."""
        assert target_problem("Acme/..") == "path contains a '..' segment"

    def test_empty_folder_segment(self) -> None:
        """An empty folder segment ('//') is refused."""
        assert target_problem("Acme//a.jpg") == "empty folder name"

    @pytest.mark.parametrize("target", ["", "Acme/"])
    def test_empty_file_name(self, target: str) -> None:
        """An empty file name is refused."""
        assert target_problem(target) == "empty file name"

    def test_long_segment(self) -> None:
        """A segment over 255 UTF-8 bytes is refused (counting bytes, not characters)."""
        assert target_problem("Acme/" + "é" * 125 + "a.jpg") is None
        too_long = "Acme/" + "é" * 126 + ".jpg"
        assert target_problem(too_long) == "file name longer than 255 bytes (256)"
        assert target_problem("é" * 128 + "/a.jpg") == "folder name longer than 255 bytes (256)"

    def test_segment_exactly_255_bytes(self) -> None:
        """A segment of exactly 255 bytes passes."""
        assert target_problem("Acme/" + "a" * 251 + ".jpg") is None

    def test_long_path(self) -> None:
        """A path over 4096 bytes is refused; exactly 4096 passes."""
        folders = "/".join(["f" * 200] * 20)
        exact = folders + "/" + "a" * (4096 - len(folders) - 1)
        assert len(exact.encode()) == 4096
        assert target_problem(exact) is None
        assert target_problem(exact + "b") == "path longer than 4096 bytes (4097)"

    @pytest.mark.parametrize("char", list('\\:*?"<>|'))
    def test_forbidden_in_file_name(self, char: str) -> None:
        """Each D-25 forbidden character in the file name is refused and named."""
        assert target_problem(f"Acme/a{char}b.jpg") == f"file name contains '{char}'"

    @pytest.mark.parametrize("char", list(':*?"<>|'))
    def test_forbidden_chars_allowed_in_folders(self, char: str) -> None:
        """D-25 refuses those characters in the last segment only."""
        assert target_problem(f"Acme/a{char}b/c.jpg") is None

    def test_backslash_in_folder(self) -> None:
        """A '\\\\' in a folder name is refused: the server would turn it into '/'."""
        assert target_problem("Acme/a\\b/c.jpg") == "folder name contains '\\'"


class TestNameWarnings:
    """D-25 client warnings."""

    def test_clean_name(self) -> None:
        """A plain name has no warning."""
        assert name_warnings("Acme/a-b_c.jpg") == []

    @pytest.mark.parametrize("char", list("#%&+,;="))
    def test_each_character(self, char: str) -> None:
        """Each URL-troublesome character is named."""
        assert name_warnings(f"Acme/a{char}b.jpg") == [f"file name contains '{char}'"]

    def test_space(self) -> None:
        """A space is reported in words."""
        assert name_warnings("Acme/a b.jpg") == ["file name contains a space"]

    def test_several(self) -> None:
        """Several characters give several warnings, in a fixed order."""
        assert name_warnings("Acme/a b#c=d.jpg") == [
            "file name contains '#'",
            "file name contains '='",
            "file name contains a space",
        ]

    def test_folder_names_not_checked(self) -> None:
        """Only the file name matters (it becomes the asset name)."""
        assert name_warnings("Acme/a b#c/d.jpg") == []

    def test_warnings_are_not_problems(self) -> None:
        """A warned name is still acceptable."""
        assert target_problem("Acme/a b#c.jpg") is None


class TestHeaderFileName:
    """Placeholder file names for the part header (D-17)."""

    @pytest.mark.parametrize(
        ("index", "target", "expected"),
        [
            (1, "Acme/chaussure-été.jpg", "file1.jpg"),
            (3, "Acme/x.TIFF", "file3.TIFF"),
            (1, "Acme/archive.tar.gz", "file1.gz"),
            (1, "Acme/été.mp4", "file1.mp4"),
            (1, "Acme/noext", "file1"),
            (1, "Acme/.hidden", "file1"),
            (1, "Acme/trailing.", "file1"),
            (1, "Acme/x.abcdefghij", "file1.abcdefghij"),
            (1, "Acme/x.abcdefghijk", "file1"),
            (1, "Acme/x.jpé", "file1"),
            (1, "Acme/x.j-g", "file1"),
            (1, "Acme/dir.d/noext", "file1"),
        ],
    )
    def test_placeholder(self, index: int, target: str, expected: str) -> None:
        """The extension survives only when it is 1-10 ASCII letters or digits."""
        assert header_file_name(index, target) == expected

    def test_index_must_be_positive(self) -> None:
        """Parts count from 1."""
        with pytest.raises(ValueError, match="index"):
            header_file_name(0, "a.jpg")


class TestPerDirectoryChecks:
    """The walker checks a folder once and each name once; that must equal the whole check."""

    @given(
        folders=st.lists(
            st.text(min_size=0, max_size=12).filter(lambda t: "/" not in t), max_size=4
        ),
        name=st.text(min_size=0, max_size=12).filter(lambda t: "/" not in t),
    )
    def test_split_check_agrees_with_target_problem(self, folders: list[str], name: str) -> None:
        """folder_problem + name_problem finds a problem exactly when target_problem does."""
        folder = "/".join(folders)
        target = f"{folder}/{name}" if folder else name
        split = folder_problem(folder) or name_problem(name, target)
        assert (split is None) == (target_problem(target) is None)

    @given(
        rel_dir=st.text(alphabet="ab/é\u0301 ", max_size=10),
        name=st.text(alphabet="ab.é\u0301", min_size=1, max_size=8),
    )
    def test_folder_target_plus_name_is_the_target(self, rel_dir: str, name: str) -> None:
        """Joining the folder's target and an NFC name gives build_target of the whole path."""
        name = unicodedata.normalize("NFC", name)
        folder = build_target(rel_dir, company_root="Acme/", dest_folder="in").rstrip("/")
        whole = build_target(
            f"{rel_dir}/{name}" if rel_dir else name, company_root="Acme/", dest_folder="in"
        )
        assert f"{folder}/{name}" == whole


class TestNameProblemFastPath:
    @settings(max_examples=400, deadline=None)
    @given(
        name=st.text(
            alphabet=st.sampled_from(
                list("aZ09._- ")
                + list('\\:*?"<>|#%&+,;=')
                + ["\x00", "\x7f", "\x9f", "é", "文", "\U0001f600", "\ud800"]
            ),
            max_size=300,
        ),
        folder=st.sampled_from(["", "Acme", "Acme/é", "A" * 4000]),
    )
    def test_agrees_with_every_check_in_full(self, name: str, folder: str) -> None:
        """The one-search fast path for usual names gives exactly what the full checks give."""
        target = f"{folder}/{name}" if folder else name
        full = (
            targets._encoding_problem(name)
            or targets._length_problem(target)
            or targets._segment_problem(name, "file name")
            or targets._file_name_problem(name)
        )
        assert name_problem(name, target) == full

    @given(name=st.text(max_size=40).filter(lambda text: "/" not in text))
    def test_name_warnings_fast_path(self, name: str) -> None:
        expected = [
            f"file name contains {targets._shown(c)}" for c in targets._URL_TROUBLE if c in name
        ]
        assert name_warnings(f"Acme/{name}") == expected
