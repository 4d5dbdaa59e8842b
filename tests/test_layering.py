"""The layering rules the module docstrings declare, checked by reading the imports.

A module whose docstring says which parts of the package it imports ("Imports `errors` and
`layers` only", "imports nothing from the package") may import exactly those, at the top or
inside a function: a drift fails here, with the module and the import named. Besides, the
core never imports click or rich (only `cli` and `render` do), and only `numeric` imports
NumPy at module level, so the commands that do not verify stay light.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "convcalc"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """Every `convcalc...` module imported anywhere in the file, with its line."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.append((base, node.lineno))
            # `from convcalc.layers import conv` imports the submodule `convcalc.layers.conv`
            for alias in node.names:
                if (PACKAGE.parent / base.replace(".", "/") / f"{alias.name}.py").exists():
                    found.append((f"{base}.{alias.name}", node.lineno))
    return [(name, line) for name, line in found if name == "convcalc" or name.startswith("convcalc.")]


def declared(path: Path) -> set[str] | None:
    """The parts of the package the docstring allows (None: the module declares nothing)."""
    doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
    sentences = [s for s in re.split(r"(?<=[.;])\s", doc) if re.search(r"\b[Ii]mports?\b", s)]
    if not sentences:
        return None
    allowed: set[str] = set()
    for sentence in sentences:
        if "nothing from the package" in sentence or "imports nothing" in sentence:
            continue
        for name in re.findall(r"`([a-z_.]+)`", sentence):
            allowed.add(name if name.startswith("convcalc") else f"convcalc.{name}")
    return allowed


# Below every layer, as `dataclasses` is: the `@record` decorator any module may use.
FOUNDATION = ("convcalc", "convcalc.records")


def within(name: str, allowed: set[str], own: str) -> bool:
    family = own.split(".")[:2]  # a module may import its own subpackage (layers.conv -> layers.base)
    return (name in FOUNDATION or any(name == a or name.startswith(a + ".") for a in allowed)
            or name.split(".")[:2] == family)


DECLARING = [p for p in MODULES if declared(p) is not None]


@pytest.mark.parametrize("path", DECLARING, ids=[module_name(p) for p in DECLARING])
def test_module_imports_only_what_its_docstring_declares(path):
    allowed = declared(path)
    assert allowed is not None
    own = module_name(path)
    drift = [f"{own}:{line} imports {name}" for name, line in imports(path) if not within(name, allowed, own)]
    assert drift == [], f"declared: {sorted(allowed) or 'nothing from the package'}"


def test_the_declarations_cover_the_core():
    core = ["analysis", "budget", "errors", "fieldwalk", "geometry", "graph", "layers.base", "layers.merge",
            "lints", "network", "receptive", "schema", "solve", "training", "numeric.backward", "numeric.base",
            "diff", "sweep", "diagram"]
    missing = [m for m in core if declared(PACKAGE / (m.replace(".", "/") + ".py")) is None]
    assert missing == []


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def everywhere(path: Path) -> set[str]:
    """The top-level packages imported anywhere in the file, lazily too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_only_the_cli_and_renderers_touch_the_terminal(path):
    own = module_name(path)
    if own.startswith(("convcalc.cli", "convcalc.render")) or own == "convcalc.__main__":
        return
    assert not everywhere(path) & {"click", "rich"}, f"{own} imports click or rich"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_numpy_is_imported_at_module_level_only_by_numeric(path):
    own = module_name(path)
    if own.startswith("convcalc.numeric") and own != "convcalc.numeric.result" and own != "convcalc.numeric":
        return
    assert "numpy" not in top_level_imports(path), f"{own} imports NumPy at start-up"
