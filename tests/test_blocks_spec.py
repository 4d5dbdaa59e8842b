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
    # issue #13: located at the layer where the branches part, with both shapes
    with pytest.raises(SpecError, match=r"0.1.0 \(conv2d\): mul needs shapes that broadcast \(equal, or 1 on an"
                                        r" axis\), and the branches part here: this layer gives \[3, 1, 1\] from"
                                        r" \[4, 8, 8\], while branch 0.0 gives \[4, 8, 8\] at 0.mul"):
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


# --- paths as torchvision writes them -----------------------------------------------------------

MBCONV = """
input: [8, 16, 16]
blocks:
  se:
    args: {squeeze: ~}
    parallel:
      merge: mul
      branches:
        - []
        - name: null
          layers:
            - adaptiveavgpool2d: {name: avgpool, output_size: 1}
            - conv2d: {name: fc1, out_channels: $squeeze, kernel_size: 1}
            - relu: {name: activation}
            - conv2d: {name: fc2, out_channels: 8, kernel_size: 1}
            - sigmoid: {name: scale_activation}
  unit:
    args: {stride: 1, p: 0.0}
    residual:
      skip: $stride == 1
      body:
        - sequential:
            name: block
            layers:
              - conv2d: {out_channels: 8, kernel_size: 3, stride: $stride, padding: 1}
              - se: {squeeze: 2}
        - stochasticdepth: {name: stochastic_depth, p: $p, mode: row}
  stage:
    args: {n: ~, depth: ~}
    layers:
      - unit: {name: block$n-0, stride: 2}
      - unit: {name: "block$n-$(i + 1)", p: $(0.25 * (i + 1)), repeat: {count: $depth - 1, index: i}}
layers:
  - stage: {name: block1, n: 1, depth: 3}
"""


def test_nameless_branch_skip_and_dashed_names_give_torchvision_paths():
    rows = report_of(MBCONV).rows
    paths = [r.path for r in rows]
    gate = ["avgpool", "fc1", "activation", "fc2", "scale_activation", "mul"]
    first = ["block1.block1-0.block.0", *(f"block1.block1-0.block.1.{n}" for n in gate),
             "block1.block1-0.stochastic_depth"]
    assert paths[:8] == first  # stride 2: skip is false, so no add, and the same paths
    for j in (1, 2):
        block = [p.replace("block1-0", f"block1-{j}") for p in first] + [f"block1.block1-{j}.add"]
        assert paths[8 * j + j - 1: 8 * j + j - 1 + 9] == block
    assert len(paths) == len(set(paths)) == 8 + 2 * 9
    drop = [r.node.args["p"] for r in rows if r.type == "stochasticdepth"]
    assert drop == [0.0, 0.25, 0.5]  # the repeat's index reaches the copies' arguments
    add = next(r for r in rows if r.path == "block1.block1-1.add")
    assert [rows[i].path for i in add.node.inputs] == ["block1.block1-1.stochastic_depth",
                                                        "block1.block1-0.stochastic_depth"]


def test_skip_true_is_the_plain_residual():
    plain = report_of("input: [4, 8]\nlayers:\n  - residual: {body: [conv1d: {out_channels: 4, kernel_size: 1}]}\n")
    skip = report_of("input: [4, 8]\nvars: {s: 1}\nlayers:\n  - residual: {skip: $s == 1, body:"
                     " [conv1d: {out_channels: 4, kernel_size: 1}]}\n")
    assert plain.rows == skip.rows and [r.path for r in plain.rows] == ["0.0", "0.add"]


def test_skip_false_drops_the_shortcut_and_keeps_after():
    report = report_of("input: [4, 8]\nlayers:\n  - residual:\n      skip: false\n      body: [relu]\n"
                       "      shortcut: [conv1d: {out_channels: 4, kernel_size: 1}]\n      after: [sigmoid]\n")
    assert [(r.path, r.type) for r in report.rows] == [("0.0", "relu"), ("0.1", "sigmoid")]


def test_repeat_index_with_a_name_that_does_not_use_it_groups_the_copies():
    report = report_of("input: [4, 8]\nlayers:\n  - relu: {name: act, repeat: {count: 2, index: i}}\n"
                       "  - leakyrelu: {negative_slope: $(0.1 * (i + 1)), repeat: {count: 2, index: i}}\n")
    assert [r.path for r in report.rows] == ["act.0", "act.1", "1", "2"]
    assert [r.node.args["negative_slope"] for r in report.rows[2:]] == [0.1, 0.2]


def test_a_name_may_hold_dashes_but_not_start_with_one():
    assert report_of("input: [4, 8]\nlayers:\n  - relu: {name: block1-0}\n").rows[0].path == "block1-0"
    with pytest.raises(SpecError, match=r"'name' must be letters, digits, _ and - \(no dots\), got '-x'"):
        report_of("input: [4, 8]\nlayers:\n  - relu: {name: '-x'}\n")


def test_a_nameless_branch_clashing_with_the_merge_row_is_refused():
    with pytest.raises(SpecError, match=r"the path '0.add' is taken twice: by this add and by the relu at line 3"):
        report_of("input: [4, 8]\nlayers:\n  - parallel: {merge: add, branches: [[], {name: null, layers:"
                  " [relu: {name: add}]}]}\n")


# --- layernorm2d ----------------------------------------------------------------------------------

def test_layernorm2d_counts_a_weight_and_bias_per_channel():
    report = report_of("input: [96, 56, 56]\nlayers:\n  - layernorm2d: {eps: 1e-6}\n"
                       "  - layernorm2d: {normalized_shape: 96, bias: false}\n"
                       "  - layernorm2d: {elementwise_affine: false}\n")
    assert [(r.params, r.buffers, r.macs) for r in report.rows] == [(2 * 96, 0, 0), (96, 0, 0), (0, 0, 0)]
    assert report.rows[0].field == report.rows[2].field  # per position: the field passes through


@pytest.mark.parametrize(("text", "message"), [
    ("input: [8, 4, 4]\nlayers:\n  - layernorm2d: {normalized_shape: 6}\n",
     "normalized_shape=6 but the input has 8; leave normalized_shape out to infer it"),
    ("input: [8, 4]\nlayers:\n  - layernorm2d\n", "expects an input of shape [C, H, W], got [8, 4]"),
])
def test_layernorm2d_errors(text, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        report_of(text)
