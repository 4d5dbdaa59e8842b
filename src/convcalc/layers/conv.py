"""Convolution and transposed convolution, 1D/2D/3D (torch.nn.ConvNd, ConvTransposeNd)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from convcalc.errors import ArgumentError, ShapeError
from convcalc.geometry import (
    conv_output,
    effective_kernel,
    same_padding,
    smallest_input,
    transposed_output,
    unread,
)
from convcalc.layers.base import (
    SPATIAL_NAMES,
    Arg,
    Args,
    Bool,
    Choice,
    Inference,
    Int,
    LayerType,
    Note,
    Optional,
    Padding,
    PerAxis,
    Shape,
    TorchCall,
    axes_value,
    symmetric,
    torch_padding,
)
from convcalc.receptive import Transposed, Window, inputs_per_output

IN_CHANNELS = Arg(
    "in_channels", Optional(Int()), None, "Checked against the input; inferred when left out."
)


def check_groups(groups: int, in_channels: int, out_channels: int) -> None:
    if in_channels % groups:
        # listing divisors takes sqrt(n) steps: only for channel counts a network can have
        listed = f" (divisors: {', '.join(map(str, divisors(in_channels)))})" if in_channels <= 10**8 else ""
        raise ShapeError(f"groups={groups} does not divide in_channels={in_channels}{listed}")
    if out_channels % groups:
        raise ShapeError(f"groups={groups} does not divide out_channels={out_channels}")


def check_in_channels(args: Args, actual: int, name: str = "in_channels") -> None:
    declared = args.get(name)
    if declared is not None and declared != actual:
        raise ShapeError(
            f"{name}={declared} but the input has {actual}; leave {name} out to infer it"
        )


def divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def empty_output(axis: str, n: int, kernel: int, dilation: int, pad: tuple[int, int],
                 smallest: int | None = None) -> ShapeError:
    k_eff = effective_kernel(kernel, dilation)
    dil = f", dilation {dilation}" if dilation != 1 else ""
    if smallest is None:
        smallest = smallest_input(kernel, dilation, pad)
    return ShapeError(
        f"output would be empty along {axis}: input {n} + padding {pad[0]}+{pad[1]} is smaller"
        f" than the effective kernel {k_eff} (kernel {kernel}{dil}); the smallest input that"
        f" works is {smallest}"
    )


def check_padding_mode(mode: str, axis: str, n: int, pad: tuple[int, int]) -> None:
    """PyTorch pads 'reflect' only by less than the input size, 'circular' by at most it."""
    widest = max(pad)
    if mode == "reflect" and widest >= n:
        raise ShapeError(f"padding_mode='reflect' needs padding smaller than the input: {widest}"
                         f" >= {n} along {axis}, as PyTorch requires (use 'replicate' or 'zeros')")
    if mode == "circular" and widest > n:
        raise ShapeError(f"padding_mode='circular' needs padding at most the input size: {widest}"
                         f" > {n} along {axis}, as PyTorch requires")


def along(axes: list[str]) -> str:
    """`H`, `H and W`, `D, H and W`."""
    return axes[0] if len(axes) == 1 else ", ".join(axes[:-1]) + " and " + axes[-1]


def layer_note(code: str, facts: list[tuple[str, tuple[Any, ...]]],
               message: Callable[[str, tuple[Any, ...]], str]) -> Note | None:
    """One note for the whole layer: axes with the same facts share one sentence."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for axis, fact in facts:
        groups.setdefault(fact, []).append(axis)
    if not groups:
        return None
    return Note(code, "; ".join(message(along(axes), fact) for fact, axes in groups.items()))


def unread_fact(n: int, kernel: int, stride: int, dilation: int, pad: tuple[int, int]) -> tuple[int, ...] | None:
    """(unread, n, nearest exact inputs below and above) when a strided window misses the end.

    The last `(n + pl + pr - k_eff) % s` padded positions are never read; only those that are
    input pixels, not right padding, are worth a warning.
    """
    left = unread(n, kernel, stride, dilation, pad)
    if left <= pad[1]:
        return None
    return (left - pad[1], n, n - left, n - left + stride)


def unread_message(axes: str, fact: tuple[Any, ...]) -> str:
    lost, n, lower, upper = fact
    return (f"the last {lost} of {n} input positions along {axes} are never read"
            f" ((n + padding - k_eff) % stride > right padding); inputs of {lower} or {upper}"
            " would be exact")


def skip_fact(kernel: int, stride: int, dilation: int) -> tuple[int, ...] | None:
    """(stride, k_eff) when the stride jumps over input positions no window covers."""
    k_eff = effective_kernel(kernel, dilation)
    return (stride, k_eff) if stride > k_eff else None


