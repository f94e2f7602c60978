"""Import boundaries: each wing imports only the wings below it; the emulator shares no code
with the client, and vice versa; no module imports itself round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bulkup"
EMULATOR = PACKAGE / "emulator"


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
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.append((node.lineno, first.value))
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# The wings of the package and the wings each may import (besides itself). Arrows run one way:
# cli -> pipeline -> monitoring / journal -> transport -> config -> protocol -> core. The
# emulator imports only itself; only the cli reaches it (``serve`` and ``upload --emulator``).
CORE_MODULES = {"errors", "models", "stats", "targets", "report", "retry"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "protocol": {"core"},
    "config": {"core", "protocol"},
    "transport": {"core", "protocol", "config"},
    "journal": {"core", "config"},
    "monitoring": {"core", "protocol", "config", "transport"},
    "pipeline": {"core", "protocol", "config", "transport", "journal", "monitoring"},
    "cli": {
        "core",
        "protocol",
        "config",
        "transport",
        "journal",
        "monitoring",
        "pipeline",
        "emulator",
    },
    "emulator": set(),
}
ALL_FILES = sorted(PACKAGE.rglob("*.py"))


def wing_of(module: str) -> str:
    """The wing a ``bulkup.*`` module belongs to (``bulkup`` itself and the core modules are
    ``core``; ``bulkup.__main__`` is the command line's)."""
    parts = module.split(".")
    if parts[1:2] == ["__main__"]:
        return "cli"
    if len(parts) == 1 or parts[1] in CORE_MODULES or parts[1].startswith("__"):
        return "core"  # bulkup, bulkup.errors..., bulkup.__version__
    return parts[1]


def test_every_wing_is_known() -> None:
    """Every subpackage of bulkup is a wing with rules (a new one must be added here)."""
    wings = {wing_of(module_of(p)) for p in ALL_FILES}
    assert wings == set(ALLOWED), wings ^ set(ALLOWED)
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top == CORE_MODULES, top ^ CORE_MODULES


def test_files_found() -> None:
    """The walk sees the emulator and the rest of the package."""
    assert PACKAGE / "emulator" / "app.py" in ALL_FILES
    assert PACKAGE / "cli" / "main.py" in ALL_FILES


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_wing_imports_only_what_it_may(path: Path) -> None:
    """A module imports from its own wing and the wings below it, never up or sideways."""
    wing = wing_of(module_of(path))
    bad = [
        (line, module)
        for line, module in imported_modules(path)
        if within(module, "bulkup") and wing_of(module) not in ALLOWED[wing] | {wing}
    ]
    assert bad == [], f"{path.relative_to(PACKAGE.parent)} ({wing}) imports {bad}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_cli_reaches_the_emulator(path: Path) -> None:
    """Outside the emulator, only the cli imports it, and only its two entry points."""
    if wing_of(module_of(path)) == "emulator":
        return
    reached = {module for _, module in imported_modules(path) if within(module, "bulkup.emulator")}
    if wing_of(module_of(path)) == "cli":
        reached -= {"bulkup.emulator", "bulkup.emulator.cli", "bulkup.emulator.embedded"}
        reached = {
            m
            for m in reached
            if m.rpartition(".")[0] not in ("bulkup.emulator.cli", "bulkup.emulator.embedded")
        }
    assert reached == set(), f"{path.relative_to(PACKAGE.parent)} imports {sorted(reached)}"


def _module_graph() -> dict[str, set[str]]:
    known = {module_of(p) for p in ALL_FILES}
    graph: dict[str, set[str]] = {}
    for path in ALL_FILES:
        here = module_of(path)
        graph[here] = {
            m for _, m in imported_modules(path) if m in known and m != here and not within(here, m)
        }
    return graph


def test_no_import_cycles() -> None:
    """No module reaches itself through its imports (top-level or deferred)."""
    graph = _module_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join(trail[trail.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_guard_catches_an_upward_import(tmp_path: Path) -> None:
    """The wing rule flags a transport module importing the pipeline."""
    source = "from bulkup.pipeline.run import run_upload\nfrom bulkup.errors import BulkupError\n"
    probe = PACKAGE / "transport" / "probe.py"
    found = [
        m
        for _, m in imports_in(source, probe)
        if wing_of(m) not in ALLOWED["transport"] | {"transport"}
    ]
    assert "bulkup.pipeline.run" in found and "bulkup.errors" not in found


def test_resolver_catches_relative_and_dynamic_imports() -> None:
    """The import finder resolves relative imports and literal import_module calls."""
    source = (
        "from .. import errors\nfrom ..protocol import x\nfrom . import app\n"
        "import importlib\nimportlib.import_module('bulkup.emulator')\n"
    )
    modules = {m for _, m in imports_in(source, EMULATOR / "probe.py")}
    assert {"bulkup.errors", "bulkup.protocol", "bulkup.emulator.app", "bulkup.emulator"} <= modules
    modules = {m for _, m in imports_in("from .emulator import app\n", PACKAGE / "x.py")}
    assert "bulkup.emulator" in modules
