"""Normalisation layers: batch, instance, layer (also over channels: layernorm2d), group and
local response norm.

Parameters are the affine weight and bias; running statistics are buffers. PyTorch also
keeps a `num_batches_tracked` counter (one element) beside them, and counts it among the
buffers, so convcalc does too: BatchNorm2d(C) has 2*C parameters and 2*C + 1 buffers.
"""

from __future__ import annotations

import math

from convcalc.errors import ShapeError
from convcalc.layers.base import (
    Arg,
    Args,
    Bool,
    Float,
    Inference,
    Int,
    IntList,
    LayerType,
    Optional,
    Shape,
    TorchCall,
    shape_str,
)
from convcalc.layers.conv import check_in_channels
from convcalc.receptive import IDENTITY, AxisMap


def same_shape(shape: Shape, params: int = 0, buffers: int = 0, lead: AxisMap | None = IDENTITY) -> Inference:
    """An element-wise layer: the shape and every spatial axis pass through.

    `lead` is the map of the first dim: IDENTITY, unless the layer mixes or reorders it.
    """
    return Inference(
        output_shape=shape,
        params=params,
        buffers=buffers,
        axes=(IDENTITY,) * (len(shape) - 1) if len(shape) > 1 else None,
        lead=lead,
    )


NUM_FEATURES = Arg("num_features", Optional(Int()), None, "Checked against the input channels; inferred when left out.")
EPS = Arg("eps", Float(0.0, exclusive=True), 1e-5, "Added to the variance.")
MOMENTUM = Arg("momentum", Optional(Float(0.0)), 0.1, "Running-statistics momentum (no effect on shapes).")


class BatchNorm(LayerType):
    summary = "Batch normalisation: 2*C parameters (affine), 2*C + 1 buffers (running stats + counter)."
    args = (
        NUM_FEATURES,
        EPS,
        MOMENTUM,
        Arg("affine", Bool(), True, "Learnable scale and shift (2*C parameters)."),
        Arg("track_running_stats", Bool(), True, "Keep running mean/var (2*C + 1 buffers)."),
    )
    affine_default = True

    def expect_rank(self, shape: Shape) -> None:
        # BatchNorm1d takes [C] or [C, L], as PyTorch takes (N, C) or (N, C, L).
        if self.rank == 1 and len(shape) in (1, 2):
            return
        super().expect_rank(shape)

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        c = shape[0]
        check_in_channels(args, c, "num_features")
        return same_shape(
            shape,
            params=2 * c if args["affine"] else 0,
            buffers=2 * c + 1 if args["track_running_stats"] else 0,
        )

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.BatchNormNd / nn.InstanceNormNd over the input's channels."""
        kind = "InstanceNorm" if self.name.startswith("instancenorm") else "BatchNorm"
        kw = self.changed(args, "eps", "momentum", "affine", "track_running_stats")
        return TorchCall(f"{kind}{self.rank}d", (in_shape[0],), tuple(kw))


class InstanceNorm(BatchNorm):
    summary = "Instance normalisation; affine and running statistics are off by default."
    args = (
        NUM_FEATURES,
        EPS,
        MOMENTUM,
        Arg("affine", Bool(), False, "Learnable scale and shift (2*C parameters)."),
        Arg("track_running_stats", Bool(), False, "Keep running mean/var (2*C + 1 buffers)."),
    )

    def expect_rank(self, shape: Shape) -> None:
        LayerType.expect_rank(self, shape)

    def infer(self, args: Args, shape: Shape) -> Inference:
        if len(shape) > 1 and math.prod(shape[1:]) == 1:
            raise ShapeError(f"normalises each channel over its spatial positions, and the input"
                             f" {shape_str(shape)} has one: PyTorch refuses that in training")
        return super().infer(args, shape)


