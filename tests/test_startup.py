"""What each command imports: the guard on start-up (benchmarks/shapes_bench.py has the times).

`convcalc shapes` with its output piped must not import rich (plain text needs none), NumPy,
matplotlib, graphviz, torch or jsonschema, nor the modules of the other commands; `--help` and
`--version` need click and the command group only. Each case runs the console entry point in a
fresh interpreter, as a user would, and lists `sys.modules` as it exits. No timing here: a
later change that brings an import back fails this test, whatever the machine.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, environ

# Imported only by the commands that draw, verify, build or validate.
HEAVY = ("rich", "numpy", "matplotlib", "torch", "graphviz", "jsonschema")
OTHER_COMMANDS = tuple(f"convcalc.cli.{name}" for name in ("check", "solve", "schema", "rf", "diff", "sweep", "draw"))

LIST_MODULES = """
import atexit, sys
out = sys.argv.pop(1)
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv[0] = "convcalc"
from convcalc.cli import main
main()
"""


def imported(tmp_path, *args: str, **env: str) -> set[str]:
    """The modules loaded by the time `convcalc ARGS` exits, stdout and stderr piped."""
    listing = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", LIST_MODULES, str(listing), *args], cwd=ROOT,
                            capture_output=True, text=True, env=environ(PYTHONPATH=str(ROOT / "src"), **env))
    assert result.returncode == 0, result.stderr
    return set(listing.read_text().split())


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (packages included: `rich` means rich.*) were imported."""
    return sorted(m for m in modules if m in names or m.startswith(tuple(f"{n}." for n in names)))


@pytest.mark.parametrize("args", [
    ("shapes", "examples/resnet50.yaml"),
    ("shapes", "examples/resnet50.yaml", "--format", "json"),
    ("shapes", "examples/efficientnet_b0.yaml", "--format", "csv"),
    ("shapes", "examples/unet.yaml", "--depth", "2"),
], ids=["table", "json", "csv", "depth"])
def test_piped_shapes_imports_neither_rich_nor_the_heavy_libraries(tmp_path, args):
    modules = imported(tmp_path, *args)
    assert "yaml" in modules and "convcalc.cli.shapes" in modules  # the listing is real
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, OTHER_COMMANDS) == []
    assert loaded(modules, ("convcalc.numeric", "convcalc.training", "convcalc.schema")) == []


def test_no_color_imports_no_rich_either(tmp_path):
    modules = imported(tmp_path, "shapes", "examples/resnet50.yaml", NO_COLOR="1")
    assert loaded(modules, HEAVY) == []


def test_a_styled_table_may_use_rich(tmp_path):
    """FORCE_COLOR styles the table as on a terminal: that output is rich's escape codes."""
    modules = imported(tmp_path, "shapes", "examples/resnet50.yaml", FORCE_COLOR="1")
    assert "rich.style" in modules
    assert loaded(modules, ("numpy", "matplotlib", "torch", "graphviz", "jsonschema")) == []


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_only_click_and_the_group(tmp_path, flag):
    modules = imported(tmp_path, flag)
    assert "click" in modules
    assert sorted(m for m in modules if m.split(".")[0] == "convcalc") == ["convcalc", "convcalc.cli"]
    assert loaded(modules, ("yaml", *HEAVY)) == []
