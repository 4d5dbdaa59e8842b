"""Layers of modern blocks: channel shuffle and narrowing, permute, layer scale, stochastic depth.

ShuffleNet's `channelshuffle` and the `narrow` a channel split lowers to (`parallel:
{split: ...}`) move channels only; `permute` reorders dims (ConvNeXt's channels-last
sandwich); `layerscale` is a learnable per-channel scale; `stochasticdepth` drops whole
residual branches in training and is an identity at inference. None has MACs.

Imports `errors`, `layers` and `receptive` only.
"""

from __future__ import annotations

from typing import Any

from convcalc.errors import ArgumentError, ShapeError
from convcalc.layers.base import (
    Arg,
    Args,
    Choice,
    Float,
    Inference,
    Int,
    Kind,
    LayerType,
    Optional,
    Shape,
    TorchCall,
    is_int,
    shape_str,
)
from convcalc.layers.norm import same_shape


class ChannelShuffle(LayerType):
    summary = "ShuffleNet's channel shuffle: [g, C/g] channels transposed to [C/g, g]."
    args = (Arg("groups", Int(), doc="g; the channels must divide by it."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        g = args["groups"]
        if len(shape) < 2:  # torch.nn.ChannelShuffle refuses a [N, C] input
            raise ShapeError(f"expects an input with spatial axes, [C, H, W] or [C, L], got {shape_str(shape)}"
                             " (a channel shuffle after flatten?)")
        if shape[0] % g:
            raise ShapeError(f"channels {shape[0]} are not divisible by groups={g}")
        return same_shape(shape, lead=None)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("ChannelShuffle", (args["groups"],))


class Dims(Kind):
    """A permutation of the dims, numbered with the batch as dim 0 (which must stay first)."""

    def parse(self, name: str, value: Any, rank: int) -> tuple[int, ...]:
        if (
            isinstance(value, (list, tuple))
            and len(value) >= 2
            and all(is_int(v) for v in value)
            and sorted(value) == list(range(len(value)))
            and value[0] == 0
        ):
            return tuple(int(v) for v in value)
        raise self.fail(name, "a permutation of 0..n-1 with the batch (0) first, like [0, 2, 3, 1]", value)

    def schema(self, rank: int) -> dict[str, Any]:
        # "a permutation with 0 first" is checked by the parser; JSON Schema says what it can.
        return {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "uniqueItems": True,
                "contains": {"const": 0}}


class Permute(LayerType):
    summary = "Reorders the dims (torchvision.ops.Permute); dims count the batch as 0, which stays first."
    args = (Arg("dims", Dims(), doc="The new order of the dims, e.g. [0, 2, 3, 1] for channels-last."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        dims = args["dims"]
        if len(dims) != len(shape) + 1:
            raise ShapeError(f"dims has {len(dims)} entries but the input has {len(shape) + 1} dims"
                             " with the batch")
        if list(dims) == list(range(len(dims))):
            return same_shape(shape)
        order = tuple(d - 1 for d in dims[1:])
        return Inference(output_shape=tuple(shape[d] for d in order), order=order)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("Permute", (list(args["dims"]),), helper=True)


class LayerScale(LayerType):
    summary = "Learnable per-channel scale on dim 1 (timm's LayerScale2d, ConvNeXt's layer_scale): C params."
    args = (Arg("init_values", Float(), 1e-5, "Initial value of every scale."),)
    keyed_by_path = True  # as `convcalc.torch.modules.LayerScale` saves and loads it

    def infer(self, args: Args, shape: Shape) -> Inference:
        return same_shape(shape, params=shape[0])

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        rank = len(in_shape) - 1
        return TorchCall("LayerScale", (in_shape[0], args["init_values"], *(() if rank == 2 else (rank,))),
                         helper=True)


class StochasticDepth(LayerType):
    summary = "Drops the whole input per sample (row) or batch in training (torchvision.ops.StochasticDepth)."
    args = (
        Arg("p", Float(0.0), doc="Drop probability, in [0, 1]."),
        Arg("mode", Choice(("row", "batch")), doc="'row': per sample; 'batch': the whole batch."),
    )

    def check_args(self, args: dict[str, Any]) -> None:
        if args["p"] > 1:
            raise ArgumentError(f"'p' must be a probability in [0, 1] (got {args['p']:g})", arg="p")

    def infer(self, args: Args, shape: Shape) -> Inference:
        return same_shape(shape)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("StochasticDepth", (args["p"], args["mode"]), helper=True)


class Parts(Kind):
    """A channel split: a number of equal parts (torch.chunk) or a list of part sizes (torch.split)."""

    def parse(self, name: str, value: Any, rank: int) -> int | tuple[int, ...]:
        if is_int(value) and value >= 1:
            return int(value)
        if isinstance(value, (list, tuple)) and value and all(is_int(v) and v >= 1 for v in value):
            return tuple(int(v) for v in value)
        raise self.fail(name, "a positive int (that many equal parts) or a list of positive part sizes", value)

    def schema(self, rank: int) -> dict[str, Any]:
        one = {"type": "integer", "minimum": 1}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}


def parts(split: int | tuple[int, ...]) -> int:
    """How many parts a `split` value makes."""
    return split if isinstance(split, int) else len(split)


def span(args: Args, channels: int) -> tuple[int, int]:
    """(start, length) of the channels a `narrow` keeps from an input of `channels` channels.

    Either as given (`start`, `length`), or part `index` of `split`: equal parts, which the
    channels must divide into, or the listed sizes, which must add up to the channels.
    """
    split = args["split"]
    if split is None:
        start, length = args["start"], args["length"]
        if start + length > channels:
            raise ShapeError(f"channels {start}..{start + length - 1} do not exist: the input has"
                             f" {channels} channels")
        return start, length
    index = args["index"]
    if isinstance(split, int):
        if channels % split:
            raise ShapeError(f"split: {split} needs channels that divide into {split} equal parts;"
                             f" the input has {channels}")
        size = channels // split
        return index * size, size
    if sum(split) != channels:
        raise ShapeError(f"split sizes {list(split)} add up to {sum(split)} channels but the input"
                         f" has {channels}")
    return sum(split[:index]), split[index]


class Narrow(LayerType):
    summary = ("Channels start..start+length-1 of the input (torch.narrow on dim 1), or part `index` of a"
               " channel split (torch.chunk, torch.split); what `parallel: {split: ...}` lowers to.")
    args = (
        Arg("start", Optional(Int(minimum=0)), None, "First channel (with length)."),
        Arg("length", Optional(Int()), None, "Number of channels (with start)."),
        Arg("split", Optional(Parts()), None,
            "Instead of start and length: N equal parts (torch.chunk) or a list of part sizes (torch.split)."),
        Arg("index", Optional(Int(minimum=0)), None, "Which part of `split` to keep, from 0."),
    )

    def check_args(self, args: dict[str, Any]) -> None:
        by_span = args["start"] is not None or args["length"] is not None
        by_part = args["split"] is not None or args["index"] is not None
        if by_span and by_part:
            raise ArgumentError("give either start and length, or split and index, not both")
        if by_part:
            for name in ("split", "index"):
                if args[name] is None:
                    raise ArgumentError(f"missing required argument '{name}' (split and index go together)",
                                        arg=name)
            count = parts(args["split"])
            if args["index"] >= count:
                raise ArgumentError(f"'index' must be below the {count} parts of split (got {args['index']})",
                                    arg="index")
            return
        for name in ("start", "length"):
            if args[name] is None:
                raise ArgumentError(f"missing required argument '{name}'")

    def infer(self, args: Args, shape: Shape) -> Inference:
        _, length = span(args, shape[0])
        out = (length, *shape[1:])
        return Inference(output_shape=out, axes=same_shape(shape).axes)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        return TorchCall("Narrow", span(args, in_shape[0]), helper=True)


LAYER_TYPES: list[LayerType] = [
    ChannelShuffle("channelshuffle"),
    Permute("permute"),
    LayerScale("layerscale"),
    StochasticDepth("stochasticdepth"),
    Narrow("narrow"),
]
