"""Issue #10's spec constructs: expressions, YAML's floats and commas, torchvision's paths."""

from __future__ import annotations

import re

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


# --- channel split ----------------------------------------------------------------------------

SHUFFLE_UNIT = """
input: [8, 6, 6]
layers:
  - parallel:
      split: 2
      merge: concat
      branches:
        - []
        - name: branch2
          layers:
            - conv2d: {out_channels: 4, kernel_size: 1, bias: false}
            - batchnorm2d
            - relu
            - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, groups: 4, bias: false}
  - channelshuffle: {groups: 2}
  - parallel:
      split: [3, 5]
      merge: concat
      branches:
        - [conv2d: {out_channels: 2, kernel_size: 3, padding: 1}]
        - []
"""


def test_split_lowers_to_one_narrow_per_branch_before_its_layers():
    report = report_of(SHUFFLE_UNIT)
    rows = [(r.path, r.type, r.output_shape) for r in report.rows]
    assert rows[:2] == [("0.split.0", "narrow", (4, 6, 6)), ("0.split.1", "narrow", (4, 6, 6))]
    assert rows[-4:] == [("2.split.0", "narrow", (3, 6, 6)), ("2.0.0", "conv2d", (2, 6, 6)),
                         ("2.split.1", "narrow", (5, 6, 6)), ("2.concat", "concat", (7, 6, 6))]
    graph = report_of(SHUFFLE_UNIT).rows
    split0, split1 = (r.node for r in graph[:2])
    assert split0.inputs == split1.inputs == (-1,)  # both parts read the fork's input
    assert (split0.args["split"], split0.args["index"]) == (2, 0)
    conv = next(r for r in graph if r.path == "0.branch2.0")
    assert conv.node.inputs == (1,) and conv.input_shapes == ((4, 6, 6),)
    concat = next(r for r in graph if r.path == "0.concat")
    assert concat.node.inputs == (0, graph.index(next(r for r in graph if r.path == "0.branch2.3")))
    assert [r.node.args["index"] for r in graph if r.path.startswith("2.split")] == [0, 1]
    assert all(r.macs == 0 and r.params == 0 for r in graph if r.type == "narrow")


@pytest.mark.parametrize(("text", "message"), [
    ("{split: 2, index: 2}", "'index' must be below the 2 parts of split (got 2)"),
    ("{split: 2}", "missing required argument 'index' (split and index go together)"),
    ("{start: 0, length: 2, split: 2, index: 0}", "give either start and length, or split and index, not both"),
    ("{length: 2}", "missing required argument 'start'"),
    ("{split: [], index: 0}", "'split' must be a positive int (that many equal parts) or a list of positive"
                              " part sizes (got [])"),
])
def test_narrow_argument_forms(text, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        report_of(f"input: [4, 3, 3]\nlayers:\n  - narrow: {text}\n")


def test_narrow_split_sizes_take_their_offsets():
    report = report_of("input: [10, 3]\nlayers:\n  - narrow: {split: [2, 5, 3], index: 1}\n"
                       "  - narrow: {split: 5, index: 4}\n")
    assert [r.output_shape for r in report.rows] == [(5, 3), (1, 3)]


def torch_shuffle_unit():
    """SHUFFLE_UNIT written independently with torch.chunk, torch.split and torch.cat."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Unit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branch2 = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                         nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False))
            self.head = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):
            x1, x2 = x.chunk(2, dim=1)
            x = torch.cat((x1, self.branch2(x2)), dim=1)
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
            a, b = torch.split(x, [3, 5], dim=1)
            return torch.cat((self.head(a), b), dim=1)

    return torch, Unit()


def test_split_forward_matches_torch_chunk_and_split():
    torch, unit = torch_shuffle_unit()
    import numpy as np

    from convcalc.numeric.runner import input_array, run
    from convcalc.spec.parser import parse_text
    from torch_oracle import convcalc_params, torch_network

    network = parse_text(SHUFFLE_UNIT, "unit.yaml")
    report = report_of(SHUFFLE_UNIT)
    params = convcalc_params(network, report, seed=3, dtype=np.float64)
    names = {"0.branch2.0": "branch2.0", "0.branch2.1": "branch2.1", "0.branch2.3": "branch2.3",
             "2.0.0": "head"}
    state = {f"{names[path]}.{key}": torch.from_numpy(value)
             for path, values in params.items() if path in names for key, value in values.items()}
    unit.double().load_state_dict(state, strict=False)
    x = input_array(network.input_shape, 2, seed=3, dtype="float64")
    y = run(network, x, lambda step: None, seed=3)
    with torch.no_grad():
        expected = unit.eval()(torch.from_numpy(x)).numpy()
        oracle = torch_network(network, report, params, dtype=torch.float64)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(oracle, expected, rtol=1e-12, atol=1e-12)