class LayerNorm(LayerType):
    summary = "Layer normalisation over the trailing dims given by normalized_shape."
    args = (
        Arg("normalized_shape", Optional(IntList()), None,
            "Trailing dims to normalise; defaults to the last dim of the input."),
        EPS,
        Arg("elementwise_affine", Bool(), True, "Learnable per-element scale (and bias)."),
        Arg("bias", Bool(), True, "Learnable bias, when elementwise_affine."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        normalized = args["normalized_shape"] or shape[-1:]
        if tuple(shape[len(shape) - len(normalized):]) != tuple(normalized) or len(normalized) > len(shape):
            raise ShapeError(
                f"normalized_shape={list(normalized)} does not match the trailing dims of the"
                f" input {shape_str(shape)}"
            )
        size = math.prod(normalized)
        params = size * (2 if args["bias"] else 1) if args["elementwise_affine"] else 0
        return same_shape(shape, params=params)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.LayerNorm; normalized_shape defaults to the input's last dim."""
        normalized = args["normalized_shape"]
        if normalized is None:
            normalized = in_shape[-1]
        elif isinstance(normalized, tuple) and len(normalized) == 1:
            normalized = normalized[0]
        kw = self.changed(args, "eps", "elementwise_affine", "bias")
        return TorchCall("LayerNorm", (normalized,), tuple(kw))


class LayerNorm2d(LayerType):
    """torchvision's LayerNorm2d (ConvNeXt): LayerNorm over the channels at every position of
    [C, H, W], as one module (it permutes to channels-last and back inside)."""

    summary = ("LayerNorm over the channels at each position of [C, H, W] (torchvision's LayerNorm2d:"
               " ConvNeXt's stem, downsampling and head): 2*C parameters.")
    args = (
        Arg("normalized_shape", Optional(Int()), None,
            "The channels; checked against the input, inferred when left out."),
        EPS,
        Arg("elementwise_affine", Bool(), True, "Learnable per-channel scale (and bias)."),
        Arg("bias", Bool(), True, "Learnable bias, when elementwise_affine."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        c = shape[0]
        check_in_channels(args, c, "normalized_shape")
        params = c * (2 if args["bias"] else 1) if args["elementwise_affine"] else 0
        return same_shape(shape, params=params)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """torchvision's LayerNorm2d, which `convcalc.torch.modules` writes out."""
        kw = self.changed(args, "eps", "elementwise_affine", "bias")
        return TorchCall("LayerNorm2d", (in_shape[0],), tuple(kw), helper=True)


class GroupNorm(LayerType):
    summary = "Group normalisation: channels split into num_groups groups; 2*C parameters."
    args = (
        Arg("num_groups", Int(), doc="Number of channel groups; must divide the channels."),
        Arg("num_channels", Optional(Int()), None, "Checked against the input; inferred when left out."),
        EPS,
        Arg("affine", Bool(), True, "Learnable per-channel scale and shift."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        c = shape[0]
        check_in_channels(args, c, "num_channels")
        if c % args["num_groups"]:
            raise ShapeError(f"num_groups={args['num_groups']} does not divide the {c} channels")
        return same_shape(shape, params=2 * c if args["affine"] else 0)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.GroupNorm(num_groups, channels)."""
        kw = self.changed(args, "eps", "affine")
        return TorchCall("GroupNorm", (args["num_groups"], in_shape[0]), tuple(kw))


class LocalResponseNorm(LayerType):
    summary = "Local response normalisation across `size` neighbouring channels (AlexNet)."
    args = (
        Arg("size", Int(), doc="Number of neighbouring channels."),
        Arg("alpha", Float(), 1e-4, "Multiplicative factor."),
        Arg("beta", Float(), 0.75, "Exponent."),
        Arg("k", Float(), 1.0, "Additive factor."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        if len(shape) < 2:
            raise ShapeError(
                f"expects an input of shape [C, ...] with at least one spatial axis, got {shape_str(shape)}")
        return same_shape(shape)

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.LocalResponseNorm(size, ...)."""
        return TorchCall("LocalResponseNorm", (args["size"],), tuple(self.changed(args, "alpha", "beta", "k")))


LAYER_TYPES = [
    *(BatchNorm(f"batchnorm{r}d", r) for r in (1, 2, 3)),
    *(InstanceNorm(f"instancenorm{r}d", r) for r in (1, 2, 3)),
    LayerNorm("layernorm"),
    LayerNorm2d("layernorm2d", 2),
    GroupNorm("groupnorm"),
    LocalResponseNorm("localresponsenorm"),
]
