"""Input gradients of every layer type in NumPy, and the backward pass over a network.

`BACKWARD[name](layer_type, args, in_shape, g, x, params)` (through `layer_backward(step, ...)`,
`layer_type` being the registered `LayerType` object) returns d(loss)/d(input) given
d(loss)/d(output) `g` `(N, *out_shape)`, the layer's forward input `x` and parameters
(PyTorch names and layouts, as `numeric.base.init_params` draws them). Convolution backward
is the transposed convolution with the same weight (a full correlation with the kernel
rotated by 180 degrees), transposed convolution backward is a strided convolution; both
reuse the forward kernels of `numeric.conv`. Max pooling routes the gradient to the
arg-max (the first maximum in scan order, as PyTorch does), average pooling spreads it.

With `x=None` a layer is *linearised* for the structural oracle: activations, dropout and
normalisation pass the gradient through unchanged, max pooling spreads it over the taps
inside the input, interpolation uses |weights|, softmax and linear use all-positive maps.
With positive weights every path then adds a positive amount, so the gradient is non-zero
exactly where the output depends on the input: the ground truth of the receptive field.

Normalisation with batch statistics (instance, group and layer norm) is differentiated
exactly, statistics included; BatchNorm uses its running statistics (inference).
The network pass walks the graph backwards over the report's rows (`Row.node.inputs`); a
merge hands each input its share (`MERGE_BACKWARD`). Imports NumPy, `convcalc.numeric`,
`convcalc.analysis`, `convcalc.graph` and `convcalc.layers`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from convcalc.analysis import Row, position_index
from convcalc.graph import INPUT
from convcalc.layers import Args, Shape
from convcalc.layers.blocks import span
from convcalc.numeric.activation import erf
from convcalc.numeric.blocks import shuffle
from convcalc.numeric.conv import conv, conv_transpose
from convcalc.numeric.reshape import pad_or_crop
from convcalc.numeric.windows import windows
from convcalc.records import record

Params = Mapping[str, np.ndarray]
Index = tuple[Any, ...]  # a NumPy index built from per-axis parts
Backward = Callable[[Any, Args, Shape, np.ndarray, "np.ndarray | None", Params], np.ndarray]

# --- padding ----------------------------------------------------------------------------


def source_index(p: int, n: int, mode: str) -> int | None:
    """The input index a padded position copies (None: zero padding, nothing)."""
    if 0 <= p < n:
        return p
    if mode in ("zeros", "constant"):
        return None
    if mode == "replicate":
        return min(max(p, 0), n - 1)
    if mode == "circular":
        return p % n
    return -p if p < 0 else 2 * (n - 1) - p  # reflect (PyTorch requires pad < n)


def unpad(gp: np.ndarray, pads: Sequence[tuple[int, int]], n: Sequence[int], mode: str) -> np.ndarray:
    """Adjoint of padding: the gradient of the padded tensor folded back onto the input."""
    rank = len(n)
    lead = gp.ndim - rank
    g = gp
    for axis, ((pl, _), size) in enumerate(zip(pads, n)):
        dim = lead + axis
        inner = np.take(g, range(pl, pl + size), axis=dim) if g.shape[dim] != size or pl else g
        if mode not in ("zeros", "constant"):
            inner = inner.copy()
            for p in itertools.chain(range(pl), range(pl + size, g.shape[dim])):
                src = source_index(p - pl, size, mode)
                if src is not None:
                    target = [slice(None)] * g.ndim
                    target[dim] = slice(src, src + 1)
                    inner[tuple(target)] += np.take(g, [p], axis=dim)
        g = inner
    return np.ascontiguousarray(g)


# --- convolution ------------------------------------------------------------------------


def conv_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                  params: Params) -> np.ndarray:
    """Transposed convolution of `g` with the same weight, onto the padded input, then folded."""
    pads = layer_type.padding(args)
    stride, dilation, kernel = args["stride"], args["dilation"], args["kernel_size"]
    full = [n + pl + pr for n, (pl, pr) in zip(in_shape[1:], pads)]
    # Trailing rows no window reached: the transposed conv's output_padding restores them.
    extra = [f - ((o - 1) * s + d * (k - 1) + 1)
             for f, o, s, d, k in zip(full, g.shape[2:], stride, dilation, kernel)]
    gp = conv_transpose(g, params["weight"], None, stride, None, extra, args["groups"], dilation)
    return unpad(gp, pads, in_shape[1:], args["padding_mode"])


def transposed_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                        params: Params) -> np.ndarray:
    """A strided convolution of `g` (input `i` read output `i*s - pl + t*d`)."""
    stride, dilation = args["stride"], args["dilation"]
    pads = []
    for (pl, pr), op in zip(args["padding"], args["output_padding"]):
        pads.append((pl, max(0, pr - op)))
    gx = conv(g, params["weight"], None, stride, pads, dilation, args["groups"])
    index: Index = (Ellipsis, *(slice(0, n) for n in in_shape[1:]))
    return np.ascontiguousarray(gx[index])


# --- pooling ----------------------------------------------------------------------------


def _padded_extent(n: int, out: int, k: int, s: int, d: int, pl: int, pr: int) -> int:
    """Padded length that holds every window (ceil_mode windows may overhang)."""
    return max(n + pl + pr, (out - 1) * s + d * (k - 1) + 1)


def _scatter_taps(g: np.ndarray, taps: Sequence[np.ndarray] | None, weight: np.ndarray | None,
                  shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int]) -> np.ndarray:
    """Adds `g * weight` (or `g * taps[t]`) at every kernel tap of the padded `shape`."""
    out = g.shape[2:]
    gp = np.zeros((*g.shape[:2], *shape), dtype=g.dtype)
    spread = g * weight if weight is not None else g
    for index, tap in enumerate(itertools.product(*(range(k) for k in kernel))):
        where = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(tap, dilation, out, stride))
        at: Index = (Ellipsis, *where)
        gp[at] += spread if taps is None else g * taps[index]
    return gp


def _window_lengths(n: int, out: int, k: int, s: int, pl: int, pr: int, clip: bool) -> np.ndarray:
    """Per-position window length along one axis (PyTorch's avg-pool divisor rule)."""
    start = np.arange(out) * s - pl
    end = np.minimum(start + k, n + pr)
    if clip:
        start, end = np.maximum(start, 0), np.minimum(end, n)
    return (end - start).astype(np.float64)


def avgpool_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                     params: Params) -> np.ndarray:
    kernel, stride, pads = args["kernel_size"], args["stride"], args["padding"]
    rank = len(kernel)
    ones = (1,) * rank
    n = in_shape[1:]
    out = g.shape[2:]
    divisor: Any
    if args["divisor_override"] is not None and rank > 1:
        divisor = np.full(out, float(args["divisor_override"]))
    else:
        lengths = [_window_lengths(a, o, k, s, pl, pr, not args["count_include_pad"])
                   for a, o, k, s, (pl, pr) in zip(n, out, kernel, stride, pads)]
        divisor = math.prod(np.ix_(*lengths)) if rank > 1 else lengths[0]
    shape = [_padded_extent(a, o, k, s, 1, pl, pr) for a, o, k, s, (pl, pr) in zip(n, out, kernel, stride, pads)]
    gp = _scatter_taps(g, None, (1.0 / divisor).astype(g.dtype), shape, kernel, stride, ones)
    return _crop(gp, pads, n)


def _crop(gp: np.ndarray, pads: Sequence[tuple[int, int]], n: Sequence[int]) -> np.ndarray:
    index: Index = (Ellipsis, *(slice(pl, pl + a) for (pl, _), a in zip(pads, n)))
    return np.ascontiguousarray(gp[index])


def maxpool_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                     params: Params) -> np.ndarray:
    """Each output's gradient goes to its arg-max; linearised: spread over taps in the input."""
    kernel, stride, pads, dilation = args["kernel_size"], args["stride"], args["padding"], args["dilation"]
    n, out = in_shape[1:], g.shape[2:]
    shape = [_padded_extent(a, o, k, s, d, pl, pr)
             for a, o, k, s, d, (pl, pr) in zip(n, out, kernel, stride, dilation, pads)]
    if x is None:
        inside = np.zeros(shape, dtype=g.dtype)
        inside[tuple(slice(pl, pl + a) for (pl, _), a in zip(pads, n))] = 1
        view = windows(inside[None, None], kernel, stride, dilation, out)[0, 0]
        taps = [view[(Ellipsis, *tap)] for tap in itertools.product(*(range(k) for k in kernel))]
        return _crop(_scatter_taps(g, taps, None, shape, kernel, stride, dilation), pads, n)
    xp = np.full((*x.shape[:2], *shape), -np.inf, dtype=x.dtype)
    interior: Index = (Ellipsis, *(slice(pl, pl + a) for (pl, _), a in zip(pads, n)))
    xp[interior] = x
    view = windows(xp, kernel, stride, dilation, out)
    flat = view.reshape(*view.shape[: 2 + len(out)], -1)
    nan = np.isnan(flat)
    best = np.where(nan.any(-1), nan.argmax(-1), flat.argmax(-1))  # first max; NaN wins, as in PyTorch
    taps = [best == t for t in range(flat.shape[-1])]
    return _crop(_scatter_taps(g, taps, None, shape, kernel, stride, dilation), pads, n)


