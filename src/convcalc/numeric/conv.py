"""Convolution and transposed convolution in NumPy, with PyTorch's semantics.

`conv` pads (any padding_mode), then either multiplies directly (1x1, stride 1), runs a
multiply-add per kernel tap (depthwise: one input channel per group), or builds im2col
columns and does one batched matmul per chunk (BLAS). `conv_transpose` is the adjoint:
one matmul to columns, then `col2im`. Temporaries are bounded by `CHUNK_BYTES` by
splitting the batch and the first spatial axis.

Weight layouts are PyTorch's: conv `[C_out, C_in/g, *k]`, transposed `[C_in, C_out/g, *k]`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec
from convcalc.numeric.windows import (
    CHUNK_BYTES,
    Pads,
    chunk_ranges,
    col2im,
    im2col,
    last_axes,
    output_size,
    pad,
    taps,
)


def _pieces(n: int, rows: int, row_bytes: int, budget: int) -> Iterator[tuple[slice, slice]]:
    """(batch slice, first-axis slice) pieces whose temporaries stay within `budget`."""
    sample = rows * row_bytes
    if sample <= budget:
        for a, b in chunk_ranges(n, sample, budget):
            yield slice(a, b), slice(0, rows)
        return
    for i in range(n):
        for a, b in chunk_ranges(rows, row_bytes, budget):
            yield slice(i, i + 1), slice(a, b)


def _channels_view(a: np.ndarray, rank: int) -> tuple[int, ...]:
    return (1, -1) + (1,) * rank


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Sequence[int] | None = None,
    padding: Pads | None = None,
    dilation: Sequence[int] | None = None,
    groups: int = 1,
    padding_mode: str = "zeros",
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """N-d cross-correlation like `torch.nn.functional.conv{1,2,3}d` (plus padding_mode).

    `x` is `(N, C_in, *spatial)`, `padding` one (before, after) pair per axis.
    """
    rank = x.ndim - 2
    kernel = weight.shape[2:]
    stride = tuple(stride or (1,) * rank)
    dilation = tuple(dilation or (1,) * rank)
    xp = pad(x, padding or ((0, 0),) * rank, padding_mode)
    out = [output_size(n, k, s, d) for n, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)]
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    cg, cog = c_in // groups, c_out // groups
    dtype = np.result_type(x, weight)
    y = np.empty((n, c_out, *out), dtype=dtype)
    if cg == 1 and groups > 1:
        _depthwise(xp, weight, stride, dilation, out, y)
    else:
        k_total = math.prod(kernel)
        w = weight.reshape(groups, cog, cg * k_total)
        pointwise = k_total == 1 and all(s == 1 for s in stride)
        row_bytes = c_in * k_total * math.prod(out[1:]) * dtype.itemsize if not pointwise else 0
        if pointwise or n * out[0] * row_bytes <= chunk_bytes:
            cols = (xp.reshape(n, groups, cg, -1) if pointwise
                    else im2col(xp, kernel, stride, dilation, out, groups))
            np.matmul(w, cols, out=y.reshape(n, groups, cog, -1))
        else:
            k_eff0 = dilation[0] * (kernel[0] - 1) + 1
            for batch, rows in _pieces(n, out[0], row_bytes, chunk_bytes):
                part = xp[batch, :, rows.start * stride[0] : (rows.stop - 1) * stride[0] + k_eff0]
                piece_out = [rows.stop - rows.start, *out[1:]]
                cols = im2col(part, kernel, stride, dilation, piece_out, groups)
                y[batch, :, rows] = np.matmul(w, cols).reshape(-1, c_out, *piece_out)
    if bias is not None:
        y += bias.reshape(_channels_view(bias, rank))
    return y


def _depthwise(xp: np.ndarray, weight: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
               out: Sequence[int], y: np.ndarray) -> None:
    """One input channel per group (depthwise, multiplier m): a multiply-add per kernel tap."""
    n, c = xp.shape[:2]
    rank = len(out)
    m = weight.shape[0] // c
    acc = y.reshape(n, c, m, *out)
    acc[...] = 0
    w = weight.reshape(c, m, -1)
    tmp = np.empty_like(acc)
    expand = (slice(None), slice(None), None)
    for index, (_, view) in enumerate(taps(xp, weight.shape[2:], stride, dilation, out)):
        np.multiply(view[expand], w[:, :, index].reshape((c, m) + (1,) * rank), out=tmp)
        acc += tmp


def conv_transpose(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Sequence[int] | None = None,
    padding: Pads | None = None,
    output_padding: Sequence[int] | None = None,
    groups: int = 1,
    dilation: Sequence[int] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> np.ndarray:
    """Like `torch.nn.functional.conv_transpose{1,2,3}d`; `padding` as (before, after) pairs.

    Input `i`, tap `t` writes output `i*s - pl + t*d` (the adjoint of `conv`).
    """
    rank = x.ndim - 2
    kernel = weight.shape[2:]
    stride = tuple(stride or (1,) * rank)
    dilation = tuple(dilation or (1,) * rank)
    padding = padding or ((0, 0),) * rank
    output_padding = tuple(output_padding or (0,) * rank)
    n, c_in = x.shape[:2]
    spatial = x.shape[2:]
    cig, cog = c_in // groups, weight.shape[1]
    c_out = cog * groups
    k_total = math.prod(kernel)
    full = [(i - 1) * s + d * (k - 1) + 1 for i, s, d, k in zip(spatial, stride, dilation, kernel)]
    out = [f - pl - pr + op for f, (pl, pr), op in zip(full, padding, output_padding)]
    alloc = [max(f, pl + o) for f, (pl, _), o in zip(full, padding, out)]
    dtype = np.result_type(x, weight)
    acc = np.zeros((n, c_out, *alloc), dtype=dtype)
    w = weight.reshape(groups, cig, cog * k_total).transpose(0, 2, 1)
    row_bytes = c_out * k_total * math.prod(spatial[1:]) * dtype.itemsize
    for batch, rows in _pieces(n, spatial[0], row_bytes, chunk_bytes):
        part = x[batch, :, rows]
        cols = np.matmul(w, part.reshape(part.shape[0], groups, cig, -1))
        cols = cols.reshape(part.shape[0], c_out, *kernel, *part.shape[2:])
        col2im(cols, acc[batch, :, rows.start * stride[0] :], stride, dilation)
    y = np.ascontiguousarray(acc[last_axes([slice(pl, pl + o) for (pl, _), o in zip(padding, out)])])
    if bias is not None:
        y += bias.reshape(_channels_view(bias, rank))
    return y


# --- layer types --------------------------------------------------------------------------


def conv_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    c_in, g, k = shape[0], args["groups"], args["kernel_size"]
    specs = {"weight": ParamSpec((args["out_channels"], c_in // g, *k), "fan_in", c_in // g * math.prod(k))}
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_channels"],), "shift")
    return specs


def conv_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    y = conv(x, params["weight"], params.get("bias"), args["stride"], lt.padding(args),  # type: ignore[attr-defined]
             args["dilation"], args["groups"], args["padding_mode"])
    return Output(y)


def conv_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    pads = lt.padding(args)  # type: ignore[attr-defined]
    padded = in_shape[0] * math.prod(n + a + b for n, (a, b) in zip(in_shape[1:], pads))
    cols = in_shape[0] * math.prod(args["kernel_size"]) * math.prod(out_shape[1:])
    return padded + min(cols, CHUNK_BYTES // 4) + math.prod(out_shape)


def transposed_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    c_in, g, k = shape[0], args["groups"], args["kernel_size"]
    fan_in = max(1, c_in // g * math.prod(k) // math.prod(args["stride"]))
    specs = {"weight": ParamSpec((c_in, args["out_channels"] // g, *k), "fan_in", fan_in)}
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_channels"],), "shift")
    return specs


def transposed_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    y = conv_transpose(x, params["weight"], params.get("bias"), args["stride"], args["padding"],
                       args["output_padding"], args["groups"], args["dilation"])
    return Output(y)


def transposed_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    full = math.prod((n - 1) * s + d * (k - 1) + 1 + op for n, s, d, k, op in zip(
        in_shape[1:], args["stride"], args["dilation"], args["kernel_size"], args["output_padding"]))
    cols = args["out_channels"] * math.prod(args["kernel_size"]) * math.prod(in_shape[1:])
    return out_shape[0] * full + min(cols, CHUNK_BYTES // 4) + math.prod(out_shape)


CONV = Kernel(conv_forward, conv_params, conv_workspace)
TRANSPOSED = Kernel(transposed_forward, transposed_params, transposed_workspace)

KERNELS = {
    **{f"conv{r}d": CONV for r in (1, 2, 3)},
    **{f"convtranspose{r}d": TRANSPOSED for r in (1, 2, 3)},
}
