"""The HTTP side of the client: one ``aiohttp.ClientSession`` per job, and the one place where
aiohttp's exceptions become bulkup's.

One session with one connector carries every POST of a job, from one source address: IPv4
unless configured otherwise and optionally bound to ``source_ip`` (spec D-10), so the servlet's
same-IP rule holds. TLS is verified by default.

aiohttp has no timeout while a body is being sent: a server that stops reading would hold a POST
forever once the socket's buffers are full. Each connection is made with ``TCP_USER_TIMEOUT`` set
to ``stall_timeout_s`` (Linux), so the kernel drops a connection whose sent bytes go
unacknowledged, or whose peer keeps a zero window, for that long; the POST then fails with
:class:`~bulkup.errors.RequestTimeout` and is retried.

aiohttp's read timeout restarts with every byte, so a server that trickles its answer would
hold a POST for ever: every request also has a deadline for the whole exchange, from its first
byte to the end of the answer (:func:`post_deadline_s`). Redirects are never followed: a 3xx
is :class:`~bulkup.errors.RedirectRefused`, and the body (credentials included) goes nowhere
but the configured URL.

Progress is counted here, in one place: :meth:`UploadClient.post` keeps the run's
``posts_in_flight`` and hands the body the run's :class:`~bulkup.stats.Stats` to count the bytes
it writes (``bytes_sent``).

The client also decides how a body's bytes travel, so nothing above it knows: it hands each body
the run's small-file reader (the read helper on plain HTTP, started with the first POST and
stopped with the client; in process over HTTPS, see :func:`small_file_reader`) and the run's
bandwidth limit, and takes one token of the run's POST limit before each POST
(:mod:`bulkup.transport.limits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

import aiohttp
import structlog
import yarl

from bulkup import __version__
from bulkup.config.model import UploadConfig
from bulkup.config.proxy import Proxy, proxy_for
from bulkup.errors import (
    BulkupError,
    CertificateError,
    ConnectError,
    ProtocolError,
    ProxyRefused,
    RedirectRefused,
    RequestTimeout,
    TransportError,
)
from bulkup.protocol import MAX_RESPONSE_BYTES, UploadPostReturn, parse_upload_response
from bulkup.protocol.soap import MAX_SOAP_RESPONSE_BYTES, parse_soap_response
from bulkup.stats import Stats
from bulkup.transport.body import BatchBody
from bulkup.transport.limits import BandwidthLimit, PostLimit, bandwidth_limit, post_limit
from bulkup.transport.reader import HelperReader, InProcessReader, SmallFileReader

log = structlog.get_logger("bulkup.transport.client")
USER_AGENT = f"bulkup/{__version__}"
POST_MIN_RATE = 32 * 1024
"""Bytes per second a POST's body is given at least when its deadline is not configured:
256 kbit/s, a slow link shared by several POSTs. 16 MiB then has 512 s on top of
``read_timeout_s``."""
_FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6, "any": socket.AF_UNSPEC}


@contextlib.contextmanager
def mapped_errors(url: str, proxy: Proxy | None = None) -> Iterator[None]:
    """Translate aiohttp and socket errors into the bulkup tree (the only such seam).

    aiohttp wraps what a body raises while it is written (``ClientConnectionError``, or
    ``ClientOSError`` for an ``OSError``, with the body's exception as ``__cause__``): a bulkup
    error found there (a file that changed, the read helper lost) is raised as itself."""
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:
        raised_by_body = _bulkup_cause(exc)
        if raised_by_body is not None:
            raise raised_by_body from None
        # a proxy's answer is not chained: its headers may carry the proxy's credentials
        hidden = isinstance(exc, aiohttp.ClientHttpProxyError)
        raise _mapped(exc, url, proxy) from (None if hidden else exc)


def _bulkup_cause(exc: BaseException) -> BulkupError | None:
    """The first bulkup error among ``exc``'s causes."""
    cause = exc.__cause__
    for _ in range(8):
        if cause is None or isinstance(cause, BulkupError):
            return cause
        cause = cause.__cause__
    return None


def _mapped(exc: aiohttp.ClientError | OSError, url: str, proxy: Proxy | None) -> BulkupError:
    """The bulkup error an aiohttp or socket error means."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return RequestTimeout(f"timed out talking to {url}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return ConnectError(
            f"cannot connect to the proxy {_shown(proxy)} for {url}: {exc.os_error.strerror or exc}"
        )
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        problem = f"the proxy {_shown(proxy)} answered HTTP {exc.status} for {url}"
        if exc.status in (403, 407):
            return ProxyRefused(
                f"{problem}: it refuses to carry the request (check the proxy URL's user:password)"
            )
        return TransportError(problem)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return CertificateError(
            f"TLS certificate of {url} not trusted "
            f"({exc.certificate_error}); give its CA with --ca-bundle"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect to {url}: {exc.os_error.strerror or exc}")
    if isinstance(exc, aiohttp.ClientOSError) and exc.errno == errno.ETIMEDOUT:
        return RequestTimeout(
            f"{url} stopped taking the upload (connection timed out while sending; stall_timeout_s)"
        )
    return TransportError(f"connection to {url} failed: {type(exc).__name__}: {exc}")


def _shown(proxy: Proxy | None) -> str:
    return f"{proxy.shown()} (from {proxy.source})" if proxy is not None else "(none)"


def post_deadline_s(config: UploadConfig, body_bytes: int) -> float:
    """The longest one request may take, first byte to the end of its answer: the configured
    ``post_timeout_s``, else ``read_timeout_s`` plus the body at :data:`POST_MIN_RATE`."""
    if config.post_timeout_s is not None:
        return config.post_timeout_s
    return config.read_timeout_s + body_bytes / POST_MIN_RATE


@contextlib.asynccontextmanager
async def deadline(url: str, seconds: float) -> AsyncIterator[None]:
    """Raise :class:`RequestTimeout` when the request inside takes longer than ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise RequestTimeout(
            f"{url} did not finish the request within its deadline of "
            f"{seconds:g} s (post_timeout_s)"
        ) from exc


def refuse_redirect(url: str, resp: aiohttp.ClientResponse) -> None:
    """A 3xx answer is never followed; it names the host it pointed to."""
    if 300 <= resp.status <= 399:
        location = resp.headers.get("Location")
        host = None
        if location is not None:
            target = yarl.URL(location)
            host = target.host if target.is_absolute() else "the same host"
        raise RedirectRefused(url, resp.status, host)


def ssl_context(config: UploadConfig) -> ssl.SSLContext | bool:
    """Verified TLS by default (the system's CA bundle); a CA bundle if given; ``insecure``
    turns checks off. Never aiohttp's own default context (see :mod:`bulkup.cli.runtime`)."""
    if config.insecure:
        return False
    if config.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    return ssl.create_default_context()


def stall_limited_sockets(stall_timeout_s: float) -> Callable[[Any], socket.socket]:
    """A socket factory for aiohttp: TCP sockets that give up on a peer that has taken no
    bytes for ``stall_timeout_s`` (``TCP_USER_TIMEOUT``, where the platform has it)."""
    milliseconds = max(1, round(stall_timeout_s * 1000))
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)

    def make(addr_info: Any) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family=family, type=kind, proto=proto)
        if user_timeout is not None:
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, milliseconds)
        return sock

    return make


