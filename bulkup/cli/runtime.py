"""Importing aiohttp for ``bulkup upload`` without the TLS contexts it builds at import time.

aiohttp (3.10 and later; still so in 3.14.5, ``connector.py``: ``_SSL_CONTEXT_VERIFIED =
_make_ssl_context(True)`` at module level, with no setting to defer it) builds two default TLS
contexts when it is imported, and each loads the system's CA bundle: about 40 ms, on every run,
plain HTTP included (measured with ``python -X importtime``; see benchmarks/README.md; again
with aiohttp 3.14.5, ``import aiohttp`` in a fresh interpreter, medians of 5: 144 ms as is,
112 ms with the swap below). The other ways out are worse: patching
``ssl.create_default_context`` for the import changes a function every library shares, and
importing aiohttp later does not avoid the cost, only moves it. bulkup never uses those
contexts: it passes its own to the connector (:func:`bulkup.transport.client.ssl_context`),
built only for an ``https://`` server. So the command line imports aiohttp with
``SSL_CERT_FILE`` pointing at an empty file for the length of the import, and restores it at
once: the module-level contexts come out with
no CA certificates (useless, so never trusted by mistake), and every context built afterwards
loads the real bundle as usual.

structlog, likewise, is imported without rich (:func:`import_structlog`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any

from bulkup.report import EXIT_INTERRUPTED

CA_FILE_VARIABLE = "SSL_CERT_FILE"


def import_aiohttp() -> None:
    """Import aiohttp (once) without loading the system CA bundle at import time."""
    if "aiohttp" in sys.modules:
        return
    saved = os.environ.get(CA_FILE_VARIABLE)
    os.environ[CA_FILE_VARIABLE] = os.devnull
    try:
        import aiohttp  # noqa: F401
    finally:
        if saved is None:
            del os.environ[CA_FILE_VARIABLE]
        else:
            os.environ[CA_FILE_VARIABLE] = saved


def import_structlog() -> None:
    """Import structlog (once) without rich, which it imports when installed (about 60 ms of
    rich and pygments, for exception formatting bulkup does not use). rich is imported later
    only for the progress display on a terminal (:mod:`bulkup.cli.progress_display`)."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # "not installed" for this import
    try:
        import structlog  # noqa: F401
    finally:
        if sys.modules.get("rich", 0) is None:
            del sys.modules["rich"]


GIL_SWITCH_S = 0.0005
"""How long the event loop's thread may keep the GIL while the journal's or the walker's thread
waits for it (Python's default is 5 ms). A journal receipt waited about 5 ms a batch behind a
busy loop; with 0.5 ms it waits about 3 ms (see benchmarks/README.md)."""


def run_loop(main: Coroutine[Any, Any, int], *, use_uvloop: bool = True) -> int:
    """Run on uvloop when asked and installed, else on asyncio's loop; 130 when cancelled."""
    runner: Any = asyncio.run
    if use_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    try:
        return int(runner(main))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED
