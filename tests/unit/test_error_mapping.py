"""The one seam where aiohttp's and the socket's exceptions become bulkup's
(:func:`~bulkup.transport.client.mapped_errors`): each class to its bulkup error, the URL named,
retryable or fatal as the error tree says, and a proxy's credentials never in a message or a
chained cause."""

from __future__ import annotations

import errno
import ssl
import traceback
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkup.config.proxy import parse_proxy
from bulkup.errors import (
    BulkupError,
    CertificateError,
    ConnectError,
    ProxyRefused,
    RequestTimeout,
    SourceChangedWhileSent,
    TransportError,
    is_fatal,
    is_retryable,
)
from bulkup.transport.client import mapped_errors

URL_ = "https://s7.example.com/scene7/UploadFile"
SECRET = "pr0xy-s3cret"
PROXY = parse_proxy(f"http://bob:{SECRET}@127.0.0.1:3128", "https_proxy")


def key() -> ConnectionKey:
    return ConnectionKey("s7.example.com", 443, True, True, None, None, None, None)


def request_info() -> RequestInfo:
    return RequestInfo(URL(URL_), "POST", CIMultiDictProxy(CIMultiDict()), URL(URL_))


def mapped(exc: BaseException, **kwargs: Any) -> BaseException:
    """What ``exc`` becomes when raised inside the seam."""
    with pytest.raises(BaseException) as caught, mapped_errors(URL_, **kwargs):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    ("raised", "kind", "words"),
    [
        (TimeoutError(), RequestTimeout, "timed out talking to"),
        (aiohttp.ServerTimeoutError("read timed out"), RequestTimeout, "timed out talking to"),
        (
            aiohttp.ClientOSError(errno.ETIMEDOUT, "Connection timed out"),
            RequestTimeout,
            "stall_timeout_s",
        ),
        (
            aiohttp.ClientConnectorError(
                key(), ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
            ),
            ConnectError,
            "cannot connect to https://s7.example.com/scene7/UploadFile: Connection refused",
        ),
        (
            aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
            TransportError,
            "failed: ClientOSError",
        ),
        (aiohttp.ServerDisconnectedError(), TransportError, "failed: ServerDisconnectedError"),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            TransportError,
            "failed: ClientPayloadError",
        ),
        (
            ConnectionResetError(errno.ECONNRESET, "reset"),
            TransportError,
            "failed: ConnectionResetError",
        ),
        (OSError(errno.EPIPE, "Broken pipe"), TransportError, "failed: BrokenPipeError"),
    ],
)
def test_each_transport_failure_to_its_bulkup_error(
    raised: BaseException, kind: type[BulkupError], words: str
) -> None:
    """Each is retryable, never fatal, names the URL, and keeps aiohttp's error as its cause
    (for the debug log)."""
    got = mapped(raised)
    assert type(got) is kind
    assert words in str(got) and URL_ in str(got)
    assert is_retryable(got) and not is_fatal(got)
    assert got.__cause__ is raised


def test_an_untrusted_certificate_is_fatal_and_says_what_to_do() -> None:
    problem = ssl.SSLCertVerificationError(1, "self-signed certificate")
    got = mapped(aiohttp.ClientConnectorCertificateError(key(), problem))
    assert isinstance(got, CertificateError) and is_fatal(got) and not is_retryable(got)
    assert "not trusted" in str(got) and "--ca-bundle" in str(got) and URL_ in str(got)


@pytest.mark.parametrize("status", [403, 407])
def test_a_proxy_that_refuses_is_fatal_without_its_credentials(status: int) -> None:
    """407 and 403 from the proxy: ProxyRefused, fatal; the proxy shown without its
    password, and aiohttp's error (whose headers may carry it) not chained."""
    raised = aiohttp.ClientHttpProxyError(
        request_info(), (), status=status, message=f"Proxy-Authorization bob:{SECRET}"
    )
    assert SECRET in str(raised)  # what must not get through
    got = mapped(raised, proxy=PROXY)
    assert isinstance(got, ProxyRefused) and is_fatal(got)
    assert f"HTTP {status}" in str(got) and "127.0.0.1:3128" in str(got)
    assert got.__cause__ is None and got.__suppress_context__
    assert SECRET not in "".join(traceback.format_exception(got))


def test_a_proxy_that_fails_otherwise_is_retried_without_its_credentials() -> None:
    raised = aiohttp.ClientHttpProxyError(
        request_info(), (), status=502, message=f"bad gateway bob:{SECRET}"
    )
    got = mapped(raised, proxy=PROXY)
    assert type(got) is TransportError and is_retryable(got)
    assert "HTTP 502" in str(got) and got.__cause__ is None
    assert SECRET not in "".join(traceback.format_exception(got))


def test_a_proxy_that_cannot_be_reached_is_named_without_its_credentials() -> None:
    raised = aiohttp.ClientProxyConnectionError(
        key(), ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    )
    got = mapped(raised, proxy=PROXY)
    assert isinstance(got, ConnectError) and is_retryable(got)
    assert "cannot connect to the proxy http://127.0.0.1:3128 (from https_proxy)" in str(got)
    assert "Connection refused" in str(got) and SECRET not in str(got)


def test_a_bulkup_error_from_the_body_comes_out_as_itself() -> None:
    """aiohttp wraps what the body raised while being written; the file's own error (here
    two levels down) is what the sender needs to see."""
    changed = SourceChangedWhileSent("/src/a.jpg", "size changed")
    os_error = OSError("write failed")
    os_error.__cause__ = changed
    wrapped = aiohttp.ClientOSError(errno.EIO, "cannot write the body")
    wrapped.__cause__ = os_error
    assert mapped(wrapped) is changed


def test_other_exceptions_pass_unchanged() -> None:
    """Only aiohttp and socket errors are translated: a bug stays a bug."""
    bug = KeyError("oops")
    assert mapped(bug) is bug
    already = TransportError("already ours")
    assert mapped(already) is already
