"""`convcalc export SPEC --to pytorch`: the command (files, stdout, errors, exit statuses) and
the files it writes: standalone (no convcalc import), ruff-clean, importable, and equal to
`convcalc.torch.build` (state_dict keys and outputs). The exact output for every example is
pinned by tests/golden/*.export-pytorch.txt.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, ROOT

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
SPEC = """\
name: small
input: [3, 16, 16]
vars: {width: 8}
blocks:
  unit:
    args: {channels: ~, k: 3}
    residual:
      body:
        - conv2d: {name: conv, out_channels: $channels, kernel_size: $k, padding: $k // 2}
        - relu: {name: act}
layers:
  - conv2d: {name: stem, out_channels: $width, kernel_size: 3, padding: 1}
  - unit: {name: unit$i, channels: $width, repeat: {count: 2, index: i}}
  - adaptiveavgpool2d: {output_size: 1}
  - flatten
  - linear: {name: head, out_features: 4}
"""


def test_export_to_stdout(run):
    result = run("export", str(EXAMPLES / "lenet.yaml"), "--to", "pytorch")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"# Exported by convcalc {version()} (convcalc export SPEC --to pytorch) from\n"
                                    f"#   {EXAMPLES / 'lenet.yaml'}\n# network \"lenet\".")
    assert result.stderr == ""
    compile(result.stdout, "lenet.py", "exec")


def version() -> str:
    from convcalc import __version__

    return __version__


def test_export_to_a_file(run, tmp_path):
    target = tmp_path / "net.py"
    result = run("export", str(EXAMPLES / "resnet18.yaml"), "--to", "pytorch", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"wrote {target}: class Network (resnet18, 11,689,512 parameters)\n"
    assert "class Network(nn.Sequential):" in target.read_text()


def test_export_reads_stdin_and_sets_vars(run):
    result = run("export", "-", "--to", "pytorch", "--set", "width=16", input=SPEC)
    assert result.exit_code == 0, result.stderr
    assert '#   <stdin>\n# network "small".' in result.stdout
    assert "WIDTH = 16  # set when exported" in result.stdout
    assert 'self.add_module(f"unit{i}", Unit(WIDTH, channels=WIDTH))' in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "pytorch", "--set", "depth=3"], "the spec has no var 'depth' to set (its vars: width)"),
    (["--to", "pytorch", "--set", "width"], "expected NAME=VALUE, like size=256 (got 'width')"),
    (["--to", "pytorch", "--set", "width=[1, 2]"], "'out_channels' must be a positive int (got [1, 2])"),
])
def test_export_bad_sets_are_bad_input(run, tmp_path, args, message):
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    result = run("export", str(path), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_export_needs_a_target(run):
    result = run("export", str(EXAMPLES / "lenet.yaml"))
    assert result.exit_code == 2
    assert "Missing option '--to'" in result.stderr
    result = run("export", str(EXAMPLES / "lenet.yaml"), "--to", "keras")
    assert result.exit_code == 2
    assert "'keras' is not 'pytorch'" in result.stderr


def test_export_of_a_bad_spec_points_at_it(run, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 9}\n")
    result = run("export", str(path), "--to", "pytorch")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:3:5: 0 (conv2d): output would be empty along H")
    result = run("export", str(tmp_path / "missing.yaml"), "--to", "pytorch")
    assert (result.exit_code, result.stderr) == (2, f"error: {tmp_path / 'missing.yaml'}: no such file\n")


def test_export_to_an_unwritable_place(run, tmp_path):
    result = run("export", str(EXAMPLES / "lenet.yaml"), "--to", "pytorch", "-o", str(tmp_path / "no" / "net.py"))
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot write {tmp_path / 'no' / 'net.py'}: No such file or directory\n"


def test_export_does_not_import_torch(tmp_path):
    code = ("import sys\nfrom convcalc.cli import main\nsys.argv = ['convcalc', 'export', sys.argv[1], '--to',"
            " 'pytorch', '-o', sys.argv[2]]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "resnet50.yaml"), str(tmp_path / "r.py")],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "False False"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: Any) -> dict[str, Path]:
    """Every example exported once, as files."""
    from click.testing import CliRunner

    from convcalc.cli import cli

    folder = tmp_path_factory.mktemp("exported")
    files = {}
    for name in EXAMPLE_NAMES:
        target = folder / f"exported_{name}.py"
        result = CliRunner().invoke(cli, ["export", str(EXAMPLES / f"{name}.yaml"), "--to", "pytorch", "-o",
                                          str(target)])
        assert result.exit_code == 0, result.output
        files[name] = target
    return files


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_exported_files_are_standalone(exported, name):
    tree = ast.parse(exported[name].read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"torch", "math", "collections", "typing"}, imported
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes[-1] == "Network"


def test_exported_files_are_ruff_clean(exported):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    files = [str(path) for path in exported.values()]
    result = subprocess.run([ruff, "check", "--isolated", "--select", "E,W,F,I,B,UP,SIM,N", *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.torch
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_exported_files_import_and_equal_build(exported, name):
    torch = pytest.importorskip("torch")
    from convcalc.torch import build

    module = load(exported[name])
    torch.manual_seed(0)
    built = build(EXAMPLES / f"{name}.yaml").eval()
    network = module.Network().eval()
    assert list(network.state_dict()) == list(built.state_dict())
    network.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *module.INPUT_SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(network(x), built(x), rtol=0, atol=0)


@pytest.mark.torch
def test_running_an_exported_file_prints_the_output_shape(exported):
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, str(exported["dcgan_generator"])], capture_output=True, text=True,
                         check=True)
    assert out.stdout == "(1, 3, 64, 64)\n"


# --- what the exporter has to translate ---------------------------------------------------------

DYNAMIC = """\
name: scoped
input: [4, 8, 8]
vars: {width: 6, base: 2}
blocks:
  inner:                       # uses `scale` from whichever block calls it, and $i
    args: {k: 1}
    layers:
      - conv2d: {name: conv, out_channels: $scale * $base + $i, kernel_size: $k, padding: $k // 2}
  outer:
    args: {scale: ~, base: 3}  # `base` shadows the var for the blocks it calls
    layers:
      - inner: {name: unit$i, repeat: {count: 2, index: i}, k: 3}
      - conv2d: {out_channels: $width / 2, kernel_size: 1}
layers:
  - outer: {name: a, scale: 2}
  - outer: {name: b, scale: 1, base: 1}
  - parallel: {branches: [[], [relu]], merge: concat}
  - residual: {body: [conv2d: {out_channels: 6, kernel_size: 3, padding: [[0, 2], [1, 1]], stride: 1},
                      maxpool2d: {kernel_size: 2, stride: 1, padding: [[0, 1], [1, 0]]}],
               shortcut: [identity], after: [relu]}
"""


def test_exported_names_come_from_callers_vars_and_copies(run):
    result = run("export", "-", "--to", "pytorch", input=DYNAMIC)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "class Inner(nn.Sequential):" in text and "class Outer(nn.Sequential):" in text
    # `scale` and `i` come from the caller, `base` may be the caller's or the var
    assert "def __init__(self, in_channels: int, *, k: int = 1, base=BASE, i, scale) -> None:" in text
    assert 'f"unit{i}", Inner(channels, k=3, base=base, i=i, scale=scale)' in text
    assert "channels = scale * base + i" in text  # each copy's output, carried out of the loop
    assert "exact_div(WIDTH, 2)" in text and "def exact_div(a, b):" in text
    assert "PaddedConv2d(" in text and "PaddedMaxPool2d(" in text


@pytest.mark.torch
def test_exported_translations_equal_build(tmp_path):
    torch = pytest.importorskip("torch")
    from click.testing import CliRunner

    from convcalc.cli import cli
    from convcalc.torch import build

    target = tmp_path / "exported_scoped.py"
    result = CliRunner().invoke(cli, ["export", "-", "--to", "pytorch", "-o", str(target)], input=DYNAMIC)
    assert result.exit_code == 0, result.output
    torch.manual_seed(0)
    built = build(DYNAMIC).eval()
    network = load(target).Network().eval()
    assert list(network.state_dict()) == list(built.state_dict())
    network.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(network(x), built(x), rtol=0, atol=0)


def test_a_size_no_argument_gives_is_an_export_error(run):
    spec = """\
input: [2, 4, 4]
blocks:
  head:
    layers: [flatten, linear: {out_features: 3}]
layers:
  - head
  - linear: {out_features: 8}
  - head: {when: false}
  - sequential: [conv1d: {out_channels: 1, kernel_size: 1}]
"""
    assert run("export", "-", "--to", "pytorch", input=spec).exit_code == 2  # flatten of [8] then [1, 8]: mixed
    once = "input: [2, 4, 4]\nblocks:\n  head:\n    layers: [flatten, linear: {out_features: 3}]\nlayers: [head]\n"
    result = run("export", "-", "--to", "pytorch", input=once)
    assert result.exit_code == 0, result.stderr
    assert "nn.Linear(32, 3)" in result.stdout  # the one use's size, as a number
