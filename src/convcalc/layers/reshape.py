"""Layers that change the shape without a sliding window: linear, flatten, upsampling,
pixel shuffle and explicit padding."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, cast

from convcalc.errors import ArgumentError, ShapeError
from convcalc.layers.base import (
    SPATIAL_NAMES,
    Arg,
    Args,
    Bool,
    Choice,
    Code,
    Float,
    Inference,
    Int,
    Kind,
    LayerType,
    Note,
    Optional,
    PathText,
    Shape,
    TorchCall,
    axes_value,
    is_int,
    shape_str,
)
from convcalc.layers.elementwise import batchless_axis
from convcalc.receptive import IDENTITY, AxisMap, Dense, Resample, Window


class Linear(LayerType):
    summary = "Fully connected layer on the last dim: in*out weights + out bias."
    args = (
        Arg("out_features", Int(), doc="Output features."),
        Arg("bias", Bool(), True, "Add a learnable bias."),
        Arg("in_features", Optional(Int()), None, "Checked against the input; inferred when left out."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        n_in, n_out = shape[-1], args["out_features"]
        declared = args["in_features"]
        if declared is not None and declared != n_in:
            hint = "" if len(shape) == 1 else f" (the input is {shape_str(shape)}: flatten it first?)"
            raise ShapeError(f"in_features={declared} but the last dim of the input is {n_in}{hint}")
        positions = math.prod(shape[:-1])
        axes = lead = None
        notes: tuple[Note, ...] = ()
        if len(shape) > 1:  # each position alone (ConvNeXt's channels-last MLP)
            axes, lead = (IDENTITY,) * (len(shape) - 2) + (Dense(n_in),), IDENTITY
            notes = (Note("unflattened-linear",
                          f"this linear acts on the last axis only, so {shape_str(shape)} becomes"
                          f" {shape_str((*shape[:-1], n_out))}; add flatten before it for a classifier"
                          " head (ignore this warning when a per-position linear is meant)"),)
        return Inference(
            output_shape=(*shape[:-1], n_out),
            params=n_in * n_out + (n_out if args["bias"] else 0),
            macs=positions * n_in * n_out,
            axes=axes,
            notes=notes,
            lead=lead,
        )

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("Linear", (in_shape[-1], args["out_features"]), tuple(self.changed(args, "bias")))


class Flatten(LayerType):
    summary = "Flattens dims start_dim..end_dim (numbered with the batch as dim 0)."
    args = (
        Arg("start_dim", Int(minimum=-99), 1, "First dim to flatten; the batch is dim 0."),
        Arg("end_dim", Int(minimum=-99), -1, "Last dim to flatten."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        start = batchless_axis(args["start_dim"], shape, "start_dim")
        end = batchless_axis(args["end_dim"], shape, "end_dim")
        if start > end:
            raise ShapeError(f"start_dim={args['start_dim']} comes after end_dim={args['end_dim']}")
        out = (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
        # Once two axes are merged the receptive field is no longer per axis.
        axes = (IDENTITY,) * (len(out) - 1) if start == end and len(out) > 1 else None
        return Inference(output_shape=out, axes=axes)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("Flatten", (), tuple(self.changed(args, "start_dim", "end_dim")))


class NumbersOrList(Kind):
    """A number or a list of numbers, one per spatial axis (checked when the rank is known)."""

    def __init__(self, integer: bool) -> None:
        self.integer = integer

    def parse(self, name: str, value: Any, rank: int) -> tuple[Any, ...]:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        one = Int() if self.integer else Float(0.0, exclusive=True)
        try:
            if not items:
                raise ArgumentError("")
            return tuple(one.parse(name, v, rank) for v in items)
        except ArgumentError:
            what = "a positive int" if self.integer else "a positive number"
            raise self.fail(name, f"{what} or a list of them, one per spatial axis", value) from None

    def schema(self, rank: int) -> dict[str, Any]:
        one = {"type": "integer", "minimum": 1} if self.integer else {"type": "number", "exclusiveMinimum": 0}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}


MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


class Upsample(LayerType):
    summary = "Upsampling by size or scale_factor (nearest, nearest-exact, linear, bilinear, bicubic, trilinear)."
    args: tuple[Arg, ...] = (
        Arg("size", Optional(NumbersOrList(integer=True)), None, "Output size, one int or one per spatial axis."),
        Arg("scale_factor", Optional(NumbersOrList(integer=False)), None,
            "Multiplier; output = floor(n * scale_factor)."),
        Arg("mode", Choice(("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")), "nearest",
            "Interpolation."),
        Arg("align_corners", Optional(Bool()), None, "Align corner pixels (linear modes only)."),
        Arg("size_of", Optional(PathText()), None,
            "Resize to the spatial size of an earlier output (its path), as F.interpolate(size=other.shape[-2:])."),
    )

    def __init__(self, name: str, rank: int | None = None, fixed_mode: str | None = None) -> None:
        super().__init__(name, rank)
        self.fixed_mode = fixed_mode
        if fixed_mode:  # UpsamplingNearest2d / UpsamplingBilinear2d take only size or scale
            self.args = self.args[:2]

            self.summary = f"Upsampling ({fixed_mode}{', align_corners=True' if fixed_mode == 'bilinear' else ''})."

    def check_args(self, args: dict[str, Any]) -> None:
        given = [k for k in ("size", "scale_factor", "size_of") if args.get(k) is not None]
        if len(given) != 1:
            raise ArgumentError("give exactly one of 'size' and 'scale_factor'" if self.fixed_mode
                                else "give exactly one of 'size', 'scale_factor' and 'size_of'")
        if self.fixed_mode:
            args["mode"] = self.fixed_mode
            args["align_corners"] = True if self.fixed_mode == "bilinear" else None
        if args.get("align_corners") is not None and args["mode"] in ("nearest", "nearest-exact"):
            raise ArgumentError(f"'align_corners' only applies to linear modes, not mode={args['mode']!r}")

    def with_shape_of(self, args: Args, other: Shape) -> Args:
        return MappingProxyType({**args, "size": tuple(other[1:]), "size_of": None})

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        spatial = shape[1:]
        rank = len(spatial)
        if rank == 0:
            raise ShapeError(f"expects an input with spatial axes, got {shape_str(shape)}")
        if args.get("size_of") is not None:
            raise ShapeError("size_of needs the referenced output (run it through the graph)")
        mode = args["mode"]
        if MODE_RANK.get(mode, rank) != rank:
            raise ShapeError(f"mode={mode!r} needs {MODE_RANK[mode]} spatial axes, the input has {rank}")
        given = args["size"] if args["size"] is not None else args["scale_factor"]
        if len(given) == 1:
            given = given * rank
        if len(given) != rank:
            which = "size" if args["size"] is not None else "scale_factor"
            raise ShapeError(f"'{which}' has {len(given)} values for {rank} spatial axes")
        out, axes = [], []
        kind = {"nearest": "nearest", "nearest-exact": "nearest-exact", "bicubic": "cubic"}.get(mode, "linear")
        from fractions import Fraction

        for n, g in zip(spatial, given):
            if args["size"] is not None:
                size, scale = int(g), Fraction(n, int(g))
            else:
                factor = Fraction(g).limit_denominator(1 << 10)
                size, scale = math.floor(n * g), 1 / factor
            if size < 1:
                raise ShapeError(f"output would be empty: floor({n} * {g:g}) = 0")
            out.append(size)
            axes.append(Resample(n, size, scale, kind, bool(args["align_corners"])))
        return Inference(output_shape=(shape[0], *out), axes=tuple(axes))

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.Upsample (one size or factor for all axes, or one per axis), or the fixed-mode
        nn.UpsamplingNearest2d / nn.UpsamplingBilinear2d."""
        if args.get("size_of") is not None:  # called with the output whose size it takes
            return TorchCall("Resize", (), tuple(self.changed(args, "mode", "align_corners")), helper=True)
        kw = []
        for key in ("size", "scale_factor"):
            value = args[key]
            if value is not None:
                kw.append((key, value[0] if isinstance(value, tuple) and len(value) == 1 else value))
        if self.fixed_mode:
            name = "UpsamplingNearest2d" if self.fixed_mode == "nearest" else "UpsamplingBilinear2d"
            return TorchCall(name, (), tuple(kw))
        return TorchCall("Upsample", (), (*kw, *self.changed(args, "mode", "align_corners")))


