"""Golden files: the exact output of every example in every common output kind.

tests/golden/EXAMPLE.KIND.txt holds, for `examples/EXAMPLE.yaml` run as KIND (see KINDS):

    $ convcalc shapes examples/lenet.yaml --format json
    exit: 0
    ...stdout, byte for byte...
    --- stderr
    ...stderr, only when there is any...

They prove a refactor byte-identical. Runs are in-process (click's CliRunner) from the repository
root, so paths read `examples/...`, with the environment that decides layout pinned (ENV): the
output must not depend on the terminal, COLUMNS, NO_COLOR or FORCE_COLOR. After a deliberate
output change, regenerate with `pytest tests/test_golden.py --regen-golden` (or
CONVCALC_UPDATE_EXPECTED=1, like tests/bad_specs/) and review the git diff.
"""

from __future__ import annotations

import difflib
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, ROOT
from convcalc.analysis import analyze
from convcalc.cli import cli

GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))

# Output kind -> the command line, `{spec}` standing for examples/EXAMPLE.yaml.
KINDS = {
    "shapes": "shapes {spec}",
    "shapes-json": "shapes {spec} --format json",
    "shapes-csv": "shapes {spec} --format csv",
    "shapes-markdown": "shapes {spec} --format markdown",
    "shapes-training": "shapes {spec} --training",
    "shapes-training-json": "shapes {spec} --training --format json",
    "rf-json": "rf {spec} --format json",
    "check-json": "check {spec} --format json",
    "export-pytorch": "export {spec} --to pytorch",
}

# The table is plain text when stdout is not a terminal (always so under CliRunner) unless
# FORCE_COLOR is set; NO_COLOR and the width are pinned too, so that no outer setting leaks in.
# None removes a variable for the run.
ENV = {"COLUMNS": "120", "LINES": "40", "FORCE_COLOR": None, "NO_COLOR": None,
       "TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None}

# The plain table ignores the width: at these widths it must equal the 120-column golden file.
OTHER_WIDTHS = [("lenet", "80"), ("resnet18", "80"), ("googlenet", "80"), ("resnet18", "40")]

CASES = [(name, kind) for name in EXAMPLE_NAMES for kind in KINDS]


def golden_path(name: str, kind: str) -> Path:
    return GOLDEN / f"{name}.{kind}.txt"


def command(name: str, kind: str) -> list[str]:
    return [word.replace("{spec}", f"examples/{name}.yaml") for word in shlex.split(KINDS[kind])]


def observed(args: list[str], env: dict[str, str | None]) -> str:
    """The command line, the exit status, stdout, then stderr if any: the golden file's text."""
    result = CliRunner().invoke(cli, args, prog_name="convcalc", env=env, catch_exceptions=False)
    text = f"$ convcalc {shlex.join(args)}\nexit: {result.exit_code}\n{result.stdout}"
    if result.stderr:
        text += f"--- stderr\n{result.stderr}"
    return text


def compare(path: Path, actual: str) -> None:
    """Fail with a unified diff (expected -> actual), not the whole texts."""
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing; create it with --regen-golden", pytrace=False)
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"{path.relative_to(ROOT)} (expected)", tofile="actual output", n=2))
        pytest.fail(f"output differs from {path.relative_to(ROOT)}:\n{diff}\n"
                    "If the change is deliberate, regenerate with --regen-golden and review the diff.",
                    pytrace=False)


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """Run from the repository root, so file names in the output are `examples/...`."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}.{k}" for n, k in CASES])
def test_output_matches_golden_file(name, kind, regen_golden):
    actual = observed(command(name, kind), ENV)
    path = golden_path(name, kind)
    if regen_golden:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))
    compare(path, actual)


@pytest.mark.parametrize(("name", "columns"), OTHER_WIDTHS, ids=[f"{n}-{c}" for n, c in OTHER_WIDTHS])
def test_table_does_not_depend_on_the_width(name, columns, regen_golden):
    if regen_golden:
        pytest.skip("compares against the files just regenerated; run again without --regen-golden")
    actual = observed(command(name, "shapes"), {**ENV, "COLUMNS": columns})
    compare(golden_path(name, "shapes"), actual)


def test_golden_files_are_exactly_the_cases():
    """One file per (example, kind): a new example needs its files, a removed one leaves none."""
    present = {p.name for p in GOLDEN.glob("*.txt")}
    wanted = {golden_path(name, kind).name for name, kind in CASES}
    assert not wanted - present, f"missing (create with --regen-golden): {sorted(wanted - present)}"
    assert not present - wanted, f"stale, delete them: {sorted(present - wanted)}"
    assert {p.name for p in GOLDEN.iterdir()} == present, "only .txt golden files belong in tests/golden/"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_layer_json_is_json_dumps_of_the_layer_dict(name):
    """`--format json` writes each layer from memoised pieces (`rows_json`); it must be exactly
    what json.dumps makes of the layer's dict, fractional jumps and merges included."""
    import json

    from convcalc.load import load_network
    from convcalc.render.data import row_dict
    from convcalc.render.plain import rows_json

    report = analyze(load_network(str(EXAMPLES / f"{name}.yaml")))
    assert rows_json(report.rows) == [json.dumps(row_dict(row)) for row in report.rows]


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "unet", "yolo_neck", "efficientnet_b0"])
def test_group_json_is_json_dumps_of_the_group_dict(name):
    """`--depth` groups in JSON are written from memoised pieces too (`groups_json`)."""
    import json

    from convcalc.analysis import outline
    from convcalc.load import load_network
    from convcalc.render.plain import group_dict, groups_json

    network = load_network(str(EXAMPLES / f"{name}.yaml"))
    entries = outline(analyze(network), network.graph)
    assert groups_json(entries) == [json.dumps(group_dict(e)) for e in entries if e.group is not None]
