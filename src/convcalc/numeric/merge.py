"""The layers with several inputs (add, mul, concat), in NumPy.

A merge's forward takes the tuple of its batched inputs where other kernels take one
array; it has no parameters and allocates nothing beyond its output.
Imports NumPy and `convcalc.layers` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from convcalc.layers import Args, LayerType
from convcalc.numeric.base import Kernel, Output, Params, no_workspace


def add_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params, save: bool = False) -> Output:
    """The sum, broadcast as PyTorch does (the batch is every input's first axis)."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    total = np.array(np.broadcast_to(xs[0], shape))
    for x in xs[1:]:
        if x.shape == total.shape:
            total += x
        else:  # broadcasting (a size-1 axis stretches)
            total = total + x
    return Output(total)


def mul_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params, save: bool = False) -> Output:
    """The product, broadcast as PyTorch does."""
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    total = np.array(np.broadcast_to(xs[0], shape))
    for x in xs[1:]:
        total *= x
    return Output(total)


def concat_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params,
                   save: bool = False) -> Output:
    return Output(np.concatenate(xs, axis=concat_axis(args, xs[0].ndim)))


def concat_axis(args: Args, ndim: int) -> int:
    """The batched axis of concat's `dim` (1: channels; negative counts from the end)."""
    dim = args.get("dim", 1)
    return dim if dim > 0 else ndim + dim


KERNELS: Mapping[str, Kernel] = {
    "add": Kernel(add_forward, workspace=no_workspace),
    "mul": Kernel(mul_forward, workspace=no_workspace),
    "concat": Kernel(concat_forward, workspace=no_workspace),
}
