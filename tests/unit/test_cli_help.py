"""Every flag of every command says what it does; completion scripts come from the parser."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

import pytest

from bulkup.cli.main import build_parser


def flags_without_help(parser: argparse.ArgumentParser, where: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += flags_without_help(sub, f"{where} {name}")
        elif not action.help and action.dest != "help":
            missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_flag_has_help() -> None:
    assert flags_without_help(build_parser(), "bulkup") == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to check the script")
def test_bash_completion_is_valid_bash_and_knows_the_flags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulkup", "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "--follow-symlinks" in done.stdout and "upload" in done.stdout
    syntax = subprocess.run(
        ["bash", "-n"], input=done.stdout, capture_output=True, text=True, timeout=60
    )
    assert syntax.returncode == 0, syntax.stderr


def test_zsh_completion() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulkup", "completion", "zsh"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("#compdef bulkup")


def test_readme_names_every_flag() -> None:
    """The README's sections and ``--help`` agree: every long flag of every command is in the
    README (``--[no-]x`` stands for both forms)."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, where: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{where} {name}")
                continue
            for flag in action.option_strings:
                if not flag.startswith("--") or flag == "--help":
                    continue
                short = flag.replace("--no-", "--", 1)
                if flag not in readme and f"--[no-]{short[2:]}" not in readme:
                    missing.append(f"{where} {flag}")

    walk(build_parser(), "bulkup")
    assert missing == []
