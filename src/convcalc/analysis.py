"""Turns a parsed network into per-layer results: the pure core of convcalc.

No I/O, no printing, no click or rich: `analyze` takes a `Network` and returns a `Report`,
one row per node of its graph, in the graph's order. `outline` adds the spec's nesting:
the rows and the subtotals of every block, branch and repeat (`Graph.groups`), in tree order.
Imports `branches`, `errors`, `graph`, `layers`, `network` and `receptive` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import field as record_field
from itertools import accumulate
from operator import attrgetter
from typing import cast

from convcalc.branches import alignment, mismatch, number_text
from convcalc.errors import ConvcalcError, Location, ShapeError
from convcalc.graph import INPUT, Graph, Group, Node
from convcalc.layers import Inference, InputMismatch, Note, Shape
from convcalc.layers.base import SPATIAL_NAMES
from convcalc.network import Network
from convcalc.receptive import BROADCAST, IDENTITY, AxisField, AxisMap, FieldTooIrregular, Span, positional
from convcalc.records import record

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

Field = tuple[AxisField, ...] | None  # one per spatial axis; None once there are none
# Where each spatial axis sits: its dim in the shape without the batch (channels first: 1, 2,
# ...; after permute [0, 2, 3, 1]: 0, 1). None once the axes are merged (flatten) or mixed.
Dims = tuple[int, ...] | None


@record
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


@record
class DesignWarning:
    """A warning about one layer (a `Note` placed at its path and source line)."""

    path: str
    layer_type: str
    code: str
    message: str
    where: Location | None = None


@record
class Totals:
    params: int
    buffers: int
    macs: int
    activation_bytes: int  # every layer's output (what a training forward keeps)
    param_bytes: int
    # Inference: the largest sum of live tensors at one step (CONVENTIONS.md, "Memory"), and
    # the path of that step ("(input)" when the input alone is the peak).
    peak_activation_bytes: int = 0
    peak_activation_at: str = "(input)"

    @property
    def flops(self) -> int:
        return 2 * self.macs


@record
class Output:
    """One output of the network: its path (`input` when there are no layers), shape and field."""

    path: str
    shape: Shape
    field: Field


@record
class Report:
    name: str
    input_shape: Shape
    output_shape: Shape  # the first output's (the JSON contract lists all when there are several)
    batch_size: int
    dtype: str
    rows: tuple[Row, ...]
    totals: Totals
    warnings: tuple[DesignWarning, ...]
    outputs: tuple[Output, ...] = ()  # every output of the graph, in the order `outputs:` lists them


@record
class Entry:
    """One line of an outline: a node's row, or a group's subtotals over its nodes.

    A group's input is what flows into it from outside (one shape per such value), its
    output and receptive field are those of its last node.
    """

    path: str
    type: str  # the layer type, or the group's kind (block name, residual, parallel, ...)
    depth: int  # 1 at the top level
    start: int  # the rows it sums: report.rows[start:stop]
    stop: int
    group: Group | None  # None for a node's own row
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    params: int
    buffers: int
    macs: int
    activation_bytes: int
    field: Field

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def is_group(self) -> bool:
        return self.group is not None


def outline(report: Report, graph: Graph, depth: int | None = None, layers: bool = True) -> tuple[Entry, ...]:
    """The rows and group subtotals at nesting depth <= `depth` (all when None), in tree
    order: each group just before the rows and groups inside it; only the groups without
    `layers`."""
    rows = report.rows
    sums = {key: list(accumulate([getattr(row, key) for row in rows], initial=0))
            for key in ("params", "buffers", "macs", "activation_bytes")}

    def total(key: str, start: int, stop: int) -> int:
        return sums[key][stop] - sums[key][start]

    def shape_of(i: int) -> Shape:
        return report.input_shape if i == INPUT else rows[i].output_shape

    by_start: dict[int, list[Group]] = {}
    for g in graph.groups:
        if depth is None or g.depth <= depth:
            by_start.setdefault(g.start, []).append(g)
    out: list[Entry] = []
    for i in range(len(rows)) if layers else sorted(by_start):
        for g in by_start.get(i, ()):
            outside = sorted({j for k in range(g.start, g.stop) for j in graph.nodes[k].inputs if j < g.start})
            last = rows[g.stop - 1]
            out.append(Entry(
                g.path, g.kind, g.depth, g.start, g.stop, g, tuple(shape_of(j) for j in outside),
                last.output_shape, total("params", g.start, g.stop), total("buffers", g.start, g.stop),
                total("macs", g.start, g.stop), total("activation_bytes", g.start, g.stop), last.field))
        if not layers:
            continue
        row = rows[i]
        node_depth = graph.depths[i] if graph.depths else 1
        if depth is None or node_depth <= depth:
            out.append(Entry(row.path, row.type, node_depth, i, i + 1, None, row.input_shapes, row.output_shape,
                             row.params, row.buffers, row.macs, row.activation_bytes, row.field))
    return tuple(out)


class _Analysis:
    """Shapes and fields through the graph, node by node, collecting rows and warnings."""

    def __init__(self, batch_size: int, dtype_bytes: int) -> None:
        self.batch_size = batch_size
        self.bytes_per_element = batch_size * dtype_bytes
        self.rows: list[Row] = []
        self.warnings: list[DesignWarning] = []
        self.inferred: dict[tuple[int, int, tuple[Shape, ...]], tuple[object, Inference]] = {}
        self.identity: dict[int, bool] = {}  # id(maps) -> all are IDENTITY
        self.graph: Graph
        self.shapes: dict[int, Shape] = {}
        self.fields: dict[int, Field] = {}

    def run(self, graph: Graph, input_shape: Shape, track_fields: bool = True) -> None:
        self.graph = graph
        shapes = self.shapes = {INPUT: input_shape}
        fields = self.fields = {INPUT: input_field(input_shape) if track_fields else None}
        layouts: dict[int, Dims] = {INPUT: input_dims(input_shape)}
        infer, place, advance, emit = self.infer, self.place, self.advance, self.emit
        for i, node in enumerate(graph.nodes):
            inputs = node.inputs
            if len(inputs) == 1:
                source = inputs[0]
                in_shapes: tuple[Shape, ...] = (shapes[source],)
                dims_in = layouts[source]
            else:
                in_shapes = tuple(shapes[j] for j in inputs)
                dims_in = self.layout(node, [layouts[j] for j in inputs])
            result = infer(i, node, in_shapes)
            dims, maps = place(node, dims_in, in_shapes[0], result)
            if not track_fields:
                field = None
            elif node.type.arity == 1:
                field = advance(fields[inputs[0]], maps, node, result.output_shape, dims)
            elif dims is None:
                field = None
            else:
                field = self.merge_fields(i, in_shapes, result.output_shape, dims)
            shapes[i], fields[i], layouts[i] = result.output_shape, field, dims
            emit(node, in_shapes, result, field, dims_in, dims, maps)
        outputs = set(graph.outputs)
        consumers = graph.consumers
        for i, node in enumerate(graph.nodes):
            if not consumers[i] and i not in outputs:
                self.warn(node, Note("dead-layer", "nothing reads this output and it is not one of"
                                                   " the network's outputs (list it in 'outputs:'?)"))

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

    def infer(self, i: int, node: Node, shapes: tuple[Shape, ...]) -> Inference:
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
            if node.from_paths:  # a merge written with `from:`: its inputs are named paths
                raise err.named(node.labels, "input").located(where=node.where, path=node.path,
                                                              layer_type=node.type.name) from None
            maps = {j: row.axes for j, row in enumerate(self.rows)}
            raise mismatch(self.graph, i, err, self.shapes, maps) from None
        except ConvcalcError as err:
            hint = input_hint(shapes[0], node.type.rank) if shapes[0] == self.shapes[INPUT] else None
            if hint is not None:  # the layer meets the network input as written: say how to write it
                import copy  # errors only

                err = copy.copy(err)
                # the input is what is wrong, not the declared channels
                message = err.message.removesuffix("; leave in_channels out to infer it")
                err.message = f"{message}; {hint}"
            raise err.located(where=node.where, path=node.path, layer_type=node.type.name) from None
        self.inferred[key] = (node.args, result)
        return result

    def merge_fields(self, i: int, shapes: tuple[Shape, ...], out: Shape, dims: tuple[int, ...]) -> Field:
        """The union of the inputs' fields, output position by output position.

        Inputs that slide together (same jump, not broadcast) merge phase by phase; an input
        of size 1 broadcast along an axis is stretched over the output (every output sees its
        one field): when one input's field then holds the others' at every position (an SE
        gate's global pool), that field is the merge's; otherwise inputs concatenated along a
        spatial axis each cover their part of it, and inputs whose jumps differ or that are
        broadcast are merged position by position over the axis. Inputs of another rank
        (NumPy broadcasting of fewer axes) leave the field untracked. `dims` are the output
        dims that hold the spatial axes.
        """
        node = self.graph.nodes[i]
        fields = [self.fields[j] for j in node.inputs]
        if not fields or any(f is None for f in fields):
            return None
        axes = [f for f in fields if f is not None]
        rank = len(dims)
        if any(len(f) != rank for f in axes) or any(len(shape) != len(out) for shape in shapes):
            return None
        joined = merge_axis(node, out, dims)  # the spatial axis a concat joins along, if any
        same = all(shape == out for shape in shapes)  # nothing broadcast (most merges)
        # Axes along which a broadcast gate's field holds the others': nothing to line up there
        # (none unless an input is broadcast or its field already stretched).
        if joined is not None or same and not any(g.stretched for f in axes for g in f):
            covered = {}
        else:
            covered = self.gates(axes, shapes, out, dims)
        if len(covered) == rank:
            return tuple(covered[k] for k in range(rank))  # the gate's whole-input field
        if joined is None and (same or all(shape[d] == out[d] for shape in shapes for d in dims)):
            # Inputs that slide together: aligned when their centres line up on average.
            note = alignment(self.graph, i, self.fields, (0, *(out[d] for d in dims)))
            if note is not None:
                self.warn(node, note)
        else:
            self.misaligned(node, axes, shapes, out, joined, dims)
        merged: list[AxisField] = []
        for k in range(rank):
            d = dims[k]
            n = out[d]
            column = [f[k] for f in axes]
            sizes = [shape[d] for shape in shapes]
            if k in covered:
                merged.append(covered[k])
                continue
            if k != joined and all(m == n for m in sizes) and len({f.jump for f in column}) == 1:
                union = column[0]
                for more in column[1:]:
                    union = union.union(more)
                merged.append(union.bounded(n))
                continue
            try:
                merged.append(positional(_sources(column, sizes, n, k == joined), n,
                                         next(f for f, m in zip(column, sizes) if m == n or k == joined)))
            except FieldTooIrregular as err:
                self.warn(node, Note("field-untracked", f"receptive field no longer tracked: {err}"))
                return None
        return tuple(merged)

    @staticmethod
    def gates(axes: list[tuple[AxisField, ...]], shapes: tuple[Shape, ...], out: Shape,
              dims: tuple[int, ...]) -> dict[int, AxisField]:
        """The axes along which a broadcast gate's field (stretched over the output: every
        output sees the same span, as after a global pool) holds every other input's field at
        every position: that field is the merge's there, with nothing to line up."""
        covered = {}
        for k, d in enumerate(dims):
            n = out[d]
            column = [f[k].through(cast(AxisMap, BROADCAST)) if shape[d] == 1 and n != 1 else f[k]
                      for f, shape in zip(axes, shapes)]
            if not any(f.stretched for f in column):
                continue
            cover = next((f for f in column if f.stretched and all(f.covers(g, n) for g in column)), None)
            if cover is not None:
                covered[k] = cover.bounded(n)
        return covered

    def misaligned(self, node: Node, axes: list[tuple[AxisField, ...]], shapes: tuple[Shape, ...], out: Shape,
                   joined: int | None, dims: tuple[int, ...]) -> None:
        """Warn where inputs that do not slide together (broadcast, joined) still disagree."""
        names = node.labels
        for k, (other, name) in enumerate(zip(axes[1:], names[1:]), start=1):
            for i, (a, b) in enumerate(zip(axes[0], other)):
                d = dims[i]
                if i == joined or 1 in (shapes[0][d], shapes[k][d]) and out[d] != 1:
                    continue  # a broadcast input, or parts side by side: nothing to line up
                if a.jump != b.jump:
                    self.warn(node, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have different jumps along axis {i + 1}"
                        f" ({number_text(a.jump)} vs {number_text(b.jump)}): their outputs do not line up",
                    ))
                elif a.centre != b.centre:
                    self.warn(node, Note(
                        "misaligned-branches",
                        f"branches {names[0]} and {name} have field centres {number_text(a.centre)} and"
                        f" {number_text(b.centre)} along axis {i + 1}: the merged features are shifted",
                    ))

    def advance(self, field: Field, maps: tuple[AxisMap, ...] | None, node: Node, out: Shape,
                dims: Dims) -> Field:
        if field is None or maps is None or dims is None:
            return None
        identity = self.identity.get(id(maps))  # identical layers share their maps; rows keep them alive
        if identity is None:
            identity = self.identity[id(maps)] = all(m is IDENTITY for m in maps)
        if identity:  # element-wise: the output's positions are the input's
            return field
        try:
            moved = tuple([f.through(m).bounded(out[d]) for f, m, d in zip(field, maps, dims)])
            # Keep the same object when nothing changed: renderers memoise per field object.
            return field if all([a is b for a, b in zip(moved, field)]) else moved
        except FieldTooIrregular as err:
            self.warn(node, Note("field-untracked", f"receptive field no longer tracked: {err}"))
            return None

    def emit(self, node: Node, shapes: tuple[Shape, ...], result: Inference, field: Field, dims_in: Dims,
             dims: Dims, maps: tuple[AxisMap, ...] | None) -> None:
        self.rows.append(Row(  # by position, in Row's order (keywords cost three times as much here)
            node.path,  # path
            node.type.name,  # type
            shapes,  # input_shapes
            result.output_shape,  # output_shape
            result.params,  # params
            result.buffers,  # buffers
            result.macs * self.batch_size,  # macs
            math.prod(result.output_shape) * self.bytes_per_element,  # activation_bytes
            field,  # field
            node.where,  # where
            result.axes,  # axes
            node,  # node
            dims_in,  # dims_in
            dims,  # dims
            maps,  # maps
        ))
        for note in result.notes:
            if note.code == "unflattened-linear" and dims_in is not None and len(shapes[0]) - 1 not in dims_in:
                continue  # the last dim holds the channels (after a permute): a per-position linear
            self.warn(node, note)

    def warn(self, node: Node, note: Note) -> None:
        self.warnings.append(DesignWarning(node.path, node.type.name, note.code, note.message, node.where))


