"""The kernel table, the window helpers and the chunking, checked by arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.numeric.conv import conv, conv_transpose
from convcalc.numeric.kernels import KERNELS, MERGE_KERNELS, forward_merge, param_specs
from convcalc.numeric.pool import avg_divisor
from convcalc.numeric.windows import chunk_ranges, col2im, im2col, pad, windows


def test_every_registered_layer_type_and_merge_has_a_kernel():
    assert sorted(set(REGISTRY.names()) - set(KERNELS)) == []
    assert sorted(set(MERGE_TYPES) - set(MERGE_KERNELS)) == []


def test_parameter_shapes_use_pytorchs_layouts():
    conv2d = REGISTRY["conv2d"]
    specs = param_specs(conv2d, conv2d.parse_args({"out_channels": 12, "kernel_size": [3, 5], "groups": 3}), (6, 9, 9))
    assert specs["weight"].shape == (12, 6 // 3, 3, 5)
    assert specs["bias"].shape == (12,)
    tconv = REGISTRY["convtranspose3d"]
    specs = param_specs(tconv, tconv.parse_args({"out_channels": 8, "kernel_size": 2, "groups": 2, "bias": False}),
                        (4, 3, 3, 3))
    assert specs["weight"].shape == (4, 8 // 2, 2, 2, 2)
    assert "bias" not in specs
    bn = REGISTRY["batchnorm2d"]
    assert {k: s.shape for k, s in param_specs(bn, bn.parse_args({}), (5, 2, 2)).items()} == {
        "weight": (5,), "bias": (5,), "running_mean": (5,), "running_var": (5,)}


def test_im2col_and_col2im_are_adjoint():
    """<im2col(x), c> == <x, col2im(c)> for the same geometry (col2im is the transpose)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 8))
    kernel, stride, dilation = (3, 2), (2, 1), (1, 2)
    out = [(9 - 1 * (3 - 1) - 1) // 2 + 1, (8 - 2 * (2 - 1) - 1) // 1 + 1]
    cols = im2col(x, kernel, stride, dilation, out, groups=2)
    assert cols.shape == (2, 2, 2 * 3 * 2, out[0] * out[1])
    c = rng.standard_normal(cols.shape)
    back = col2im(c.reshape(2, 4, *kernel, *out), np.zeros_like(x), stride, dilation)
    assert np.isclose((cols * c).sum(), (x * back).sum())


def test_windows_view_reads_the_right_pixels():
    x = np.arange(2 * 1 * 7 * 6, dtype=float).reshape(2, 1, 7, 6)
    w = windows(x, (2, 3), (3, 2), (2, 1))
    assert w.shape == (2, 1, (7 - 3) // 3 + 1, (6 - 3) // 2 + 1, 2, 3)
    # output (1, 1), tap (1, 2) reads row 1*3 + 1*2, column 1*2 + 2*1
    assert w[1, 0, 1, 1, 1, 2] == x[1, 0, 5, 4]


def test_pad_modes_match_their_definitions():
    x = np.array([[[1.0, 2.0, 3.0]]])
    assert pad(x, [(2, 1)])[0, 0].tolist() == [0, 0, 1, 2, 3, 0]
    assert pad(x, [(2, 1)], "reflect")[0, 0].tolist() == [3, 2, 1, 2, 3, 2]
    assert pad(x, [(2, 1)], "replicate")[0, 0].tolist() == [1, 1, 1, 2, 3, 3]
    assert pad(x, [(2, 1)], "circular")[0, 0].tolist() == [2, 3, 1, 2, 3, 1]
    assert pad(x, [(1, 0)], value=-np.inf)[0, 0].tolist() == [-np.inf, 1, 2, 3]


def test_chunk_ranges_cover_everything_within_budget():
    assert chunk_ranges(10, 3, budget=7) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert chunk_ranges(3, 100, budget=7) == [(0, 1), (1, 2), (2, 3)]  # one item even when too big


def test_avg_divisor_is_the_clipped_window_size():
    # n=5, k=3, s=2, pad 1 each side, ceil_mode output 3: windows [-1,2) [1,4) [3,6)
    incl = avg_divisor([5], [3], [3], [2], [(1, 1)], count_include_pad=True)
    excl = avg_divisor([5], [3], [3], [2], [(1, 1)], count_include_pad=False)
    assert incl.tolist() == [3, 3, 3]
    assert excl.tolist() == [2, 3, 2]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.sampled_from([2, 4]), h=st.integers(5, 12), k=st.integers(1, 3),
       s=st.integers(1, 3), budget=st.integers(64, 4096))
def test_chunked_convolutions_equal_unchunked(n, c, h, k, s, budget):
    rng = np.random.default_rng(h * 7 + k)
    x = rng.standard_normal((n, c, h, h + 1))
    w = rng.standard_normal((3, c, k, k))
    whole = conv(x, w, stride=(s, s), padding=((1, 1), (1, 1)))
    assert np.allclose(conv(x, w, stride=(s, s), padding=((1, 1), (1, 1)), chunk_bytes=budget), whole)
    wt = rng.standard_normal((c, 3, k, k))
    whole_t = conv_transpose(x, wt, stride=(s, s))
    assert np.allclose(conv_transpose(x, wt, stride=(s, s), chunk_bytes=budget), whole_t)


def test_conv_by_hand():
    """A 1D convolution written out: y[o] = sum_t w[t] * x[o*s + t*d - pl] + b."""
    x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, 10.0]]])
    y = conv(x, w, np.array([0.5]), stride=(2,), padding=((1, 0),), dilation=(2,))
    # padded [0, 1, 2, 3, 4, 5], windows read padded[0], padded[2]; padded[2], padded[4]
    assert y[0, 0].tolist() == [0 * 1 + 2 * 10 + 0.5, 2 * 1 + 4 * 10 + 0.5]
    yt = conv_transpose(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 10.0, 100.0]]]), stride=(2,))
    # input i, tap t writes i*2 + t: [1, 10, 100+2, 20, 200]
    assert yt[0, 0].tolist() == [1, 10, 102, 20, 200]