def _adaptive_windows(n: int, out: int) -> list[tuple[int, int]]:
    return [((i * n) // out, -(-((i + 1) * n) // out)) for i in range(out)]


def _along(g: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Applies `M.T` (out x in) along every spatial axis: the adjoint of a separable map."""
    rank = len(matrices)
    for axis, m in enumerate(matrices):
        dim = g.ndim - rank + axis
        g = np.moveaxis(np.moveaxis(g, dim, -1) @ m.astype(g.dtype, copy=False), -1, dim)
    return np.ascontiguousarray(g)


def adaptive_avg_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                          params: Params) -> np.ndarray:
    matrices = []
    for n, o in zip(in_shape[1:], g.shape[2:]):
        m = np.zeros((o, n))
        for i, (a, b) in enumerate(_adaptive_windows(n, o)):
            m[i, a:b] = 1.0 / (b - a)
        matrices.append(m)
    return _along(g, matrices)


def adaptive_max_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                          params: Params) -> np.ndarray:
    if x is None:
        return adaptive_avg_backward(layer_type, args, in_shape, g, x, params)
    gx = np.zeros_like(x, dtype=g.dtype)
    spans = [_adaptive_windows(n, o) for n, o in zip(in_shape[1:], g.shape[2:])]
    lead = x.shape[:2]
    for position in itertools.product(*(range(len(s)) for s in spans)):
        window = tuple(slice(*spans[a][p]) for a, p in enumerate(position))
        at: Index = (Ellipsis, *window)
        patch = x[at].reshape(*lead, -1)
        best = patch.argmax(-1)
        shape = [b - a for a, b in (spans[a][p] for a, p in enumerate(position))]
        local = np.unravel_index(best, shape)
        bi, ci = np.indices(lead)
        index: Index = (bi, ci, *(loc + spans[a][p][0] for a, (loc, p) in enumerate(zip(local, position))))
        here: Index = (Ellipsis, *position)
        np.add.at(gx, index, g[here])
    return gx


# --- element-wise -----------------------------------------------------------------------


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _gelu_grad(x: np.ndarray, args: Args) -> np.ndarray:
    if args["approximate"] == "tanh":
        c = math.sqrt(2 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
    return cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _softplus(v: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, v)


def _mish_grad(x: np.ndarray, args: Args) -> np.ndarray:
    t = np.tanh(_softplus(x))
    return t + x * (1 - t * t) * _sigmoid(x)


DERIVATIVES: dict[str, Callable[[np.ndarray, Args], np.ndarray]] = {
    "relu": lambda x, a: (x > 0).astype(x.dtype),
    "relu6": lambda x, a: ((x > 0) & (x < 6)).astype(x.dtype),
    "leakyrelu": lambda x, a: np.where(x > 0, 1.0, a["negative_slope"]).astype(x.dtype),
    "elu": lambda x, a: np.where(x > 0, 1.0, a["alpha"] * np.exp(np.minimum(x, 0))).astype(x.dtype),
    "gelu": _gelu_grad,
    "silu": lambda x, a: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    "mish": _mish_grad,
    "softplus": lambda x, a: np.where(x * a["beta"] > a["threshold"], 1.0, _sigmoid(a["beta"] * x)).astype(x.dtype),
    "sigmoid": lambda x, a: _sigmoid(x) * (1 - _sigmoid(x)),
    "tanh": lambda x, a: 1 - np.tanh(x) ** 2,
    "hardswish": lambda x, a: np.where(x < -3, 0.0, np.where(x <= 3, x / 3 + 0.5, 1.0)).astype(x.dtype),
    # PyTorch multiplies by the float32 constant 1/6, even in float64.
    "hardsigmoid": lambda x, a: ((x > -3) & (x < 3)).astype(x.dtype) * float(np.float32(1 / 6)),
    "hardtanh": lambda x, a: ((x > a["min_val"]) & (x < a["max_val"])).astype(x.dtype),
}
PASS_THROUGH = ("identity", "dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout",
                "featurealphadropout", "stochasticdepth")


def elementwise_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                         params: Params) -> np.ndarray:
    if x is None or layer_type.name in PASS_THROUGH:
        return g
    return g * DERIVATIVES[layer_type.name](x, args)


def prelu_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                   params: Params) -> np.ndarray:
    if x is None:
        return g
    slope = params["weight"]
    if slope.size > 1:
        slope = slope.reshape((1, -1) + (1,) * (x.ndim - 2))
    return g * np.where(x > 0, 1.0, slope).astype(g.dtype)


def softmax_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                     params: Params) -> np.ndarray:
    dim = args["dim"] if args["dim"] >= 0 else args["dim"] + g.ndim
    if x is None:  # every output reads the whole axis: a positive all-ones map
        return np.broadcast_to(g.sum(axis=dim, keepdims=True), g.shape).copy()
    shifted = x - x.max(axis=dim, keepdims=True)
    y = np.exp(shifted)
    y /= y.sum(axis=dim, keepdims=True)
    if layer_type.name == "logsoftmax":
        return g - y * g.sum(axis=dim, keepdims=True)
    return y * (g - (g * y).sum(axis=dim, keepdims=True))


# --- normalisation ----------------------------------------------------------------------


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _normalised_backward(g: np.ndarray, x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """d/dx of (x - mean) / sqrt(var + eps) over `axes` (biased variance), applied to `g`."""
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    inv = 1.0 / np.sqrt((centred**2).mean(axis=axes, keepdims=True) + eps)
    xhat = centred * inv
    return inv * (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True))


def batchnorm_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                       params: Params) -> np.ndarray:
    """Inference mode: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
    if x is None:
        return g
    spatial = tuple(range(2, g.ndim))
    if layer_type.name.startswith("instancenorm") and not args["track_running_stats"]:
        gh = g * _channel(params["weight"], g.ndim) if args["affine"] else g
        return _normalised_backward(gh, x, spatial, args["eps"])
    scale = np.ones(g.shape[1], dtype=g.dtype)
    if "running_var" in params:
        scale = 1.0 / np.sqrt(params["running_var"] + args["eps"])
    if "weight" in params:
        scale = scale * params["weight"]
    return g * _channel(scale.astype(g.dtype), g.ndim)


def groupnorm_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                       params: Params) -> np.ndarray:
    if x is None:
        return g
    gh = g * _channel(params["weight"], g.ndim) if args["affine"] else g
    n, c = x.shape[:2]
    groups = args["num_groups"]
    shape = (n, groups, -1)
    gx = _normalised_backward(gh.reshape(shape), x.reshape(shape), (2,), args["eps"])
    return gx.reshape(x.shape)


def layernorm_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                       params: Params) -> np.ndarray:
    if x is None:
        return g
    dims = len(args["normalized_shape"] or in_shape[-1:])
    gh = g * params["weight"] if "weight" in params else g
    return _normalised_backward(gh, x, tuple(range(g.ndim - dims, g.ndim)), args["eps"])


def layernorm2d_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                         params: Params) -> np.ndarray:
    if x is None:
        return g
    gh = g * _channel(params["weight"], g.ndim) if "weight" in params else g
    return _normalised_backward(gh, x, (1,), args["eps"])


