"""Turns a parsed network into per-layer results: the pure core of convcalc.

No I/O, no printing, no click or rich: `analyze` takes a `Network` and returns a `Report`.
Imports `errors`, `layers`, `network` and `receptive` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as record_field
from fractions import Fraction

from convcalc.errors import ConvcalcError, Location, ShapeError
from convcalc.layers import Inference, Note, Shape
from convcalc.network import Fork, Layer, Network, Node, Sequence
from convcalc.receptive import AxisField, AxisMap, FieldTooIrregular

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

Field = tuple[AxisField, ...] | None  # one per spatial axis; None once there are none


@dataclass(frozen=True)
class Row:
    """One leaf layer or merge, in execution order."""

    path: str
    type: str
    input_shape: Shape | tuple[Shape, ...]  # a merge has one input per branch
    output_shape: Shape
    params: int
    buffers: int
    macs: int
    activation_bytes: int
    field: Field
    where: Location | None = None
    # How the layer maps each spatial axis (for lints and field walks); None without axes.
    axes: tuple[AxisMap, ...] | None = record_field(default=None, compare=False, repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def is_merge(self) -> bool:
        return self.type in ("add", "concat")


@dataclass(frozen=True)
class DesignWarning:
    """A warning about one layer (a `Note` placed at its path and source line)."""

    path: str
    layer_type: str
    code: str
    message: str
    where: Location | None = None


@dataclass(frozen=True)
class Totals:
    params: int
    buffers: int
    macs: int
    activation_bytes: int
    param_bytes: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class Report:
    name: str
    input_shape: Shape
    output_shape: Shape
    batch_size: int
    dtype: str
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[DesignWarning, ...]


class _Walker:
    """Runs shapes and fields through the tree, collecting rows and warnings."""

    def __init__(self, batch_size: int, dtype_bytes: int) -> None:
        self.batch_size = batch_size
        self.bytes_per_element = batch_size * dtype_bytes
        self.rows: list[Row] = []
        self.warnings: list[DesignWarning] = []
        self.inferred: dict[tuple[int, int, Shape], tuple[object, Inference]] = {}

    def node(self, node: Node, shape: Shape, field: Field) -> tuple[Shape, Field]:
        if isinstance(node, Layer):
            return self.layer(node, shape, field)
        if isinstance(node, Sequence):
            for item in node.items:
                shape, field = self.node(item, shape, field)
            return shape, field
        return self.fork(node, shape, field)

    def layer(self, layer: Layer, shape: Shape, field: Field) -> tuple[Shape, Field]:
        # `infer` is pure, and parsed arguments are shared between identical layers, so
        # repeated layers (VGG stages, ResNet blocks, generated stacks) are computed once.
        # The cache holds the args object, so its id cannot be reused while cached.
        key = (id(layer.type), id(layer.args), shape)
        hit = self.inferred.get(key)
        if hit is not None:
            result = hit[1]
        else:
            try:
                result = layer.type.infer(layer.args, shape)
                check_dims(result.output_shape)
            except ConvcalcError as err:
                raise err.located(where=layer.where, path=layer.path, layer_type=layer.type.name) from None
            self.inferred[key] = (layer.args, result)
        field = self.advance(field, result, layer.path, layer.type.name, layer.where)
        self.emit(layer.path, layer.type.name, shape, result, field, layer.where)
        return result.output_shape, field

    def fork(self, fork: Fork, shape: Shape, field: Field) -> tuple[Shape, Field]:
        outputs = [self.node(branch, shape, field) for branch in fork.branches]
        shapes = [s for s, _ in outputs]
        names = [self.branch_name(b) for b in fork.branches]
        try:
            result = fork.merge.infer(shapes, names)
            check_dims(result.output_shape)
        except ConvcalcError as err:
            raise err.located(where=fork.where, path=fork.merge_path, layer_type=fork.merge.name) from None
        merged = self.merge_fields([f for _, f in outputs], names, fork)
        self.emit(fork.merge_path, fork.merge.name, tuple(shapes), result, merged, fork.where)
        return result.output_shape, merged

    @staticmethod
    def branch_name(branch: Sequence) -> str:
        if not branch.items:
            return f"{branch.path} (identity)" if branch.path else "(identity)"
        return branch.path

    def merge_fields(self, fields: list[Field], names: list[str], fork: Fork) -> Field:
        if any(f is None for f in fields) or not fields:
            return None
        axes = [f for f in fields if f is not None]
        merged = list(axes[0])
        for other, name in zip(axes[1:], names[1:]):
            for i, (a, b) in enumerate(zip(merged, other)):
                if a.jump != b.jump:
                    self.warn(fork.merge_path, fork.merge.name, fork.where, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have different jumps along axis {i + 1}"
                        f" ({_num(a.jump)} vs {_num(b.jump)}): their outputs do not line up",
                    ))
                elif a.start != b.start:
                    self.warn(fork.merge_path, fork.merge.name, fork.where, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have field centres {_num(a.start)} and"
                        f" {_num(b.start)} along axis {i + 1}: the merged features are shifted",
                    ))
                merged[i] = a.union(b)
        return tuple(merged)

    def advance(self, field: Field, result: Inference, path: str, kind: str, where: Location | None) -> Field:
        if field is None or result.axes is None or len(result.axes) != len(field):
            return None
        try:
            moved = tuple(f.through(m) for f, m in zip(field, result.axes))
            # Keep the same object when nothing changed (element-wise layers): renderers
            # memoise per field object.
            return field if all(a is b for a, b in zip(moved, field)) else moved
        except FieldTooIrregular as err:
            self.warn(path, kind, where, Note("field-untracked", f"receptive field no longer tracked: {err}"))
            return None

    def emit(self, path: str, kind: str, shape: Shape | tuple[Shape, ...], result: Inference,
             field: Field, where: Location | None) -> None:
        self.rows.append(Row(
            path=path,
            type=kind,
            input_shape=shape,
            output_shape=result.output_shape,
            params=result.params,
            buffers=result.buffers,
            macs=result.macs * self.batch_size,
            activation_bytes=math.prod(result.output_shape) * self.bytes_per_element,
            field=field,
            axes=result.axes,
            where=where,
        ))
        for note in result.notes:
            self.warn(path, kind, where, note)

    def warn(self, path: str, kind: str, where: Location | None, note: Note) -> None:
        self.warnings.append(DesignWarning(path, kind, note.code, note.message, where))


MAX_DIM = 2**63 - 1  # PyTorch sizes are int64


def check_dims(shape: Shape) -> None:
    """Refuse sizes no tensor can have, before they grow into numbers nothing can print."""
    if max(shape) > MAX_DIM:
        raise ShapeError(f"an output size of {max(shape):.3e} is beyond 2^63 - 1, the largest size a"
                         " PyTorch tensor can have")


def _num(value: object) -> str:
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):g}" if isinstance(value, Fraction) else str(value)


def input_field(shape: Shape) -> Field:
    return tuple(AxisField() for _ in shape[1:]) if len(shape) > 1 else None


def analyze(network: Network, batch_size: int = 1, dtype: str = "float32") -> Report:
    """Every layer's shapes, counts and receptive field, plus totals and warnings."""
    walker = _Walker(batch_size, DTYPE_BYTES[dtype])
    output, _ = walker.node(network.body, network.input_shape, input_field(network.input_shape))
    rows = tuple(walker.rows)
    params = sum(r.params for r in rows)
    totals = Totals(
        params=params,
        buffers=sum(r.buffers for r in rows),
        macs=sum(r.macs for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
        param_bytes=params * DTYPE_BYTES[dtype],
    )
    return Report(
        name=network.name,
        input_shape=network.input_shape,
        output_shape=output,
        batch_size=batch_size,
        dtype=dtype,
        rows=rows,
        totals=totals,
        warnings=tuple(walker.warnings),
    )
