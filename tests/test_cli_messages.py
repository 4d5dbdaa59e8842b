"""The messages of issue #13 as users see them, pinned in full through the CLI.

Errors with a spec file live in tests/bad_specs/ (the dedented arguments, the branches that
part, the batch in the input, a channels-last input); here: the warnings for inputs that are
probably wrong, file:line in text warnings, and the polish of `layers`, `layer`, `erf` and the
RF column.
"""

from __future__ import annotations

import json

from conftest import EXAMPLES


def spec(tmp_path, text: str, name: str = "net.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def warning_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.endswith(("warning:", "warnings:")))
    return lines[first + 1:]


def test_channels_last_input_warns_with_the_fix(run, tmp_path):
    path = spec(tmp_path, "input: [32, 32, 3]\nlayers:\n  - conv2d: {out_channels: 16, kernel_size: 3, padding: 1}\n")
    result = run("shapes", path)
    assert result.exit_code == 0
    assert warning_lines(result.stdout) == [
        f"  {path}:3: 0 (conv2d) [channels-last-input] the input [32, 32, 3] looks channels-last: convcalc"
        " reads it as 32 channels of 32x3; channels come first, without the batch: input: [3, 32, 32]"]
    assert run("shapes", path, "--strict").exit_code == 1
    assert run("shapes", path, "--strict", "--ignore", "channels-last-input").exit_code == 0


def test_channels_first_inputs_do_not_warn(run, tmp_path):
    for shape in ("[3, 32, 32]", "[64, 56, 56]", "[1, 28, 28]", "[16, 8, 4]"):
        path = spec(tmp_path, f"input: {shape}\nlayers:\n  - relu\n")
        result = run("shapes", path, "--strict")
        assert result.exit_code == 0, (shape, result.stdout)


def test_linear_on_a_spatial_input_warns(run, tmp_path):
    path = spec(tmp_path, "input: [16, 1, 5]\nlayers:\n  - linear: {out_features: 10}\n")
    result = run("shapes", path)
    assert result.exit_code == 0
    assert "16x1x10" in result.stdout
    assert warning_lines(result.stdout) == [
        f"  {path}:3: 0 (linear) [unflattened-linear] this linear acts on the last axis only, so [16, 1, 5]"
        " becomes [16, 1, 10]; add flatten before it for a classifier head (ignore this warning when a"
        " per-position linear is meant)"]
    flat = spec(tmp_path, "input: [16, 1, 5]\nlayers:\n  - flatten\n  - linear: {out_features: 10}\n", "flat.yaml")
    assert run("shapes", flat, "--strict").exit_code == 0


def test_csv_warnings_on_stderr_name_file_and_line(run, tmp_path):
    path = spec(tmp_path, "input: [16, 1, 5]\nlayers:\n  - linear: {out_features: 10}\n")
    result = run("shapes", path, "--format", "csv")
    assert result.stderr.startswith(f"warning: {path}:3: 0 (linear) [unflattened-linear]: this linear acts")
    data = json.loads(run("shapes", path, "--format", "json").stdout)
    assert data["warnings"][0]["line"] == 3


def test_rf_warnings_name_file_and_line(run, tmp_path):
    path = spec(tmp_path, "input: [4, 8]\nlayers:\n  - convtranspose1d: {out_channels: 4, kernel_size: 3, stride: 2}\n")
    result = run("rf", path)
    assert result.exit_code == 0
    assert f"  {path}:3: 0 (convtranspose1d) [uneven-overlap] kernel span 3 is not a multiple of stride 2" \
        " along L: outputs receive 1 or 2 inputs" in result.stdout


def test_layers_keeps_brackets_in_argument_docs(run):
    result = run("layers", "conv2d")
    assert result.exit_code == 0
    assert "Zero padding: int, per axis, [before, after] pairs, 'same' or 'valid'." in result.stdout


def test_layer_help_lists_the_arguments_of_the_type(run):
    result = run("layer", "conv2d", "--help")
    assert result.exit_code == 0
    section = result.stdout[result.stdout.index("Arguments of conv2d:"):]
    assert section.splitlines()[:5] == [
        "Arguments of conv2d:",
        "  Convolution (cross-correlation), with groups, dilation and padding modes.",
        "",
        "  --out-channels      Number of output channels. [required]",
        "  --kernel-size       Kernel size, one int or one per spatial axis. [required]",
    ]
    assert "  --bias / --no-bias  Add a learnable bias. [default: true]" in section
    assert "Arguments of" not in run("layer", "--help").stdout


def test_layer_linear_takes_a_vector_input(run):
    result = run("layer", "linear", "-i", "2048", "--out-features", "1000", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["input_shape"] == [2048] and data["output_shape"] == [1000]
    assert data["totals"]["params"] == 2048 * 1000 + 1000
    refused = run("layer", "conv2d", "-i", "2048", "--out-channels", "3", "--kernel-size", "3")
    assert refused.exit_code == 2
    assert refused.stderr == "error: conv2d: expects an input of shape [C, H, W], got [2048] (a spatial layer after flatten?)\n"


def test_erf_takes_at_like_rf(run):
    path = str(EXAMPLES / "lenet.yaml")
    by_at = run("erf", path, "--at", "3", "--samples", "2", "--format", "json")
    by_layer = run("erf", path, "--layer", "3", "--samples", "2", "--format", "json")
    assert by_at.exit_code == 0, by_at.stderr
    assert json.loads(by_at.stdout) == json.loads(by_layer.stdout)
    assert json.loads(by_at.stdout)["path"] == "3"


def test_rf_column_has_thousands_separators(run, tmp_path):
    path = spec(tmp_path, "input: [1, 3000]\nlayers:\n  - conv1d: {out_channels: 1, kernel_size: 1500}\n")
    result = run("shapes", path)
    row = next(line for line in result.stdout.splitlines() if line.startswith("0 "))
    assert row.split()[-2:] == ["1,500", "1"]
    assert "| 1,500 | 1 |" in run("shapes", path, "--format", "markdown").stdout