def lrn_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                 params: Params) -> np.ndarray:
    """b_c = a_c / D_c^beta, D_c = k + alpha/size * sum of a^2 over channels c-size//2..c+(size-1)//2."""
    if x is None:
        return g
    size, alpha, beta, k = args["size"], args["alpha"], args["beta"], args["k"]
    before, after = size // 2, (size - 1) // 2
    sq = np.pad(x * x, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    csum = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
    c = x.shape[1]
    d = k + alpha / size * (csum[:, size:size + c] - csum[:, :c])
    inner = g * x * d ** (-beta - 1)
    # channel j is in the window of c for c in [j - after, j + before]
    padded = np.pad(inner, [(0, 0), (after, before)] + [(0, 0)] * (x.ndim - 2))
    isum = np.concatenate([np.zeros_like(padded[:, :1]), np.cumsum(padded, axis=1)], axis=1)
    spread = isum[:, size:size + c] - isum[:, :c]
    return g * d ** (-beta) - 2 * alpha * beta / size * x * spread


# --- reshaping --------------------------------------------------------------------------


def linear_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                    params: Params) -> np.ndarray:
    weight = params["weight"].astype(g.dtype, copy=False)
    return (g.reshape(-1, g.shape[-1]) @ weight).reshape(*g.shape[:-1], weight.shape[1])  # one 2-D product


