"""Layers that keep the shape: activations, dropout, identity, softmax."""

from __future__ import annotations

from typing import Any

from convcalc.errors import ArgumentError, ShapeError
from convcalc.layers.base import Arg, Args, Bool, Choice, Float, Inference, Int, LayerType, Shape, TorchCall
from convcalc.layers.norm import same_shape
from convcalc.receptive import IDENTITY, Dense

INPLACE = Arg("inplace", Bool(), False, "Accepted for compatibility; no effect on shapes.")


class Elementwise(LayerType):
    """A parameter-free layer applied element by element; `torch_name` is its torch.nn class."""

    def __init__(self, name: str, torch_name: str, summary: str, *args: Arg) -> None:
        super().__init__(name)
        self.torch_name = torch_name
        self.summary = summary
        self.args = args

    def infer(self, args: Args, shape: Shape) -> Inference:
        return same_shape(shape)

    def ranked(self, rank: int) -> Elementwise:
        """This type, taking inputs with exactly `rank` spatial axes."""
        self.rank = rank
        return self

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """The torch.nn class with the same arguments, but `inplace`: an in-place activation
        would overwrite a value another branch still reads (a residual's input)."""
        return TorchCall(self.torch_name, (), tuple(self.changed(args, *(n for n in self.arg_names if n != "inplace"))))


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

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("PReLU", (), tuple(self.changed(args, "num_parameters", "init")))


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

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.Softmax / nn.LogSoftmax, always with `dim` (PyTorch's default guesses one)."""
        return TorchCall("Softmax" if self.name == "softmax" else "LogSoftmax", (), (("dim", args["dim"]),))


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


class Hardtanh(Elementwise):
    def check_args(self, args: dict[str, Any]) -> None:
        if args["max_val"] <= args["min_val"]:
            raise ArgumentError(f"'max_val' must be greater than 'min_val' (got min_val={args['min_val']:g},"
                                f" max_val={args['max_val']:g}), as PyTorch requires", arg="max_val")


P = Arg("p", Float(0.0), 0.5, "Drop probability, in [0, 1].")


class Dropout(Elementwise):
    """Dropout; dropout1d/2d/3d zero whole channels and take exactly 1/2/3 spatial axes, as
    torch.nn.DropoutNd requires of a batched input."""

    def check_args(self, args: dict[str, Any]) -> None:
        if args["p"] > 1:
            raise ArgumentError(f"'p' must be a probability in [0, 1] (got {args['p']:g})", arg="p")

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        return same_shape(shape)


LAYER_TYPES: list[LayerType] = [
    Elementwise("identity", "Identity", "Passes the input through."),
    Elementwise("relu", "ReLU", "max(x, 0).", INPLACE),
    Elementwise("relu6", "ReLU6", "min(max(x, 0), 6).", INPLACE),
    Elementwise("leakyrelu", "LeakyReLU", "x if x > 0 else negative_slope * x.",
                Arg("negative_slope", Float(), 0.01, "Slope for x < 0."), INPLACE),
    PReLU("prelu"),
    Elementwise("elu", "ELU", "Exponential linear unit.", Arg("alpha", Float(), 1.0, "Scale for x < 0."), INPLACE),
    Elementwise("gelu", "GELU", "Gaussian error linear unit.",
                Arg("approximate", Choice(("none", "tanh")), "none", "'tanh' for the tanh approximation.")),
    Elementwise("silu", "SiLU", "x * sigmoid(x) (swish).", INPLACE),
    Elementwise("mish", "Mish", "x * tanh(softplus(x)).", INPLACE),
    Elementwise("softplus", "Softplus", "log(1 + exp(beta * x)) / beta.",
                Arg("beta", Float(), 1.0, "Sharpness."), Arg("threshold", Float(), 20.0, "Linear above this.")),
    Elementwise("sigmoid", "Sigmoid", "1 / (1 + exp(-x))."),
    Elementwise("tanh", "Tanh", "Hyperbolic tangent."),
    Elementwise("hardswish", "Hardswish", "x * relu6(x + 3) / 6.", INPLACE),
    Elementwise("hardsigmoid", "Hardsigmoid", "relu6(x + 3) / 6.", INPLACE),
    Hardtanh("hardtanh", "Hardtanh", "Clamp to [min_val, max_val].",
                Arg("min_val", Float(), -1.0, "Lower bound."), Arg("max_val", Float(), 1.0, "Upper bound."), INPLACE),
    Softmax("softmax"),
    Softmax("logsoftmax"),
    *(Dropout(name, torch_name, "Zeroes elements (or whole channels) in training; identity at inference.", P,
              INPLACE)
      for name, torch_name in (("dropout", "Dropout"), ("alphadropout", "AlphaDropout"),
                               ("featurealphadropout", "FeatureAlphaDropout"))),
    *(Dropout(f"dropout{r}d", f"Dropout{r}d", f"Zeroes whole channels in training ({r} spatial axes); identity at"
              " inference.", P, INPLACE).ranked(r) for r in (1, 2, 3)),
]
