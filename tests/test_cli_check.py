"""`convcalc check` through the real CLI: statuses, messages, JSON, several specs."""

from __future__ import annotations

import json

from conftest import EXAMPLES, ROOT

PARAMS = 8 * 3 * 3 * 3 + 8 + 8 * 10 + 10  # conv 3->8 k3 with bias, linear 8->10
MACS = 32 * 32 * 8 * 3 * 3 * 3 + 8 * 10

SPEC = """name: small
input: [3, 32, 32]
budget:
  max_params: 1K
  expect_output: [10]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - relu
  - conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1, bias: false, groups: 8}
  - adaptiveavgpool2d: {output_size: 1}
  - flatten
  - linear: {out_features: 10}
"""
PARAMS += 8 * 1 * 3 * 3
MACS += 16 * 16 * 8 * 1 * 3 * 3


def write(tmp_path, text=SPEC, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_count_wording(run, tmp_path):
    spec = write(tmp_path)
    one = run("check", spec, "--ignore", "small-head-field", "--max-params", "1", "--max-macs", "1G",
              "--expect-output", "10")
    assert one.stdout.splitlines()[0] == f"FAIL {spec} (1 of 3 checks failed)"
    single = write(tmp_path, SPEC.replace("  max_params: 1K\n  expect_output: [10]\n", "  max_params: 1\n"),
                   "single.yaml")
    assert run("check", single, "--ignore", "small-head-field").stdout.splitlines()[0] == (
        f"FAIL {single} (1 check failed)")
    assert run("check", single, "--ignore", "small-head-field", "--max-params", "1M").stdout == (
        f"PASS {single} (1 check holds)\n")
    assert run("check", single, "--ignore", "small-head-field", "--max-params", "1",
               "--expect-output", "3").stdout.splitlines()[0] == f"FAIL {single} (all 2 checks failed)"


def test_pass_with_spec_budget(run, tmp_path):
    spec = write(tmp_path)
    result = run("check", spec, "--ignore", "small-head-field")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"PASS {spec} (2 checks hold)\n"


def test_failure_lists_measured_value_and_limit(run, tmp_path):
    spec = write(tmp_path)
    result = run("check", spec, "--max-macs", "0.1M", "--max-params", "100", "--ignore", "small-head-field")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL {spec} (2 of 3 checks failed)",
        f"  failed: params {PARAMS:,} > limit 100 (--max-params)",
        f"  failed: macs {MACS:,} > limit 100,000 (--max-macs)",
    ]


def test_strict_turns_warnings_into_failures(run, tmp_path):
    spec = write(tmp_path)
    assert run("check", spec).exit_code == 0
    result = run("check", spec, "--strict")
    assert result.exit_code == 1
    # the field after 3x3, then 3x3/2: 1 + 2 + 2 = 5 of 32, 15%
    assert result.stdout.splitlines() == [
        f"FAIL {spec} (2 checks hold, 1 warning)",
        f"  failed: {spec}:10: 3 (adaptiveavgpool2d) [small-head-field]: the features this head pools each"
        " see 5x5 input pixels of the 32x32 input, less than half (15% of it along H and W), so none combines"
        " distant parts of it; add downsampling or dilation before the head, or use a smaller input",
    ]
    warned = run("check", spec)
    assert warned.stdout.splitlines()[1].startswith(f"  warning: {spec}:10: 3 (adaptiveavgpool2d) [small-head-field]:")
    silenced = write(tmp_path, SPEC.replace("budget:", "ignore: [small-head-field]\nbudget:"), "quiet.yaml")
    assert run("check", silenced, "--strict").exit_code == 0


def test_bad_input_is_status_2_and_other_specs_are_still_checked(run, tmp_path):
    good = write(tmp_path)
    bad = write(tmp_path, SPEC.replace("max_params: 1K", "max_params: lots"), "bad.yaml")
    result = run("check", good, bad, "--max-params", "1")
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0] == f"FAIL {good} (1 of 2 checks failed, 1 warning)"
    assert f"ERROR {bad}" in result.stdout
    assert result.stderr.splitlines()[0] == (
        f"error: {bad}:4:3: budget 'max_params' must be a number like 25.6M or 64MiB (got 'lots';"
        " suffixes: K, M, G, T = 1000s)")


def test_unknown_ignore_code_in_spec_points_at_it(run, tmp_path):
    spec = write(tmp_path, SPEC.replace("budget:", "ignore: [gridding, unread-pixel]\nbudget:"))
    result = run("check", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {spec}:3:20: ignore: unknown warning code 'unread-pixel';"
                                    " did you mean 'unread-pixels'?")


def test_bad_option_value_is_status_2(run, tmp_path):
    result = run("check", write(tmp_path), "--max-activation-bytes", "2Q")
    assert result.exit_code == 2
    assert "must be a number like 25.6M or 64MiB (got '2Q'" in result.stderr


