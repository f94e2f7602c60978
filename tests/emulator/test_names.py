"""Target paths and per-file outcomes: hostile names (D-16, D-25), overwrite (D-15), bulk POSTs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from .conftest import Emulator, StartEmulator
from .wire import (
    REQUIRED_OPTIONS,
    assert_fault,
    file_part,
    files,
    params_xml,
    quoted,
)

ERROR = "UploadError"


def tree(base: Path) -> set[Path]:
    """Every file and directory below ``base``."""
    found: set[Path] = set()
    for dirpath, dirs, names in os.walk(base):
        found.update(Path(dirpath, n) for n in dirs + names)
    return found


@pytest.fixture
async def deep(start_emulator: StartEmulator, tmp_path: Path) -> Emulator:
    """An emulator whose root sits four levels below tmp_path, so escapes stay observable."""
    return await start_emulator(root=tmp_path / "l1" / "l2" / "l3" / "root")


HOSTILE = [
    # (id, filename as sent — str is quoted/escaped per RFC, bytes go raw — , stored path or None)
    ("dotdot", "../../etc/x.jpg", None),
    ("dotdot-deep", "../" * 8 + "x.jpg", None),
    ("absolute", "/bulkup-hostile-abs/x.jpg", "bulkup-hostile-abs/x.jpg"),
    ("backslashes", "a\\..\\..\\x.jpg", None),
    ("backslash-root", "\\..\\x.jpg", None),
    ("windows-drive", "C:\\evil\\x.jpg", "C:/evil/x.jpg"),
    ("company-dotdot", "Acme/../../x.jpg", None),
    ("demo-dotdot", "Demo/../../x.jpg", None),
    ("dot-segment", "Acme/./x.jpg", None),
    ("dot-first", "./x.jpg", None),
    ("only-dotdot", "..", None),
    ("trailing-slash", "dir/x.jpg/", None),
    ("nul", "x\x00y.jpg", None),
    ("nul-folder", "d\x00/../../x.jpg", None),
    ("soh", "x\x01y.jpg", None),
    ("escape-in-folder", "d\x1b/x.jpg", None),
    ("tab", "x\ty.jpg", None),
    ("del", "x\x7fy.jpg", None),
    ("c1-nel", "x\x85y.jpg", None),
    ("c1-csi-folder", "d\x9b/x.jpg", None),
    ("lone-cr", "x\ry.jpg", None),
    ("lone-lf", "x\ny.jpg", None),
    ("10000-chars", "a" * 10_000 + ".jpg", None),
    ("long-segment", "d/" + "b" * 252 + ".jpg", None),
    ("long-path", ("d" * 200 + "/") * 20 + "x.jpg", None),
    ("quote", 'say "cheese".jpg', None),
    ("quote-injection", 'a.jpg"; filename="../../x.jpg', None),
    ("semicolon", "semi;colon.jpg", "semi;colon.jpg"),
    ("semicolon-folder", "a;b/c;d.jpg", "a;b/c;d.jpg"),
    ("star", "x*.jpg", None),
    ("pipe", "x|y.jpg", None),
    ("angle", "<x>.jpg", None),
    ("question", "x?.jpg", None),
    ("colon", "x:y.jpg", None),
    ("percent-dots", "%2e%2e/%2e%2e/x.jpg", "%2e%2e/%2e%2e/x.jpg"),
    ("two-dot-leader", "\u2025/x.jpg", "\u2025/x.jpg"),
    ("raw-unescaped-duplicate", b'"a.jpg"; filename="../../x.jpg"', "a.jpg"),
]


class TestHostileNames:
    @pytest.mark.parametrize(
        ("filename", "stored"), [(f, s) for _, f, s in HOSTILE], ids=[i for i, _, _ in HOSTILE]
    )
    async def test_stays_inside_root(
        self, deep: Emulator, tmp_path: Path, filename: str | bytes, stored: str | None
    ) -> None:
        """D-16/D-25: a hostile name is stored inside the company folder or is an UploadError."""
        handle = await deep.open_job()
        before = tree(tmp_path)
        reply = await deep.send(params_xml(job_handle=handle), [file_part(filename, b"payload")])
        assert reply.job_handle() == handle  # per-file problems are not faults (D-13)
        company = deep.company_dir()
        new = tree(tmp_path) - before
        assert all(p.is_relative_to(deep.root) for p in new), new
        assert all(p.is_relative_to(company) for p in new if p.is_file()), new
        assert not Path("/bulkup-hostile-abs").exists()
        record = (await deep.job(handle))["files"][0]
        if stored is None:
            assert record["outcome"] == ERROR and record["message"], record
            assert deep.stored() == {}
        else:
            assert record["outcome"] == "UploadSuccess", record
            assert deep.stored() == {stored: b"payload"}
        assert deep.staged() == []

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("file_name", "../../x.jpg"),
            ("file_name", "/../x.jpg"),
            ("file_name", "a\\..\\..\\x.jpg"),
            ("dest_folder", "../.."),
            ("dest_folder", "Acme/../../"),
            ("dest_folder", "a/\t/"),
        ],
    )
    async def test_hostile_xml_names(
        self, deep: Emulator, tmp_path: Path, field: str, value: str
    ) -> None:
        """D-16: ``fileName``/``destFolder`` escapes are UploadErrors too."""
        handle = await deep.open_job()
        before = tree(tmp_path)
        reply = await deep.send(
            params_xml(job_handle=handle, **{field: value}), [file_part("x.jpg", b"p")]
        )
        reply.job_handle()
        assert tree(tmp_path) == before
        assert (await deep.job(handle))["files"][0]["outcome"] == ERROR
        assert deep.stored() == {}

    async def test_crlf_in_filename_is_a_fault(self, deep: Emulator, tmp_path: Path) -> None:
        """D-21 row 1: CR LF inside the filename breaks the part headers → 30001."""
        handle = await deep.open_job()
        before = tree(tmp_path)
        reply = await deep.send(
            params_xml(job_handle=handle), [file_part(b'"x\r\n../../y.jpg"', b"p")]
        )
        assert_fault(reply, "ipsApiFault", 30001)
        assert tree(tmp_path) == before

    async def test_file_where_folder_exists(self, emu: Emulator) -> None:
        """A file whose target is an existing folder is an UploadError, not a crash."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"a.jpg/inner.jpg": b"1", "a.jpg": b"2"})).job_handle()
        record = (await emu.job(handle))["files"][1]
        assert record["outcome"] == ERROR and record["message"]
        assert emu.stored() == {"a.jpg/inner.jpg": b"1"} and emu.staged() == []