def skip_message(axes: str, fact: tuple[Any, ...]) -> str:
    stride, k_eff = fact
    return (f"stride {stride} is larger than the kernel span {k_eff} along {axes}, so {stride - k_eff}"
            f" of every {stride} input positions are skipped; use kernel_size >= stride"
            " (or average-pool before a strided 1x1 conv)")


class GroupedConv(LayerType):
    """What convolution and transposed convolution share: channels split into groups."""

    def check_args(self, args: dict[str, Any]) -> None:
        if args["out_channels"] % args["groups"]:
            raise ArgumentError(
                f"groups={args['groups']} does not divide out_channels={args['out_channels']}",
                arg="groups",
            )

    def channels(self, args: Args, shape: Shape) -> tuple[int, int, int]:
        """(C_in, C_out, groups), once the input's rank and channels are checked."""
        self.expect_rank(shape)
        c_in = shape[0]
        check_in_channels(args, c_in)
        c_out, groups = args["out_channels"], args["groups"]
        check_groups(groups, c_in, c_out)
        return c_in, c_out, groups


class Conv(GroupedConv):
    summary = "Convolution (cross-correlation), with groups, dilation and padding modes."
    args = (
        Arg("out_channels", Int(), doc="Number of output channels."),
        Arg("kernel_size", PerAxis(), doc="Kernel size, one int or one per spatial axis."),
        Arg("stride", PerAxis(), 1, "Stride."),
        Arg("padding", Padding(), 0, "Zero padding: int, per axis, [before, after] pairs, 'same' or 'valid'."),
        Arg("dilation", PerAxis(), 1, "Spacing between kernel taps."),
        Arg("groups", Int(), 1, "Channel groups; groups = in_channels is depthwise."),
        Arg("bias", Bool(), True, "Add a learnable bias."),
        Arg("padding_mode", Choice(("zeros", "reflect", "replicate", "circular")), "zeros",
            "How padding is filled (does not change shapes)."),
        IN_CHANNELS,
    )

    def check_args(self, args: dict[str, Any]) -> None:
        if args["padding"] == "same" and any(s != 1 for s in args["stride"]):
            raise ArgumentError(
                f"padding='same' needs stride 1, as in PyTorch (got stride="
                f"{list(args['stride']) if len(set(args['stride'])) > 1 else args['stride'][0]});"
                " give the padding explicitly", arg="padding"
            )
        super().check_args(args)

    def padding(self, args: Args) -> tuple[tuple[int, int], ...]:
        if args["padding"] == "same":
            return tuple(same_padding(k, d) for k, d in zip(args["kernel_size"], args["dilation"]))
        return args["padding"]

    def infer(self, args: Args, shape: Shape) -> Inference:
        c_in, c_out, groups = self.channels(args, shape)
        spatial = shape[1:]
        kernel, stride, dilation = args["kernel_size"], args["stride"], args["dilation"]
        pads = self.padding(args)
        out, unread_facts, skip_facts, same_facts = [], [], [], []
        for axis, n, k, s, d, p in zip(SPATIAL_NAMES[self.rank or 1], spatial, kernel, stride, dilation, pads):
            check_padding_mode(args["padding_mode"], axis, n, p)
            size = conv_output(n, k, s, d, p)
            if size < 1:
                raise empty_output(axis, n, k, d, p)
            out.append(size)
            skip = skip_fact(k, s, d)  # skipping every other row also leaves the last one
            skip_facts += [(axis, skip)] if skip else []
            unread_facts += [(axis, f) for f in [unread_fact(n, k, s, d, p)] if f and not skip]
            if args["padding"] == "same" and p[0] != p[1]:
                same_facts.append((axis, (k, d, *p)))
        notes = [note for note in (
            layer_note("unread-pixels", unread_facts, unread_message),
            layer_note("skipped-pixels", skip_facts, skip_message),
            layer_note("asymmetric-padding", same_facts, lambda axes, f: (
                f"padding='same' with kernel {f[0]}{', dilation ' + str(f[1]) if f[1] != 1 else ''}"
                f" pads {f[2]} before and {f[3]} after along {axes}, so the output is shifted by half"
                " a pixel; use an odd kernel size")),
        ) if note]
        per_output = (c_in // groups) * math.prod(kernel)
        return Inference(
            output_shape=(c_out, *out),
            params=c_out * per_output + (c_out if args["bias"] else 0),
            macs=math.prod(out) * c_out * per_output,
            axes=tuple(
                Window(k, s, d, p[0], args["padding_mode"])
                for k, s, d, p in zip(kernel, stride, dilation, pads)
            ),
            notes=tuple(notes),
        )

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.ConvNd; asymmetric padding pads first (`PaddedConvNd`, same parameters)."""
        return conv_call(self, args, in_shape, f"Conv{self.rank}d", f"PaddedConv{self.rank}d",
                         ("dilation", "groups", "bias", "padding_mode"))


class ConvTranspose(GroupedConv):
    summary = "Transposed convolution (the gradient of a convolution), with output_padding."
    args = (
        Arg("out_channels", Int(), doc="Number of output channels."),
        Arg("kernel_size", PerAxis(), doc="Kernel size, one int or one per spatial axis."),
        Arg("stride", PerAxis(), 1, "Stride (the upsampling factor)."),
        Arg("padding", Padding(allow_words=False), 0,
            "Removed from both ends of the output: int, per axis, or [before, after] pairs."),
        Arg("output_padding", PerAxis(minimum=0), 0,
            "Extra size added to one side of the output; must be < max(stride, dilation)."),
        Arg("groups", Int(), 1, "Channel groups."),
        Arg("bias", Bool(), True, "Add a learnable bias."),
        Arg("dilation", PerAxis(), 1, "Spacing between kernel taps."),
        Arg("padding_mode", Choice(("zeros",)), "zeros", "Only 'zeros', as in PyTorch."),
        IN_CHANNELS,
    )

    def check_args(self, args: dict[str, Any]) -> None:
        for op, s, d in zip(args["output_padding"], args["stride"], args["dilation"]):
            if op >= max(s, d):
                raise ArgumentError(
                    f"output_padding={op} must be smaller than max(stride={s}, dilation={d})"
                    f" = {max(s, d)}, as PyTorch requires", arg="output_padding"
                )
        super().check_args(args)

    def infer(self, args: Args, shape: Shape) -> Inference:
        c_in, c_out, groups = self.channels(args, shape)
        spatial = shape[1:]
        kernel, stride, dilation = args["kernel_size"], args["stride"], args["dilation"]
        pads, out_pad = args["padding"], args["output_padding"]
        out, uneven = [], []
        for axis, n, k, s, d, p, op in zip(
            SPATIAL_NAMES[self.rank or 1], spatial, kernel, stride, dilation, pads, out_pad
        ):
            size = transposed_output(n, k, s, d, p, op)
            if size < 1:
                need = 1 - (-(1 + p[0] + p[1] - effective_kernel(k, d) - op) // s)
                raise ShapeError(
                    f"output would be empty along {axis}: (n-1)*{s} - {p[0]+p[1]} + "
                    f"{effective_kernel(k, d)} + {op} = {size} for input {n};"
                    f" the smallest input that works is {need}"
                )
            out.append(size)
            if effective_kernel(k, d) % s:
                # Counted over the outputs the layer has: on an input shorter than the
                # pattern, every output may receive the same number.
                fewest, most = inputs_per_output(Transposed(k, s, d, p[0]), n, size)
                if fewest != most:
                    uneven.append((axis, (effective_kernel(k, d), s, fewest, most)))
        note = layer_note("uneven-overlap", uneven, lambda axes, f: (
            f"kernel span {f[0]} is not a multiple of stride {f[1]} along {axes}: outputs receive"
            f" {f[2]} or {f[3]} inputs (checkerboard artefacts); use a kernel"
            f" divisible by the stride (e.g. {f[1] * max(1, -(-f[0] // f[1]))}), or resize + conv"))
        notes = [note] if note else []
        per_input = (c_out // groups) * math.prod(kernel)
        return Inference(
            output_shape=(c_out, *out),
            params=c_in * per_input + (c_out if args["bias"] else 0),
            macs=math.prod(spatial) * c_in * per_input,
            axes=tuple(Transposed(k, s, d, p[0]) for k, s, d, p in zip(kernel, stride, dilation, pads)),
            notes=tuple(notes),
        )

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.ConvTransposeNd; asymmetric padding crops after (`CroppedConvTransposeNd`)."""
        return conv_call(self, args, in_shape, f"ConvTranspose{self.rank}d", f"CroppedConvTranspose{self.rank}d",
                         ("output_padding", "groups", "bias", "dilation"))


def conv_call(lt: LayerType, args: Args, in_shape: Shape, name: str, asymmetric: str,
              rest: tuple[str, ...]) -> TorchCall:
    """The call of a (transposed) convolution: torch.nn's class `name` with channels, kernel,
    stride, padding and then the arguments `rest` in its order; with padding that differs
    before and after, the helper class `asymmetric` takes the (before, after) pairs."""
    pads = args["padding"]
    kw = [("kernel_size", axes_value(args["kernel_size"])), *lt.changed(args, "stride")]
    if not symmetric(pads):
        kw.append(("padding", pads))
    elif torch_padding(pads) != 0:
        kw.append(("padding", torch_padding(pads)))
    kw += lt.changed(args, *rest)
    head = (in_shape[0], args["out_channels"])
    return TorchCall(name, head, tuple(kw)) if symmetric(pads) else TorchCall(asymmetric, head, tuple(kw), helper=True)


LAYER_TYPES = [
    *(Conv(f"conv{r}d", r) for r in (1, 2, 3)),
    *(ConvTranspose(f"convtranspose{r}d", r) for r in (1, 2, 3)),
]
