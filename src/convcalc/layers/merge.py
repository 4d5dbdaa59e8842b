"""Where branches meet: element-wise add (residuals) and channel concatenation."""

from __future__ import annotations

from collections.abc import Sequence

from convcalc.errors import ShapeError
from convcalc.layers.base import Inference, Shape, shape_str
from convcalc.receptive import IDENTITY


class MergeType:
    """A merge is not written as a list item; `residual` and `parallel` create it."""

    name: str
    summary: str

    def infer(self, shapes: Sequence[Shape], paths: Sequence[str]) -> Inference:
        raise NotImplementedError


def _mismatch(what: str, shapes: Sequence[Shape], paths: Sequence[str], i: int) -> ShapeError:
    return ShapeError(
        f"{what}: branch {paths[0] or '(input)'} gives {shape_str(shapes[0])}"
        f" but branch {paths[i] or '(input)'} gives {shape_str(shapes[i])}"
    )


class Add(MergeType):
    name = "add"
    summary = "Element-wise sum of the branches (residual connections); shapes must be equal."

    def infer(self, shapes: Sequence[Shape], paths: Sequence[str]) -> Inference:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape != shapes[0]:
                raise _mismatch("add needs equal shapes", shapes, paths, i)
        first = shapes[0]
        return Inference(output_shape=first, axes=(IDENTITY,) * (len(first) - 1) if len(first) > 1 else None)


class Concat(MergeType):
    name = "concat"
    summary = "Concatenation of the branches along channels; other dims must be equal."

    def infer(self, shapes: Sequence[Shape], paths: Sequence[str]) -> Inference:
        for i, shape in enumerate(shapes[1:], start=1):
            if shape[1:] != shapes[0][1:]:
                raise _mismatch("concat needs equal sizes except channels", shapes, paths, i)
        first = shapes[0]
        out = (sum(s[0] for s in shapes), *first[1:])
        return Inference(output_shape=out, axes=(IDENTITY,) * (len(first) - 1) if len(first) > 1 else None)


MERGE_TYPES = {m.name: m for m in (Add(), Concat())}
