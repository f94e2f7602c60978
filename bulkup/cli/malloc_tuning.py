"""glibc's allocator tuned for an upload's megabyte buffers (Linux with glibc only).

Every chunk of a large file read in chunks (over TLS, on uvloop, and the mid-sized files of a
mixed tree) is a fresh buffer of about ``chunk_size`` (1 MiB), and so is every chunk of
ciphertext the TLS transport hands to the socket. With glibc's defaults such buffers are
``mmap``-ed, or carved from the top of a heap that is given back to the kernel as soon as
128 KiB are free there, so nearly every one came as new pages that the kernel zeroed and
faulted in: about 7% of the uploader's CPU in a ``perf`` profile of 200 × 4 MiB over TLS.
Raising both thresholds keeps freed buffers for the next ones; capping the arenas at two keeps
each worker thread from holding an arena's worth of its own (without the cap peak RSS grew by
30 MiB, with it by 4-8 MiB). Measured in benchmarks/README.md.

Elsewhere (another C library, another system) :func:`tune_malloc` does nothing.
"""

from __future__ import annotations

import os
import sys

MiB = 1024 * 1024

MMAP_THRESHOLD = 8 * MiB
"""Buffers below this come from the heap and are reused, not mapped afresh (default 128 KiB,
adjusted by glibc up to the largest freed)."""
TRIM_THRESHOLD = 128 * MiB
"""Free memory kept at the top of a heap before it goes back to the kernel (default 128 KiB)."""
ARENA_MAX = 2
"""Heaps shared by all threads (glibc's default: 8 per core)."""

# mallopt() parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc() -> bool:
    """Apply the three settings; True when glibc accepted them all.

    Call it before the upload starts its threads (an arena is chosen when a thread first
    allocates). Does nothing and returns False where the C library is not glibc.
    """
    if not _is_glibc():
        return False
    import ctypes  # here, not at import: about 1.5 ms, and only glibc needs it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_ARENA_MAX, ARENA_MAX),
    )
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


def _is_glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return False
    return version is not None and version.startswith("glibc")
