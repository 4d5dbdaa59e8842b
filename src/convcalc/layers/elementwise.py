"""Layers that keep the shape: activations, dropout, identity, softmax."""

from __future__ import annotations

from typing import Any

from convcalc.errors import ArgumentError, ShapeError
from convcalc.layers.base import Arg, Args, Bool, Choice, Float, Inference, Int, LayerType, Shape
from convcalc.layers.norm import same_shape
from convcalc.receptive import IDENTITY, Dense

INPLACE = Arg("inplace", Bool(), False, "Accepted for compatibility; no effect on shapes.")


class Elementwise(LayerType):
    """A parameter-free layer applied element by element."""

    def __init__(self, name: str, summary: str, *args: Arg) -> None:
        super().__init__(name)
        self.summary = summary
        self.args = args

    def infer(self, args: Args, shape: Shape) -> Inference:
        return same_shape(shape)


class PReLU(LayerType):
    summary = "Parametric ReLU: num_parameters learnable slopes (1, or one per channel)."
    args = (
        Arg("num_parameters", Int(), 1, "1, or the number of channels."),
        Arg("init", Float(), 0.25, "Initial slope."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        n = args["num_parameters"]
        if n not in (1, shape[0]):
            raise ShapeError(f"num_parameters={n} must be 1 or the number of channels ({shape[0]})")
        return same_shape(shape, params=n)


class Softmax(LayerType):
    """Softmax along `dim`, numbered as in PyTorch with the batch as dim 0 (1 = channels)."""

    summary = "Softmax (or log-softmax) along dim, counted with the batch as dim 0."
    args = (Arg("dim", Int(minimum=-99), 1,
                "Axis, with the batch as dim 0 (1 = channels); negative counts from the end."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        axis = batchless_axis(args["dim"], shape, "dim")
        if axis == 0:  # every index of the first dim reads all of it
            return same_shape(shape, lead=Dense(shape[0]))
        axes: list[Any] = [IDENTITY] * (len(shape) - 1)
        axes[axis - 1] = Dense(shape[axis])
        return Inference(output_shape=shape, axes=tuple(axes), lead=IDENTITY)


def batchless_axis(dim: int, shape: Shape, name: str) -> int:
    """Translate a PyTorch dim (batch = 0, negatives from the end) to an index into `shape`."""
    full = len(shape) + 1
    index = dim + full if dim < 0 else dim
    if not 1 <= index < full:
        raise ShapeError(
            f"{name}={dim} is out of range for an input of {full} dims with the batch"
            f" (valid: 1..{full - 1} or -{full - 1}..-1; dim 0 is the batch)"
        )
    return index - 1


P = Arg("p", Float(0.0), 0.5, "Drop probability, in [0, 1].")


class Dropout(Elementwise):
    def check_args(self, args: dict[str, Any]) -> None:
        if args["p"] > 1:
            raise ArgumentError(f"'p' must be a probability in [0, 1] (got {args['p']:g})", arg="p")


LAYER_TYPES: list[LayerType] = [
    Elementwise("identity", "Passes the input through."),
    Elementwise("relu", "max(x, 0).", INPLACE),
    Elementwise("relu6", "min(max(x, 0), 6).", INPLACE),
    Elementwise("leakyrelu", "x if x > 0 else negative_slope * x.",
                Arg("negative_slope", Float(), 0.01, "Slope for x < 0."), INPLACE),
    PReLU("prelu"),
    Elementwise("elu", "Exponential linear unit.", Arg("alpha", Float(), 1.0, "Scale for x < 0."), INPLACE),
    Elementwise("gelu", "Gaussian error linear unit.",
                Arg("approximate", Choice(("none", "tanh")), "none", "'tanh' for the tanh approximation.")),
    Elementwise("silu", "x * sigmoid(x) (swish).", INPLACE),
    Elementwise("mish", "x * tanh(softplus(x)).", INPLACE),
    Elementwise("softplus", "log(1 + exp(beta * x)) / beta.",
                Arg("beta", Float(), 1.0, "Sharpness."), Arg("threshold", Float(), 20.0, "Linear above this.")),
    Elementwise("sigmoid", "1 / (1 + exp(-x))."),
    Elementwise("tanh", "Hyperbolic tangent."),
    Elementwise("hardswish", "x * relu6(x + 3) / 6.", INPLACE),
    Elementwise("hardsigmoid", "relu6(x + 3) / 6.", INPLACE),
    Elementwise("hardtanh", "Clamp to [min_val, max_val].",
                Arg("min_val", Float(), -1.0, "Lower bound."), Arg("max_val", Float(), 1.0, "Upper bound."), INPLACE),
    Softmax("softmax"),
    Softmax("logsoftmax"),
    *(Dropout(name, "Zeroes elements (or whole channels) in training; identity at inference.", P, INPLACE)
      for name in ("dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout", "featurealphadropout")),
]