def small_file_reader(config: UploadConfig, url: str) -> SmallFileReader:
    """How a run reads its small files: the read helper on plain HTTP, where it writes them
    into the connection itself; in process over HTTPS, where every byte passes through the
    uploader to be encrypted anyway and the helper was measured level at best (100,000 ×
    16 KiB over TLS, benchmarks/README.md), or when ``read_helper`` is off."""
    if config.read_helper and url.startswith("http:"):
        return HelperReader()
    return InProcessReader()


class UploadClient:
    """Sends prepared bodies to the servlet and classifies the answers (spec §4.5)."""

    def __init__(
        self,
        config: UploadConfig,
        url: str,
        environ: Mapping[str, str] = os.environ,
        *,
        stats: Stats | None = None,
        bwlimit: BandwidthLimit | None = None,
        tpslimit: PostLimit | None = None,
        reader: SmallFileReader | None = None,
    ) -> None:
        """``bwlimit``, ``tpslimit`` and ``reader`` default to what ``config`` asks for."""
        self._config = config
        self._stats = stats if stats is not None else Stats()
        self.url = url
        self._session: aiohttp.ClientSession | None = None
        self._environ = environ
        self._proxies: dict[str, Proxy | None] = {}
        self._bwlimit = bwlimit if bwlimit is not None else bandwidth_limit(config)
        self._tpslimit = tpslimit if tpslimit is not None else post_limit(config)
        self.reader = reader if reader is not None else small_file_reader(config, url)
        self._reader_started: asyncio.Task[None] | None = None

    def _proxy(self, url: str) -> Proxy | None:
        """The proxy for ``url`` (decided once per URL; said once in the log)."""
        if url not in self._proxies:
            proxy = self._proxies[url] = proxy_for(url, self._config.proxy, self._environ)
            if proxy is not None:
                log.info("proxy_used", url=url, proxy=proxy.shown(), source=proxy.source)
        return self._proxies[url]

    async def __aenter__(self) -> UploadClient:
        config = self._config
        local_addr = (config.source_ip, 0) if config.source_ip else None
        connector = aiohttp.TCPConnector(
            limit=config.concurrency_cap + 2,
            family=_FAMILIES[config.address_family],
            local_addr=local_addr,
            ssl=ssl_context(config) if self.url.startswith("https") else True,
            ttl_dns_cache=None,
            enable_cleanup_closed=True,
            socket_factory=stall_limited_sockets(config.stall_timeout_s),
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout_s, sock_read=config.read_timeout_s
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            await self.reader.close()

    async def _started_reader(self) -> SmallFileReader:
        """The run's reader, started with the first POST (once; the read helper starts in
        about 10 ms, and a run with nothing to send never starts it)."""
        if self._reader_started is None:
            self._reader_started = asyncio.ensure_future(self.reader.start())
        await asyncio.shield(self._reader_started)
        return self.reader

    async def post(self, body: BatchBody) -> UploadPostReturn:
        """POST one body; returns the handle or raises a classified error."""
        assert self._session is not None, "use 'async with UploadClient(...)'"
        headers = {"Content-Type": body.content_type}
        if self._tpslimit is not None:
            await self._tpslimit.take()
        body.reader = await self._started_reader()
        body.pace = self._bwlimit
        stats = body.meter = self._stats
        stats.posts_in_flight += 1
        try:
            async with deadline(self.url, post_deadline_s(self._config, body.size or 0)):
                return await self._post(body, headers)
        finally:
            stats.posts_in_flight -= 1

    async def _post(self, body: BatchBody, headers: dict[str, str]) -> UploadPostReturn:
        assert self._session is not None
        proxy = self._proxy(self.url)
        with mapped_errors(self.url, proxy):
            async with self._session.post(
                self.url, data=body, headers=headers, allow_redirects=False, **_via(proxy)
            ) as resp:
                refuse_redirect(self.url, resp)
                raw = await _read_bounded(resp)
                return parse_upload_response(
                    raw,
                    http_status=resp.status,
                    content_encoding=resp.headers.get("Content-Encoding"),
                    retry_after=resp.headers.get("Retry-After"),
                )

    async def soap(self, url: str, operation: str, envelope: bytes) -> dict[str, Any]:
        """One SOAP call to the monitoring API; returns the ``<operation>Return`` element."""
        assert self._session is not None, "use 'async with UploadClient(...)'"
        headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": operation}
        session, proxy = self._session, self._proxy(url)
        async with deadline(url, post_deadline_s(self._config, len(envelope))):
            with mapped_errors(url, proxy):
                async with session.post(
                    url, data=envelope, headers=headers, allow_redirects=False, **_via(proxy)
                ) as resp:
                    refuse_redirect(url, resp)
                    raw = await _read_bounded(resp, MAX_SOAP_RESPONSE_BYTES)
                    return parse_soap_response(
                        raw,
                        operation=operation,
                        http_status=resp.status,
                        content_encoding=resp.headers.get("Content-Encoding"),
                    )


def _via(proxy: Proxy | None) -> dict[str, Any]:
    """aiohttp's request arguments for ``proxy``."""
    if proxy is None:
        return {}
    return {"proxy": proxy.url, "proxy_headers": dict(proxy.headers) or None}


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """At most ``limit`` bytes of the body; a longer one is cut (and the connection closed)."""
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            resp.close()
            if 200 <= resp.status < 300:
                raise ProtocolError(f"response larger than {limit} bytes")
            break
    return bytes(data)
