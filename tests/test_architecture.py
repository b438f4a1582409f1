"""The layers hold and no import circle exists (docs/ARCHITECTURE.md "Layers").

ruff holds the same table while editing (banned-api in each package's ruff.toml); this test reads every import of
the project's modules, those inside functions included (a lazy import is still a dependency), so a circle hidden
behind one is found too. Imports under `if TYPE_CHECKING:` are left out: they do not run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app.py", "bot", "dialogs", "graph")

# layer -> what it must not import (a name stands for the module and everything under it)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "graph": ("botbuilder", "botframework", "bot", "dialogs", "app"),
    "bot.persistence": ("botbuilder", "botframework", "bot.desk", "bot.views", "bot.teams", "dialogs", "app"),
    "bot.views": ("botbuilder", "botframework", "bot.desk", "bot.teams", "dialogs", "app"),
    "bot.desk": ("botbuilder", "botframework", "bot.teams", "dialogs", "app"),
    "bot.settings": (
        "botbuilder",
        "botframework",
        "bot.desk",
        "bot.views",
        "bot.teams",
        "bot.persistence",
        "dialogs",
    ),
    "dialogs": ("bot.teams", "app"),
    "bot.teams": ("app",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
        for file in files:
            found[_module_name(file)] = file
    return found


def _imports(path: Path) -> set[str]:
    """Every module name imported anywhere in the file, except under `if TYPE_CHECKING:`."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for branch in child.orelse:
                    visit(branch)
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module)
                names.update(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return names


MODULES = _project_modules()
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(module: str) -> str | None:
    matches = [layer for layer in FORBIDDEN if _within(module, layer)]
    return max(matches, key=len) if matches else None


def _project_dependencies(module: str) -> set[str]:
    """The project modules `module` imports (`from bot.views import cards` counts as bot.views.cards)."""
    deps: set[str] = set()
    for name in IMPORTS[module]:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            deps.add(name)
    return deps


def test_the_layer_table_covers_every_package_of_the_bot() -> None:
    unplaced = [m for m in MODULES if _within(m, "bot") and m != "bot" and _layer(m) is None]
    assert unplaced == [], f"modules outside every layer (add them to FORBIDDEN and docs): {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_no_module_imports_what_its_layer_forbids(module: str) -> None:
    layer = _layer(module)
    assert layer is not None
    wrong = sorted(name for name in IMPORTS[module] for banned in FORBIDDEN[layer] if _within(name, banned))
    assert wrong == [], f"{module} ({layer}) imports {wrong}"


def test_no_import_circle_between_the_projects_modules() -> None:
    graph = {module: _project_dependencies(module) for module in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    assert circles == []


def test_the_checks_see_a_lazy_import_and_skip_a_type_checking_one(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.teams.handler import MfaBot\n"
        "def later():\n    from bot.desk import approvals\n",
        encoding="utf-8",
    )
    names = _imports(source)
    assert "bot.desk.approvals" in names
    assert not any(_within(n, "bot.teams") for n in names)


def test_the_architecture_page_names_every_module_of_the_bot_and_the_dialogs() -> None:
    """docs/ARCHITECTURE.md's tree has one line per module; a new module without its line fails here."""
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    tree = page[page.index("## The tree") : page.index("## Layers")]
    missing = sorted(
        module
        for module, path in MODULES.items()
        if _within(module, "bot") or _within(module, "dialogs")
        if path.name != "__init__.py" and "migrations" not in path.parts and "demo" not in path.parts
        if f" {path.name} " not in tree
    )
    assert missing == []
