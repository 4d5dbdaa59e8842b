"""`convcalc export SPEC --to pytorch`: the command (files, stdout, errors, exit statuses) and
the files it writes: standalone (no convcalc import), ruff-clean, importable, and equal to
`convcalc.torch.build` (state_dict keys and outputs). The exact output for every example is
pinned by tests/golden/*.export-pytorch.txt.
"""

from __future__ import annotations

import ast
import importlib.util
import runpy
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


@pytest.mark.parametrize("name", ["resnet50", "fpn_resnet50"])
def test_export_does_not_import_torch(tmp_path, name):
    code = ("import atexit, sys\nfrom convcalc.cli import main\nsys.argv = ['convcalc', 'export', sys.argv[1], '--to',"
            " 'pytorch', '-o', sys.argv[2]]\n"
            "atexit.register(lambda: print('torch' in sys.modules, 'numpy' in sys.modules))\nmain()")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / f"{name}.yaml"), str(tmp_path / "r.py")],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "False False"
    assert (tmp_path / "r.py").exists()


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
    ours, theirs = network.state_dict(), built.state_dict()
    assert list(ours) == list(theirs)
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    network.load_state_dict(theirs, strict=True)
    x = torch.randn(2, *module.INPUT_SHAPE)
    with torch.no_grad():
        got, expected = network(x), built(x)
    assert isinstance(got, tuple) == isinstance(expected, tuple)  # a tuple for several outputs
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.torch
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_running_an_exported_file_prints_the_output_shape(exported, name, capsys):
    pytest.importorskip("torch")
    from conftest import report_of

    runpy.run_path(str(exported[name]), run_name="__main__")
    outputs = report_of((EXAMPLES / f"{name}.yaml").read_text()).outputs
    assert capsys.readouterr().out == "".join(f"{(1, *output.shape)}\n" for output in outputs)


@pytest.mark.torch
def test_running_an_exported_file_runs_its_main(exported):
    """The same, as a script (one example: a process imports torch in a second or two)."""
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, str(exported["unet"])], capture_output=True, text=True, check=True)
    assert out.stdout == "(1, 2, 388, 388)\n"


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


def assert_export_equals_build(tmp_path, spec: str, input_shape: tuple[int, ...]) -> None:
    """`convcalc export` of `spec` (read from stdin) has `build(spec)`'s state_dict keys, in
    order, and with its weights gives exactly its outputs."""
    torch = pytest.importorskip("torch")
    from click.testing import CliRunner

    from convcalc.cli import cli
    from convcalc.torch import build

    target = tmp_path / "exported.py"
    result = CliRunner().invoke(cli, ["export", "-", "--to", "pytorch", "-o", str(target)], input=spec)
    assert result.exit_code == 0, result.output
    torch.manual_seed(0)
    built = build(spec).eval()
    network = load(target).Network().eval()
    assert list(network.state_dict()) == list(built.state_dict())
    network.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        torch.testing.assert_close(network(x), built(x), rtol=0, atol=0)


@pytest.mark.torch
def test_exported_translations_equal_build(tmp_path):
    assert_export_equals_build(tmp_path, DYNAMIC, (4, 8, 8))


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


# --- graphs: from:, standalone merges, size_of, several outputs ---------------------------------

GRAPH = """\
name: graph
input: [3, 16, 16]
outputs: [g, mid]
blocks:
  head:                        # reads `skip` from outside: forward(self, x, skip)
    args: {skip: ~, out: ~}
    layers:
      - conv2d: {name: conv, out_channels: $out, kernel_size: 3, padding: 1}
      - concat: {name: cat, from: [conv, $skip]}
  gate:                        # a gate written with from: and a standalone mul
    args: {c: ~}
    layers:
      - identity: {name: given}
      - adaptiveavgpool2d: {name: pool, output_size: 1}
      - conv2d: {name: fc, out_channels: $c, kernel_size: 1}
      - sigmoid: {name: act}
      - mul: {name: scaled, from: [given, act]}
layers:
  - conv2d: {name: stem, out_channels: 4, kernel_size: 3, padding: 1}
  - conv2d: {name: mid, out_channels: 6, kernel_size: 1}
  - head: {name: h1, skip: stem, out: 8}
  - head: {name: h2, skip: mid, out: 8}
  - gate: {name: g, c: 14}
  - upsample: {name: up, from: stem, size_of: h1, mode: nearest}
"""


def test_a_graph_exports_forwards_from_its_references(run):
    result = run("export", "-", "--to", "pytorch", input=GRAPH)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    # the block takes the channels of what it reads from outside, not the path
    assert "def __init__(self, in_channels: int, *, out: int, skip_channels: int) -> None:" in text
    assert "self.cat = Concat()" in text
    assert "    def forward(self, x: Tensor, skip: Tensor) -> Tensor:" in text
    assert "self.h1 = Head(6, out=8, skip_channels=4)" in text
    assert "self.h2 = Head(12, out=8, skip_channels=6)" in text
    # a block whose references stay inside it computes itself: Gate(...)(x)
    assert "        return self.scaled(given, x)\n" in text
    # the network: one named value per output read later, the outputs as a tuple; the
    # upsample nothing reads still runs
    forward = text[text.index("class Network"):]
    assert "    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:" in forward
    assert "        stem = self.stem(x)\n        mid = self.mid(stem)\n" in forward
    assert "        h1 = self.h1(mid, stem)\n" in forward
    assert "        g = self.g(x)\n        self.up(stem, h1)\n        return g, mid\n" in forward


@pytest.mark.torch
def test_an_exported_graph_equals_build(tmp_path):
    assert_export_equals_build(tmp_path, GRAPH, (3, 16, 16))


@pytest.mark.parametrize(("spec", "message"), [
    ("input: [3, 8, 8]\nvars: {m: concat}\nlayers:\n  - parallel: {merge: $m, branches: [[relu], [tanh]]}\n",
     "<stdin>:4:5: 0: parallel: export needs the merge written out as add, mul or concat, not an expression"
     " (got '$m')\n"),
    ("input: [3, 8, 8]\nvars: {m: concat}\nlayers:\n  - residual: {merge: $m, body: [relu]}\n",
     "<stdin>:4:5: 0: residual: export needs the merge written out as add or concat, not an expression"
     " (got '$m')\n"),
    ("input: [2, 8, 8]\nblocks:\n  b:\n    args: {act: true}\n    parallel:\n      branches: [[], [relu]]\n"
     "      after: [relu: {when: $act}]\nlayers: [b]\n",
     "<stdin>:3:3: parallel: cannot number its 'after' layers beside an empty or nameless branch"),
])
def test_what_the_exporter_cannot_write_is_a_located_error(run, spec, message):
    """A spec convcalc accepts but the exporter cannot write: exit status 2 and the place."""
    assert run("shapes", "-", input=spec).exit_code == 0  # convcalc accepts it
    result = run("export", "-", "--to", "pytorch", input=spec)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: " + message)
