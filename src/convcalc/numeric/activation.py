"""Element-wise layers (activations, dropout at inference, softmax) in NumPy.

Formulas follow the PyTorch documentation of the layer of the same name. NumPy has no
`erf`, so exact GELU uses `erf` below (series + continued fraction, ~1e-13 absolute).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from convcalc.layers import Args, LayerType, Shape
from convcalc.numeric.base import Kernel, Output, Params, ParamSpec


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised: Maclaurin series for |x| < 3, else continued fraction."""
    a = np.abs(x.astype(np.float64))
    small = np.minimum(a, 3.0)
    term = small.copy()
    total = small.copy()
    sq = small * small
    for n in range(1, 60):  # erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        term *= -sq / n
        total += term / (2 * n + 1)
    series = total * (2.0 / math.sqrt(math.pi))
    big = np.maximum(a, 3.0)
    frac = big.copy()
    for n in range(60, 0, -1):  # erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
        frac = big + (n / 2.0) / frac
    tail = 1.0 - np.exp(-big * big) / (math.sqrt(math.pi) * frac)
    return (np.sign(x) * np.where(a < 3.0, series, tail)).astype(x.dtype)


def _softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    scaled = x * np.asarray(beta, dtype=x.dtype)
    return np.where(scaled > threshold, x, np.logaddexp(0, scaled) / np.asarray(beta, dtype=x.dtype))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -x))


def _gelu(x: np.ndarray, args: Args) -> np.ndarray:
    if args["approximate"] == "tanh":
        c = np.asarray(math.sqrt(2 / math.pi), dtype=x.dtype)
        return 0.5 * x * (1 + np.tanh(c * (x + np.asarray(0.044715, dtype=x.dtype) * x**3)))
    return 0.5 * x * (1 + erf(x / np.asarray(math.sqrt(2), dtype=x.dtype)))


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
