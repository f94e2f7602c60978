"""Reading one UploadFile POST body part by part: XML parts kept (bounded), file parts staged.

File bytes go to a staging file as they arrive, hashed and counted on the way; nothing holds a
whole file or body in memory. Once a fault is certain the rest of the body is read and dropped
(up to ``drain_limit_bytes``), so the client gets its answer on a healthy connection.

Memory per POST is bounded whatever the body holds: at most ``max_parts`` parts are recorded
(one more is a 30001 fault, and the records kept so far are dropped), and every byte read while
no file is being kept (before the first file part, or once a fault is certain) counts toward
the drain limit, part headers and delimiters included. The caller owns the staged files and
must call :meth:`ReceivedPost.discard` in a ``finally``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bulkup.emulator.multipart import DONE, PART_END, Event, MultipartParser, PartHeaders

# A real auth or uploadParams part is a few KiB; 1,000 connections x 2 parts x 48 KiB stay
# well inside the 200 MiB rule 9 allows at the connection cap.
MAX_XML_PART_BYTES = 48 * 1024
XML_PARTS = ("auth", "uploadParams")
# Staging names: a counter (uuid4 cost a getrandom call and a Path per file), made unique per
# process and run by a random prefix; O_EXCL refuses a clash rather than write into another file.
_STAGING_NAME = f"{os.getpid()}-{secrets.token_hex(4)}-"
_STAGING_SEQ = itertools.count(1)

Chunk = bytes | bytearray | memoryview


@dataclass(slots=True)
class StagedFile:
    """One file part: where its bytes were staged, its size and its digest."""

    part_name: str
    filename: str | None
    temp_path: str | None  # None when the bytes are not kept, or once handed on
    size: int = 0
    sha256: str = ""
    _hash: Any = field(default=None, repr=False)  # a sha256 only while the bytes are kept
    _fd: int | None = field(default=None, repr=False)

    def write(self, chunk: Chunk) -> None:
        self.size += len(chunk)
        if self._fd is None:
            return
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def finish(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.sha256 = self._hash.hexdigest()
            self._hash = None

    def stop_keeping(self) -> None:
        """Drop what was staged; further bytes are only counted."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.remove()

    def remove(self) -> None:
        """Delete the staging file if it is still there."""
        if self.temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path)
            self.temp_path = None


@dataclass(slots=True)
class XmlPart:
    """One of the two XML parts, bounded in size."""

    raw: bytearray = field(default_factory=bytearray)
    charset: str | None = None
    too_large: bool = False

    def write(self, chunk: Chunk) -> None:
        if self.too_large:
            return
        if len(chunk) > MAX_XML_PART_BYTES - len(self.raw):
            self.too_large = True  # a 30003 fault: nothing of it is read, so nothing is kept
            self.raw = bytearray()
            return
        self.raw += chunk


@dataclass(slots=True)
class ReceivedPost:
    """Everything one POST carried, once its body has been read."""

    xml: dict[str, XmlPart] = field(default_factory=dict)
    files: list[StagedFile] = field(default_factory=list)
    duplicate_part: str | None = None
    file_before_xml: bool = False
    oversize: StagedFile | None = None
    framing_error: str | None = None
    drained_past_limit: bool = False
    too_many_parts: bool = False

    def discard(self) -> None:
        """Remove every staging file not moved into place."""
        for staged in self.files:
            staged.stop_keeping()


Verdict = Callable[["ReceivedPost"], bool]
# Called as each body chunk arrives (the body idle watchdog).
Touch = Callable[[], None]
# Awaited with each chunk's size once it is handled (the intake rate, ``ingest_rate``).
Pace = Callable[[int], Awaitable[None]]


