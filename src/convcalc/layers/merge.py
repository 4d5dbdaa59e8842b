"""Layers with several inputs: element-wise add (residuals) and mul (gates), concatenation.

A merge is an ordinary registered layer type whose `arity` is None (two or more inputs);
`residual` and `parallel` lower to one, and a standalone `- add: {from: [a, b]}` is one.
`add` and `mul` broadcast as PyTorch does over the batchless shape (`broadcast`). Its `infer`
takes one shape per input. A shape mismatch raises `InputMismatch`, which names the inputs by
index; whoever knows what the inputs are called (the analysis, from the graph) turns it into the message users see.

Imports `errors`, `layers` and `receptive` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convcalc.errors import ShapeError
from convcalc.layers.base import Arg, Args, Inference, Kind, LayerType, Shape, TorchCall, is_int, shape_str
from convcalc.layers.norm import same_shape
from convcalc.receptive import IDENTITY


class InputMismatch(ShapeError):
    """Input `index` of a merge does not fit input 0; `named` words it with the inputs' names."""

    def __init__(self, rule: str, shapes: Sequence[Shape], index: int) -> None:
        super().__init__(f"{rule}: input 0 gives {shape_str(shapes[0])} but input {index}"
                         f" gives {shape_str(shapes[index])}")
        self.rule = rule
        self.shapes = tuple(shapes)
        self.index = index

    def named(self, labels: Sequence[str], word: str = "branch") -> ShapeError:
        """The message with the inputs' names: branch paths (`word`) or `from:` paths."""
        first, other = labels[0] or "(input)", labels[self.index] or "(input)"
        return ShapeError(
            f"{self.rule}: {word} {first} gives {shape_str(self.shapes[0])}"
            f" but {word} {other} gives {shape_str(self.shapes[self.index])}",
            where=self.where, path=self.path, layer_type=self.layer_type)


class Merge(LayerType):
    """Base of the layers that combine several inputs; subclasses implement `merge`."""

    arity = None

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name)
        self.summary = summary

    def infer(self, args: Args, shape: Shape) -> Inference:
        return self.merge(args, (shape,))

    def infer_inputs(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        return self.merge(args, shapes)

    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        raise NotImplementedError

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """`Add`, `Mul` or `Concat` of `convcalc.torch.modules`: called with every input."""
        dim = args.get("dim", 1)
        return TorchCall(self.name.capitalize(), () if dim == 1 else (dim,), helper=True)


def broadcast(shapes: Sequence[Shape]) -> tuple[Shape, int | None]:
    """PyTorch's broadcasting of batchless shapes: (the result, the first input that fails).

    Shapes are aligned at their last axis; along each axis the sizes must be equal or 1.
    The index is None when all inputs broadcast together.
    """
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for i, shape in enumerate(shapes):
        for axis, n in enumerate(shape, start=rank - len(shape)):
            if n != out[axis] and 1 not in (n, out[axis]):
                return tuple(out), i
            out[axis] = max(out[axis], n) if 1 in (n, out[axis]) else n
    return tuple(out), None


class Elementwise(Merge):
    """An element-wise merge with broadcasting (add, mul)."""

    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        out, bad = broadcast(shapes)
        if bad is not None:
            raise InputMismatch(f"{self.name} needs shapes that broadcast (equal, or 1 on an axis)",
                                shapes, bad)
        return same_shape(out)


class Add(Elementwise):
    """Element-wise sum."""


class Mul(Elementwise):
    """Element-wise product (gating, attention masks, `x * sigmoid(g)`)."""


class Dim(Kind):
    """A tensor dim as torch numbers it: 1 is the channels (0, the batch, is refused)."""

    def parse(self, name: str, value: Any, rank: int) -> int:
        if not is_int(value) or value == 0:
            raise self.fail(name, "a non-zero int (1: channels; negative counts from the end)", value)
        return int(value)

    def schema(self, rank: int) -> dict[str, Any]:
        return {"type": "integer", "not": {"const": 0}}


class Concat(Merge):
    args = (Arg("dim", Dim(), 1, "The dim to join along, counting the batch as 0"
                                             " (1: channels); negative counts from the end."),)

    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        rank = len(shapes[0])
        dim = args.get("dim", 1)
        axis = dim - 1 if dim > 0 else rank + dim
        if dim == 0 or not 0 <= axis < rank:
            raise ShapeError(f"dim={dim} is not a dim of {shape_str(shapes[0])} (1 to {rank}, or"
                             f" -{rank} to -1; 0 is the batch)")
        for i, shape in enumerate(shapes[1:], start=1):
            if len(shape) != rank or shape[:axis] + shape[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                what = "channels" if axis == 0 else f"dim {dim}"
                raise InputMismatch(f"concat needs equal sizes except {what}", shapes, i)
        first = shapes[0]
        return same_shape((*first[:axis], sum(s[axis] for s in shapes), *first[axis + 1:]),
                          lead=None if axis == 0 else IDENTITY)


LAYER_TYPES: list[LayerType] = [
    Add("add", "Element-wise sum of the inputs (residual connections); shapes broadcast as in"
               " PyTorch. Written as `residual:`, `parallel:` with merge: add, or `add: {from: [a, b]}`."),
    Mul("mul", "Element-wise product of the inputs (squeeze-and-excitation gates); shapes broadcast"
               " as in PyTorch ([C, 1, 1] times [C, H, W]). Written as `parallel:` with merge: mul,"
               " or `mul: {from: [a, b]}`."),
    Concat("concat", "Concatenation of the inputs along channels (or `dim`); other dims must be equal."
                     " Written as `parallel:` (merge: concat is its default) or `concat: {from: [a, b]}`."),
]
