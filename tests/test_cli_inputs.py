"""Inputs from the command line: `$` vars in `input`, `--input SHAPE` and `--set NAME=VALUE`
on every command that reads a spec, and the library's `overrides` (one mechanism for all)."""

from __future__ import annotations

import json

import pytest

from convcalc.errors import SpecError
from convcalc.load import load_network
from convcalc.spec.parser import parse_text

NET = """\
name: vnet
input: [3, $size, $size]
vars: {size: 32, width: 16, deep: false}
layers:
  - conv2d: {out_channels: $width, kernel_size: 3, padding: 1}
  - relu
  - maxpool2d: {kernel_size: 2}
  - conv2d: {when: $deep, out_channels: $width, kernel_size: 3, padding: 1}
  - conv2d: {out_channels: $width * 2, kernel_size: 3, padding: 1}
"""


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "vnet.yaml"
    path.write_text(NET)
    return str(path)


def shapes_json(run, *args):
    result = run("shapes", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_vars_in_the_input_shape(run, net):
    data = shapes_json(run, net)
    assert data["input_shape"] == [3, 32, 32]
    assert data["output_shape"] == [2 * 16, 32 // 2, 32 // 2]


def test_set_overrides_vars_and_later_expressions_see_it(run, net):
    data = shapes_json(run, net, "--set", "size=64", "--set", "width=8", "--set", "deep=true")
    assert data["input_shape"] == [3, 64, 64]
    assert data["output_shape"] == [2 * 8, 64 // 2, 64 // 2]
    assert [layer["path"] for layer in data["layers"]] == ["0", "1", "2", "3", "4"]  # `when` kept 3
    assert data["totals"]["params"] == (8 * 3 * 9 + 8) + (8 * 8 * 9 + 8) + (16 * 8 * 9 + 16)


def test_set_value_may_be_an_expression_over_earlier_vars(run, net):
    data = shapes_json(run, net, "--set", "width=$size // 2")
    assert data["layers"][0]["output_shape"] == [32 // 2, 32, 32]


def test_input_replaces_the_spec_input(run, net):
    data = shapes_json(run, net, "--input", "3x100x60")
    assert data["input_shape"] == [3, 100, 60]
    assert data["output_shape"] == [32, 100 // 2, 60 // 2]
    assert shapes_json(run, net, "-i", "[1, 20, 20]")["layers"][0]["params"] == 16 * 1 * 9 + 16


def test_unknown_var_is_exit_2_listing_the_known_ones(run, net):
    result = run("shapes", net, "--set", "siz=64")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {net}:3:1: the spec has no var 'siz' to set (its vars: size, width, deep);"
        " did you mean 'size'?\n"
        "  3 | vars: {size: 32, width: 16, deep: false}\n"
        "      ^^^^\n")


def test_set_on_a_spec_without_vars(run, tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("input: [1, 8]\nlayers: [relu]\n")
    result = run("shapes", str(path), "--set", "size=3")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {path}:1:1: the spec has no var 'size' to set (it has no 'vars')")


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "size"], "Invalid value for '--set': expected NAME=VALUE, like size=256 (got 'size')"),
    (["--set", "=3"], "Invalid value for '--set': expected NAME=VALUE, like size=256 (got '=3')"),
    (["--input", "3x0x4"], "Invalid value for '-i' / '--input': the input must be a shape without the batch,"
     " [C, L], [C, H, W] or [C, D, H, W] with positive sizes (got [3, 0, 4]); write it like 3x224x224"),
    (["--input", "3x4x4x4x4"], "Invalid value for '-i' / '--input': the input must be a shape without the"
     " batch, [C, L], [C, H, W] or [C, D, H, W] with positive sizes (got [3, 4, 4, 4, 4]); write it like"
     " 3x224x224"),
])
def test_bad_command_line_values_are_usage_errors(run, net, args, message):
    result = run("shapes", net, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_a_shape_that_does_not_work_names_the_layer(run, net):
    result = run("shapes", net, "--set", "size=1")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {net}:7:5: 2 (maxpool2d): ")


def test_check_takes_input_and_set(run, net):
    ok = run("check", net, "--set", "width=4", "--max-params", f"{(4 * 27 + 4) + (8 * 36 + 8)}", "-f", "json")
    assert ok.exit_code == 0, ok.stdout
    big = run("check", net, "--input", "3x64x64", "--expect-output", "32x32x32")
    assert big.exit_code == 0, big.stdout
    assert big.stdout == f"PASS {net} (1 check holds)\n"
    bad = run("check", net, "--set", "nope=1", "-f", "json")
    assert bad.exit_code == 2
    assert "the spec has no var 'nope' to set" in json.loads(bad.stdout)["specs"][0]["error"]


def test_rf_takes_input_and_set(run, net):
    result = run("rf", net, "--input", "3x64x64", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input_shape"] == [32 // 2, 64 // 2, 64 // 2]  # the last layer's input
    assert data["position"] == [(32 - 1) // 2] * 2
    assert json.loads(run("rf", net, "--set", "size=16", "-f", "json").stdout)["position"] == [(8 - 1) // 2] * 2


def test_erf_takes_input_and_set(run, net):
    result = run("erf", net, "--input", "1x24x24", "--set", "width=2", "--samples", "1", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input_shape"] == [1, 24, 24]
    assert data["position"] == [(12 - 1) // 2] * 2


def test_solve_input_takes_input_and_set(run, net):
    result = run("solve", "input", net, "--set", "size=10", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["max"] == 2 * 10  # twice the (overridden) spatial size
    assert data["smallest_valid"] == 2
    other = json.loads(run("solve", "input", net, "--input", "3x9x40", "--axis", "1", "-f", "json").stdout)
    assert other["max"] == 2 * 40


def test_library_overrides_are_the_same_mechanism(tmp_path):
    network = parse_text(NET, "vnet.yaml", overrides={"size": 48, "width": 4}, input_shape=None)
    assert network.input_shape == (3, 48, 48)
    assert parse_text(NET, "vnet.yaml", input_shape="1x8x8").input_shape == (1, 8, 8)
    path = tmp_path / "vnet.yaml"
    path.write_text(NET)
    assert load_network(str(path), overrides={"size": 20}).input_shape == (3, 20, 20)
    with pytest.raises(SpecError, match="no var 'wdth' to set .*did you mean 'width'"):
        parse_text(NET, "vnet.yaml", overrides={"wdth": 4})


def test_vars_anywhere_budget_and_name(run, tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("vars: {n: 8, limit: 20}\nname: $n\ninput: [1, $n]\n"
                    "budget: {max_params: $limit, expect_output: [$n, $n]}\n"
                    "layers: [conv1d: {out_channels: $n, kernel_size: 1}]\n")
    result = run("check", str(path), "-f", "json")
    assert result.exit_code == 0, result.stdout
    spec = json.loads(result.stdout)["specs"][0]
    assert spec["name"] == "8"
    assert [c["limit"] for c in spec["checks"]] == [20, [8, 8]]
    assert spec["checks"][0]["measured"] == 8 * 1 + 8
    assert run("check", str(path), "--set", "n=16").exit_code == 1  # 16 * 1 + 16 params > 20
