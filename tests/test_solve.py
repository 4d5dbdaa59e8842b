"""Solvers: brute force over the conventions' formulas written out here, and PyTorch live."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convcalc.errors import SpecError
from convcalc.solve import progression_text, progressions, scan_inputs, solve_output_padding, solve_padding
from convcalc.spec.parser import parse_text


def out_size(n, k, s, d, total):
    """CONVENTIONS.md: floor((n + pl + pr - k_eff) / s) + 1, with k_eff = d*(k-1) + 1."""
    span = n + total - (d * (k - 1) + 1)
    return span // s + 1 if span >= 0 else 0


geometry = st.tuples(st.integers(1, 300), st.integers(1, 9), st.integers(1, 5), st.integers(1, 4))


@settings(max_examples=200, deadline=None)
@given(geometry, st.integers(1, 300))
def test_padding_is_the_smallest_that_works_and_symmetric_when_possible(geo, target):
    n, k, s, d = geo
    works = [p for p in range(0, (target + 1) * s + k * d + 1) if out_size(n, k, s, d, p) == target]
    if not works:
        with pytest.raises(SpecError, match=f"no padding gives {target} outputs"):
            solve_padding(n, k, s, d, target)
        return
    sol = solve_padding(n, k, s, d, target)
    total = sol.before + sol.after
    assert out_size(n, k, s, d, total) == target
    even = [p for p in works if p % 2 == 0]
    assert total == (even[0] if even else works[0])
    assert sol.after - sol.before in (0, 1)


@settings(max_examples=200, deadline=None)
@given(geometry, st.integers(0, 6))
def test_output_padding_inverts_the_conv(geo, p):
    n, k, s, d = geo
    assume(out_size(n, k, s, d, 2 * p) >= 1)
    sol = solve_output_padding(n, k, s, d, (p, p))
    m = out_size(n, k, s, d, 2 * p)
    assert sol.conv_output == m
    # transposed: (m - 1)*s - 2p + k_eff + op
    assert (m - 1) * s - 2 * p + d * (k - 1) + 1 + sol.output_padding == n
    assert 0 <= sol.output_padding < max(s, d)


@pytest.mark.torch
def test_output_padding_in_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, d, p in [(224, 3, 2, 1, 1), (57, 4, 3, 2, 2), (10, 5, 4, 1, 0), (33, 3, 2, 3, 3)]:
        sol = solve_output_padding(n, k, s, d, (p, p))
        x = torch.zeros(1, 1, n)
        y = torch.nn.Conv1d(1, 1, k, s, p, d)(x)
        back = torch.nn.ConvTranspose1d(1, 1, k, s, p, sol.output_padding, dilation=d)(y)
        assert (y.shape[-1], back.shape[-1]) == (sol.conv_output, n)


@pytest.mark.torch
def test_padding_in_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, d, target in [(224, 7, 2, 1, 112), (224, 4, 1, 1, 224), (31, 3, 2, 2, 16), (9, 2, 3, 1, 4)]:
        sol = solve_padding(n, k, s, d, target)
        x = torch.nn.functional.pad(torch.zeros(1, 1, n), (sol.before, sol.after))
        assert torch.nn.Conv1d(1, 1, k, s, 0, d)(x).shape[-1] == target


TWO_CONVS = """input: [1, 40]
layers:
  - conv1d: {out_channels: 1, kernel_size: 3, stride: 2}
  - conv1d: {out_channels: 1, kernel_size: 3, stride: 2}
"""


def test_scan_against_brute_force():
    scan = scan_inputs(parse_text(TWO_CONVS), 1, 60)
    valid, exact = [], []
    for n in range(1, 61):
        m = out_size(n, 3, 2, 1, 0)
        if m >= 1 and out_size(m, 3, 2, 1, 0) >= 1:
            valid.append(n)
            if (n - 3) % 2 == 0 and (m - 3) % 2 == 0:
                exact.append(n)
    assert scan.smallest_valid == valid[0] == 7
    assert list(scan.valid) == valid
    assert list(scan.exact) == exact
    assert progression_text(scan.exact) == "7..59 step 4"


def test_scan_one_axis_and_merges():
    text = """input: [1, 20, 9]
layers:
  - parallel:
      merge: add
      branches:
        - [conv2d: {out_channels: 1, kernel_size: 3, stride: 2, padding: 1}]
        - [conv2d: {out_channels: 1, kernel_size: 1, stride: 2}]
"""
    scan = scan_inputs(parse_text(text), 1, 12, axis=0)
    # both branches give ceil(n/2) rows; every size works, none leaves a pixel unread
    assert scan.valid == tuple(range(1, 13))
    with pytest.raises(SpecError, match="axis 3 does not exist"):
        scan_inputs(parse_text(text), 1, 12, axis=2)


def test_progressions():
    assert progressions((1, 2, 3, 7, 9, 11, 20)) == [(1, 3, 1), (7, 11, 2), (20, 20, 0)]
    assert progression_text(()) == "none"


def test_cli_formats(run, tmp_path):
    result = run("solve", "padding", "-i", "224", "-k", "7", "-s", "2", "-o", "112", "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["padding_before"], data["padding_after"], data["symmetric"]) == (3, 3, True)
    csv = run("solve", "output-padding", "-i", "224", "-k", "3", "-s", "2", "-p", "1", "-f", "csv").stdout
    assert csv.splitlines() == ["input,kernel_size,stride,dilation,padding,conv_output,output_padding",
                                "224,3,2,1,1,112,1"]
    md = run("solve", "padding", "-i", "224", "-k", "4", "-o", "224", "-f", "markdown").stdout
    assert "| padding_before | 1 |" in md and "| padding_after | 2 |" in md
    spec = tmp_path / "two.yaml"
    spec.write_text(TWO_CONVS)
    table = run("solve", "input", str(spec), "--max", "30").stdout
    assert "smallest_valid  7" in table and "exact           7..27 step 4" in table
    bad = run("solve", "padding", "-i", "10", "-k", "3", "-o", "1")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: no padding gives 1 outputs: without padding there are already 8")
