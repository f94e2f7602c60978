"""Import boundaries: the emulator shares no code with the client, and vice versa."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bulkup"
EMULATOR = PACKAGE / "emulator"
# the command line launches ``bulkup serve``; embedded.py starts it for ``upload --emulator``
ALLOWED_EMULATOR_IMPORTERS = {PACKAGE / "cli.py", PACKAGE / "embedded.py"}


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file."""
    return imports_in(path.read_text(encoding="utf-8"), path)


def imports_in(source: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``source`` living at ``path``.

    Relative imports are resolved; ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may
    be a submodule); ``importlib.import_module("x")`` and ``__import__("x")`` with a literal
    count too.
    """
    tree = ast.parse(source, filename=str(path))
    package = module_of(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


EMULATOR_FILES = sorted(EMULATOR.rglob("*.py"))
OTHER_FILES = sorted(p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(EMULATOR))


def test_files_found() -> None:
    """The walk sees the emulator and the rest of the package."""
    assert EMULATOR / "app.py" in EMULATOR_FILES
    assert PACKAGE / "cli.py" in OTHER_FILES


@pytest.mark.parametrize("path", EMULATOR_FILES, ids=lambda p: p.name)
def test_emulator_imports_only_itself(path: Path) -> None:
    """bulkup/emulator imports nothing from bulkup outside bulkup.emulator."""
    bad = [(line, module) for line, module in imported_modules(path)
           if within(module, "bulkup") and not within(module, "bulkup.emulator")]
    assert bad == [], f"{path.relative_to(PACKAGE.parent)} imports {bad}"


@pytest.mark.parametrize("path", OTHER_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_client_does_not_import_emulator(path: Path) -> None:
    """No bulkup module outside the emulator imports it, except bulkup/cli.py."""
    if path in ALLOWED_EMULATOR_IMPORTERS:
        return
    bad = [(line, module) for line, module in imported_modules(path)
           if within(module, "bulkup.emulator")]
    assert bad == [], f"{path.relative_to(PACKAGE.parent)} imports {bad}"


def test_resolver_catches_relative_and_dynamic_imports() -> None:
    """The import finder resolves relative imports and literal import_module calls."""
    source = ("from .. import errors\nfrom ..protocol import x\nfrom . import app\n"
              "import importlib\nimportlib.import_module('bulkup.emulator')\n")
    modules = {m for _, m in imports_in(source, EMULATOR / "probe.py")}
    assert {"bulkup.errors", "bulkup.protocol", "bulkup.emulator.app",
            "bulkup.emulator"} <= modules
    modules = {m for _, m in imports_in("from .emulator import app\n", PACKAGE / "x.py")}
    assert "bulkup.emulator" in modules
