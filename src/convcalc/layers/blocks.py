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
from convcalc.layers.base import Arg, Args, Choice, Float, Inference, Int, Kind, LayerType, Note, Shape, is_int
from convcalc.layers.norm import same_shape


class ChannelShuffle(LayerType):
    summary = "ShuffleNet's channel shuffle: [g, C/g] channels transposed to [C/g, g]."
    args = (Arg("groups", Int(), doc="g; the channels must divide by it."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        g = args["groups"]
        if shape[0] % g:
            raise ShapeError(f"channels {shape[0]} are not divisible by groups={g}")
        return same_shape(shape)


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
        out = tuple(shape[d - 1] for d in dims[1:])
        if list(dims) == list(range(len(dims))):
            return same_shape(shape)
        note = Note("field-untracked", f"receptive field not tracked through permute to dims"
                    f" {list(dims)}: the spatial axes leave their channels-first places")
        return Inference(output_shape=out, axes=None, notes=(note,))


class LayerScale(LayerType):
    summary = "Learnable per-channel scale on dim 1 (timm's LayerScale2d, ConvNeXt's layer_scale): C params."
    args = (Arg("init_values", Float(), 1e-5, "Initial value of every scale."),)

    def infer(self, args: Args, shape: Shape) -> Inference:
        return same_shape(shape, params=shape[0])


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


class Narrow(LayerType):
    summary = "Channels start..start+length-1 of the input (torch.narrow on dim 1); what a channel split lowers to."
    args = (
        Arg("start", Int(minimum=0), doc="First channel."),
        Arg("length", Int(), doc="Number of channels."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        start, length = args["start"], args["length"]
        if start + length > shape[0]:
            raise ShapeError(f"channels {start}..{start + length - 1} do not exist: the input has"
                             f" {shape[0]} channels")
        out = (length, *shape[1:])
        return Inference(output_shape=out, axes=same_shape(shape).axes)


LAYER_TYPES: list[LayerType] = [
    ChannelShuffle("channelshuffle"),
    Permute("permute"),
    LayerScale("layerscale"),
    StochasticDepth("stochasticdepth"),
    Narrow("narrow"),
]
