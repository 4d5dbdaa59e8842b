"""Layers with several inputs: element-wise add (residuals) and mul (gates), channel concatenation.

A merge is an ordinary registered layer type whose `arity` is None (two or more inputs);
`residual` and `parallel` lower to one. Its `infer` takes one shape per input. A shape
mismatch raises `InputMismatch`, which names the inputs by index; whoever knows what the
inputs are called (the analysis, from the graph) turns it into the message users see.

Imports `errors` and `layers` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from convcalc.errors import ShapeError
from convcalc.layers.base import Args, Inference, LayerType, Shape, shape_str
from convcalc.layers.norm import same_shape


class InputMismatch(ShapeError):
    """Input `index` of a merge does not fit input 0; `named` words it with the inputs' names."""

    def __init__(self, rule: str, shapes: Sequence[Shape], index: int) -> None:
        super().__init__(f"{rule}: input 0 gives {shape_str(shapes[0])} but input {index}"
                         f" gives {shape_str(shapes[index])}")
        self.rule = rule
        self.shapes = tuple(shapes)
        self.index = index

    def named(self, labels: Sequence[str]) -> ShapeError:
        first, other = labels[0] or "(input)", labels[self.index] or "(input)"
        return ShapeError(
            f"{self.rule}: branch {first} gives {shape_str(self.shapes[0])}"
            f" but branch {other} gives {shape_str(self.shapes[self.index])}",
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


def broadcast(shapes: Sequence[Shape], rule: str = "the inputs must broadcast") -> Shape:
    """PyTorch's broadcast of batchless shapes: aligned at the right, each size equal or 1.

    `[C, 1, 1]` and `[C, H, W]` give `[C, H, W]`. Raises `InputMismatch` naming the first
    input that does not fit the ones before it.
    """
    out = tuple(shapes[0])
    for i, shape in enumerate(shapes[1:], start=1):
        rank = max(len(out), len(shape))
        a = (1,) * (rank - len(out)) + out
        b = (1,) * (rank - len(shape)) + tuple(shape)
        if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
            raise InputMismatch(rule, shapes, i)
        out = tuple(max(x, y) if 1 in (x, y) else x for x, y in zip(a, b))
    return out


class Add(Merge):
    rule = "add needs shapes that broadcast"

    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        return same_shape(broadcast(shapes, self.rule))


class Mul(Merge):
    """Element-wise product with broadcasting: an SE gate `[C, 1, 1]` times `[C, H, W]`."""

    rule = "mul needs shapes that broadcast"

    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        return same_shape(broadcast(shapes, self.rule))


class Concat(Merge):
    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape[1:] != shapes[0][1:]:
                raise InputMismatch("concat needs equal sizes except channels", shapes, i)
        first = shapes[0]
        return same_shape((sum(s[0] for s in shapes), *first[1:]), lead=None)


LAYER_TYPES: list[LayerType] = [
    Add("add", "Element-wise sum of the branches (residual connections); shapes broadcast as in"
               " PyTorch. Written as `residual:`, or `parallel:` with merge: add."),
    Mul("mul", "Element-wise product of the branches (squeeze-and-excitation gates); shapes broadcast"
               " as in PyTorch ([C, 1, 1] times [C, H, W]). Written as `parallel:` with merge: mul."),
    Concat("concat", "Concatenation of the branches along channels; other dims must be equal."
                     " Written as `parallel:` (merge: concat is its default)."),
]