def test_merges():
    a, b = np.ones((1, 2, 3)), np.full((1, 1, 3), 2.0)
    assert forward_merge(MERGE_TYPES["concat"], [a, b]).y.shape == (1, 3, 3)
    assert forward_merge(MERGE_TYPES["add"], [a, a, a]).y.tolist() == [[[3.0] * 3] * 2]
    assert a.tolist() == [[[1.0] * 3] * 2]  # inputs untouched


@pytest.mark.parametrize("name", ["conv2d", "linear"])
def test_random_weights_keep_the_variance_bound(name):
    """He-uniform: bound sqrt(6 / fan_in), so the variance is 2 / fan_in."""
    from convcalc.numeric.kernels import layer_params

    lt = REGISTRY[name]
    args = lt.parse_args({"out_channels": 64, "kernel_size": 3} if name == "conv2d" else {"out_features": 64})
    shape = (32, 8, 8) if name == "conv2d" else (288,)
    w = layer_params(lt, args, shape, np.random.default_rng(0))["weight"]
    fan_in = 32 * 3 * 3 if name == "conv2d" else 288
    assert np.abs(w).max() <= math.sqrt(6 / fan_in)
    assert abs(w.var() - 2 / fan_in) < 0.1 * 2 / fan_in


@pytest.mark.parametrize(("n", "out"), [(7, 3), (10, 4), (224, 7), (5, 5), (3, 8), (1, 1)])
def test_adaptive_windows_as_arrays_match_the_geometry_formula(n, out):
    from convcalc.geometry import adaptive_window
    from convcalc.numeric.pool import _adaptive_bounds, adaptive_matrix

    lo, hi = _adaptive_bounds(n, out)
    assert list(zip(lo.tolist(), hi.tolist())) == [adaptive_window(o, n, out) for o in range(out)]
    m = adaptive_matrix(n, out, np.dtype("float64"))
    assert np.allclose(m.sum(axis=0), 1.0)


def test_a_huge_adaptive_output_builds_without_a_python_loop():
    import time

    from convcalc.numeric.pool import adaptive_avg_pool

    x = np.ones((1, 1, 3), dtype=np.float32)
    start = time.perf_counter()
    y = adaptive_avg_pool(x, (200_000,))
    assert y.shape == (1, 1, 200_000) and np.all(y == 1.0)
    assert time.perf_counter() - start < 5


def test_erf_is_exact_to_double_precision_and_keeps_the_dtype():
    import math

    from convcalc.numeric.activation import erf

    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, 0.46875, -4.0, 4.0, 27.0, -np.inf, np.inf, 1e-300]])
    expected = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - expected).max() <= 4.5e-16
    assert erf(x.astype(np.float32)).dtype == np.float32
    assert np.abs(erf(x.astype(np.float32)) - expected).max() <= 3e-7
    assert np.isnan(erf(np.array([np.nan])))[0] and erf(np.array([[-0.0]])).shape == (1, 1)
