"""Normalisation layers in inference mode (PyTorch's `eval()`), in NumPy.

BatchNorm and InstanceNorm use their running statistics when they track them, else the
statistics of the input (as PyTorch does in eval mode); variances are biased. LRN
averages squares over `size` neighbouring channels, zero-padded `size//2` before and
`(size-1)//2` after, as `torch.nn.functional.local_response_norm`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec


def _channel(a: np.ndarray, ndim: int) -> np.ndarray:
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def normalize(x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    return (x - mean) / np.sqrt(var + np.asarray(eps, dtype=x.dtype))


def affine_params(c: int, affine: bool, running: bool) -> dict[str, ParamSpec]:
    specs = {}
    if affine:
        specs["weight"] = ParamSpec((c,), "scale")
        specs["bias"] = ParamSpec((c,), "shift")
    if running:
        specs["running_mean"] = ParamSpec((c,), "shift")
        specs["running_var"] = ParamSpec((c,), "variance")
    return specs


def batchnorm_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    return affine_params(shape[0], args["affine"], args["track_running_stats"])


def _scale_shift(x: np.ndarray, y: np.ndarray, params: Params) -> np.ndarray:
    if "weight" in params:
        y *= _channel(params["weight"], x.ndim)
        y += _channel(params["bias"], x.ndim)
    return y


def running_scale_shift(params: Params, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Inference BatchNorm as `x * a + b` per channel (two passes over x instead of four)."""
    var = params["running_var"]
    a = 1 / np.sqrt(var + np.asarray(eps, dtype=var.dtype))
    if "weight" in params:
        a = a * params["weight"]
    b = -params["running_mean"] * a
    if "bias" in params:
        b = b + params["bias"]
    return a, b


def batchnorm_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    if "running_mean" in params:
        a, b = running_scale_shift(params, args["eps"])
        y = x * _channel(a, x.ndim)
        y += _channel(b, x.ndim)
        return Output(y)
    else:
        axes = (0, *range(2, x.ndim))
        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return Output(_scale_shift(x, normalize(x, mean, var, args["eps"]), params))


def instancenorm_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    if "running_mean" in params:
        mean, var = _channel(params["running_mean"], x.ndim), _channel(params["running_var"], x.ndim)
    else:
        axes = tuple(range(2, x.ndim))
        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return Output(_scale_shift(x, normalize(x, mean, var, args["eps"]), params))


def layernorm_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    normalized = tuple(args["normalized_shape"] or shape[-1:])
    if not args["elementwise_affine"]:
        return {}
    specs = {"weight": ParamSpec(normalized, "scale")}
    if args["bias"]:
        specs["bias"] = ParamSpec(normalized, "shift")
    return specs


def layernorm_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    count = len(args["normalized_shape"] or (1,))
    axes = tuple(range(x.ndim - count, x.ndim))
    y = normalize(x, x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True), args["eps"])
    if "weight" in params:
        y *= params["weight"]
    if "bias" in params:
        y += params["bias"]
    return Output(y)


def layernorm2d_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    if not args["elementwise_affine"]:
        return {}
    specs = {"weight": ParamSpec((shape[0],), "scale")}
    if args["bias"]:
        specs["bias"] = ParamSpec((shape[0],), "shift")
    return specs


def layernorm2d_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    """LayerNorm over dim 1 (the channels) at every position, with a per-channel scale and shift."""
    mean = x.mean(axis=1, keepdims=True)
    centred = x - mean
    var = np.square(centred).mean(axis=1, keepdims=True)
    var += np.asarray(args["eps"], dtype=x.dtype)
    centred /= np.sqrt(var)
    if "weight" in params:
        centred *= _channel(params["weight"], x.ndim)
    if "bias" in params:
        centred += _channel(params["bias"], x.ndim)
    return Output(centred)


def groupnorm_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    return affine_params(shape[0], args["affine"], False)


def groupnorm_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    n, c = x.shape[:2]
    grouped = x.reshape(n, args["num_groups"], -1)
    y = normalize(grouped, grouped.mean(axis=2, keepdims=True), grouped.var(axis=2, keepdims=True),
                  args["eps"]).reshape(x.shape)
    return Output(_scale_shift(x, y, params))


def lrn_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    size, c = args["size"], x.shape[1]
    if size <= 16:  # one add per channel offset
        padded = np.zeros((x.shape[0], c + size - 1, *x.shape[2:]), dtype=x.dtype)
        np.square(x, out=padded[:, size // 2 : size // 2 + c])
        window = padded[:, :c].copy()
        for t in range(1, size):
            window += padded[:, t : t + c]
    else:  # a difference of running sums (in float64), whatever the size
        sums = np.zeros((x.shape[0], c + 1, *x.shape[2:]))
        np.cumsum(np.square(x, dtype=np.float64), axis=1, out=sums[:, 1:])
        hi = np.minimum(np.arange(c) + (size - 1) // 2 + 1, c)
        lo = np.maximum(np.arange(c) - size // 2, 0)
        window = (sums[:, hi] - sums[:, lo]).astype(x.dtype)
    denom = window * np.asarray(args["alpha"] / size, dtype=x.dtype) + np.asarray(args["k"], dtype=x.dtype)
    return Output(x / denom ** np.asarray(args["beta"], dtype=x.dtype))


def stats_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    return 3 * math.prod(in_shape)


KERNELS: Mapping[str, Kernel] = {
    **{f"batchnorm{r}d": Kernel(batchnorm_forward, batchnorm_params) for r in (1, 2, 3)},
    **{f"instancenorm{r}d": Kernel(instancenorm_forward, batchnorm_params, stats_workspace) for r in (1, 2, 3)},
    "layernorm": Kernel(layernorm_forward, layernorm_params, stats_workspace),
    "layernorm2d": Kernel(layernorm2d_forward, layernorm2d_params, stats_workspace),
    "groupnorm": Kernel(groupnorm_forward, groupnorm_params, stats_workspace),
    "localresponsenorm": Kernel(lrn_forward, workspace=stats_workspace),
}
