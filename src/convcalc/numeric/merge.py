"""The layers with several inputs (add, mul, concat), in NumPy.

A merge's forward takes the tuple of its batched inputs where other kernels take one
array; it has no parameters and allocates nothing beyond its output.
Imports NumPy and `convcalc.layers` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params


def add_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params, save: bool = False) -> Output:
    total = xs[0].copy()
    for x in xs[1:]:
        if x.shape == total.shape:
            total += x
        else:  # broadcasting (a size-1 axis stretches)
            total = total + x
    return Output(total)


def mul_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params, save: bool = False) -> Output:
    product = xs[0].copy()
    for x in xs[1:]:
        if x.shape == product.shape:
            product *= x
        else:
            product = product * x
    return Output(product)


def concat_forward(mt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params,
                   save: bool = False) -> Output:
    return Output(np.concatenate(xs, axis=1))


def no_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    return 0


KERNELS: Mapping[str, Kernel] = {
    "add": Kernel(add_forward, workspace=no_workspace),
    "mul": Kernel(mul_forward, workspace=no_workspace),
    "concat": Kernel(concat_forward, workspace=no_workspace),
}
