"""Padding, sliding windows, im2col and col2im on `(N, C, *spatial)` arrays.

The building blocks of every windowed kernel, forward and backward: `windows` is a
zero-copy strided view, `im2col` makes the one copy a convolution needs for BLAS,
`col2im` is its adjoint (scatter-add, used by transposed convolution and by the input
gradient of a convolution), `taps` iterates kernel offsets as strided slices (depthwise
convolution, pooling). Loops run over kernel taps or chunks, never over output positions.

`chunk_ranges` bounds temporary memory: callers split work on the batch and the first
output axis so that no temporary exceeds `CHUNK_BYTES`.

Imports NumPy and nothing from the package.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from types import EllipsisType
from typing import Literal

import numpy as np

Pads = Sequence[tuple[int, int]]

CHUNK_BYTES = 64 << 20  # largest im2col / col2im temporary

NUMPY_PAD_MODES: dict[str, Literal["constant", "reflect", "edge", "wrap"]] = {
    "zeros": "constant",
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def pad(x: np.ndarray, pads: Pads, mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """`x` padded on its spatial axes; `pads` is one (before, after) per spatial axis.

    `mode` is PyTorch's padding_mode (zeros, reflect, replicate, circular). Returns `x`
    itself when there is nothing to pad.
    """
    if not any(a or b for a, b in pads):
        return x
    width = [(0, 0)] * (x.ndim - len(pads)) + [(a, b) for a, b in pads]
    np_mode = NUMPY_PAD_MODES[mode]
    if np_mode == "constant":
        if value == 0.0:
            out = np.zeros(tuple(n + a + b for n, (a, b) in zip(x.shape, width)), dtype=x.dtype)
        else:
            out = np.full(tuple(n + a + b for n, (a, b) in zip(x.shape, width)), value, dtype=x.dtype)
        out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, width))] = x
        return out
    return np.pad(x, width, mode=np_mode)


def last_axes(index: Sequence[slice]) -> tuple[EllipsisType | slice, ...]:
    """The key that applies `index` to the last axes: `x[..., *index]` (that syntax needs Python 3.11)."""
    return (Ellipsis, *index)


def output_size(n: int, kernel: int, stride: int, dilation: int) -> int:
    """Windows that fit in an (already padded) axis of length `n`."""
    return (n - dilation * (kernel - 1) - 1) // stride + 1


def windows(
    xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    out: Sequence[int] | None = None,
) -> np.ndarray:
    """Read-only view `(N, C, *out, *kernel)` of every window of the padded `xp`."""
    rank = len(kernel)
    if out is None:
        out = [output_size(n, k, s, d) for n, k, s, d in zip(xp.shape[-rank:], kernel, stride, dilation)]
    lead, spatial = xp.strides[:-rank], xp.strides[-rank:]
    shape = (*xp.shape[:-rank], *out, *kernel)
    strides = (*lead, *(st * s for st, s in zip(spatial, stride)), *(st * d for st, d in zip(spatial, dilation)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def taps(
    xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    out: Sequence[int],
) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Each kernel offset (row-major) and the strided view `(N, C, *out)` it reads."""
    rank = len(kernel)
    for tap in itertools.product(*(range(k) for k in kernel)):
        index = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(tap, dilation, out, stride)
        )
        yield tap, xp[last_axes(index)] if rank else xp


def im2col(
    xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
    out: Sequence[int], groups: int = 1,
) -> np.ndarray:
    """Columns `(N, G, C/G * prod(kernel), prod(out))` of the padded `xp`, contiguous.

    Row order is (channel, *kernel), matching a PyTorch weight `[C_out, C_in/G, *k]`
    reshaped to `[G, C_out/G, C_in/G * prod(k)]`, so a convolution is one batched matmul.
    """
    n, c = xp.shape[:2]
    cg = c // groups
    s_n, s_c = xp.strides[:2]
    spatial = xp.strides[2:]
    shape = (n, groups, cg, *kernel, *out)
    strides = (
        s_n, s_c * cg, s_c,
        *(st * d for st, d in zip(spatial, dilation)),
        *(st * s for st, s in zip(spatial, stride)),
    )
    view = np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)
    return np.ascontiguousarray(view).reshape(n, groups, cg * math.prod(kernel), math.prod(out))


def col2im(
    cols: np.ndarray, full: np.ndarray, stride: Sequence[int], dilation: Sequence[int],
) -> np.ndarray:
    """Adds `cols` `(N, C, *kernel, *positions)` into `full` `(N, C, *spatial)`, in place.

    Position `i`, tap `t` lands on `i*s + t*d` per axis: the adjoint of `im2col` (and of
    `windows`). One vectorised add per kernel tap. Returns `full`.
    """
    rank = full.ndim - 2
    kernel = cols.shape[2 : 2 + rank]
    positions = cols.shape[2 + rank :]
    for tap in itertools.product(*(range(k) for k in kernel)):
        index = tuple(
            slice(t * d, t * d + (p - 1) * s + 1, s) for t, d, p, s in zip(tap, dilation, positions, stride)
        )
        at_tap: tuple[slice | int, ...] = (slice(None), slice(None), *tap)  # every batch and channel
        full[last_axes(index)] += cols[at_tap]
    return full


def chunk_ranges(total: int, bytes_per_item: int, budget: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """Split `range(total)` into consecutive `(start, stop)` pieces of at most `budget` bytes.

    Always at least one item per piece, so a single huge item is still processed.
    """
    per = max(1, budget // max(1, bytes_per_item))
    return [(a, min(a + per, total)) for a in range(0, total, per)]