def flatten_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                     params: Params) -> np.ndarray:
    return g.reshape(g.shape[0], *in_shape)


def _cubic_weights(t: float) -> list[float]:
    a = -0.75

    def near(v: float) -> float:
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v: float) -> float:
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def interpolation_matrix(n: int, out: int, mode: str, align_corners: bool, scale: float | None) -> np.ndarray:
    """PyTorch's interpolation along one axis as an (out x n) matrix of weights.

    `scale` is the user's scale_factor (None when a size was given), which PyTorch uses as
    1/scale_factor for the index arithmetic.
    """
    m = np.zeros((out, n))
    ratio = 1.0 / scale if scale else n / out
    for o in range(out):
        if mode == "nearest":
            m[o, min(int(math.floor(o * ratio)), n - 1)] = 1
            continue
        if mode == "nearest-exact":
            m[o, min(int(math.floor((o + 0.5) * ratio)), n - 1)] = 1
            continue
        cubic = mode == "bicubic"
        if align_corners:
            src = o * (n - 1) / (out - 1) if out > 1 else 0.0
        else:
            src = ratio * (o + 0.5) - 0.5
            if not cubic:
                src = max(src, 0.0)
        i = math.floor(src)
        t = src - i
        if cubic:
            for j, w in zip(range(i - 1, i + 3), _cubic_weights(t)):
                m[o, min(max(j, 0), n - 1)] += w
        else:
            m[o, min(i, n - 1)] += 1 - t
            m[o, min(i + 1, n - 1)] += t
    return m


def upsample_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                      params: Params) -> np.ndarray:
    rank = len(in_shape) - 1
    scales = args["scale_factor"]
    if scales is not None and len(scales) == 1:
        scales = scales * rank
    matrices = [
        interpolation_matrix(n, o, args["mode"], bool(args["align_corners"]),
                             None if scales is None else scales[a])
        for a, (n, o) in enumerate(zip(in_shape[1:], g.shape[2:]))
    ]
    if x is None:
        matrices = [np.abs(m) for m in matrices]
    return _along(g, matrices)


def pixelshuffle_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                          params: Params) -> np.ndarray:
    r = args["upscale_factor"]
    b, c, h, w = g.shape
    return g.reshape(b, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, h // r, w // r)


def pixelunshuffle_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                            params: Params) -> np.ndarray:
    r = args["downscale_factor"]
    b, crr, h, w = g.shape
    c = crr // (r * r)
    return g.reshape(b, c, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c, h * r, w * r)


