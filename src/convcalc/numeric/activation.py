"""Element-wise layers (activations, dropout at inference, softmax) in NumPy.

Formulas follow the PyTorch documentation of the layer of the same name. NumPy has no
`erf`, so exact GELU uses `erf` below (Cody's rational approximations, ~1e-16 in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec

# W. J. Cody's rational Chebyshev approximations (Math. Comp. 23, 1969; Netlib SPECFUN's
# CALERF): erf on |x| <= 0.46875, erfc on (0.46875, 4] and beyond 4; about 1e-16 relative in
# float64, a few float32 ulps when evaluated in float32. Lowest degree first.
_ERF_A = (3.20937758913846947e03, 3.77485237685302021e02, 1.13864154151050156e02,
          3.16112374387056560e00, 1.85777706184603153e-1)
_ERF_B = (2.84423683343917062e03, 1.28261652607737228e03, 2.44024637934444173e02,
          2.36012909523441209e01, 1.0)
_ERFC_C = (1.23033935479799725e03, 2.05107837782607147e03, 1.71204761263407058e03,
           8.81952221241769090e02, 2.98635138197400131e02, 6.61191906371416295e01,
           8.88314979438837594e00, 5.64188496988670089e-1, 2.15311535474403846e-8)
_ERFC_D = (1.23033935480374942e03, 3.43936767414372164e03, 4.36261909014324716e03,
           3.29079923573345963e03, 1.62138957456669019e03, 5.37181101862009858e02,
           1.17693950891312499e02, 1.57449261107098347e01, 1.0)
_ERFC_P = (6.58749161529837803e-4, 1.60837851487422766e-2, 1.25781726111229246e-1,
           3.60344899949804439e-1, 3.05326634961232344e-1, 1.63153871373020978e-2)
_ERFC_Q = (2.33520497626869185e-3, 6.05183413124413191e-2, 5.27905102951428412e-1,
           1.87295284992346047e00, 2.56852019228982242e00, 1.0)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1


def _poly(t: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """sum c_i t^i by Horner's rule, in t's dtype, updating one array in place."""
    dtype = t.dtype.type
    out = np.full_like(t, dtype(coefficients[-1]))
    for c in reversed(coefficients[:-1]):
        out *= t
        out += dtype(c)
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised (NumPy has none), in x's precision (float64 for ints)."""
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    flat = np.ascontiguousarray(x, dtype=dtype).ravel()
    y = np.abs(flat)
    out = np.empty_like(flat)
    near = np.flatnonzero(y <= 0.46875)
    if near.size:  # erf(x) = x A(x^2) / B(x^2)
        xs = flat[near]
        t = xs * xs
        out[near] = xs * _poly(t, _ERF_A) / _poly(t, _ERF_B)
    mid = np.flatnonzero((y > 0.46875) & (y <= 4.0))
    if mid.size:  # erfc(y) = exp(-y^2) C(y) / D(y)
        ys = y[mid]
        erfc = np.exp(-ys * ys) * _poly(ys, _ERFC_C) / _poly(ys, _ERFC_D)
        out[mid] = np.copysign(1 - erfc, flat[mid])
    far = np.flatnonzero(~(y <= 4.0))
    if far.size:  # erfc(y) = exp(-y^2) / y (1/sqrt(pi) - P(1/y^2) / (y^2 Q(1/y^2))); NaN stays NaN
        ys = y[far]
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            t = 1 / (ys * ys)
            erfc = np.exp(-ys * ys) / ys * (dtype.type(_ONE_OVER_SQRT_PI) - t * _poly(t, _ERFC_P) / _poly(t, _ERFC_Q))
        out[far] = np.copysign(1 - np.nan_to_num(erfc, nan=0.0) * ~np.isnan(ys), flat[far])
        out[far[np.isnan(ys)]] = np.nan
    return out.reshape(x.shape)


def _softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    scaled = x * np.asarray(beta, dtype=x.dtype)
    return np.where(scaled > threshold, x, np.logaddexp(0, scaled) / np.asarray(beta, dtype=x.dtype))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))


def _gelu(x: np.ndarray, args: Args) -> np.ndarray:
    if args["approximate"] == "tanh":
        c = np.asarray(math.sqrt(2 / math.pi), dtype=x.dtype)
        return 0.5 * x * (1 + np.tanh(c * (x + np.asarray(0.044715, dtype=x.dtype) * x**3)))
    y = erf(x * np.asarray(1 / math.sqrt(2), dtype=x.dtype))
    y += 1
    y *= x
    y *= np.asarray(0.5, dtype=x.dtype)
    return y


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def _softmax(x: np.ndarray, args: Args, log: bool) -> np.ndarray:
    dim = args["dim"] % x.ndim
    shifted = x - x.max(axis=dim, keepdims=True)
    if log:
        return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    e = np.exp(shifted)
    return e / e.sum(axis=dim, keepdims=True)


def _scalar(x: np.ndarray, value: float) -> np.ndarray:
    return np.asarray(value, dtype=x.dtype)


FUNCTIONS: dict[str, Callable[[np.ndarray, Args], np.ndarray]] = {
    "identity": lambda x, a: x,
    "relu": lambda x, a: np.maximum(x, 0),
    "relu6": lambda x, a: _relu6(x),
    "leakyrelu": lambda x, a: np.where(x > 0, x, x * _scalar(x, a["negative_slope"])),
    "elu": lambda x, a: np.where(x > 0, x, _scalar(x, a["alpha"]) * np.expm1(np.minimum(x, 0))),
    "gelu": _gelu,
    "silu": lambda x, a: x * _sigmoid(x),
    "mish": lambda x, a: x * np.tanh(_softplus(x)),
    "softplus": lambda x, a: _softplus(x, a["beta"], a["threshold"]),
    "sigmoid": lambda x, a: _sigmoid(x),
    "tanh": lambda x, a: np.tanh(x),
    "hardswish": lambda x, a: x * _relu6(x + 3) / 6,
    "hardsigmoid": lambda x, a: _relu6(x + 3) / 6,
    "hardtanh": lambda x, a: np.clip(x, a["min_val"], a["max_val"]),
    "softmax": lambda x, a: _softmax(x, a, log=False),
    "logsoftmax": lambda x, a: _softmax(x, a, log=True),
    # Dropout is the identity at inference (PyTorch's eval mode).
    **{name: (lambda x, a: x) for name in (
        "dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout", "featurealphadropout")},
}


def elementwise_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    return Output(np.asarray(FUNCTIONS[lt.name](x, args), dtype=x.dtype))


def prelu_params(lt: LayerType, args: Args, shape: Shape) -> Mapping[str, ParamSpec]:
    return {"weight": ParamSpec((args["num_parameters"],), "slope")}


def prelu_forward(lt: LayerType, args: Args, x: np.ndarray, params: Params, save: bool = False) -> Output:
    w = params["weight"]
    if x.ndim > 1:
        w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    return Output(np.where(x > 0, x, x * w))


def gelu_workspace(lt: LayerType, args: Args, in_shape: Shape, out_shape: Shape) -> int:
    return 8 * math.prod(in_shape)  # float64 temporaries of erf


KERNELS: Mapping[str, Kernel] = {
    **{name: Kernel(elementwise_forward, workspace=gelu_workspace if name == "gelu" else
                    (lambda lt, args, i, o: 3 * math.prod(o)))
       for name in FUNCTIONS},
    "prelu": Kernel(prelu_forward, prelu_params),
}
