"""Which HTTP proxy a request goes through, decided as curl decides it.

``proxy`` in the config wins: a URL, or ``"direct"`` for none (``--no-proxy``). Otherwise the
environment: ``https_proxy`` / ``HTTPS_PROXY`` for an https URL, ``http_proxy`` for an http one
(lower case only, as curl: a CGI server sets ``HTTP_PROXY`` from a request header, "httpoxy"),
then ``all_proxy`` / ``ALL_PROXY``; ``no_proxy`` / ``NO_PROXY`` lists the hosts that go direct
(``*`` for all; a name matches itself and every name below it, ``.example.com`` likewise; an
address matches itself; ``10.0.0.0/8`` matches a network).

The proxy must speak HTTP (``http://host:port``): HTTPS requests are tunnelled through it with
``CONNECT``. Its ``user:password@`` becomes a ``Proxy-Authorization`` header and never appears
in a log line or message (:meth:`Proxy.shown`). A proxy changes the source address the servlet
sees: it is the proxy's egress address, and the whole job must leave from one (spec D-10).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from bulkup.errors import ConfigError

DIRECT = "direct"
CURL_DEFAULT_PROXY_PORT = 1080


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy to send requests through: its URL without credentials, and the header that
    carries them (if any)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    source: str = "proxy"

    def shown(self) -> str:
        """The proxy as it may be logged: scheme, host and port only."""
        return self.url


def proxy_for(url: str, configured: str | None, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy for requests to ``url``, or None to connect directly."""
    if configured is not None:
        return None if configured == DIRECT else parse_proxy(configured, "proxy")
    scheme, host = _scheme_and_host(url)
    if _bypassed(host, _env(environ, "no_proxy", "NO_PROXY")):
        return None
    names = ("https_proxy", "HTTPS_PROXY") if scheme == "https" else ("http_proxy",)
    for name in (*names, "all_proxy", "ALL_PROXY"):
        value = environ.get(name, "").strip()
        if value:
            return parse_proxy(value, name)
    return None


def parse_proxy(value: str, source: str) -> Proxy:
    """A proxy URL (``http://[user:password@]host[:port]``; no scheme means http, no port
    1080, as in curl)."""
    text = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"{source}: not a proxy URL (http://host:port)") from None
    if parts.scheme != "http" or not host:
        shown = f"{parts.scheme}://{host}" if host else "the value"
        raise ConfigError(
            f"{source}: {shown} is not an HTTP proxy (http://host:port): bulkup "
            "speaks to proxies over HTTP, tunnelling HTTPS with CONNECT"
        )
    netloc = f"[{host}]" if ":" in host else host
    clean = f"http://{netloc}:{port or CURL_DEFAULT_PROXY_PORT}"
    headers = {}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(url=clean, headers=headers, source=source)


def _env(environ: Mapping[str, str], *names: str) -> str:
    return next((environ[name] for name in names if environ.get(name)), "")


def _scheme_and_host(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower()


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``host`` is in a ``no_proxy`` list."""
    entries = [e.strip().lower() for e in no_proxy.replace(" ", ",").split(",") if e.strip()]
    return any(_matches(host, entry) for entry in entries)


def _matches(host: str, entry: str) -> bool:
    if entry == "*":
        return True
    address = _address(host)
    if address is not None:
        try:
            return address in ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            return False
    name = entry.lstrip(".")
    return host == name or host.endswith("." + name)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