PAD_MODES = {"zero": "zeros", "constant": "zeros", "reflection": "reflect",
             "replication": "replicate", "circular": "circular"}


def pad_backward(layer_type: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                 params: Params) -> np.ndarray:
    if any(min(a, b) < 0 for a, b in args["padding"]):  # negative widths crop
        return crop_backward(g, args["padding"])
    return unpad(g, args["padding"], in_shape[1:], PAD_MODES[layer_type.mode])


def crop_backward(g: np.ndarray, pads: Sequence[tuple[int, int]]) -> np.ndarray:
    """Adjoint of zero padding and cropping with widths `pads`: the same with the widths negated."""
    return np.ascontiguousarray(pad_or_crop(g, [(-a, -b) for a, b in pads]))


def centercrop_backward(kind: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                        params: Params) -> np.ndarray:
    return crop_backward(g, kind.pads(args, in_shape))


# --- modern blocks ----------------------------------------------------------------------


def channelshuffle_backward(kind: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                            params: Params) -> np.ndarray:
    """The inverse permutation of the channels: a shuffle with C/g groups."""
    return shuffle(g, in_shape[0] // args["groups"])


def narrow_backward(kind: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                    params: Params) -> np.ndarray:
    start, length = span(args, in_shape[0])
    gx = np.zeros((g.shape[0], *in_shape), dtype=g.dtype)
    gx[:, start:start + length] = g
    return gx


def permute_backward(kind: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                     params: Params) -> np.ndarray:
    return np.ascontiguousarray(g.transpose(np.argsort(args["dims"])))


def layerscale_backward(kind: Any, args: Args, in_shape: Shape, g: np.ndarray, x: np.ndarray | None,
                        params: Params) -> np.ndarray:
    if "gamma" not in params:  # linearised: a positive scale
        return g
    return g * params["gamma"].astype(g.dtype, copy=False).reshape(-1, *(1,) * (g.ndim - 2))


def _table() -> dict[str, Backward]:
    table: dict[str, Backward] = {}
    for r in (1, 2, 3):
        table.update({
            f"conv{r}d": conv_backward, f"convtranspose{r}d": transposed_backward,
            f"maxpool{r}d": maxpool_backward, f"avgpool{r}d": avgpool_backward,
            f"adaptiveavgpool{r}d": adaptive_avg_backward, f"adaptivemaxpool{r}d": adaptive_max_backward,
            f"batchnorm{r}d": batchnorm_backward, f"instancenorm{r}d": batchnorm_backward,
        })
        for mode in PAD_MODES:
            table[f"{mode}pad{r}d"] = pad_backward
    for name in (*DERIVATIVES, *PASS_THROUGH):
        table[name] = elementwise_backward
    table.update({
        "prelu": prelu_backward, "softmax": softmax_backward, "logsoftmax": softmax_backward,
        "groupnorm": groupnorm_backward, "layernorm": layernorm_backward, "layernorm2d": layernorm2d_backward,
        "localresponsenorm": lrn_backward, "linear": linear_backward, "flatten": flatten_backward,
        "upsample": upsample_backward, "upsamplingnearest2d": upsample_backward,
        "upsamplingbilinear2d": upsample_backward, "pixelshuffle": pixelshuffle_backward,
        "centercrop": centercrop_backward,
        "pixelunshuffle": pixelunshuffle_backward,
        "channelshuffle": channelshuffle_backward, "narrow": narrow_backward, "permute": permute_backward,
        "layerscale": layerscale_backward, "stochasticdepth": elementwise_backward,
    })
    return table


BACKWARD = _table()


def unbroadcast(g: np.ndarray, shape: Shape) -> np.ndarray:
    """The gradient of an input broadcast to `g`'s shape: summed over the axes it was repeated on."""
    lead = g.ndim - 1 - len(shape)  # `g` is batched; `shape` is batchless and may have fewer axes
    if lead:
        g = g.sum(axis=tuple(range(1, 1 + lead)))
    axes = tuple(1 + a for a, n in enumerate(shape) if n == 1 and g.shape[1 + a] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def add_backward(args: Args, in_shapes: Sequence[Shape], g: np.ndarray,
                 xs: Sequence[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    return tuple(unbroadcast(g, shape) for shape in in_shapes)


def mul_backward(args: Args, in_shapes: Sequence[Shape], g: np.ndarray,
                 xs: Sequence[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    """The product rule: input i's gradient is g times every other input, summed where broadcast.

    Linearised (`xs=None`), every input passes `g` on as add does: the structural oracle asks
    where the output depends on the input, which a product does through every factor.
    """
    if xs is None:
        return add_backward(args, in_shapes, g, xs)
    out = []
    for i, shape in enumerate(in_shapes):
        total = g
        for j, x in enumerate(xs):
            if j != i:
                total = total * x
        out.append(unbroadcast(total, shape))
    return tuple(out)


def concat_backward(args: Args, in_shapes: Sequence[Shape], g: np.ndarray,
                    xs: Sequence[np.ndarray] | None) -> tuple[np.ndarray, ...]:
    dim = args.get("dim", 1)
    axis = dim - 1 if dim > 0 else len(in_shapes[0]) + dim  # batchless
    bounds = np.cumsum([0, *(shape[axis] for shape in in_shapes)])
    return tuple(np.take(g, range(start, stop), axis=axis + 1) for start, stop in zip(bounds[:-1], bounds[1:]))


# The gradient of each input of a merge, given the output's (and the forward inputs, or None).
MergeBackward = Callable[[Args, Sequence[Shape], np.ndarray, "Sequence[np.ndarray] | None"], tuple[np.ndarray, ...]]
MERGE_BACKWARD: dict[str, MergeBackward] = {"add": add_backward, "mul": mul_backward, "concat": concat_backward}


def _node(step: Row) -> Any:
    assert step.node is not None, "rows come from analyze"
    return step.node


def layer_backward(step: Row, g: np.ndarray, x: np.ndarray | None, params: Params) -> np.ndarray:
    """The input gradient of one single-input node."""
    node = _node(step)
    args = node.type.bind(node.args, step.input_shapes)  # a `size_of:` input gives its shape
    return BACKWARD[step.type](node.type, args, step.input_shapes[0], g, x, params)


def node_backward(step: Row, g: np.ndarray, xs: Sequence[np.ndarray] | None,
                  params: Params) -> tuple[np.ndarray, ...]:
    """The gradient of each input of one node (`xs=None`: linearised)."""
    node = _node(step)
    if node.type.arity == 1:
        return (layer_backward(step, g, xs[0] if xs is not None else None, params),)
    return MERGE_BACKWARD[step.type](node.args, step.input_shapes, g, xs)


# --- the network ------------------------------------------------------------------------

Inputs = Callable[[int], "Sequence[np.ndarray] | None"]
ParamsOf = Callable[[int], Params]


def network_backward(graph: Sequence[Row], target: int, seed: np.ndarray, inputs: Inputs,
                     params: ParamsOf) -> np.ndarray:
    """d(seed . output of step `target`)/d(network input), stepping back through `graph`.

    `graph` is the report's rows; `inputs(i)` is step i's forward inputs (None:
    linearised), `params(i)` its parameters. A tensor read by several nodes receives the
    sum of their gradients.
    """
    grads: dict[int, np.ndarray] = {target: seed}

    def give(source: int, g: np.ndarray) -> None:
        if source in grads:
            grads[source] = grads[source] + g
        else:
            grads[source] = g

    for i in range(target, -1, -1):
        if i not in grads:
            continue
        step, g = graph[i], grads.pop(i)
        for source, grad in zip(_node(step).inputs, node_backward(step, g, inputs(i), params(i))):
            give(source, grad)
    return grads.get(INPUT, np.zeros((seed.shape[0], *graph[0].input_shapes[0]), dtype=seed.dtype))


def positive_params(step: Row, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All-positive weights for the structural oracle: uniform 0.5..1.5 over the fan-in.

    Dividing by the fan-in keeps the gradient's magnitude near 1 through deep networks
    (plain 0.5..1.5 overflows float64 in DenseNet-121).
    """
    args, shape = _node(step).args, step.input_shapes[0]
    if step.type.startswith("convtranspose"):
        w = (shape[0], args["out_channels"] // args["groups"], *args["kernel_size"])
    elif step.type.startswith("conv"):
        w = (args["out_channels"], shape[0] // args["groups"], *args["kernel_size"])
    elif step.type == "linear":
        w = (args["out_features"], shape[-1])
    else:
        return {}
    return {"weight": rng.uniform(0.5, 1.5, w) / math.prod(w[1:])}


def structural_gradient(graph: Sequence[Row], target: int, position: Sequence[int],
                        seed: int = 0) -> np.ndarray:
    """d(sum over channels of output `position` of `target`)/d(input) of the linearised network.

    `position` is one index per spatial axis, wherever a permute has put the axes (`Row.dims`).

    Float64, positive weights: non-zero exactly on the input pixels the output depends on.
    Returns `(C, *spatial)` of the network input.
    """
    rng = np.random.default_rng(seed)
    weights = {i: positive_params(graph[i], rng) for i in range(target + 1)}
    out = graph[target].output_shape
    g = np.zeros((1, *out))
    at: Index = (0, *position_index(graph[target].dims or (), tuple(position), len(out)))
    g[at] = 1.0
    return network_backward(graph, target, g, lambda i: None, lambda i: weights[i])[0]


# --- the effective receptive field --------------------------------------------------------


@record
class EffectiveField:
    """Mean |d(output at `position`, summed over channels)/d(input)| over random inputs.

    `heat` is `(*input_spatial)`, summed over input channels and averaged over samples
    (Luo et al., 2016). `centre` is the centre of the theoretical field (input pixels);
    `radius50`/`radius95` the smallest Euclidean radius around it holding that share of
    the mass.
    """

    path: str
    position: tuple[int, ...]
    samples: int
    heat: np.ndarray
    centre: tuple[float, ...]
    radius50: float
    radius95: float


def mass_radius(heat: np.ndarray, centre: Sequence[float], share: float) -> float:
    """Smallest r such that pixels within distance r of `centre` hold `share` of the mass."""
    total = float(heat.sum())
    if total <= 0:
        return 0.0
    grids = np.meshgrid(*(np.arange(n) - c for n, c in zip(heat.shape, centre)), indexing="ij")
    distance = np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids)).ravel()
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(heat.ravel()[order].astype(np.float64))
    index = int(np.searchsorted(cumulative, share * total * (1 - 1e-12)))
    return float(distance[order][min(index, distance.size - 1)])


def effective_field(graph: Sequence[Row], network: Any, target: int, position: Sequence[int],
                    centre: Sequence[float], samples: int = 8, seed: int = 0, dtype: str = "float32",
                    progress: Callable[[int, int], None] | None = None) -> EffectiveField:
    """The ERF of output `position` of step `target`: random weights, real activations."""
    from convcalc.numeric.runner import input_array, run

    total = 2 * (target + 1)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)

    trace: list[Any] = []

    class _Done(Exception):
        pass

    def keep(step: Any) -> None:
        trace.append(step)
        tick()
        if len(trace) > target:
            raise _Done

    x = input_array(network.input_shape, samples, seed, dtype)
    with contextlib.suppress(_Done):  # stop the forward pass at the target
        run(network, x, keep, seed=seed, save=False)
    for ours, theirs in zip(graph, trace):
        assert ours.path == theirs.path, (ours.path, theirs.path)
    out = graph[target].output_shape
    seed_grad = np.zeros((samples, *out), dtype=x.dtype)
    at: Index = (slice(None), *position_index(graph[target].dims or (), tuple(position), len(out)))
    seed_grad[at] = 1

    def inputs(i: int) -> Sequence[np.ndarray]:
        tick()
        return trace[i].inputs

    grad = network_backward(graph, target, seed_grad, inputs, lambda i: trace[i].params)
    heat = np.abs(grad).sum(axis=1).mean(axis=0).astype(np.float64)
    return EffectiveField(graph[target].path, tuple(position), samples, heat, tuple(centre),
                          mass_radius(heat, centre, 0.5), mass_radius(heat, centre, 0.95))