class PixelShuffle(LayerType):
    summary = "Rearranges [C*r*r, H, W] to [C, H*r, W*r]."
    args = (Arg("upscale_factor", Int(), doc="r."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        r = args["upscale_factor"]
        if shape[0] % (r * r):
            raise ShapeError(f"channels {shape[0]} are not divisible by upscale_factor^2 = {r * r}")
        out = (shape[0] // (r * r), *(n * r for n in shape[1:]))
        from fractions import Fraction

        axes = tuple(Resample(n, n * r, Fraction(1, r), "nearest") for n in shape[1:])
        return Inference(output_shape=out, axes=axes)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("PixelShuffle", (args["upscale_factor"],))


class PixelUnshuffle(LayerType):
    summary = "Rearranges [C, H*r, W*r] to [C*r*r, H, W]."
    args = (Arg("downscale_factor", Int(), doc="r."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        r = args["downscale_factor"]
        for axis, n in zip(SPATIAL_NAMES[2], shape[1:]):
            if n % r:
                raise ShapeError(f"{axis}={n} is not divisible by downscale_factor={r}")
        out = (shape[0] * r * r, *(n // r for n in shape[1:]))
        return Inference(output_shape=out, axes=(Window(r, r),) * 2)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("PixelUnshuffle", (args["downscale_factor"],))


class PadWidths(Kind):
    """PyTorch's padding-layer argument: an int, or (before, after) per axis, last axis first.

    With `negative=True` (zero and constant padding, as `F.pad` allows) a negative width crops.
    """

    def __init__(self, negative: bool = False) -> None:
        self.negative = negative

    def parse(self, name: str, value: Any, rank: int) -> tuple[tuple[int, int], ...]:
        low = -(2**63) if self.negative else 0
        if is_int(value) and value >= low:
            return ((int(value), int(value)),) * rank
        if isinstance(value, (list, tuple)) and len(value) == 2 * rank and all(is_int(v) and v >= low for v in value):
            pairs = [(int(value[2 * i]), int(value[2 * i + 1])) for i in range(rank)]
            return tuple(reversed(pairs))  # PyTorch lists the last axis first
        what = "an int (negative crops)" if self.negative else "a non-negative int"
        raise self.fail(
            name,
            f"{what} or a list of {2 * rank} of them"
            f" ({', '.join(f'{a}_before, {a}_after' for a in reversed(SPATIAL_NAMES[rank]))})",
            value,
        )

    def schema(self, rank: int) -> dict[str, Any]:
        one: dict[str, Any] = {"type": "integer"} if self.negative else {"type": "integer", "minimum": 0}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 2 * rank, "maxItems": 2 * rank}]}


class Pad(LayerType):
    summary = "Explicit padding; `padding` lists the last axis first, as in PyTorch."

    def __init__(self, name: str, rank: int, mode: str) -> None:
        super().__init__(name, rank)
        self.mode = mode
        cropping = mode in ("zero", "constant")
        self.args = (Arg("padding", PadWidths(negative=cropping),
                         doc="An int, or before/after widths, last axis first"
                             + ("; negative widths crop, as F.pad does." if cropping else ".")),)
        if mode == "constant":
            self.args += (Arg("value", Float(), doc="Fill value."),)
        self.summary = f"{mode.capitalize()} padding; `padding` lists the last axis first, as in PyTorch."

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        pads = args["padding"]
        if self.mode == "reflection":
            for axis, n, (a, b) in zip(SPATIAL_NAMES[self.rank or 1], shape[1:], pads):
                if max(a, b) >= n:
                    raise ShapeError(
                        f"reflection padding {max(a, b)} must be smaller than the input size {n} along {axis}")
        if self.mode == "circular":  # PyTorch wraps around at most once
            for axis, n, (a, b) in zip(SPATIAL_NAMES[self.rank or 1], shape[1:], pads):
                if max(a, b) > n:
                    raise ShapeError(f"circular padding {max(a, b)} must be at most the input size {n}"
                                     f" along {axis}, as PyTorch requires (it wraps around once)")
        out = (shape[0], *(n + a + b for n, (a, b) in zip(shape[1:], pads)))
        if min(out[1:]) < 1:
            axis = next(a for a, n in zip(SPATIAL_NAMES[self.rank or 1], out[1:]) if n < 1)
            raise ShapeError(f"negative padding crops everything along {axis} (output {shape_str(out)})")
        fill = {"reflection": "reflect", "replication": "replicate", "circular": "circular"}.get(self.mode, "zeros")
        return Inference(output_shape=out, axes=tuple(Window(pad=a, mode=fill) for a, _ in pads))

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.{Zero,Constant,Reflection,Replication,Circular}PadNd, widths last axis first."""
        pads = args["padding"]
        if not isinstance(pads, Code):
            pads = axes_value(tuple(w for pair in reversed(pads) for w in pair))
        name = f"{self.mode.capitalize()}Pad{self.rank}d"
        return TorchCall(name, (pads, args["value"]) if self.mode == "constant" else (pads,))


def centercrop_pads(spatial: Shape, size: Shape) -> tuple[tuple[int, int], ...]:
    """torchvision's CenterCrop as (before, after) pad widths per axis (negative: cropped).

    Cropping starts at `int(round((n - size) / 2))` (Python's rounding, half to even); an
    axis smaller than `size` is first zero-padded by `(size - n) // 2` before and the rest after.
    """
    pads = []
    for n, c in zip(spatial, size):
        if c > n:
            pads.append(((c - n) // 2, (c - n + 1) // 2))
        else:
            top = int(round((n - c) / 2.0))
            pads.append((-top, c - n + top))
    return tuple(pads)


class CenterCrop(LayerType):
    summary = ("Crops the centre to `size` or to the spatial size of an earlier output (`size_of`),"
               " as torchvision's CenterCrop (zero-pads an axis that is smaller).")
    args = (
        Arg("size", Optional(NumbersOrList(integer=True)), None, "Output size, one int or one per spatial axis."),
        Arg("size_of", Optional(PathText()), None, "Crop to the spatial size of an earlier output (its path)."),
    )

    def check_args(self, args: dict[str, Any]) -> None:
        if (args["size"] is None) == (args["size_of"] is None):
            raise ArgumentError("give exactly one of 'size' and 'size_of'")

    def with_shape_of(self, args: Args, other: Shape) -> Args:
        return MappingProxyType({**args, "size": tuple(other[1:]), "size_of": None})

    def pads(self, args: Args, shape: Shape) -> tuple[tuple[int, int], ...]:
        """The crop as pad widths for a batchless input `shape` (the NumPy kernels use it)."""
        spatial = shape[1:]
        size = args["size"]
        if size is None:
            raise ShapeError("size_of needs the referenced output (run it through the graph)")
        if len(size) == 1:
            size = size * len(spatial)
        if not spatial or len(size) != len(spatial):
            raise ShapeError(f"'size' has {len(size)} values for {len(spatial)} spatial axes")
        return centercrop_pads(spatial, size)

    def infer(self, args: Args, shape: Shape) -> Inference:
        pads = self.pads(args, shape)
        out = (shape[0], *(n + a + b for n, (a, b) in zip(shape[1:], pads)))
        return Inference(output_shape=out, axes=cast("tuple[AxisMap, ...]", tuple(Window(pad=a) for a, _ in pads)))

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """`CenterCrop` of `convcalc.torch.modules`; with size_of, called with that output too."""
        size = args["size"]
        return TorchCall("CenterCrop", () if size is None else (list(size),), helper=True)


LAYER_TYPES: list[LayerType] = [
    Linear("linear"),
    Flatten("flatten"),
    Upsample("upsample"),
    Upsample("upsamplingnearest2d", 2, "nearest"),
    Upsample("upsamplingbilinear2d", 2, "bilinear"),
    CenterCrop("centercrop"),
    PixelShuffle("pixelshuffle", 2),
    PixelUnshuffle("pixelunshuffle", 2),
    *(Pad(f"{mode}pad{r}d", r, mode)
      for mode in ("zero", "constant", "reflection", "replication", "circular") for r in (1, 2, 3)),
]
