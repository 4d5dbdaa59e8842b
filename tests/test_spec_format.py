"""The spec format: items, reserved keys, paths, branches, blocks and expressions."""

from __future__ import annotations

import pytest

from conftest import report_of
from convcalc.errors import SpecError
from convcalc.spec.expressions import evaluate


def paths(text: str) -> list[str]:
    return [row.path for row in report_of(text).rows]


def test_items_are_numbered_and_names_replace_indices():
    spec = """
input: [3, 8, 8]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: stem}
  - relu
  - {name: head, flatten: null}
"""
    assert paths(spec) == ["stem", "1", "head"]


def test_unnamed_repeat_splices_copies_and_named_repeat_groups_them():
    spec = """
input: [3, 8, 8]
layers:
  - relu: {repeat: 2}
  - conv2d: {out_channels: 3, kernel_size: 1, repeat: 2, name: convs}
  - sigmoid
  - tanh: {repeat: 0}
"""
    assert paths(spec) == ["0", "1", "convs.0", "convs.1", "3"]


def test_when_false_drops_the_item_without_taking_an_index():
    spec = """
vars: {deep: false}
input: [3, 8, 8]
layers:
  - relu: {when: $deep}
  - sigmoid
  - tanh: {when: not $deep}
"""
    assert paths(spec) == ["0", "1"]


def test_residual_paths_shortcut_and_after():
    spec = """
input: [8, 16, 16]
layers:
  - residual:
      name: block
      body:
        - conv2d: {name: conv1, out_channels: 16, kernel_size: 3, stride: 2, padding: 1}
        - relu
      shortcut:
        - conv2d: {out_channels: 16, kernel_size: 1, stride: 2}
      shortcut_name: downsample
      after: [relu]
"""
    report = report_of(spec)
    assert [r.path for r in report.rows] == [
        "block.conv1", "block.1", "block.downsample.0", "block.add", "block.2",
    ]
    add = report.rows[3]
    assert add.type == "add"
    assert add.input_shape == ((16, 8, 8), (16, 8, 8))
    assert report.output_shape == (16, (16 + 2 - 3) // 2 + 1, (16 + 2 - 3) // 2 + 1)


def test_residual_list_form_has_an_identity_shortcut():
    report = report_of("""
input: [4, 5, 5]
layers:
  - residual: [conv2d: {out_channels: 4, kernel_size: 3, padding: 1}]
""")
    assert [r.path for r in report.rows] == ["0.0", "0.add"]
    assert report.rows[-1].input_shape == ((4, 5, 5), (4, 5, 5))


def test_parallel_concat_named_and_identity_branches():
    report = report_of("""
input: [6, 10, 10]
layers:
  - parallel:
      name: mix
      branches:
        - [conv2d: {out_channels: 2, kernel_size: 1}]
        - name: wide
          layers: [conv2d: {out_channels: 3, kernel_size: 3, padding: 1}]
        - []
""")
    assert [r.path for r in report.rows] == ["mix.0.0", "mix.wide.0", "mix.concat"]
    assert report.output_shape == (2 + 3 + 6, 10, 10)


def test_blocks_take_arguments_defaults_and_expressions():
    report = report_of("""
input: [8, 16, 16]
blocks:
  bottleneck:
    args: {planes: ~, expansion: 4}
    layers:
      - conv2d: {name: reduce, out_channels: $planes, kernel_size: 1}
      - conv2d: {name: expand, out_channels: $planes * $expansion, kernel_size: 1}
layers:
  - bottleneck: {name: b1, planes: 2}
  - bottleneck: {planes: 3, expansion: 2, repeat: 2}
""")
    assert [r.path for r in report.rows] == [
        "b1.reduce", "b1.expand", "1.reduce", "1.expand", "2.reduce", "2.expand",
    ]
    assert [r.output_shape[0] for r in report.rows] == [2, 2 * 4, 3, 3 * 2, 3, 3 * 2]
    # expand after reduce: 1x1 conv with bias, C_in = planes
    assert report.rows[1].params == 2 * 4 * 2 + 2 * 4


def test_input_accepts_a_cxhxw_string():
    assert report_of("input: 3x7x9\nlayers: [relu]").input_shape == (3, 7, 9)


def test_json_specs_parse_like_yaml():
    text = '{"input": [1, 4, 4], "layers": [{"conv2d": {"out_channels": 2, "kernel_size": 3}}]}'
    assert report_of(text).output_shape == (2, 2, 2)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$planes * 4", 64 * 4),
        ("$planes // 3", 64 // 3),
        ("$planes / 2", 32),
        ("$planes / 3", 64 / 3),
        ("$stride != 1 or $planes == 64", True),
        ("max($planes, 100)", 100),
        ("$planes if $stride == 2 else 0", 64),
        ("-$stride", -2),
    ],
)
def test_expressions(expression, expected):
    assert evaluate(expression, {"planes": 64, "stride": 2}) == expected


@pytest.mark.parametrize(
    "expression",
    ["__import__('os')", "$planes.__class__", "open('x')", "[x for x in ()]", "lambda: 1", "$nope"],
)
def test_expressions_refuse_anything_else(expression):
    with pytest.raises(SpecError):
        evaluate(expression, {"planes": 64})


def test_names_must_be_unique_among_siblings():
    with pytest.raises(SpecError, match="used twice"):
        report_of("input: [1, 4, 4]\nlayers:\n  - relu: {name: a}\n  - tanh: {name: a}\n")


def test_block_that_uses_itself_is_refused():
    with pytest.raises(SpecError, match=r"uses itself \(a -> b -> a\)"):
        report_of("""
input: [1, 4, 4]
blocks:
  a: {layers: [b]}
  b: {layers: [a]}
layers: [a]
""")


def test_leading_zero_integers_keep_yaml_1_1_octal_meaning():
    # 010 is octal 8 in YAML 1.1 (PyYAML); the fast integer path must not read it as 10.
    report = report_of("input: [1, 010, 8]\nlayers: [relu]")
    assert report.input_shape == (1, 8, 8)
