"""How a layer type runs in NumPy: a `Kernel` (parameter shapes + forward function).

`convcalc.layers` says what a layer computes (shapes, counts); a `Kernel` says how to run
it. Each family module (conv, pool, norm, activation, reshape) exports `KERNELS`, a dict
from layer-type name to `Kernel`; `numeric.kernels` joins them into one table.

Forward functions take the batched input `x` `(N, *input_shape)`, the layer's validated
args and its parameters (PyTorch names and layouts), and return an `Output`: the result
and, when `save=True`, what a backward pass needs beyond the input (max-pool arg-max
indices as "indices"). Imports NumPy and `convcalc.layers` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.records import record

Params = Mapping[str, np.ndarray]

INIT_RANGES = {"scale": (0.5, 1.5), "shift": (-0.1, 0.1), "variance": (0.5, 1.5), "slope": (0.0, 0.5)}


@record
class ParamSpec:
    """One parameter or buffer: its shape (PyTorch layout) and how to draw it at random.

    `init` is one of: "fan_in" (uniform +-sqrt(6 / fan_in), He's variance-preserving
    bound, so deep stacks neither vanish nor explode), or a key of `INIT_RANGES`
    ("scale", "shift", "variance": BatchNorm's weight, bias, running stats; "slope": PReLU).
    """

    shape: Shape
    init: str
    fan_in: int = 1


@record
class Output:
    """A forward result; `saved` holds extra arrays for a backward pass (when asked)."""

    y: np.ndarray
    saved: Mapping[str, np.ndarray] = field(default_factory=dict)


ParamShapes = Callable[[LayerType, Args, Shape], Mapping[str, ParamSpec]]
Forward = Callable[..., Output]
Workspace = Callable[[LayerType, Args, Shape, Shape], int]


def no_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    return {}


def no_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    """No temporaries beyond the output (views, copies, element-wise products)."""
    return 0


def default_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    """Elements of temporaries per sample beyond input and output: two outputs' worth."""
    return 2 * math.prod(out_shape)


@record
class Kernel:
    """How one layer type runs.

    `forward(lt, args, x, params, save=False) -> Output`; `params(lt, args, input_shape)`
    gives the parameter specs for a batchless input shape; `workspace(lt, args, in, out)`
    estimates the elements of temporaries per sample (for `--max-memory`, checked before
    anything is allocated).
    """

    forward: Forward
    params: ParamShapes = no_params
    workspace: Workspace = default_workspace


def init_params(specs: Mapping[str, ParamSpec], rng: np.random.Generator, dtype: Any) -> dict[str, np.ndarray]:
    """Random parameters for `specs`, drawn in order from `rng`, in `dtype`.

    Always drawn in float32 (then cast), so float32 and float64 runs use the same weights.
    """
    out: dict[str, np.ndarray] = {}
    drawn = np.float32
    for name, spec in specs.items():
        if spec.init == "fan_in":
            bound = math.sqrt(6.0 / max(1, spec.fan_in))
            low, high = -bound, bound
        else:
            low, high = INIT_RANGES[spec.init]
        values = rng.random(spec.shape, dtype=drawn)
        values *= drawn(high - low)  # in place and in `dtype`: no float64 temporaries
        values += drawn(low)
        out[name] = values.astype(dtype, copy=False)
    return out
