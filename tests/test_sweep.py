"""`convcalc sweep`: input sizes on one parsed graph, var sweeps, validity, formats and the plot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT
from convcalc.analysis import analyze
from convcalc.errors import SpecError
from convcalc.load import read_source
from convcalc.spec.parser import Parser, parse_text
from convcalc.sweep import parse_values, sweep_sizes, sweep_var
from convcalc.training import training_memory

SPEC = """name: tiny
input: [3, 32, 32]
vars: {width: 8, wide: $width * 2}
layers:
  - conv2d: {out_channels: $width, kernel_size: 3, stride: 2}
  - relu
  - conv2d: {out_channels: $wide, kernel_size: 3, stride: 2}
  - flatten
"""


@pytest.mark.parametrize("text, values", [
    ("128:512:128", (128, 256, 384, 512)),
    ("32:100:32", (32, 64, 96)),          # the stop is included only when a step lands on it
    ("5:7", (5, 6, 7)),
    ("224", (224,)),
    ("224, 256,320", (224, 256, 320)),
])
def test_values_parse(text, values):
    assert parse_values(text, "--size") == values


@pytest.mark.parametrize("text, message", [
    ("128-512", "--size takes START:STOP:STEP like 128:512:32 (inclusive), or values like 128,224 (got '128-512')"),
    ("512:128:32", "--size: the stop 128 is below the start 512"),
    ("1:10:0", "--size: the step must be a positive int (got 0)"),
    ("1:100000", "--size: 100,000 values is more than 10,000; use a larger step"),
])
def test_bad_values_say_what_is_expected(text, message):
    with pytest.raises(SpecError) as err:
        parse_values(text, "--size")
    assert str(err.value) == message


def test_each_size_equals_a_fresh_parse_at_that_size():
    network = parse_text(SPEC, "spec.yaml")
    sweep = sweep_sizes(network, (7, 16, 33), batch_size=2, optimizer="adam")
    for point in sweep.points:
        fresh = parse_text(SPEC.replace("[3, 32, 32]", f"[3, {point.value}, {point.value}]"), "spec.yaml")
        report = analyze(fresh, 2)
        assert point.ok
        assert point.input_shape == (3, point.value, point.value)
        assert point.output_shapes == (report.output_shape,)
        assert (point.params, point.macs, point.activation_bytes) == (
            report.totals.params, report.totals.macs, report.totals.activation_bytes)
        assert point.training_bytes == training_memory(fresh, report, "adam").total_bytes
    h = (33 - 3) // 2 + 1  # 16
    assert sweep.points[2].output_shapes == ((16 * ((h - 3) // 2 + 1) ** 2,),)


def test_a_size_too_small_is_invalid_with_the_reason():
    sweep = sweep_sizes(parse_text(SPEC, "spec.yaml"), (5, 6, 7))
    assert [p.ok for p in sweep.points] == [False, False, True]
    # 5 -> 2 after the first conv; 6 -> 2 as well; 7 -> 3, enough for the second
    assert sweep.points[0].reason == (
        "2 (conv2d): output would be empty along H: input 2 + padding 0+0 is smaller than the effective kernel 3"
        " (kernel 3); the smallest input that works is 3")
    assert sweep.points[0].macs is None and sweep.points[0].output_shapes == ()


def test_the_size_sweep_parses_once(monkeypatch):
    calls = []
    original = Parser.network

    def counting(self, root):
        calls.append(1)
        return original(self, root)

    monkeypatch.setattr(Parser, "network", counting)
    from click.testing import CliRunner

    from convcalc.cli import cli

    result = CliRunner().invoke(cli, ["sweep", str(EXAMPLES / "resnet18.yaml"), "--size", "64:256:64"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1


def test_var_sweep_resolves_the_var_and_the_vars_after_it(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    sweep = sweep_var(read_source(str(path)), "width", (4, 8))
    assert sweep.swept == "width"
    for point in sweep.points:
        w = point.value
        assert point.params == (w * 3 * 9 + w) + (2 * w * w * 9 + 2 * w)  # wide = 2 * width
    assert sweep.points[1].output_shapes == ((16 * 7 * 7,),)


def test_var_sweep_keeps_values_that_do_not_parse_as_invalid(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    sweep = sweep_var(read_source(str(path)), "width", (0, 8))
    assert not sweep.points[0].ok and sweep.points[1].ok
    assert "out_channels" in sweep.points[0].reason


def test_unknown_var_is_bad_input(run, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    result = run("sweep", str(path), "--set", "widht=4:8:4")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {path}: the spec has no var 'widht' (its vars: width, wide); did you mean"
                             " 'width'?\n")


# --- through the CLI ---------------------------------------------------------------------------

@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return str(path)


def test_table(run, spec):
    result = run("sweep", spec, "--size", "5:7")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tiny: 3 sizes, 1 valid; batch 1, float32"
    assert lines[1].split() == ["Size", "Input", "Valid", "Output", "Params", "MACs", "Activations", "Training",
                                "Reason"]
    assert lines[2].split()[:4] == ["5", "3x5x5", "no", "-"]
    assert lines[2].endswith("the smallest input that works is 3")
    params = (8 * 3 * 9 + 8) + (16 * 8 * 9 + 16)
    macs = 3 * 3 * 8 * 3 * 9 + 1 * 1 * 16 * 8 * 9
    assert lines[4].split()[:6] == ["7", "3x7x7", "yes", "16", f"{params:,}", f"{macs:,}"]


def test_csv_and_json(run, spec):
    csv_text = run("sweep", spec, "--size", "6,7", "--format", "csv").stdout
    assert csv_text.splitlines()[0] == ("value,input_shape,valid,output_shapes,params,macs,flops,activation_bytes,"
                                        "training_bytes,reason")
    assert csv_text.splitlines()[2].startswith("7,3x7x7,true,16,")
    data = json.loads(run("sweep", spec, "--size", "6,7", "--format", "json", "-b", "4").stdout)
    assert list(data) == ["schema_version", "name", "swept", "batch_size", "dtype", "optimizer", "points"]
    assert (data["schema_version"], data["swept"], data["batch_size"]) == (1, "size", 4)
    bad, good = data["points"]
    assert (bad["valid"], bad["macs"], bad["output_shapes"]) == (False, None, [])
    assert good["valid"] and good["reason"] is None
    assert good["macs"] == 4 * (3 * 3 * 8 * 3 * 9 + 1 * 1 * 16 * 8 * 9) and good["flops"] == 2 * good["macs"]


@pytest.mark.parametrize("args, message", [
    ([], "error: give one of --size START:STOP:STEP and --set NAME=START:STOP:STEP"),
    (["--size", "8", "--set", "width=4"], "error: give one of --size START:STOP:STEP and --set NAME=START:STOP:STEP"),
    (["--set", "width"], "error: --set takes NAME=START:STOP:STEP like width=16:64:16 (got 'width')"),
    (["--size", "8:4"], "error: --size: the stop 4 is below the start 8"),
])
def test_bad_options_are_status_2(run, spec, args, message):
    result = run("sweep", spec, *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_plot_is_a_png(run, spec, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep.png"
    result = run("sweep", spec, "--size", "4:40:4", "--plot", str(out))
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (960, 780)  # 8 x 6.5 inches at 120 dpi


def test_matplotlib_is_imported_only_for_the_plot(spec):
    code = ("import sys; from click.testing import CliRunner; from convcalc.cli import cli; "
            f"r = CliRunner().invoke(cli, ['sweep', {spec!r}, '--size', '8:16:8']); "
            "assert r.exit_code == 0, r.output; print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""})
    assert out.stdout.strip() == "False"


def test_every_example_sweeps(run):
    for path in sorted(EXAMPLES.glob("*.yaml")):
        result = run("sweep", str(path), "--size", "32:96:32", "--format", "json")
        assert result.exit_code == 0, (path, result.stderr)
        assert len(json.loads(result.stdout)["points"]) == 3
