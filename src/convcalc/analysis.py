"""Turns a parsed network into per-layer results: the pure core of convcalc.

No I/O, no printing, no click or rich: `analyze` takes a `Network` and returns a `Report`,
one row per node of its graph, in the graph's order. Imports `errors`, `graph`, `layers`,
`network` and `receptive` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as record_field
from fractions import Fraction
from typing import cast

from convcalc.errors import ConvcalcError, Location, ShapeError
from convcalc.graph import INPUT, Graph, Node
from convcalc.layers import Inference, InputMismatch, Note, Shape
from convcalc.layers.base import SPATIAL_NAMES
from convcalc.network import Network
from convcalc.receptive import BROADCAST, IDENTITY, AxisField, AxisMap, FieldTooIrregular

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

Field = tuple[AxisField, ...] | None  # one per spatial axis; None once there are none
# Where each spatial axis sits: its dim in the shape without the batch (channels first: 1, 2,
# ...; after permute [0, 2, 3, 1]: 0, 1). None once the axes are merged (flatten) or mixed.
Dims = tuple[int, ...] | None


@dataclass(frozen=True)
class Row:
    """What one node of the graph computes; `Report.rows[i]` belongs to `graph.nodes[i]`."""

    path: str
    type: str
    input_shapes: tuple[Shape, ...]  # one per input; a merge has one per branch
    output_shape: Shape
    params: int
    buffers: int
    macs: int
    activation_bytes: int
    field: Field
    where: Location | None = record_field(default=None, compare=False)
    # How the layer maps each dim after the first (as `Inference.axes`).
    axes: tuple[AxisMap, ...] | None = record_field(default=None, compare=False, repr=False)
    # The graph node this row describes (its layer type, arguments and inputs).
    node: Node | None = record_field(default=None, compare=False, repr=False)
    # Where the spatial axes sit in the input and the output (see `Dims`), and the map the
    # layer applies to each spatial axis, in the network input's order (for lints and field
    # walks); None where the axes are not tracked.
    dims_in: Dims = record_field(default=None, compare=False, repr=False)
    dims: Dims = record_field(default=None, compare=False, repr=False)
    maps: tuple[AxisMap, ...] | None = record_field(default=None, compare=False, repr=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def is_merge(self) -> bool:
        return self.node is not None and self.node.type.arity != 1

    @property
    def spatial_shape(self) -> Shape:
        """The output's size along each spatial axis, in the network input's order."""
        return tuple(self.output_shape[d] for d in self.dims or ())

    @property
    def input_shape(self) -> Shape | tuple[Shape, ...]:
        """As the JSON contract shows it: the one input shape, or a merge's list of shapes."""
        return self.input_shapes if self.is_merge else self.input_shapes[0]


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