class BodyReader:
    """Drives the parser over a request body and routes each part."""

    def __init__(
        self,
        *,
        staging_dir: Path,
        max_file_size: int,
        drain_limit_bytes: int,
        max_parts: int,
        strict_part_order: bool,
        keep_files: Verdict,
    ) -> None:
        self._staging_prefix = os.path.join(staging_dir, _STAGING_NAME)
        self._max_file_size = max_file_size
        self._drain_limit = drain_limit_bytes
        self._max_parts = max_parts
        self._parts = 0
        self._strict = strict_part_order
        self._keep_files_verdict = keep_files
        self._keeping: bool | None = None
        self._dropped_bytes = 0
        self.post = ReceivedPost()
        self._current: XmlPart | StagedFile | None = None

    async def read(
        self,
        request: web.Request,
        boundary: str,
        touch: Touch | None = None,
        pace: Pace | None = None,
    ) -> ReceivedPost:
        """Read the whole body (or up to the drain limit once a fault is certain); ``touch``
        is called as each chunk arrives, ``pace`` awaited with its size once it is handled
        (and ``touch`` called again: a paced wait is the server's, not the client's)."""
        parser = MultipartParser(boundary)
        try:
            async for chunk in request.content.iter_any():
                if touch is not None:
                    touch()
                size = len(chunk)
                if self._keeping is not True:
                    self._dropped_bytes += size
                self._feed(parser, chunk)
                del chunk  # a stalled body must not hold its last chunk while we wait
                if pace is not None:
                    await pace(size)
                    if touch is not None:
                        touch()
                if self._past_drain_limit():
                    self.post.drained_past_limit = True
                    return self.post
            parser.close()
        except ValueError as exc:
            self.post.framing_error = str(exc)
        return self.post

    def _feed(self, parser: MultipartParser, chunk: bytes) -> None:
        for event in parser.feed(chunk):
            self._on_event(event)

    def _past_drain_limit(self) -> bool:
        return self._keeping is not True and self._dropped_bytes > self._drain_limit

    def _on_event(self, event: Event) -> None:
        if isinstance(event, (bytes, memoryview)):
            self._on_data(event)
        elif isinstance(event, PartHeaders):
            self._on_part(event)
        elif event is PART_END:
            self._on_part_end()
        elif event is DONE:
            self._current = None

    def _on_data(self, chunk: Chunk) -> None:
        current = self._current
        if current is not None:
            current.write(chunk)
            if isinstance(current, StagedFile) and current.size > self._max_file_size:
                self._on_oversize(current)

    def _on_part(self, headers: PartHeaders) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            self._on_too_many_parts()
            return
        name = headers.name or ""
        if name in XML_PARTS:
            if name in self.post.xml:
                self.post.duplicate_part = self.post.duplicate_part or name
                self._keeping = False  # 30001 is certain: from now on only drained
                self.post.discard()
                self._current = XmlPart()  # read and ignored
                return
            self._current = self.post.xml[name] = XmlPart(charset=headers.charset)
            return
        self._current = self._begin_file(name, headers.filename)

    def _begin_file(self, name: str, filename: str | None) -> StagedFile:
        if self._keeping is None:
            self._keeping = self._first_file_verdict()
        if not self._keeping:
            staged = StagedFile(part_name=name, filename=filename, temp_path=None)
        else:
            path = f"{self._staging_prefix}{next(_STAGING_SEQ)}"
            staged = StagedFile(
                part_name=name, filename=filename, temp_path=path, _hash=hashlib.sha256()
            )
            staged._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.post.files.append(staged)
        return staged

    def _first_file_verdict(self) -> bool:
        if not all(part in self.post.xml for part in XML_PARTS):
            self.post.file_before_xml = True
            return not self._strict
        return self._keep_files_verdict(self.post)

    def _on_part_end(self) -> None:
        if isinstance(self._current, StagedFile):
            self._current.finish()
        self._current = None

    def _on_too_many_parts(self) -> None:
        """One part too many: a 30001 fault; every record so far is dropped, the rest drained."""
        if not self.post.too_many_parts:
            self.post.too_many_parts = True
            self._keeping = False
            self.post.discard()
            self.post.files.clear()
            self.post.oversize = None
        self._current = None

    def _on_oversize(self, staged: StagedFile) -> None:
        if self.post.oversize is None:
            self.post.oversize = staged
        self._keeping = False
        self.post.discard()
