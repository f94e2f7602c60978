"""What is sent is what was walked (issue 13 row 5): a file rewritten in place while its POST is
being sent never lands torn. Its POST is cut before the closing boundary (the servlet drops a
cut POST whole, D-13), and the batch is resent with the file as it is now; a file that keeps
changing fails alone, "changed while being sent", and the rest of its batch lands.

Each read path is torn for real, mid-file: the in-process read and the read helper (its reads
made short, the file rewritten in between, as a writer racing the reader does), sendfile (the
first half sent, the file rewritten, the second half sent) and the chunked read of a large file
(rewritten after its first chunk). Every rewrite keeps the size and the inode and moves the
mtime on by one second (set, not left to the clock's granularity).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bulkup.pipeline.run import run_upload
from bulkup.transport import body as body_module
from bulkup.transport import client as client_module
from bulkup.transport import read_helper
from bulkup.transport import wire as wire_module
from bulkup.transport.reader import HELPER_SCRIPT, HelperReader

from .conftest import Emulator, make_tree

SMALL, LARGE = 16 * 1024, 64 * 1024
ORIGINAL = 0xEE  # the victim's bytes as walked; version n of it is all bytes n
KEEPS_CHANGING = 99


def rewrite(path: str, version: int) -> None:
    """The file's bytes all ``version``, same size, written in place (same inode); its mtime
    one second later than it was."""
    st = os.stat(path)
    with open(path, "r+b") as out:
        out.write(bytes([version]) * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


class TearingOs:
    """``os`` for the read helper's code: a read of the victim returns its first half, then
    the victim is rewritten and the read position put back after that half, so the next read
    goes on in the new bytes. At most ``times`` tears; ``version`` is the victim's last."""

    def __init__(self, victim: str, times: int) -> None:
        self._victim, self._left, self.version = victim, times, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def read(self, fd: int, size: int) -> bytes:
        first = os.lseek(fd, 0, os.SEEK_CUR) == 0  # one tear per read of the file
        data = os.read(fd, size)
        if (
            self._left
            and first
            and len(data) > 1
            and os.fstat(fd).st_ino == os.stat(self._victim).st_ino
        ):
            self._left -= 1
            self.version += 1
            rewrite(self._victim, self.version)
            os.lseek(fd, len(data) // 2, os.SEEK_SET)
            return data[: len(data) // 2]
        return data


HELPER_WRAPPER = """
from __future__ import annotations
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("read_helper", {script!r})
helper = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helper)
{sources}
helper.os = TearingOs({victim!r}, {times!r})
sys.exit(helper.main(sys.argv[1:]))
"""


def tear_in_process(monkeypatch: pytest.MonkeyPatch, victim: str, times: int) -> None:
    monkeypatch.setattr(read_helper, "os", TearingOs(victim, times))


def tear_in_helper(
    monkeypatch: pytest.MonkeyPatch,
    victim: str,
    times: int,
    helpers: list[HelperReader],
    folder: Path,
) -> None:
    """The uploader's read helper runs a wrapper script: the real helper with TearingOs."""
    script = folder / "tearing_helper.py"
    sources = inspect.getsource(rewrite) + "\n" + inspect.getsource(TearingOs)
    script.write_text(
        HELPER_WRAPPER.format(
            script=str(HELPER_SCRIPT), sources=sources, victim=victim, times=times
        )
    )

    def make() -> HelperReader:
        helpers.append(HelperReader(python=sys.executable, script=script))
        return helpers[-1]

    monkeypatch.setattr(client_module, "HelperReader", make)


def tear_sendfile(monkeypatch: pytest.MonkeyPatch, victim: str, times: int) -> None:
    """sendfile() of the victim: its first half, the file rewritten, its second half."""
    original = asyncio.BaseEventLoop.sendfile
    left = [times]

    async def tearing(
        self: Any,
        transport: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        if not (left[0] and count and is_victim(file.fileno(), victim)):
            return await original(self, transport, file, offset, count, fallback=fallback)
        left[0] -= 1
        half = count // 2
        sent = await original(self, transport, file, offset, half, fallback=fallback)
        rewrite(victim, times - left[0])
        return sent + await original(
            self, transport, file, offset + half, count - half, fallback=fallback
        )

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", tearing)


def tear_chunks(monkeypatch: pytest.MonkeyPatch, victim: str, times: int) -> None:
    """No sendfile (as over TLS): the victim is read in chunks, rewritten after its first."""
    original = body_module._read_exact
    left = [times]

    def tearing(handle: Any, size: int, entry: Any) -> bytes:
        data = original(handle, size, entry)
        if left[0] and handle.tell() == size and is_victim(handle.fileno(), victim):
            left[0] -= 1
            rewrite(victim, times - left[0])
        return data

    monkeypatch.setattr(wire_module.Wire, "can_sendfile", property(lambda self: False))
    monkeypatch.setattr(body_module, "_read_exact", tearing)


def is_victim(fd: int, victim: str) -> bool:
    return os.fstat(fd).st_ino == os.stat(victim).st_ino


PATHS = ["in_process", "read_helper", "sendfile", "chunked"]


def tree(folder: Path, path: str) -> tuple[Path, dict[str, bytes]]:
    """Eight files of one POST, the victim ``f3.jpg`` among them; large for the large-file
    paths (more than one 4 KiB chunk)."""
    size = LARGE if path in ("sendfile", "chunked") else SMALL
    files = {f"f{i}.jpg": bytes([i]) * size for i in range(8)}
    files["f3.jpg"] = bytes([ORIGINAL]) * size
    return make_tree(folder, files), files


async def upload(emulator: Emulator, src: Path, path: str) -> Any:
    chunk = 4096 if path in ("sendfile", "chunked") else 1024 * 1024
    return await run_upload(
        emulator.config(
            no_journal=True,
            concurrency=1,
            chunk_size=chunk,
            read_helper=path == "read_helper",
            max_files_per_post=100,
        ),
        [str(src)],
    )


def tear(
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    victim: str,
    times: int,
    helpers: list[HelperReader],
    folder: Path,
) -> None:
    tearers: dict[str, Callable[[], None]] = {
        "in_process": lambda: tear_in_process(monkeypatch, victim, times),
        "read_helper": lambda: tear_in_helper(monkeypatch, victim, times, helpers, folder),
        "sendfile": lambda: tear_sendfile(monkeypatch, victim, times),
        "chunked": lambda: tear_chunks(monkeypatch, victim, times),
    }
    tearers[path]()


def received(emulator: Emulator) -> list[tuple[str, str]]:
    """(target name, sha256) of every file of every POST the emulator accepted."""
    return sorted(
        (record.target_path.rsplit("/", 1)[-1], record.sha256)
        for job in emulator.jobs()
        for record in job.files
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("path", PATHS)
async def test_changed_once_is_resent_and_lands_byte_exact(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Torn once mid-read: that POST is cut, the batch resent with the file as it is now; the
    server holds the file's new bytes, it was accepted once, and no torn copy was accepted."""
    src, files = tree(tmp_path / "src", path)
    victim = str(src / "f3.jpg")
    helpers: list[HelperReader] = []
    tear(path, monkeypatch, victim, 1, helpers, tmp_path)
    report = await upload(emulator, src, path)
    final = Path(victim).read_bytes()
    assert final == bytes([1]) * len(files["f3.jpg"])  # the tear did happen
    files["f3.jpg"] = final
    assert report.exit_code == 0 and report.failures == ()
    assert report.files_uploaded == len(files)
    assert emulator.stored_files() == files
    assert received(emulator) == sorted((name, sha(data)) for name, data in files.items())
    if path == "read_helper":  # the helper wrote groups into the connection itself
        assert helpers and helpers[0].direct_groups > 0


@pytest.mark.parametrize("path", PATHS)
async def test_keeps_changing_fails_alone(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Torn on every read: sent three times, every POST cut; the file fails alone with
    "changed while being sent", the seven others land, and nothing of it was accepted."""
    src, files = tree(tmp_path / "src", path)
    victim = str(src / "f3.jpg")
    tear(path, monkeypatch, victim, KEEPS_CHANGING, [], tmp_path)
    report = await upload(emulator, src, path)
    assert Path(victim).read_bytes()[0] == 3  # read (and torn) three times, no more
    [failure] = report.failures
    assert failure.path == victim and "changed while being sent" in failure.reason
    del files["f3.jpg"]
    assert report.files_uploaded == len(files) and report.exit_code == 1
    assert emulator.stored_files() == files
    assert received(emulator) == sorted((name, sha(data)) for name, data in files.items())