class _Analysis:
    """Shapes and fields through the graph, node by node, collecting rows and warnings."""

    def __init__(self, batch_size: int, dtype_bytes: int) -> None:
        self.batch_size = batch_size
        self.bytes_per_element = batch_size * dtype_bytes
        self.rows: list[Row] = []
        self.warnings: list[DesignWarning] = []
        self.inferred: dict[tuple[int, int, tuple[Shape, ...]], tuple[object, Inference]] = {}

    def run(self, graph: Graph) -> None:
        shapes: dict[int, Shape] = {INPUT: graph.input_shape}
        fields: dict[int, Field] = {INPUT: input_field(graph.input_shape)}
        layouts: dict[int, Dims] = {INPUT: input_dims(graph.input_shape)}
        for i, node in enumerate(graph.nodes):
            in_shapes = tuple(shapes[j] for j in node.inputs)
            result = self.infer(node, in_shapes)
            if len(node.inputs) == 1:
                dims_in = layouts[node.inputs[0]]
            else:
                dims_in = self.layout(node, [layouts[j] for j in node.inputs])
            dims, maps = self.place(node, dims_in, in_shapes[0], result)
            if node.type.arity == 1:
                field = self.advance(fields[node.inputs[0]], maps, node)
            elif dims is None:
                field = None
            else:
                field = self.merge_fields([stretch(fields[j], dims, shape, result.output_shape)
                                           for j, shape in zip(node.inputs, in_shapes)],
                                          node, result.output_shape, dims)
            shapes[i], fields[i], layouts[i] = result.output_shape, field, dims
            self.emit(node, in_shapes, result, field, dims_in, dims, maps)

    def layout(self, node: Node, inputs: list[Dims]) -> Dims:
        """Where the spatial axes sit in the node's inputs (a merge's must agree)."""
        first = inputs[0]
        if first is not None and any(d != first for d in inputs[1:]):
            self.warn(node, Note("field-untracked", "receptive field no longer tracked: the merged"
                                 " inputs hold their spatial axes in different dims (permute one)"))
            return None
        return first

    def place(self, node: Node, dims: Dims, shape: Shape, result: Inference
              ) -> tuple[Dims, tuple[AxisMap, ...] | None]:
        """Where the spatial axes sit in the output, and the layer's map of each."""
        if dims is None:
            return None, None
        axes = result.axes
        if dims is CHANNELS_FIRST.get(len(shape)) and result.order is None:  # the common case, fast
            ok = axes is not None and len(axes) == len(dims) and len(result.output_shape) == len(shape)
            return (dims, axes) if ok else (None, None)
        if result.order is not None:  # a permute: the axes move, unchanged
            moved = tuple(result.order.index(d) for d in dims)
            if moved == CHANNELS_FIRST.get(len(shape)):
                moved = CHANNELS_FIRST[len(shape)]  # back in place (ConvNeXt's second permute)
            return moved, (cast(AxisMap, IDENTITY),) * len(dims)
        if result.axes is None or len(result.output_shape) != len(shape) or len(result.axes) != len(shape) - 1:
            return None, None  # merged (flatten) or gone
        maps = tuple(result.lead if d == 0 else result.axes[d - 1] for d in dims)
        if any(m is None for m in maps):
            names = SPATIAL_NAMES.get(len(dims), ())
            axis = next((names[k] for k, d in enumerate(dims) if d == 0 and k < len(names)), "a spatial axis")
            self.warn(node, Note("field-untracked", f"receptive field no longer tracked: {node.type.name}"
                                 f" mixes or moves dim 1, which holds {axis} after a permute; permute the"
                                 " channels back to dim 1 first"))
            return None, None
        return dims, cast(tuple[AxisMap, ...], maps)

    def infer(self, node: Node, shapes: tuple[Shape, ...]) -> Inference:
        # `infer` is pure, and parsed arguments are shared between identical layers, so
        # repeated layers (VGG stages, ResNet blocks, generated stacks) are computed once.
        # The cache holds the args object, so its id cannot be reused while cached.
        key = (id(node.type), id(node.args), shapes)
        hit = self.inferred.get(key)
        if hit is not None:
            return hit[1]
        try:
            result = node.type.infer_inputs(node.args, shapes)
            check_dims(result.output_shape)
        except InputMismatch as err:
            raise err.named(node.labels).located(where=node.where, path=node.path,
                                                 layer_type=node.type.name) from None
        except ConvcalcError as err:
            raise err.located(where=node.where, path=node.path, layer_type=node.type.name) from None
        self.inferred[key] = (node.args, result)
        return result

    def merge_fields(self, fields: list[Field], node: Node, out: Shape, dims: tuple[int, ...]) -> Field:
        if any(f is None for f in fields) or not fields:
            return None
        axes = [f for f in fields if f is not None]
        names = node.labels
        merged = list(axes[0])
        for other, name in zip(axes[1:], names[1:]):
            for i, (a, b) in enumerate(zip(merged, other)):
                n = out[dims[i]]
                if (a.stretched or b.stretched) and (a.covers(b, n) or b.covers(a, n)):
                    # A broadcast gate: one field holds the other's at every position.
                    merged[i] = a if a.covers(b, n) else b
                    continue
                if a.jump != b.jump:
                    self.warn(node, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have different jumps along axis {i + 1}"
                        f" ({_num(a.jump)} vs {_num(b.jump)}): their outputs do not line up",
                    ))
                elif a.start != b.start:
                    self.warn(node, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have field centres {_num(a.start)} and"
                        f" {_num(b.start)} along axis {i + 1}: the merged features are shifted",
                    ))
                merged[i] = a.union(b)
        return tuple(merged)

    def advance(self, field: Field, maps: tuple[AxisMap, ...] | None, node: Node) -> Field:
        if field is None or maps is None:
            return None
        try:
            moved = tuple(f.through(m) for f, m in zip(field, maps))
            # Keep the same object when nothing changed (element-wise layers): renderers
            # memoise per field object.
            return field if all(a is b for a, b in zip(moved, field)) else moved
        except FieldTooIrregular as err:
            self.warn(node, Note("field-untracked", f"receptive field no longer tracked: {err}"))
            return None

    def emit(self, node: Node, shapes: tuple[Shape, ...], result: Inference, field: Field, dims_in: Dims,
             dims: Dims, maps: tuple[AxisMap, ...] | None) -> None:
        self.rows.append(Row(
            path=node.path,
            type=node.type.name,
            input_shapes=shapes,
            output_shape=result.output_shape,
            params=result.params,
            buffers=result.buffers,
            macs=result.macs * self.batch_size,
            activation_bytes=math.prod(result.output_shape) * self.bytes_per_element,
            field=field,
            axes=result.axes,
            where=node.where,
            node=node,
            dims_in=dims_in,
            dims=dims,
            maps=maps,
        ))
        for note in result.notes:
            self.warn(node, note)

    def warn(self, node: Node, note: Note) -> None:
        self.warnings.append(DesignWarning(node.path, node.type.name, note.code, note.message, node.where))


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


