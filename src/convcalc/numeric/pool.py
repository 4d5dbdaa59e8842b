"""Max, average and adaptive pooling in NumPy, with PyTorch's semantics.

Fixed windows loop over kernel taps (each a strided view of the whole batch). Max pool
keeps the first maximum in row-major window order, as PyTorch does, and can return
PyTorch's indices (flat positions in each input plane). Average pool divides by PyTorch's
count: with count_include_pad the window clipped to `n + pad`, else to the input; a
ceil_mode window hanging past the padding is clipped either way. Adaptive pooling is
separable: average as one matmul per axis, max as a gather-and-reduce per axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from convcalc.geometry import pool_output
from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params
from convcalc.numeric.windows import Pads, pad, taps


def pool_geometry(
    spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    padding: Pads, ceil_mode: bool,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Output sizes and the padding that makes exactly those windows fit.

    The right padding may grow (ceil_mode's last window) or shrink (unread trailing
    pixels); the returned pairs are what `pad` should add, then the windows start at 0.
    """
    out, pads = [], []
    for n, k, s, d, p in zip(spatial, kernel, stride, dilation, padding):
        o = pool_output(n, k, s, d, p, ceil_mode)
        needed = (o - 1) * s + d * (k - 1) + 1
        out.append(o)
        pads.append((p[0], max(0, needed - n - p[0])))
    return out, pads


