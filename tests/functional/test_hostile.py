"""Hostile local input: odd names, long paths, files that change under us, a full disk under
the journal. Each is reported per file or refused at start, never a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bulkup.journal.store import Journal
from bulkup.pipeline.run import run_upload
from bulkup.targets import escaped

from .conftest import PASSWORD, BeforeRead, make_tree, upload_argv

ODD_NAMES = {
    "cr\rname.jpg": "control character U+000D",
    "lf\nname.jpg": "control character U+000A",
    'quote"name.jpg': "contains '\"'",
    "back\\slash.jpg": "contains '\\'",
}
SENT_NAMES = [
    "semi;colon.jpg",
    "per%cent.jpg",
    "emoji-😀.jpg",
    "x" * 251 + ".jpg",
    "it's.jpg",
    "amp&hash#.jpg",
]


class TestNames:
    async def test_odd_names(self, emulator: Any, tmp_path: Path) -> None:
        """Names with CR/LF/quote/backslash fail alone and say why; the others arrive intact."""
        files = {name: b"x" for name in [*ODD_NAMES, *SENT_NAMES]}
        src = make_tree(tmp_path / "src", files)
        report = await run_upload(emulator.config(no_journal=True), [str(src)])
        reasons = {Path(f.path).name: f.reason for f in report.failures}
        assert set(reasons) == {escaped(name) for name in ODD_NAMES}  # cr\x0dname.jpg
        for name, why in ODD_NAMES.items():
            assert why in reasons[escaped(name)]
        assert sorted(emulator.stored_files()) == sorted(SENT_NAMES)
        assert report.exit_code == 1

    async def test_overlong_names_fail_locally(self, emulator: Any, tmp_path: Path) -> None:
        """A 256-byte component is refused locally; a 4,096-byte path is refused locally."""
        deep = "/".join(["d" * 200] * 20) + "/f.jpg"  # about 4 KB of path
        src = tmp_path / "src"
        (src / Path(deep).parent).mkdir(parents=True)
        (src / deep).write_bytes(b"d")
        report = await run_upload(emulator.config(no_journal=True, company_root=None), [str(src)])
        [failure] = report.failures
        assert "longer than" in failure.reason
        assert emulator.stored_files() == {}


class TestChangingFiles:
    @pytest.mark.parametrize("read_helper", [True, False])
    @pytest.mark.parametrize("change", ["grow", "shrink", "vanish"])
    async def test_file_changes_between_walk_and_send(
        self, emulator: Any, tmp_path: Path, change: str, read_helper: bool, before_read: BeforeRead
    ) -> None:
        """A file that changes after the walk fails alone; the rest of its POST arrives
        (files read in process, or by the read helper)."""
        src = make_tree(tmp_path / "src", {f"f{i}.jpg": b"x" * 100 for i in range(5)})
        victim = src / "f2.jpg"

        def change_once(path: Path) -> None:
            if path == victim and victim.exists() and victim.stat().st_size == 100:
                if change == "grow":
                    victim.write_bytes(b"x" * 200)
                elif change == "shrink":
                    victim.write_bytes(b"x" * 10)
                else:
                    victim.unlink()

        before_read(change_once)
        report = await run_upload(
            emulator.config(no_journal=True, concurrency=1, read_helper=read_helper), [str(src)]
        )
        [failure] = report.failures
        assert failure.path == str(victim)
        assert ("vanished" if change == "vanish" else "size changed") in failure.reason
        assert sorted(emulator.stored_files()) == ["f0.jpg", "f1.jpg", "f3.jpg", "f4.jpg"]

    async def test_helper_lost_mid_write_resends_the_post(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The helper writes a group into the connection, then its answer never comes (as if
        it died): the POST fails with part of its body on the wire, is sent again, and every
        file arrives byte-exact, once."""
        from bulkup.transport import reader as reader_module

        original = reader_module.HelperReader._request
        lost: list[bool] = []

        async def dies_after_writing(self: Any, process: Any, group: Any, direct: bool) -> Any:
            rest = await original(self, process, group, direct)
            if direct and not lost:
                lost.append(True)
                raise reader_module.HelperUnavailable("killed")
            return rest

        monkeypatch.setattr(reader_module.HelperReader, "_request", dies_after_writing)
        files = {f"f{i:02d}.jpg": bytes([i]) * 20_000 for i in range(30)}
        src = make_tree(tmp_path / "src", files)
        report = await run_upload(
            emulator.config(no_journal=True, concurrency=1, max_files_per_post=10), [str(src)]
        )
        assert lost and report.retries == 1 and report.exit_code == 0
        assert emulator.stored_files() == files
        assert sum(len(job.files) for job in emulator.jobs()) == len(files)

    async def test_permission_denied(
        self, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unreadable file fails alone with the OS's reason (in process: the tests run as
        root, whom permissions do not stop; tests/unit/test_reader.py covers the helper)."""
        src = make_tree(tmp_path / "src", {"ok.jpg": b"o", "locked.jpg": b"l"})
        real_open = os.open

        def guarded(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if os.fsdecode(path).endswith("locked.jpg"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", guarded)
        report = await run_upload(emulator.config(no_journal=True, read_helper=False), [str(src)])
        monkeypatch.undo()
        [failure] = report.failures
        assert "Permission denied" in failure.reason
        assert emulator.stored_files() == {"ok.jpg": b"o"}


LIMITED_RUN = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from bulkup.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


class TestFullDisk:
    async def test_full_disk_under_the_journal(self, emulator: Any, tmp_path: Path) -> None:
        """The journal's disk fills mid-run: exit 2 (the surroundings, not the server) with
        a clear message, no traceback, and the journal opens cleanly afterwards; the same
        command then completes."""
        src = make_tree(tmp_path / "src", {f"d{i % 9}/f{i:04d}.jpg": b"x" for i in range(600)})
        journal = tmp_path / "j.journal"
        args = [
            *upload_argv(src, emulator.url),
            "--journal",
            str(journal),
            "--max-files-per-post",
            "5",
            "--no-wait",
        ]
        code, output = await _run(LIMITED_RUN, str(256 * 1024), *args)
        assert code == 2, output
        assert "cannot be written" in output and "Traceback" not in output
        check = Journal(journal)  # opens: schema and integrity check pass
        posted = check._db.execute("SELECT count(*) FROM files WHERE state='posted'").fetchone()
        check.close()
        assert posted[0] < 600
        code, output = await _run(
            "import sys\nfrom bulkup.cli.main import main\nsys.exit(main(sys.argv[2:]))", "0", *args
        )
        assert code == 0, output
        assert len(emulator.stored_files()) == 600


async def _run(program: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        program,
        *args,
        env={**os.environ, "BULKUP_PASSWORD": PASSWORD},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")
