"""Issue #10's spec constructs: expressions, YAML's floats and commas, torchvision's paths."""

from __future__ import annotations

import pytest

from conftest import report_of
from convcalc.errors import SpecError
from convcalc.spec.expressions import evaluate, make_divisible


@pytest.mark.parametrize(("text", "expected"), [
    ("round($x)", 2),  # Python's round: half to even
    ("round(3.5)", 4),
    ("round($y, 1)", 0.1),
    ("ceil($x)", 3),
    ("floor($x)", 2),
    ("int(-2.7)", -2),
    ("abs(-$x)", 2.5),
    ("make_divisible(32 * 0.75, 8)", 24),
    ("make_divisible(3, 8)", 8),
    ("make_divisible(10, 8, min_value=16)", 16),
    ("max(8, 4)", 8),
])
def test_functions(text, expected):
    assert evaluate(text, {"x": 2.5, "y": 0.14}) == expected


@pytest.mark.parametrize(("v", "divisor", "expected"), [
    # torchvision's _make_divisible, written out: max(d, int(v + d/2) // d * d), +d if below 0.9 v
    (16 * 1.0, 8, 16), (24 * 0.75, 8, 24), (72 * 0.25, 8, 24), (20, 8, 24), (91, 8, 88), (17, 8, 16),
])
def test_make_divisible_matches_torchvision(v, divisor, expected):
    assert make_divisible(v, divisor) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("ceil('a')", "ceil() takes a number (got 'a')"),
    ("ceil(1, 2)", "ceil() takes 1 arguments (got 2)"),
    ("make_divisible(8)", "make_divisible() takes 2 to 3 arguments (got 1)"),
    ("make_divisible(8, 0)", "make_divisible's divisor must be positive (got 0)"),
    ("round(1, ndigits=2)", "round() takes no argument named 'ndigits'"),
])
def test_function_errors(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(text, {})


def test_a_quoted_call_is_an_expression_and_exponent_floats_are_numbers():
    report = report_of("""
input: [3, 8, 8]
vars: {eps: 1e-3}
layers:
  - conv2d: {out_channels: "max(8, 4)", kernel_size: 1}
  - batchnorm2d: {eps: $eps}
  - batchnorm2d: {eps: 1E-5}
""")
    assert report.rows[0].output_shape == (8, 8, 8)
    assert report.rows[1].node.args["eps"] == 1e-3
    assert report.rows[2].node.args["eps"] == 1e-5


def test_quoted_exponent_stays_text():
    with pytest.raises(SpecError, match=r"'eps' must be a number > 0 \(got '1e-6'\)"):
        report_of('input: [3, 8, 8]\nlayers:\n  - batchnorm2d: {eps: "1e-6"}\n')


def test_yaml_comma_in_a_call_is_explained(run, tmp_path):
    spec = tmp_path / "comma.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: max(8, 4), kernel_size: 1}\n")
    result = run("shapes", str(spec))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {spec}:3:28: YAML split the expression at its comma: 'max(8' is only its start;"
        ' quote the whole expression: "max(8, 4)"')


SE = """
input: [8, 16, 16]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - parallel:
      merge: mul
      branches:
        - []
        - [adaptiveavgpool2d: {output_size: 1}, conv2d: {out_channels: 2, kernel_size: 1}, relu,
           conv2d: {out_channels: 8, kernel_size: 1}, sigmoid]
  - conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
"""


def test_se_gate_broadcasts_counts_no_macs_and_sees_the_whole_input(run, tmp_path):
    report = report_of(SE)
    mul = next(r for r in report.rows if r.path == "1.mul")
    assert mul.input_shapes == ((8, 16, 16), (8, 1, 1))
    assert mul.output_shape == (8, 16, 16) and mul.macs == 0 and mul.params == 0
    assert all(f.covers_whole(16) for f in mul.field) and not report.warnings
    spec = tmp_path / "se.yaml"
    spec.write_text(SE)
    table = run("shapes", str(spec), "-f", "markdown").stdout
    assert "| 18 all | 0 |" in table
    rf = run("rf", str(spec), "--at", "2").stdout
    assert "Every position's field is the whole input" in rf


def test_shapes_that_cannot_broadcast_name_both_branches():
    with pytest.raises(SpecError, match=r"mul needs shapes that broadcast: branch 0.0 gives \[4, 8, 8\] but"
                                        r" branch 0.1 gives \[3, 1, 1\]"):
        report_of("input: [4, 8, 8]\nlayers:\n  - parallel: {merge: mul, branches: [[identity],"
                  " [conv2d: {out_channels: 3, kernel_size: 8}]]}\n")
