"""Which proxy a request takes: curl's rules for the environment, the config's word first."""

from __future__ import annotations

import pytest

from bulkup.config.model import UploadConfig
from bulkup.config.proxy import proxy_for
from bulkup.errors import ConfigError

HTTPS = "https://s7sps1ssl.scene7.com/scene7/UploadFile"
HTTP = "http://s7sps1.scene7.com/scene7/UploadFile"


def url_of(url: str, configured: str | None, **environ: str) -> str | None:
    proxy = proxy_for(url, configured, environ)
    return proxy.url if proxy is not None else None


class TestEnvironment:
    @pytest.mark.parametrize(
        ("environ", "expected"),
        [
            ({}, None),
            ({"https_proxy": "http://p:3128"}, "http://p:3128"),
            ({"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
            ({"https_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2"}, "http://a:1"),
            ({"http_proxy": "http://p:3128"}, None),  # an https URL does not take http_proxy
            ({"ALL_PROXY": "http://all:8080"}, "http://all:8080"),
            ({"https_proxy": "http://p:1", "all_proxy": "http://all:2"}, "http://p:1"),
            ({"https_proxy": "p.example"}, "http://p.example:1080"),  # curl's default port
        ],
    )
    def test_https_url(self, environ: dict[str, str], expected: str | None) -> None:
        assert url_of(HTTPS, None, **environ) == expected

    def test_http_url_takes_only_lower_case_http_proxy(self) -> None:
        """HTTP_PROXY can be set by a request header under CGI ("httpoxy"): curl ignores it."""
        assert url_of(HTTP, None, http_proxy="http://p:1") == "http://p:1"
        assert url_of(HTTP, None, HTTP_PROXY="http://p:1") is None
        assert url_of(HTTP, None, HTTPS_PROXY="http://p:1") is None

    @pytest.mark.parametrize(
        ("no_proxy", "bypassed"),
        [
            ("*", True),
            ("scene7.com", True),
            (".scene7.com", True),
            ("example.com,scene7.com", True),
            ("example.com scene7.com", True),
            ("S7SPS1SSL.SCENE7.COM", True),
            ("7.com", False),  # a name matches whole labels only
            ("other.com", False),
            ("", False),
        ],
    )
    def test_no_proxy(self, no_proxy: str, bypassed: bool) -> None:
        got = url_of(HTTPS, None, https_proxy="http://p:1", no_proxy=no_proxy)
        assert (got is None) is bypassed

    @pytest.mark.parametrize(
        ("no_proxy", "bypassed"),
        [
            ("127.0.0.1", True),
            ("127.0.0.0/8", True),
            ("10.0.0.0/8", False),
            ("127.0.0.2", False),
        ],
    )
    def test_no_proxy_addresses(self, no_proxy: str, bypassed: bool) -> None:
        got = url_of("https://127.0.0.1:8443/x", None, https_proxy="http://p:1", NO_PROXY=no_proxy)
        assert (got is None) is bypassed


class TestConfigured:
    def test_configured_proxy_wins_over_environment(self) -> None:
        assert url_of(HTTPS, "http://mine:9", https_proxy="http://env:1") == "http://mine:9"

    def test_direct_ignores_the_environment(self) -> None:
        assert url_of(HTTPS, "direct", https_proxy="http://env:1", ALL_PROXY="http://a:2") is None

    def test_credentials_go_to_a_header_never_to_the_url(self) -> None:
        proxy = proxy_for(HTTPS, "http://alice:s%40cret@p:3128", {})
        assert proxy is not None
        assert proxy.url == "http://p:3128" and "cret" not in repr(proxy)
        assert proxy.headers == {"Proxy-Authorization": "Basic YWxpY2U6c0BjcmV0"}

    @pytest.mark.parametrize("value", ["socks5://p:1080", "https://p:443", "http://"])
    def test_unusable_proxies_are_config_errors_naming_the_source(self, value: str) -> None:
        with pytest.raises(ConfigError, match="^all_proxy: .*http://host:port"):
            proxy_for(HTTPS, None, {"all_proxy": value})

    def test_config_checks_the_proxy_and_never_echoes_it(self) -> None:
        with pytest.raises(ConfigError, match="proxy") as caught:
            UploadConfig(proxy="socks5://alice:pw-canary@p:1080")
        assert "pw-canary" not in str(caught.value)
        assert "pw-canary" not in repr(UploadConfig(proxy="http://alice:pw-canary@p:1"))
