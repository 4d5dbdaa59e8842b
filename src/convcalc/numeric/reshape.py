"""Linear, flatten, upsampling, pixel (un)shuffle and padding layers, in NumPy.

Upsampling is separable: per spatial axis, a gather of 1, 2 or 4 input indices and a
weighted sum, with PyTorch's index rules (UpSample.h): scale = 1/scale_factor when a
scale factor is given, else n_in/n_out, in float32 for float32 data (PyTorch's opmath).
nearest: `floor(o*scale)` (with PyTorch's shortcuts for out == n or 2n, in 2D only);
nearest-exact: `floor(max(scale*(o + 0.5) - 0.5, 0) + 0.5)`; linear: `src = (o + 0.5)*scale
- 0.5` clamped at 0, or `o*(n_in-1)/(n_out-1)` with align_corners, and a plain copy when
n_out == n_in; cubic: Keys' kernel with A = -0.75, indices clamped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec, no_workspace
from convcalc.numeric.windows import pad

# --- linear and flatten -------------------------------------------------------------------


def linear_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    specs = {"weight": ParamSpec((args["out_features"], shape[-1]), "fan_in", shape[-1])}
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_features"],), "shift")
    return specs


def linear_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    # One 2-D product (a single BLAS call): a stacked matmul over [N, H, W, C] runs one small
    # product per row, tens of times slower for ConvNeXt's channels-last MLP.
    weight = params["weight"]
    y = np.matmul(x.reshape(-1, x.shape[-1]), weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if "bias" in params:
        y += params["bias"]
    return Output(y)


def flatten_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    start, end = args["start_dim"] % x.ndim, args["end_dim"] % x.ndim
    return Output(x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :]))


# --- upsampling ---------------------------------------------------------------------------


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> list[np.ndarray]:
    def near(v: np.ndarray) -> np.ndarray:  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v: np.ndarray) -> np.ndarray:  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def axis_taps(
    n: int, out: int, mode: str, align_corners: bool, scale_factor: float | None, dtype: np.dtype,
    rank: int = 1,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(input indices, weights) pairs for one axis; weights None means 1 (nearest).

    PyTorch 2.13's 2D nearest kernel takes `nearest_idx`'s shortcuts (out == n: copy,
    out == 2n: o // 2) even when a scale factor says otherwise; 1D and 3D do not.
    """
    o = np.arange(out)
    work: type[np.floating] = np.float32 if dtype == np.float32 else np.float64  # PyTorch's opmath type
    if mode == "nearest" and rank == 2 and out in (n, 2 * n):
        return [(o if out == n else o >> 1, None)]
    if mode in ("nearest", "nearest-exact"):
        scale = work(1.0 / scale_factor) if scale_factor else work(n) / work(out)
        if mode == "nearest":
            src = np.floor(scale * o.astype(work))
        else:  # src = scale*(o + 0.5) - 0.5, clamped at 0, rounded half up
            src = np.floor(np.maximum(scale * (o.astype(work) + work(0.5)) - work(0.5), 0) + work(0.5))
        return [(np.minimum(src.astype(np.int64), n - 1), None)]
    if align_corners:
        scale = work((n - 1) / (out - 1)) if out > 1 else work(0)
        src = scale * o.astype(work)
    else:
        scale = work(1.0 / scale_factor) if scale_factor else work(n) / work(out)
        src = scale * (o.astype(work) + work(0.5)) - work(0.5)
    if mode == "cubic":
        base = np.floor(src).astype(np.int64)
        t = (src - base).astype(work)
        return [(np.clip(base - 1 + j, 0, n - 1), w.astype(dtype)) for j, w in enumerate(_cubic_weights(t))]
    if out == n:  # PyTorch's compute_source_index_and_lambda copies, whatever the scale factor
        return [(o, None)]
    src = np.maximum(src, 0)
    i0 = np.minimum(src.astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    lam1 = (src - i0).astype(work)
    return [(i0, (1 - lam1).astype(dtype)), (i1, lam1.astype(dtype))]


def interpolate(
    x: np.ndarray, out: Sequence[int], mode: str = "nearest", align_corners: bool = False,
    scale_factor: Sequence[float] | None = None,
) -> np.ndarray:
    """Like `torch.nn.functional.interpolate`; mode is nearest, nearest-exact, linear or cubic."""
    y = x
    for axis in range(x.ndim - 2):
        dim = 2 + axis
        n = x.shape[dim]
        sf = scale_factor[axis] if scale_factor else None
        shape = (-1,) + (1,) * (x.ndim - dim - 1)
        total = None
        for idx, w in axis_taps(n, out[axis], mode, align_corners, sf, x.dtype, x.ndim - 2):
            part = np.take(y, idx, axis=dim)
            if w is not None:
                part *= w.reshape(shape)
            total = part if total is None else total + part
        assert total is not None  # axis_taps gives at least one (indices, weights) pair
        y = total
    return y


UPSAMPLE_MODES = {"nearest": "nearest", "nearest-exact": "nearest-exact", "linear": "linear",
                  "bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}


def upsample_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    rank = x.ndim - 2
    if args["size"] is not None:
        size = args["size"] * rank if len(args["size"]) == 1 else args["size"]
        out, factors = list(size), None
    else:
        factors = args["scale_factor"] * rank if len(args["scale_factor"]) == 1 else args["scale_factor"]
        out = [math.floor(n * f) for n, f in zip(x.shape[2:], factors)]
    y = interpolate(x, out, UPSAMPLE_MODES[args["mode"]], bool(args["align_corners"]), factors)
    return Output(y)


# --- pixel shuffle and padding ------------------------------------------------------------


def pixelshuffle_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    r = args["upscale_factor"]
    n, c, h, w = x.shape
    y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return Output(y.reshape(n, c // (r * r), h * r, w * r))


def pixelunshuffle_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    r = args["downscale_factor"]
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
    return Output(y.reshape(n, c * r * r, h // r, w // r))


PAD_MODES = {"zero": "zeros", "constant": "zeros", "reflection": "reflect", "replication": "replicate",
             "circular": "circular"}


def pad_or_crop(x: np.ndarray, pads: Sequence[tuple[int, int]], value: float = 0.0) -> np.ndarray:
    """Constant padding of the spatial axes where a width is positive, cropping where negative."""
    lead = x.ndim - len(pads)
    crop = tuple([slice(None)] * lead + [slice(max(-a, 0), n - max(-b, 0))
                                         for n, (a, b) in zip(x.shape[lead:], pads)])
    return pad(x[crop], [(max(a, 0), max(b, 0)) for a, b in pads], "zeros" if value == 0.0 else "constant", value)


def centercrop_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(np.ascontiguousarray(pad_or_crop(x, lt.pads(args, x.shape[1:]))))  # type: ignore[attr-defined]


def pad_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    mode = lt.mode  # type: ignore[attr-defined]
    if any(min(a, b) < 0 for a, b in args["padding"]):  # negative widths crop (zero and constant modes)
        return Output(np.ascontiguousarray(pad_or_crop(x, args["padding"], float(args.get("value", 0.0)))))
    y = pad(x, args["padding"], PAD_MODES[mode], float(args.get("value", 0.0)))
    return Output(np.array(y, copy=y is x))


def gather_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    return 4 * max(math.prod(in_shape), math.prod(out_shape)) + math.prod(out_shape)


KERNELS: Mapping[str, Kernel] = {
    "linear": Kernel(linear_forward, linear_params),
    "flatten": Kernel(flatten_forward, workspace=no_workspace),
    "upsample": Kernel(upsample_forward, workspace=gather_workspace),
    "centercrop": Kernel(centercrop_forward),
    "upsamplingnearest2d": Kernel(upsample_forward, workspace=gather_workspace),
    "upsamplingbilinear2d": Kernel(upsample_forward, workspace=gather_workspace),
    "pixelshuffle": Kernel(pixelshuffle_forward),
    "pixelunshuffle": Kernel(pixelunshuffle_forward),
    **{f"{mode}pad{r}d": Kernel(pad_forward) for mode in PAD_MODES for r in (1, 2, 3)},
}