def _option(overwrite: bool) -> str:
    value = "true" if overwrite else "false"
    return REQUIRED_OPTIONS.replace(
        "<overwrite>true</overwrite>", f"<overwrite>{value}</overwrite>"
    )


async def _outcomes(emu: Emulator, handle: str) -> list[tuple[str, str]]:
    return [(f["target_path"], f["outcome"]) for f in (await emu.job(handle))["files"]]


class TestOutcomes:
    async def test_overwrite_true_updates(self, emu: Emulator) -> None:
        """D-15: re-uploading with overwrite=true is FileUpdated and replaces the bytes."""
        first = await emu.open_job(options=_option(True))
        (await emu.upload(first, {"p/a.jpg": b"old"})).job_handle()
        second = await emu.open_job(options=_option(True))
        (await emu.upload(second, {"p/a.jpg": b"new"})).job_handle()
        old_record, new_record = (
            (await emu.job(first))["files"][0],
            (await emu.job(second))["files"][0],
        )
        assert new_record["outcome"] == "FileUpdated"
        assert new_record["asset_handle"] == old_record["asset_handle"]
        assert emu.stored() == {"p/a.jpg": b"new"}

    async def test_overwrite_false_skips(self, emu: Emulator) -> None:
        """D-15: re-uploading with overwrite=false is DuplicateSkipped; the bytes stay."""
        handle = await emu.open_job(options=_option(False))
        (await emu.upload(handle, {"a.jpg": b"old"})).job_handle()
        (await emu.upload(handle, {"a.jpg": b"new"})).job_handle()
        assert await _outcomes(emu, handle) == [
            ("Acme/a.jpg", "UploadSuccess"),
            ("Acme/a.jpg", "DuplicateSkipped"),
        ]
        assert emu.stored() == {"a.jpg": b"old"}
        assert emu.staged() == []

    async def test_same_target_twice_in_one_post(self, emu: Emulator) -> None:
        """D-15: the same target twice in one POST is handled in order (then FileUpdated)."""
        handle = await emu.open_job()
        parts = [file_part("t.jpg", b"one", name="file1"), file_part("t.jpg", b"two", name="file2")]
        (await emu.send(params_xml(job_handle=handle), parts)).job_handle()
        assert await _outcomes(emu, handle) == [
            ("Acme/t.jpg", "UploadSuccess"),
            ("Acme/t.jpg", "FileUpdated"),
        ]
        assert emu.stored() == {"t.jpg": b"two"}

    async def test_case_insensitive_match(self, emu: Emulator) -> None:
        """D-15: names compare case-insensitively; the new file is stored as given."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"Case.jpg": b"1"})).job_handle()
        (await emu.upload(handle, {"CASE.JPG": b"2"})).job_handle()
        assert [o for _, o in await _outcomes(emu, handle)] == ["UploadSuccess", "FileUpdated"]
        assert emu.stored() == {"CASE.JPG": b"2"}

    async def test_other_extension_conflicts(self, emu: Emulator) -> None:
        """D-15: same base name, other extension (OverwriteFullName) is a name conflict."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"a.jpg": b"j", "a.png": b"p"})).job_handle()
        record = (await emu.job(handle))["files"][1]
        assert (record["outcome"], record["asset_handle"]) == (ERROR, None)
        assert "name conflict" in record["message"]
        assert emu.stored() == {"a.jpg": b"j"}

    async def test_other_folder_conflicts(self, emu: Emulator) -> None:
        """D-15: the same asset name in another folder conflicts (one namespace per company)."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"x/a.jpg": b"1", "y/a.jpg": b"2"})).job_handle()
        assert [o for _, o in await _outcomes(emu, handle)] == ["UploadSuccess", ERROR]
        assert emu.stored() == {"x/a.jpg": b"1"}

    @pytest.mark.parametrize(
        ("mode", "other_ext", "other_folder"),
        [
            ("OverwriteFullName", ERROR, ERROR),
            ("OverwriteAnyExt", "FileUpdated", ERROR),
            ("OverwriteFullNameAnyFolder", ERROR, "FileUpdated"),
            ("OverwriteAnyExtAnyFolder", "FileUpdated", "FileUpdated"),
        ],
    )
    async def test_overwrite_modes(
        self, start_emulator: StartEmulator, mode: str, other_ext: str, other_folder: str
    ) -> None:
        """D-15: the company overwriteMode decides what counts as the same file."""
        emu = await start_emulator(acme_extra=f'overwrite_mode = "{mode}"')
        handle = await emu.open_job()
        (await emu.upload(handle, {"f/a.jpg": b"1", "f/a.png": b"2"})).job_handle()
        (await emu.upload(handle, {"f/b.jpg": b"3", "g/b.jpg": b"4"})).job_handle()
        outcomes = [o for _, o in await _outcomes(emu, handle)]
        assert outcomes == ["UploadSuccess", other_ext, "UploadSuccess", other_folder]
        stored = emu.stored()
        assert ("f/a.png" in stored) == (other_ext == "FileUpdated")
        assert ("f/a.jpg" in stored) == (other_ext != "FileUpdated")
        assert ("g/b.jpg" in stored) == (other_folder == "FileUpdated")
        assert ("f/b.jpg" in stored) == (other_folder != "FileUpdated")

    async def test_existing_files_are_assets(
        self, start_emulator: StartEmulator, tmp_path: Path
    ) -> None:
        """D-15: files already in the company folder at start count as assets."""
        (tmp_path / "root" / "Acme" / "old").mkdir(parents=True)
        (tmp_path / "root" / "Acme" / "old" / "pre.jpg").write_bytes(b"before")
        emu = await start_emulator()
        handle = await emu.open_job(options=_option(False))
        (await emu.upload(handle, {"old/pre.jpg": b"after", "new/pre.png": b"x"})).job_handle()
        assert [o for _, o in await _outcomes(emu, handle)] == ["DuplicateSkipped", ERROR]
        assert emu.stored() == {"old/pre.jpg": b"before"}

    @pytest.mark.parametrize(
        ("filename", "content", "why"),
        [
            ("empty.jpg", b"", "empty"),
            ("thing.xyz", b"x", "unsupported"),
            ("noext", b"x", "unsupported"),
            (".jpg", b"x", "unsupported"),
            ("script.js", b"x", "unsupported"),
        ],
    )
    async def test_rejected_files(
        self, emu: Emulator, filename: str, content: bytes, why: str
    ) -> None:
        """D-25: empty files, unknown extensions and .js (by default) are UploadErrors."""
        handle = await emu.open_job()
        (await emu.upload(handle, {filename: content})).job_handle()
        record = (await emu.job(handle))["files"][0]
        assert record["outcome"] == ERROR and why in record["message"], record
        assert emu.stored() == {} and emu.staged() == []

    async def test_javascript_when_enabled(self, start_emulator: StartEmulator) -> None:
        """D-25: .js is accepted when the company enables JavaScript upload."""
        emu = await start_emulator(acme_extra="javascript_upload_enabled = true")
        handle = await emu.open_job()
        (await emu.upload(handle, {"s.js": b"1;"})).job_handle()
        assert emu.stored() == {"s.js": b"1;"}

    async def test_success_message(self, emu: Emulator) -> None:
        """D-24: an UploadSuccess says ``<rootPath><path> was processed into IPS``."""
        handle = await emu.open_job()
        (await emu.upload(handle, {"m/n.jpg": b"1"})).job_handle()
        record = (await emu.job(handle))["files"][0]
        assert record["message"] == "Acme/m/n.jpg was processed into IPS"


class TestTargetPath:
    @pytest.mark.parametrize(
        ("kwargs", "filename", "stored"),
        [
            ({"file_name": "over/ride.jpg"}, "ignored.jpg", "over/ride.jpg"),
            ({"file_name": "Acme/x/y.jpg"}, "ignored.jpg", "x/y.jpg"),
            ({"dest_folder": "dest"}, "f.jpg", "dest/f.jpg"),
            ({"dest_folder": "dest/"}, "sub/f.jpg", "dest/sub/f.jpg"),
            ({"dest_folder": "Acme/dest"}, "f.jpg", "dest/f.jpg"),
            ({"dest_folder": "/dest"}, "f.jpg", "dest/f.jpg"),
            ({"dest_folder": "dest", "file_name": "named.jpg"}, "ignored.jpg", "dest/named.jpg"),
            ({"dest_folder": ""}, "f.jpg", "f.jpg"),
            ({}, "Acme/f.jpg", "f.jpg"),
            ({}, "/Acme/f.jpg", "f.jpg"),
            ({}, "Acme//a///b.jpg", "a/b.jpg"),
            ({}, "Acme\\win\\f.jpg", "win/f.jpg"),
            ({}, "acme/f.jpg", "acme/f.jpg"),
            ({}, "Acme/Acme/f.jpg", "Acme/f.jpg"),
            ({}, "Other/f.jpg", "Other/f.jpg"),
        ],
    )
    async def test_target(
        self, emu: Emulator, kwargs: dict[str, str], filename: str, stored: str
    ) -> None:
        """D-16: fileName overrides filename, destFolder prefixes, the root prefix is stripped."""
        handle = await emu.open_job()
        reply = await emu.send(
            params_xml(job_handle=handle, **kwargs), [file_part(filename, b"data")]
        )
        reply.job_handle()
        assert emu.stored() == {stored: b"data"}
        assert (await emu.job(handle))["files"][0]["target_path"] == "Acme/" + stored
        assert emu.stored("Other") == {}

    async def test_file_name_without_part_filename(self, emu: Emulator) -> None:
        """D-16 step 1: ``fileName`` alone names a part that has no ``filename``."""
        handle = await emu.open_job()
        reply = await emu.send(
            params_xml(job_handle=handle, file_name="solo.jpg"), [file_part(None, b"s")]
        )
        reply.job_handle()
        assert emu.stored() == {"solo.jpg": b"s"}


class TestBulk:
    async def test_thousand_file_parts(self, emu: Emulator) -> None:
        """D-18: one POST with 1,000 small file parts stores all 1,000 byte-exact."""
        handle = await emu.open_job()
        payload = {
            f"bulk/{i // 100}/f{i:04d}.jpg": hashlib.sha256(str(i).encode()).digest() * (1 + i % 5)
            for i in range(1000)
        }
        reply = await emu.upload(handle, payload)
        assert reply.job_handle() == handle
        assert emu.stored() == payload
        job = await emu.job(handle)
        assert job["file_count"] == 1000
        assert {f["outcome"] for f in job["files"]} == {"UploadSuccess"}
        assert [f["sha256"] for f in job["files"]] == [
            hashlib.sha256(data).hexdigest() for data in payload.values()
        ]
        assert emu.staged() == []


class TestHelpers:
    def test_quoting_helper(self) -> None:
        """The test helper escapes ``\\`` and ``"`` as RFC quoted-pairs."""
        assert quoted('a"b\\c;d') == '"a\\"b\\\\c;d"'
        assert files({"x": b""})[0].header_lines[0] == (
            b'Content-Disposition: form-data; name="file1"; filename="x"'
        )