def test_json_and_batch_from_flags(run, tmp_path):
    spec = write(tmp_path)
    result = run("check", spec, "-f", "json", "-b", "4", "--dtype", "float16",
                 "--max-activation-bytes", "1MiB", "--expect-output", "10")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["status"] == 0
    (one,) = data["specs"]
    assert (one["batch_size"], one["dtype"]) == (4, "float16")
    checks = {c["name"]: c for c in one["checks"]}
    activations = 4 * 2 * (8 * 32 * 32 * 2 + 8 * 16 * 16 + 8 + 8 + 10)  # outputs of all 6 layers
    assert checks["max_activation_bytes"]["measured"] == activations
    assert checks["max_activation_bytes"]["limit"] == 2**20
    assert checks["expect_output"] == {"name": "expect_output", "output": "5", "measured": [10], "limit": [10],
                                       "ok": True, "origin": "--expect-output",
                                       "text": "output 10 == expected 10 (--expect-output)"}


GRAPH = """name: two_heads
input: [3, 16, 16]
outputs: [p3, p4]
budget:
  expect_output: [[8, 8, 8], 8x4x4]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1, name: p3}
  - conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1, name: p4}
"""


def test_several_outputs_from_the_spec(run, tmp_path):
    spec = write(tmp_path, GRAPH)
    result = run("check", spec)
    assert (result.exit_code, result.stdout) == (0, f"PASS {spec} (2 checks hold)\n")


def test_several_outputs_repeat_the_option(run, tmp_path):
    spec = write(tmp_path, GRAPH)
    result = run("check", spec, "--expect-output", "8x8x8", "--expect-output", "8x2x2")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL {spec} (1 of 2 checks failed)",
        "  failed: output p4 8x4x4 != expected 8x2x2 (--expect-output)",
    ]


def test_one_expected_shape_for_two_outputs_fails(run, tmp_path):
    spec = write(tmp_path, GRAPH)
    result = run("check", spec, "--expect-output", "8x8x8")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL {spec} (1 of 2 checks failed)",
        "  failed: output p4 8x4x4 has no expected shape: the network has 2 outputs, give one shape per"
        " output (--expect-output)",
    ]
    result = run("check", spec, "--expect-output", "8x8x8", "--expect-output", "8x4x4", "--expect-output", "10")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"FAIL {spec} (1 of 3 checks failed)",
        "  failed: expected 10 for output 3, but the network has 2 outputs (--expect-output)",
    ]


def test_several_outputs_json(run, tmp_path):
    spec = write(tmp_path, GRAPH)
    result = run("check", spec, "-f", "json", "--expect-output", "8x8x8", "--expect-output", "[8, 4, 4]")
    assert result.exit_code == 0, result.output
    (one,) = json.loads(result.stdout)["specs"]
    assert one["checks"] == [
        {"name": "expect_output", "output": "p3", "measured": [8, 8, 8], "limit": [8, 8, 8], "ok": True,
         "origin": "--expect-output", "text": "output p3 8x8x8 == expected 8x8x8 (--expect-output)"},
        {"name": "expect_output", "output": "p4", "measured": [8, 4, 4], "limit": [8, 4, 4], "ok": True,
         "origin": "--expect-output", "text": "output p4 8x4x4 == expected 8x4x4 (--expect-output)"},
    ]
    result = run("check", spec, "-f", "json", "--expect-output", "8x8x8", "--expect-output", "8x4x4",
                 "--expect-output", "3")
    extra = json.loads(result.stdout)["specs"][0]["checks"][-1]
    assert extra == {"name": "expect_output", "output": None, "measured": None, "limit": [3], "ok": False,
                     "origin": "--expect-output",
                     "text": "expected 3 for output 3, but the network has 2 outputs (--expect-output)"}


def test_bad_expected_outputs_in_the_spec(run, tmp_path):
    spec = write(tmp_path, GRAPH.replace("[[8, 8, 8], 8x4x4]", "[[8, 8, 8], [8, 0]]"))
    result = run("check", spec)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {spec}:5:3: budget 'expect_output' must be a shape without the batch like 1000 or 64x56x56,"
        " or a list of them, one per output (got [[8, 8, 8], [8, 0]])")


def test_every_example_is_checkable(run):
    specs = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = run("check", *specs, "-f", "json")
    data = json.loads(result.stdout)
    assert [s["file"] for s in data["specs"]] == specs
    bad = [s["error"] for s in data["specs"] if s["error"]]
    assert result.exit_code in (0, 1), bad


def test_pre_commit_hook_runs_check():
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "convcalc check"
    assert hook["language"] == "python"


def test_check_options_cover_every_limit():
    from convcalc.budget import LIMITS
    from convcalc.cli.check import check

    options = {p.name for p in check.params}
    assert set(LIMITS) <= options
