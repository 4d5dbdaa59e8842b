"""Channel shuffle, narrow, permute, layer scale and stochastic depth, in NumPy.

Stochastic depth runs as at inference (an identity), like dropout. Imports NumPy and
`convcalc.layers` only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.layers.blocks import span
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec, no_workspace


def shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """torch.nn.functional.channel_shuffle: channels [g, C/g] read as [C/g, g]."""
    n, c = x.shape[:2]
    rest = x.shape[2:]
    return np.ascontiguousarray(x.reshape(n, groups, c // groups, *rest).swapaxes(1, 2)).reshape(n, c, *rest)


def channelshuffle_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(shuffle(x, args["groups"]))


def narrow_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    start, length = span(args, x.shape[1])
    return Output(np.ascontiguousarray(x[:, start:start + length]))


def permute_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(np.ascontiguousarray(x.transpose(args["dims"])))


def layerscale_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    return {"gamma": ParamSpec((shape[0],), "scale")}


def layerscale_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    gamma = params["gamma"].astype(x.dtype, copy=False).reshape(-1, *(1,) * (x.ndim - 2))
    return Output(x * gamma)


def identity_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(x.copy())


KERNELS: Mapping[str, Kernel] = {
    "channelshuffle": Kernel(channelshuffle_forward, workspace=no_workspace),
    "narrow": Kernel(narrow_forward, workspace=no_workspace),
    "permute": Kernel(permute_forward, workspace=no_workspace),
    "layerscale": Kernel(layerscale_forward, layerscale_params, workspace=no_workspace),
    "stochasticdepth": Kernel(identity_forward, workspace=no_workspace),
}
