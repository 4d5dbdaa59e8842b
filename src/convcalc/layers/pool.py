"""Max/avg pooling and adaptive pooling, 1D/2D/3D (torch.nn.MaxPoolNd, AvgPoolNd, Adaptive*)."""

from __future__ import annotations

from typing import Any

from convcalc.errors import ArgumentError, ShapeError
from convcalc.geometry import effective_kernel, pool_output
from convcalc.layers.base import (
    SPATIAL_NAMES,
    Arg,
    Args,
    Bool,
    Inference,
    Int,
    Kind,
    LayerType,
    Optional,
    Padding,
    PerAxis,
    Shape,
    TorchCall,
    axes_value,
    is_int,
    symmetric,
    torch_padding,
)
from convcalc.layers.conv import empty_output, layer_note, skip_fact, skip_message, unread_fact, unread_message
from convcalc.receptive import Adaptive, Window


class Pool(LayerType):
    """Shared arithmetic of max and average pooling; stride defaults to the kernel size."""

    has_dilation = False

    def check_args(self, args: dict[str, Any]) -> None:
        if args["stride"] is None:
            args["stride"] = args["kernel_size"]
        for k, (pl, pr) in zip(args["kernel_size"], args["padding"]):
            if max(pl, pr) > k // 2:
                raise ArgumentError(
                    f"padding={max(pl, pr)} must be at most half the kernel size"
                    f" (kernel_size={k}, so at most {k // 2}), as PyTorch requires", arg="padding"
                )

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        kernel, stride, pads = args["kernel_size"], args["stride"], args["padding"]
        dilation = args["dilation"] if self.has_dilation else (1,) * len(kernel)
        out, unread_facts, skip_facts = [], [], []
        for axis, n, k, s, d, p in zip(SPATIAL_NAMES[self.rank or 1], shape[1:], kernel, stride, dilation, pads):
            size = pool_output(n, k, s, d, p, args["ceil_mode"])
            if size < 1:
                # ceil_mode keeps a window that starts inside the input: one output as soon
                # as n + pl + pr - k_eff > -s, so less input works
                reach = effective_kernel(k, d) - p[0] - p[1] - (s - 1 if args["ceil_mode"] else 0)
                raise empty_output(axis, n, k, d, p, max(1, reach))
            out.append(size)
            skip = skip_fact(k, s, d)  # skipping every other row also leaves the last one
            skip_facts += [(axis, skip)] if skip else []
            fact = None if args["ceil_mode"] or skip else unread_fact(n, k, s, d, p)
            unread_facts += [(axis, fact)] if fact else []
        notes = [note for note in (
            layer_note("unread-pixels", unread_facts, unread_message),
            layer_note("skipped-pixels", skip_facts, skip_message),
        ) if note]
        return Inference(
            output_shape=(shape[0], *out),
            axes=tuple(Window(k, s, d, p[0]) for k, s, d, p in zip(kernel, stride, dilation, pads)),
            notes=tuple(notes),
        )

    torch_name = ""
    torch_keywords: tuple[str, ...] = ()

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.MaxPoolNd / nn.AvgPoolNd; asymmetric padding as `PaddedMaxPoolNd` / `PaddedAvgPoolNd`."""
        kw = [("kernel_size", axes_value(args["kernel_size"]))]
        if args["stride"] != args["kernel_size"]:
            kw.append(("stride", axes_value(args["stride"])))
        pads = args["padding"]
        if not symmetric(pads):
            kw.append(("padding", pads))
        elif torch_padding(pads) != 0:
            kw.append(("padding", torch_padding(pads)))
        kw += self.changed(args, *self.torch_keywords)
        name = f"{self.torch_name}{self.rank}d"
        if symmetric(pads):
            return TorchCall(name, (), tuple(kw))
        return TorchCall(f"Padded{name}", (), tuple(kw), helper=True)


POOL_ARGS = (
    Arg("kernel_size", PerAxis(), doc="Window size."),
    Arg("stride", Optional(PerAxis()), None, "Stride; defaults to kernel_size."),
    Arg("padding", Padding(allow_words=False), 0,
        "Implicit padding (-inf for max, 0 for avg); at most kernel_size // 2."),
)


class MaxPool(Pool):
    summary = "Max pooling, with dilation and ceil_mode."
    has_dilation = True
    torch_name = "MaxPool"
    torch_keywords = ("dilation", "ceil_mode")  # return_indices would make it return a tuple
    args = (
        *POOL_ARGS,
        Arg("dilation", PerAxis(), 1, "Spacing between window taps."),
        Arg("ceil_mode", Bool(), False, "Round the output size up (PyTorch's rule for the last window)."),
        Arg("return_indices", Bool(), False, "Accepted for compatibility; does not change the output shape."),
    )


class AvgPool(Pool):
    summary = "Average pooling, with ceil_mode and count_include_pad."
    torch_name = "AvgPool"
    args: tuple[Arg, ...] = (
        *POOL_ARGS,
        Arg("ceil_mode", Bool(), False, "Round the output size up (PyTorch's rule for the last window)."),
        Arg("count_include_pad", Bool(), True, "Count zero padding in the divisor."),
        Arg("divisor_override", Optional(Int()), None, "Divide by this instead of the window size (2D/3D)."),
    )

    def __init__(self, name: str, rank: int) -> None:
        super().__init__(name, rank)
        self.torch_keywords = ("ceil_mode", "count_include_pad", "divisor_override")
        if rank == 1:  # torch.nn.AvgPool1d has no divisor_override
            self.args = self.args[:-1]
            self.torch_keywords = self.torch_keywords[:-1]

    def check_args(self, args: dict[str, Any]) -> None:
        super().check_args(args)
        args.setdefault("divisor_override", None)

    def infer(self, args: Args, shape: Shape) -> Inference:
        if self.rank == 3 and len(shape) == 4:
            # PyTorch's avg_pool3d (only 3D) checks the input before padding
            for axis, n, k in zip(SPATIAL_NAMES[3], shape[1:], args["kernel_size"]):
                if n < k:
                    raise ShapeError(
                        f"input {n} along {axis} is smaller than kernel_size {k}; avgpool3d needs"
                        f" every input size >= the kernel before padding, as PyTorch requires")
        return super().infer(args, shape)


class OutputSize(Kind):
    """An int, or per-axis ints where null keeps the input size (as in PyTorch)."""

    def parse(self, name: str, value: Any, rank: int) -> tuple[int | None, ...]:
        if is_int(value) and value >= 1:
            return (int(value),) * rank
        if isinstance(value, (list, tuple)) and len(value) == rank and all(
            (v is None and rank > 1) or (is_int(v) and v >= 1) for v in value
        ):  # PyTorch's 1D adaptive pools take no null
            return tuple(value)
        nulls = " or nulls" if rank > 1 else ""
        raise self.fail(name, f"a positive int or a list of {rank} positive ints{nulls}", value)

    def schema(self, rank: int) -> dict[str, Any]:
        one = {"type": "integer", "minimum": 1}
        return {"oneOf": [one, {"type": "array", "items": {"oneOf": [one, {"type": "null"}]},
                                "minItems": rank, "maxItems": rank}]}


class AdaptivePool(LayerType):
    summary = "Adaptive pooling to a fixed output size; window i is [floor(i*n/out), ceil((i+1)*n/out))."
    args: tuple[Arg, ...] = (
        Arg("output_size", OutputSize(), doc="Target size; null on an axis keeps its size."),
        Arg("return_indices", Bool(), False, "Accepted for compatibility (max only)."),
    )

    def infer(self, args: Args, shape: Shape) -> Inference:
        self.expect_rank(shape)
        out = tuple(n if o is None else o for n, o in zip(shape[1:], args["output_size"]))
        return Inference(
            output_shape=(shape[0], *out),
            axes=tuple(Adaptive(n, o) for n, o in zip(shape[1:], out)),
        )

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """nn.AdaptiveMaxPoolNd / nn.AdaptiveAvgPoolNd (return_indices left out: one output)."""
        kind = "Max" if self.name.startswith("adaptivemax") else "Avg"
        return TorchCall(f"Adaptive{kind}Pool{self.rank}d", (axes_value(args["output_size"]),))


class AdaptiveAvgPool(AdaptivePool):
    args = (Arg("output_size", OutputSize(), doc="Target size; null on an axis keeps its size."),)


LAYER_TYPES = [
    *(MaxPool(f"maxpool{r}d", r) for r in (1, 2, 3)),
    *(AvgPool(f"avgpool{r}d", r) for r in (1, 2, 3)),
    *(AdaptiveAvgPool(f"adaptiveavgpool{r}d", r) for r in (1, 2, 3)),
    *(AdaptivePool(f"adaptivemaxpool{r}d", r) for r in (1, 2, 3)),
]