def max_pool(
    x: np.ndarray, kernel: Sequence[int], stride: Sequence[int] | None = None, padding: Pads | None = None,
    dilation: Sequence[int] | None = None, ceil_mode: bool = False, return_indices: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`(y, indices)` like `torch.nn.functional.max_pool{1,2,3}d`; indices only when asked.

    Indices are flat positions in each `(n, c)` input plane (PyTorch's `return_indices`).
    """
    rank = x.ndim - 2
    stride = tuple(stride or kernel)
    dilation = tuple(dilation or (1,) * rank)
    out, pads = pool_geometry(x.shape[2:], kernel, stride, dilation, padding or ((0, 0),) * rank, ceil_mode)
    xp = pad(x, pads, value=-np.inf)
    best: np.ndarray | None = None
    which: np.ndarray | None = None
    for index, (_, view) in enumerate(taps(xp, kernel, stride, dilation, out)):
        if best is None:
            best = np.array(view)
            which = np.zeros(best.shape, dtype=np.int32) if return_indices else None
            continue
        if return_indices:
            better = (view > best) | (np.isnan(view) & ~np.isnan(best))
            np.copyto(best, view, where=better)
            which[better] = index  # type: ignore[index]
        else:
            np.maximum(best, view, out=best)
    assert best is not None
    if not return_indices:
        return best, None
    return best, _flat_indices(which, x.shape[2:], kernel, stride, dilation, pads)  # type: ignore[arg-type]


def _flat_indices(which: np.ndarray, spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  dilation: Sequence[int], pads: Pads) -> np.ndarray:
    """Tap numbers per output -> flat input positions (`i*s - pl + t*d` per axis)."""
    rank = len(kernel)
    tap_axes = np.unravel_index(which, kernel)
    flat = np.zeros(which.shape, dtype=np.int64)
    for axis in range(rank):
        o = np.arange(which.shape[2 + axis]).reshape((-1,) + (1,) * (rank - axis - 1))
        pos = o * stride[axis] - pads[axis][0] + tap_axes[axis] * dilation[axis]
        flat = flat * spatial[axis] + pos
    return flat


def avg_divisor(
    spatial: Sequence[int], out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
    padding: Pads, count_include_pad: bool, divisor_override: int | None = None,
) -> np.ndarray | int:
    """PyTorch's divisor for every output position (broadcastable to `out`), per axis.

    Window `[o*s - pl, o*s - pl + k)` is clipped to `n + pr` (count_include_pad) or to the
    input `[0, n)`; the divisor is the product of the per-axis counts.
    """
    if divisor_override:
        return divisor_override
    total: np.ndarray | int = 1
    rank = len(out)
    for axis, (n, o, k, s, (pl, pr)) in enumerate(zip(spatial, out, kernel, stride, padding)):
        start = np.arange(o) * s - pl
        end = np.minimum(start + k, n + pr)
        count = end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        total = total * count.reshape((-1,) + (1,) * (rank - axis - 1))
    return total


def avg_pool(
    x: np.ndarray, kernel: Sequence[int], stride: Sequence[int] | None = None, padding: Pads | None = None,
    ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None,
) -> np.ndarray:
    """Like `torch.nn.functional.avg_pool{1,2,3}d` (padding as (before, after) pairs)."""
    rank = x.ndim - 2
    stride = tuple(stride or kernel)
    padding = padding or ((0, 0),) * rank
    ones = (1,) * rank
    out, pads = pool_geometry(x.shape[2:], kernel, stride, ones, padding, ceil_mode)
    xp = pad(x, pads)
    total = np.zeros((*x.shape[:2], *out), dtype=x.dtype)
    for _, view in taps(xp, kernel, stride, ones, out):
        total += view
    divisor = avg_divisor(x.shape[2:], out, kernel, stride, padding, count_include_pad, divisor_override)
    total /= np.asarray(divisor, dtype=x.dtype)
    return total


def _adaptive_bounds(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window's `[lo, hi)` at once: `adaptive_window` evaluated with array arithmetic."""
    o = np.arange(out, dtype=np.int64)
    return (o * n) // out, -(-((o + 1) * n) // out)


def adaptive_matrix(n: int, out: int, dtype: np.dtype) -> np.ndarray:
    """`(n, out)` averaging matrix: column o is 1/len on window `adaptive_window(o, n, out)`."""
    lo, hi = _adaptive_bounds(n, out)
    i = np.arange(n, dtype=np.int64)[:, None]
    inside = (i >= lo) & (i < hi)
    return (inside / (hi - lo)).astype(dtype)


def adaptive_avg_pool(x: np.ndarray, out: Sequence[int]) -> np.ndarray:
    """Like `torch.nn.functional.adaptive_avg_pool{1,2,3}d`: a matmul per spatial axis."""
    rank = x.ndim - 2
    y = x
    for axis in range(rank):
        n = y.shape[2 + axis]
        if n == out[axis]:
            continue
        moved = np.moveaxis(y, 2 + axis, -1)
        y = np.moveaxis(moved @ adaptive_matrix(n, out[axis], x.dtype), -1, 2 + axis)
    return np.ascontiguousarray(y)


def _window_index(n: int, out: int) -> np.ndarray:
    """`(out, longest)` input indices of each adaptive window, the last repeated to pad."""
    lo, hi = _adaptive_bounds(n, out)
    longest = int((hi - lo).max())
    return np.minimum(lo[:, None] + np.arange(longest), hi[:, None] - 1)


def adaptive_max_pool(
    x: np.ndarray, out: Sequence[int], return_indices: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Like `torch.nn.functional.adaptive_max_pool{1,2,3}d`: gather and reduce per axis.

    Reducing the last axis first keeps PyTorch's tie rule (first maximum in row-major
    order). Indices are flat positions in each input plane.
    """
    rank = x.ndim - 2
    spatial = x.shape[2:]
    y = x
    flat = None
    if return_indices:
        grids = np.indices(spatial, sparse=True)
        flat = np.zeros(spatial, dtype=np.int64)
        for axis in range(rank):
            flat = flat * spatial[axis] + grids[axis]
        flat = np.broadcast_to(flat, x.shape)
    for axis in reversed(range(rank)):
        dim = 2 + axis
        idx = _window_index(spatial[axis], out[axis])
        gathered = np.take(y, idx, axis=dim)  # (..., out, longest, ...)
        if flat is None:
            y = gathered.max(axis=dim + 1)
            continue
        arg = np.expand_dims(gathered.argmax(axis=dim + 1), dim + 1)
        y = np.take_along_axis(gathered, arg, axis=dim + 1).squeeze(dim + 1)
        flat = np.take_along_axis(np.take(flat, idx, axis=dim), arg, axis=dim + 1).squeeze(dim + 1)
    return np.ascontiguousarray(y), flat


# --- layer types --------------------------------------------------------------------------


def maxpool_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    y, indices = max_pool(x, args["kernel_size"], args["stride"], args["padding"], args["dilation"],
                          args["ceil_mode"], return_indices=save)
    return Output(y, {"indices": indices} if indices is not None else {})


def avgpool_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(avg_pool(x, args["kernel_size"], args["stride"], args["padding"], args["ceil_mode"],
                           args["count_include_pad"], args["divisor_override"]))


def _adaptive_out(args: Args, x: np.ndarray) -> list[int]:
    return [n if o is None else o for n, o in zip(x.shape[2:], args["output_size"])]


def adaptive_avg_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(adaptive_avg_pool(x, _adaptive_out(args, x)))


def adaptive_max_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    y, indices = adaptive_max_pool(x, _adaptive_out(args, x), return_indices=save)
    return Output(y, {"indices": indices} if indices is not None else {})


def pool_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    pads = args.get("padding") or ()
    padded = in_shape[0] * math.prod(n + a + b + s for n, (a, b), s in zip(in_shape[1:], pads, args["stride"]))
    return padded + 3 * math.prod(out_shape)


def adaptive_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    return 4 * math.prod(in_shape)


KERNELS: Mapping[str, Kernel] = {
    **{f"maxpool{r}d": Kernel(maxpool_forward, workspace=pool_workspace) for r in (1, 2, 3)},
    **{f"avgpool{r}d": Kernel(avgpool_forward, workspace=pool_workspace) for r in (1, 2, 3)},
    **{f"adaptiveavgpool{r}d": Kernel(adaptive_avg_forward, workspace=adaptive_workspace) for r in (1, 2, 3)},
    **{f"adaptivemaxpool{r}d": Kernel(adaptive_max_forward, workspace=adaptive_workspace) for r in (1, 2, 3)},
}
