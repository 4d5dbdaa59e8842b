"""The table of NumPy kernels: every layer-type name (merges included) -> `Kernel`.

A layer type registered in `convcalc.layers.REGISTRY` without an entry here fails
`tests/test_numeric_kernels.py`. Use `forward_node` to run one node of the graph
(`forward_layer` / `forward_merge` for one input / several), `layer_params` to draw its
random parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric import activation, blocks, conv, merge, norm, pool, reshape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec, init_params

KERNELS: dict[str, Kernel] = {}
for _module in (conv, pool, norm, activation, reshape, blocks, merge):
    for _name, _kernel in _module.KERNELS.items():
        if _name in KERNELS:
            raise ValueError(f"kernel for {_name} defined twice")
        KERNELS[_name] = _kernel

MERGE_KERNELS: Mapping[str, Kernel] = merge.KERNELS
NO_ARGS: Args = {}


def param_specs(lt: LayerType, args: Args, input_shape: Shape) -> Mapping[str, ParamSpec]:
    """Parameter and buffer specs (PyTorch names and layouts) for a batchless input shape."""
    return KERNELS[lt.name].params(lt, args, input_shape)


def layer_params(lt: LayerType, args: Args, input_shape: Shape, rng: np.random.Generator,
                 dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Random parameters for one layer, drawn from `rng`."""
    return init_params(param_specs(lt, args, input_shape), rng, dtype)


def forward_layer(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    """Run one layer on the batched input `x` (`save=True`: keep what backward needs)."""
    return KERNELS[lt.name].forward(lt, args, x, params, save=save)


def forward_merge(mt: LayerType, xs: Sequence[np.ndarray], args: Args = NO_ARGS) -> Output:
    """Run a merge on its batched inputs."""
    return KERNELS[mt.name].forward(mt, args, xs, {})


def forward_node(lt: LayerType, args: Args, xs: Sequence[np.ndarray], params: Params,
                 save: bool = False) -> Output:
    """Run one node of the graph on its inputs (one array, or a merge's several)."""
    if lt.arity == 1:
        if len(xs) > 1:  # a `size_of:` input: only its shape is read
            args = lt.bind(args, [x.shape[1:] for x in xs])
        return forward_layer(lt, args, xs[0], params, save=save)
    return KERNELS[lt.name].forward(lt, args, xs, params, save=save)
