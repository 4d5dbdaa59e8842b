"""The core walk: totals are the sums of the rows, batch and dtype scale what they should."""

from __future__ import annotations

import math

import pytest

from conftest import EXAMPLES, report_of
from convcalc.analysis import analyze
from convcalc.spec.parser import parse_text

SPEC = """
input: [3, 16, 16]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - batchnorm2d
  - relu
  - residual:
      body: [conv2d: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}]
  - flatten
  - linear: {out_features: 5}
"""


@pytest.mark.parametrize("name", ["resnet18.yaml", "lenet.yaml"])
def test_totals_are_the_sums_of_the_rows(name):
    report = analyze(parse_text((EXAMPLES / name).read_text(), name))
    for key in ("params", "buffers", "macs", "activation_bytes"):
        assert getattr(report.totals, key) == sum(getattr(r, key) for r in report.rows), key
    assert report.totals.flops == 2 * report.totals.macs


def test_batch_and_dtype_scale_memory_and_macs():
    one = report_of(SPEC)
    big = report_of(SPEC, batch_size=8, dtype="float16")
    assert big.totals.params == one.totals.params
    assert big.totals.macs == 8 * one.totals.macs
    elements = sum(math.prod(r.output_shape) for r in one.rows)
    assert one.totals.activation_bytes == elements * 4
    assert big.totals.activation_bytes == elements * 8 * 2
    assert big.totals.param_bytes == one.totals.params * 2


def test_counts_of_a_small_network_written_out():
    report = report_of(SPEC)
    conv1, bn, _, conv2, add, _, fc = report.rows
    assert conv1.params == 8 * 3 * 3 * 3 + 8
    assert bn.params == 2 * 8 and bn.buffers == 2 * 8 + 1
    assert conv2.params == 8 * 8 * 3 * 3
    assert conv2.macs == 16 * 16 * 8 * 8 * 3 * 3
    assert add.type == "add" and add.params == 0
    assert fc.params == 8 * 16 * 16 * 5 + 5 and fc.macs == 8 * 16 * 16 * 5


def test_merge_field_is_the_union_of_the_paths():
    report = report_of("""
input: [1, 64, 64]
layers:
  - parallel:
      merge: add
      branches:
        - [conv2d: {out_channels: 1, kernel_size: 7, padding: 3}]
        - [conv2d: {out_channels: 1, kernel_size: 3, padding: 1}]
""")
    merge = report.rows[-1]
    assert [f.size for f in merge.field] == [7, 7]
    assert [f.start for f in merge.field] == [0, 0]
    assert report.warnings == ()


def test_misaligned_branch_centres_are_flagged():
    report = report_of("""
input: [1, 16, 16]
layers:
  - parallel:
      merge: add
      branches:
        - [conv2d: {out_channels: 1, kernel_size: 3, padding: [[2, 0], [2, 0]]}]
        - [conv2d: {out_channels: 1, kernel_size: 3, padding: 1}]
""")
    codes = {w.code for w in report.warnings}
    assert "misaligned-branches" in codes
    merge = report.rows[-1]
    # Output 0 of branch one sees input [-2, 0], of branch two [-1, 1]: the union is [-2, 1].
    assert [f.size for f in merge.field] == [4, 4]
