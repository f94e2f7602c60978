"""The read helper: a child process that reads small files whole for the uploader.

Why a process: reading a 16 KiB file costs three system calls (open, read, close), about 20 µs
of one core, and each call gives up and retakes the GIL. Done on the event loop, those reads
are most of an upload of small files; done on a thread, every call contends for the GIL with
the loop. A process of its own reads on the other core and hands the bytes over through a
pipe, a few hundred KiB per write (see ``benchmarks/README.md`` for the measurements).

This file runs as a script (``python -I -S read_helper.py``): standard library only, and it
must never import bulkup, so it starts in about 10 ms.

It answers a group of files with their multipart form parts ready to send (each part's header
as given, the file's bytes, CRLF), so the uploader writes one buffer per group and touches no
file data itself.

Protocol, all integers little-endian:

- request: ``u32`` count, ``u8`` mode, then per file ``u64`` expected size, ``i64`` expected
  ``mtime_ns``, ``u64`` expected inode (0: not checked), ``u32`` path length, ``u32`` part header
  length, the path bytes, the part header bytes;
- reply, one per request: ``u8`` status, ``u32`` index of the file it is about, ``u64``
  payload length, payload. Status ``OK`` carries the parts still to be sent; the others stop at
  the first file that cannot be sent (before any byte of the group went anywhere) and carry a
  UTF-8 reason.

A file is checked once its last byte is read, on the descriptor it was read from (one
``fstat``): a size, ``mtime_ns`` or inode other than the walk's means the bytes may mix old and
new content, and the group is answered ``MODIFIED`` (nothing of it written anywhere).

Mode ``TO_PIPE`` answers with all of the group's parts. Mode ``TO_SOCKET`` (only when started
with ``--fd-channel N``, a Unix datagram socket) first takes a connection's descriptor from that
channel (one datagram with ``SCM_RIGHTS`` per such request, in request order), writes as much of
the parts into it as it takes without waiting (the connection is non-blocking), closes its copy,
and answers with the rest, possibly nothing, for the uploader to send. The bytes of a group of
small files then never pass through the uploader's process: on plain HTTP that was the biggest
cost left on its event loop (the pipe read and the socket write of every byte).

EOF on stdin ends the helper. It ignores SIGINT: a Ctrl-C at the terminal reaches the whole
process group, and the uploader, which finishes the POSTs in flight, still needs its reads.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from typing import BinaryIO

REQUEST = struct.Struct("<IB")
FILE = struct.Struct("<QqQII")
REPLY = struct.Struct("<BIQ")
CRLF = b"\r\n"
OK, VANISHED, CANNOT_OPEN, CHANGED, MODIFIED = 0, 1, 2, 3, 4
TO_PIPE, TO_SOCKET = 0, 1
MAX_IOV = 512
FileRequest = tuple[bytes, int, int, int, bytes]  # path, size, mtime_ns, inode, part header
PIPE_BYTES = 1024 * 1024


def read_whole(path: bytes, size: int, mtime_ns: int, inode: int = 0) -> tuple[int, bytes]:
    """The file's bytes, or a status and reason: one read of size + 1 bytes tells a file that
    grew from one of the expected size; an ``fstat`` after the last byte tells one that was
    rewritten (same size, another ``mtime_ns``) or replaced (another inode; 0: not checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return VANISHED, b"file vanished before it was sent"
    except OSError as exc:
        return CANNOT_OPEN, f"cannot open: {exc.strerror or exc}".encode()
    try:
        data = os.read(fd, size + 1)
        while len(data) < size:
            more = os.read(fd, size + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) != size:
            now = "more" if len(data) > size else str(len(data))
            return CHANGED, f"size changed from {size} to {now} bytes since the walk".encode()
        st = os.fstat(fd)
    except OSError as exc:
        return CANNOT_OPEN, f"cannot read: {exc.strerror or exc}".encode()
    finally:
        os.close(fd)
    if st.st_mtime_ns == mtime_ns and st.st_size == size and (st.st_ino == inode or not inode):
        return OK, data  # the common case, without a call (this runs once a file)
    return MODIFIED, changed_since_walk(st, size, mtime_ns, inode).encode()


def changed_since_walk(st: os.stat_result, size: int, mtime_ns: int, inode: int) -> str:
    """Empty when the file still is what the walk saw, else what changed (for the reason)."""
    if st.st_size == size and st.st_mtime_ns == mtime_ns and (not inode or st.st_ino == inode):
        return ""
    if st.st_ino != inode and inode:
        return "changed while being read: replaced by another file (another inode)"
    if st.st_size != size:
        return f"changed while being read: size {size} -> {st.st_size} bytes"
    return f"changed while being read: mtime_ns {mtime_ns} -> {st.st_mtime_ns}"


def write_all(fd: int, pieces: Sequence[bytes | memoryview]) -> None:
    """Write every piece, in order, with as few system calls as the kernel allows."""
    views = [memoryview(p) for p in pieces if p]
    while views:
        views = _after(views, os.writev(fd, views[:MAX_IOV]))


def read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def serve(requests: BinaryIO, out_fd: int, fd_channel: socket.socket | None = None) -> None:
    """Answer requests until stdin ends."""
    while (head := read_exactly(requests, REQUEST.size)) is not None:
        count, mode = REQUEST.unpack(head)
        files = [read_file_request(requests) for _ in range(count)]
        if any(f is None for f in files):
            return
        reply = answer([f for f in files if f is not None])
        if mode != TO_SOCKET:
            write_all(out_fd, reply)
        elif fd_channel is not None:
            write_all(out_fd, send_directly(reply, receive_fd(fd_channel)))
        else:
            return  # a request this helper was not started for: stop answering


def read_file_request(requests: BinaryIO) -> FileRequest | None:
    head = read_exactly(requests, FILE.size)
    if head is None:
        return None
    size, mtime_ns, inode, path_length, header_length = FILE.unpack(head)
    path = read_exactly(requests, path_length)
    header = read_exactly(requests, header_length)
    return None if path is None or header is None else (path, size, mtime_ns, inode, header)


def answer(files: list[FileRequest]) -> list[bytes]:
    """The reply to one request: every part, or why the first bad file cannot be sent."""
    parts: list[bytes] = []
    total = 0
    for index, (path, size, mtime_ns, inode, header) in enumerate(files):
        status, data = read_whole(path, size, mtime_ns, inode)
        if status != OK:
            return [REPLY.pack(status, index, len(data)), data]
        parts += (header, data, CRLF)
        total += len(header) + size + len(CRLF)
    return [REPLY.pack(OK, 0, total), *parts]


def receive_fd(channel: socket.socket) -> int:
    """The descriptor of the next datagram on the channel (blocking)."""
    _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    if not fds:
        raise EOFError("no descriptor with the datagram")
    return fds[0]


def send_directly(reply: list[bytes], fd: int) -> list[bytes | memoryview]:
    """Write what the connection takes now of an OK reply's parts; the reply for the rest.

    A failed reply (a bad file) sends nothing. A full or failed connection stops the writing:
    the uploader sends the rest and meets the same error, if any, itself.
    """
    try:
        status, index, length = REPLY.unpack(reply[0])
        if status != OK:
            return list(reply)
        views = [memoryview(p) for p in reply[1:] if p]
        while views:
            try:
                written = os.writev(fd, views[:MAX_IOV])
            except OSError:  # BlockingIOError (full) or a broken connection
                break
            length -= written
            views = _after(views, written)
        return [REPLY.pack(OK, 0, length), *views]
    finally:
        os.close(fd)


def _after(views: list[memoryview], written: int) -> list[memoryview]:
    """``views`` less their first ``written`` bytes."""
    while written and views:
        if written >= len(views[0]):
            written -= len(views.pop(0))
        else:
            views[0] = views[0][written:]
            written = 0
    return views


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # a smaller pipe only costs more wake-ups


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _grow_pipe(1)
    fd_channel = None
    if argv[:1] == ["--fd-channel"]:
        fd_channel = socket.socket(fileno=int(argv[1]))
    try:
        serve(sys.stdin.buffer, 1, fd_channel)
    except (BrokenPipeError, EOFError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