MAX_DIM = 2**63 - 1  # PyTorch sizes are int64


def check_dims(shape: Shape) -> None:
    """Refuse sizes no tensor can have, before they grow into numbers nothing can print."""
    if max(shape) > MAX_DIM:
        raise ShapeError(f"an output size of {max(shape):.3e} is beyond 2^63 - 1, the largest size a"
                         " PyTorch tensor can have")


def looks_channels_last(shape: Shape) -> bool:
    """An image written [H, W, C] (or [D, H, W, C]): 1, 3 or 4 last, every other size 16 or more."""
    return len(shape) >= 3 and shape[-1] in (1, 3, 4) and all(n >= 16 for n in shape[:-1])


def input_hint(shape: Shape, rank: int | None) -> str | None:
    """How the spec's `input:` was probably meant, when a layer cannot take it as written."""
    if rank is not None and len(shape) == rank + 2:
        fixed = list(shape[2:]) if shape[0] == 1 and looks_channels_last(shape[1:]) else list(shape[1:])
        return f"the input {list(shape)} seems to include the batch: leave it out, input: {fixed}"
    if looks_channels_last(shape):
        return (f"the input {list(shape)} looks channels-last: channels come first,"
                f" input: {[shape[-1], *shape[:-1]]}")
    return None


def merge_axis(node: Node, out: Shape, dims: Dims = None) -> int | None:
    """The spatial axis (from 0) a concat joins its inputs along; None for channels, add, mul.

    `dims`: the dims of `out` that hold the spatial axes (channels first when left out).
    """
    if node.type.name != "concat":
        return None
    dim = node.args.get("dim", 1)
    axis = dim - 1 if dim > 0 else len(out) + dim
    if dims is not None:
        return dims.index(axis) if axis in dims else None
    return axis - 1 if axis > 0 else None


