"""The pushback knobs as flags and ``[serve]`` keys: parsed, checked, off by default."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bulkup.emulator.cli import add_serve_arguments, run_serve
from bulkup.emulator.settings import SettingsError, build_settings, parse_rate


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100000", 100_000),
        ("512k", 512 * 1024),
        ("50M", 50 * 1024**2),
        ("1.5G", 3 * 1024**3 // 2),
        ("50MB", 50 * 1024**2),
        ("50MiB/s", 50 * 1024**2),
        (" 2m ", 2 * 1024**2),
    ],
)
def test_parse_rate(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-5M", "5T", "5 M M", "1e6"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(SettingsError, match="--ingest-rate"):
        parse_rate(text)


def test_off_by_default(tmp_path: Path) -> None:
    settings = build_settings(root=tmp_path)
    assert (
        settings.max_inflight,
        settings.retry_after_s,
        settings.pushback_status,
        settings.response_delay_ms,
        settings.ingest_rate,
    ) == (0, 1, 503, 0.0, 0)


def test_toml_keys(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(
        "[serve]\nmax_inflight = 4\nretry_after_s = 3\npushback_status = 429\n"
        'response_delay_ms = 50\ningest_rate = "512k"\n',
        encoding="utf-8",
    )
    settings = build_settings(root=tmp_path, config=config)
    assert (
        settings.max_inflight,
        settings.retry_after_s,
        settings.pushback_status,
        settings.response_delay_ms,
        settings.ingest_rate,
    ) == (4, 3, 429, 50.0, 524_288)
    config.write_text("[serve]\ningest_rate = 1000\n", encoding="utf-8")
    assert build_settings(root=tmp_path, config=config).ingest_rate == 1000
    flags = build_settings(root=tmp_path, config=config, ingest_rate=2000, max_inflight=1)
    assert (flags.ingest_rate, flags.max_inflight) == (2000, 1)  # flags win over the file


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("max_inflight = -1", "--max-inflight"),
        ("retry_after_s = -1", "--retry-after-s"),
        ("pushback_status = 500", "--pushback-status"),
        ("response_delay_ms = -5", "--response-delay-ms"),
        ("response_delay_ms = nan", "--response-delay-ms"),
        ('ingest_rate = "lots"', "ingest_rate"),
        ("ingest_rate = true", "ingest_rate"),
        ("max_inflight = 1.5", "max_inflight"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, toml: str, named: str) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(f"[serve]\n{toml}\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=named):
        build_settings(root=tmp_path, config=config)


def test_flags_reach_the_settings() -> None:
    args = serve_args(
        "--max-inflight",
        "4",
        "--retry-after-s",
        "2",
        "--pushback-status",
        "429",
        "--response-delay-ms",
        "50",
        "--ingest-rate",
        "50M",
    )
    assert (
        args.max_inflight,
        args.retry_after_s,
        args.pushback_status,
        args.response_delay_ms,
        args.ingest_rate,
    ) == (4, 2, 429, 50.0, "50M")


@pytest.mark.parametrize(
    "argv", [("--ingest-rate", "soon"), ("--max-inflight", "-2"), ("--response-delay-ms", "-1")]
)
def test_bad_flag_exits_2_before_serving(
    tmp_path: Path, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_serve(serve_args("--root", str(tmp_path / "r"), *argv))
    assert code == 2
    assert argv[0] in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