def stretch(field: Field, dims: tuple[int, ...], shape: Shape, out: Shape) -> Field:
    """A merge input's field with its broadcast (size-1) axes stretched over the output."""
    if field is None or len(shape) != len(out):
        return None
    if all(shape[d] == out[d] for d in dims):
        return field
    return tuple(f.through(cast(AxisMap, BROADCAST)) if shape[d] == 1 and out[d] != 1 else f
                 for f, d in zip(field, dims))


def input_field(shape: Shape) -> Field:
    return tuple(AxisField() for _ in shape[1:]) if len(shape) > 1 else None


# Channels first, by rank of the shape without the batch: spatial axis k is dim k + 1. Every
# channels-first layout in an analysis is one of these objects, so `is` recognises it.
CHANNELS_FIRST: dict[int, tuple[int, ...]] = {n: tuple(range(1, n)) for n in range(2, 9)}


def input_dims(shape: Shape) -> Dims:
    """The network input is channels first: spatial axis k is dim k + 1."""
    return CHANNELS_FIRST.get(len(shape)) if len(shape) > 1 else None


def position_index(dims: tuple[int, ...], position: tuple[int, ...] | list[int], rank: int) -> tuple[object, ...]:
    """Index into an output without the batch (`rank` dims) at a spatial position: every other dim whole."""
    index: list[object] = [slice(None)] * rank
    for d, p in zip(dims, position):
        index[d] = p
    return tuple(index)


def analyze(network: Network, batch_size: int = 1, dtype: str = "float32") -> Report:
    """Every layer's shapes, counts and receptive field, plus totals and warnings."""
    walker = _Analysis(batch_size, DTYPE_BYTES[dtype])
    graph = network.graph
    walker.run(graph)
    rows = tuple(walker.rows)
    out = graph.outputs[0]
    output = rows[out].output_shape if out != INPUT else network.input_shape
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
