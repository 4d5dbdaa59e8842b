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


# --- receptive fields on outputs shorter than the period (the repros) ---------------

REPRO_1 = ("input: [1, 1]\nlayers:\n"
           "  - convtranspose1d: {out_channels: 1, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}\n"
           "  - conv1d: {out_channels: 1, kernel_size: 1, stride: 3}\n")
REPRO_2 = "input: [1, 1]\nlayers:\n  - convtranspose1d: {out_channels: 1, kernel_size: 4, stride: 3, padding: 1}\n"


def test_repro_fields_are_over_the_outputs_there_are(run, tmp_path):
    one = json.loads(run("shapes", spec(tmp_path, REPRO_1), "--format", "json").stdout)
    # the one output reads output 0 of the transposed conv, which reads input 0 alone
    assert one["layers"][1]["receptive_field"]["size"] == [1]
    two = json.loads(run("shapes", spec(tmp_path, REPRO_2, "two.yaml"), "--format", "json").stdout)
    # (1 - 1)*3 - 2 + 4 = 2 outputs, each reading input 0 alone; the phase reading two does not exist
    assert two["layers"][0]["receptive_field"]["size"] == [1]
    assert [w["code"] for w in two["warnings"]] == []


def test_repro_rf_explanation(run, tmp_path):
    result = run("rf", spec(tmp_path, REPRO_2))
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[:7] == [
        "0 (convtranspose1d): input 1x1 -> output 1x2",
        "                            L",
        "field size (max)            1",
        "jump                      1/3",
        "start                       0",
        "period (outputs)   3 (2 here)",
        "unreached phases       0 of 2",
    ]
    assert "inputs/output" not in result.stdout  # every output reads one input
    data = json.loads(run("rf", spec(tmp_path, REPRO_2), "--format", "json").stdout)["axes"][0]
    assert (data["size"], data["size_min"], data["period"], data["layer_inputs_per_output"]) == (1, 1, 3, [1, 1])


def test_empty_field_on_a_short_axis_counts_the_positions_there_are(run, tmp_path):
    # stride 4 with output_padding 2 on one pixel: 3 outputs, only output 0 is written
    path = spec(tmp_path, "input: [1, 1]\nlayers:\n"
                "  - convtranspose1d: {out_channels: 1, kernel_size: 1, stride: 4, output_padding: 2}\n")
    assert warning_lines(run("shapes", path).stdout) == [
        f"  {path}:3: 0 (convtranspose1d) [uneven-overlap] kernel span 1 is not a multiple of stride 4 along L:"
        " outputs receive 0 or 1 inputs (checkerboard artefacts); use a kernel divisible by the stride (e.g. 4),"
        " or resize + conv",
        f"  {path}:3: 0 (convtranspose1d) [empty-field] 2 of the 3 output positions along L have an empty"
        " receptive field (no input reaches them, they hold only the bias); use a kernel span of at least the"
        " stride, with dilation 1",
    ]


def test_misaligned_branches_through_the_cli(run, tmp_path):
    unet = spec(tmp_path, "input: [8, 32, 32]\nlayers:\n  - parallel:\n      branches:\n        - []\n"
                "        - [maxpool2d: {kernel_size: 2}, convtranspose2d: {out_channels: 8, kernel_size: 2, stride: 2}]\n")
    assert run("shapes", unet, "--strict").exit_code == 0
    shifted = spec(tmp_path, "input: [8, 32, 32]\nlayers:\n  - parallel:\n      merge: add\n      branches:\n"
                   "        - [conv2d: {out_channels: 8, kernel_size: 3, padding: 1}]\n"
                   "        - [avgpool2d: {kernel_size: 2}, upsample: {scale_factor: 2}]\n", "shifted.yaml")
    result = run("shapes", shifted)
    # avgpool 2/2 centres pooled pixel j on 2j + 0.5, and nearest upsampling repeats it at 2j and 2j + 1:
    # +0.5 and -0.5 from the conv's centres, no shift. So no warning here either.
    assert "misaligned-branches" not in result.stdout
    real = spec(tmp_path, "input: [8, 32, 32]\nlayers:\n  - parallel:\n      merge: add\n      branches:\n"
                "        - [conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}]\n"
                "        - [avgpool2d: {kernel_size: 2}]\n", "real.yaml")
    assert warning_lines(run("shapes", real).stdout) == [
        f"  {real}:3: 0.add (add) [misaligned-branches] branch 0.1's field centres lie 0.5 input pixels after"
        " (along H and W) those of branch 0.0, on average over a period (off-centre windows: 0.1.0 (+0.5)),"
        " so the merged features are shifted; centre every window in both branches (odd kernels with padding"
        " (k_eff - 1) / 2) or shift both alike",
    ]
