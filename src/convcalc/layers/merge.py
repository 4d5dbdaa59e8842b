"""Layers with several inputs: element-wise add (residuals) and channel concatenation.

A merge is an ordinary registered layer type whose `arity` is None (two or more inputs);
`residual` and `parallel` lower to one. Its `infer` takes one shape per input. A shape
mismatch raises `InputMismatch`, which names the inputs by index; whoever knows what the
inputs are called (the analysis, from the graph) turns it into the message users see.

Imports `errors` and `layers` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from convcalc.errors import ShapeError
from convcalc.layers.base import Args, Inference, LayerType, Shape, TorchCall, shape_str
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

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """`Add` or `Concat` of `convcalc.torch.modules`: called with every input."""
        return TorchCall(self.name.capitalize(), helper=True)


class Add(Merge):
    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape != shapes[0]:
                raise InputMismatch("add needs equal shapes", shapes, i)
        return same_shape(shapes[0])


class Concat(Merge):
    def merge(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape[1:] != shapes[0][1:]:
                raise InputMismatch("concat needs equal sizes except channels", shapes, i)
        first = shapes[0]
        return same_shape((sum(s[0] for s in shapes), *first[1:]))


LAYER_TYPES: list[LayerType] = [
    Add("add", "Element-wise sum of the branches (residual connections); shapes must be equal."
               " Written as `residual:`, or `parallel:` with merge: add."),
    Concat("concat", "Concatenation of the branches along channels; other dims must be equal."
                     " Written as `parallel:` (merge: concat is its default)."),
]
