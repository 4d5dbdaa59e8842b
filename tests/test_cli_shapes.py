"""`convcalc shapes` and `convcalc layer` through the real CLI."""

from __future__ import annotations

import json

from conftest import EXAMPLES


def test_layer_from_flags_matches_arithmetic(run):
    result = run("layer", "conv2d", "--input", "3x224x224", "--out-channels", "64",
                 "--kernel-size", "7", "--stride", "2", "--padding", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["layers"]
    assert row["output_shape"] == [64, (224 + 2 * 3 - 7) // 2 + 1, (224 + 2 * 3 - 7) // 2 + 1]
    assert row["params"] == 64 * 3 * 7 * 7 + 64
    assert row["macs"] == 112 * 112 * 64 * 3 * 7 * 7
    assert row["flops"] == 2 * row["macs"]
    assert row["receptive_field"] == {"size": [7, 7], "jump": [2, 2], "start": [0, 0]}


def test_shapes_json_is_deterministic(run):
    first = run("shapes", str(EXAMPLES / "resnet18.yaml"), "-f", "json").stdout
    second = run("shapes", str(EXAMPLES / "resnet18.yaml"), "-f", "json").stdout
    assert first == second
    assert json.loads(first)["totals"]["params"] == 11_689_512


def test_bad_groups_is_one_located_message(run, tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [64, 8, 8]\nlayers:\n  - conv2d: {out_channels: 66, kernel_size: 3, groups: 3}\n")
    result = run("shapes", str(spec))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {spec}:3:5: 0 (conv2d): groups=3 does not divide in_channels=64 (divisors: 1, 2, 4, 8, 16, 32, 64)"
    )
    assert "Traceback" not in result.output


def test_spec_from_stdin(run):
    result = run("shapes", "-", "-f", "json", input="input: [2, 6, 6]\nlayers:\n  - maxpool2d: {kernel_size: 2}\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output_shape"] == [2, 6 // 2, 6 // 2]