def _sources(column: list[AxisField], sizes: list[int], n: int, joined: bool) -> Callable[[int], list[Span]]:
    """Per output position, the spans the merge's inputs give it along one axis."""
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]

    def spans(o: int) -> list[Span]:
        if joined:  # concatenated along this axis: input k holds positions offset..offset + size
            return [f.at(o - start) for f, start, m in zip(column, offsets, sizes) if 0 <= o - start < m]
        return [f.at(0 if m == 1 and n != 1 else o) for f, m in zip(column, sizes)]

    return spans


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


def analyze(network: Network, batch_size: int = 1, dtype: str = "float32", *,
            input_shape: Shape | None = None, fields: bool = True) -> Report:
    """Every layer's shapes, counts and receptive field, plus totals and warnings.

    `input_shape` runs the same graph on another input (an input-size sweep re-runs shape
    inference only, without parsing again); `fields=False` leaves receptive fields out
    (every row's `field` is None, and the warnings about merged fields are not looked for).
    """
    walker = _Analysis(batch_size, DTYPE_BYTES[dtype])
    graph = network.graph
    shape = network.input_shape if input_shape is None else tuple(input_shape)
    walker.run(graph, shape, fields)
    rows = tuple(walker.rows)
    outputs = tuple(
        Output(rows[i].path, rows[i].output_shape, rows[i].field) if i != INPUT
        else Output("input", shape, input_field(shape))
        for i in graph.outputs)
    params = sum(map(attrgetter("params"), rows))
    activations = list(map(attrgetter("activation_bytes"), rows))
    sizes = dict(enumerate(activations))
    sizes[INPUT] = math.prod(shape) * walker.bytes_per_element
    peak, step = graph.live_peak(sizes)
    totals = Totals(
        params=params,
        buffers=sum(map(attrgetter("buffers"), rows)),
        macs=sum(map(attrgetter("macs"), rows)),
        activation_bytes=sum(activations),
        param_bytes=params * DTYPE_BYTES[dtype],
        peak_activation_bytes=peak,
        peak_activation_at=rows[step].path if step != INPUT else "(input)",
    )
    return Report(
        name=network.name,
        input_shape=shape,
        output_shape=outputs[0].shape,
        batch_size=batch_size,
        dtype=dtype,
        rows=rows,
        totals=totals,
        warnings=tuple(walker.warnings),
        outputs=outputs,
    )
