"""The exact field of one output position, walked back through the network.

`AxisField` (receptive.py) is the theoretical field: unclipped, the same shape at every
position of a period. What one particular output really depends on is smaller near the
border: zero padding reads nothing, reflect/replicate/circular padding and clamped
interpolation read interior pixels instead, and a branch may reach pixels the others do
not. This module walks the index sets of one output position back to the network input,
layer by layer, resolving every layer's taps against its real input size (`AxisMap.reads`)
and taking the union where a tensor feeds several branches. The result is what the
gradient of that output with respect to the input is non-zero on (with positive weights),
which is how the tests check it.

Every layer maps its axes independently, so what one output reads through one path is a
box: a product of one index set per axis. Where a tensor feeds several branches the
reached region is a union of boxes, kept as such (a 1x7 and a 7x1 branch reach a cross,
not a square; a box whose axis reaches nothing, e.g. an output of a transposed convolution
that no input writes, contributes nothing on any axis). Boxes contained in others are
dropped; past `MAX_BOXES` they are merged into their per-axis hull and the result is
flagged `approximate`. `explain` gathers what `convcalc rf` shows. The walk follows the
graph backwards over the report's rows (`Row.node.inputs`). Imports `analysis`, `errors`,
`graph`, `layers`, `network` and `receptive` only; pure (no NumPy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from convcalc.analysis import DesignWarning, Row, analyze, merge_axis
from convcalc.errors import ShapeError, SpecError, suggest
from convcalc.graph import INPUT
from convcalc.layers import Shape
from convcalc.layers.base import SPATIAL_NAMES
from convcalc.network import Network
from convcalc.receptive import BROADCAST, AxisField, AxisMap, inputs_per_output
from convcalc.records import record

MAX_BOXES = 256

Box = tuple[frozenset[int], ...]


@record
class AxisRegion:
    """The input indices one output position reads along one axis."""

    indices: tuple[int, ...]  # sorted, inside the input
    clipped: bool  # some tap on the way fell outside a layer's input (padding, border)
    size: int  # the input size along this axis
    # Some path reached nothing on another axis, so the per-axis recurrence may see more.
    dropped: bool = False
    approximate: bool = False  # too many distinct paths: per-axis union (may be larger)

    @property
    def span(self) -> tuple[int, int] | None:
        return (self.indices[0], self.indices[-1]) if self.indices else None

    @property
    def extent(self) -> int:
        """Width of the span (gaps from dilation included)."""
        return self.indices[-1] - self.indices[0] + 1 if self.indices else 0


def spatial_maps(row: Row) -> tuple[AxisMap, ...] | None:
    """The row's map of each spatial axis (in the input's order), while the axes are tracked.

    After a permute the axes sit in other dims (`Row.dims`); the maps follow them.
    """
    return row.maps


def find(rows: Sequence[Row], path: str | None) -> int:
    """The index of the row named `path`.

    None means the last row with spatial axes, preferring one whose output is not a
    single pixel (global pooling's field is the whole input, which says little).
    """
    if path is None:
        spatial = [i for i, r in enumerate(rows) if spatial_maps(r) is not None and r.spatial_shape]
        if not spatial:
            raise SpecError("no layer has spatial axes (nothing to take a receptive field of)")
        wide = [i for i in spatial if any(n > 1 for n in rows[i].spatial_shape)]
        return (wide or spatial)[-1]
    for i, row in enumerate(rows):
        if row.path == path:
            return i
    raise SpecError(f"no layer is named '{path}'{suggest(path, [r.path for r in rows])}")


def centre(spatial: Shape) -> tuple[int, ...]:
    """The centre output position, `(n - 1) // 2` per spatial axis (`Row.spatial_shape`)."""
    return tuple((n - 1) // 2 for n in spatial)


def walk(network: Network, position: tuple[int, ...] | None = None, at: str | None = None,
         graph: Sequence[Row] | None = None) -> tuple[AxisRegion, ...]:
    """The input indices (per axis) that output `position` of layer `at` depends on.

    `position` defaults to the centre, `at` to the last spatial layer; `graph` is the
    network's report rows (one per graph node), when already analysed.
    """
    graph = graph if graph is not None else analyze(network).rows
    target = find(graph, at)
    spatial = graph[target].spatial_shape
    if spatial_maps(graph[target]) is None:
        raise ShapeError(
            f"the output {list(graph[target].output_shape)} has no spatial axes that map back to the"
            " input (after flatten or linear); pick an earlier layer", path=graph[target].path)
    position = position if position is not None else centre(spatial)
    if len(position) != len(spatial) or not all(0 <= p < n for p, n in zip(position, spatial)):
        raise SpecError(
            f"position {','.join(map(str, position))} is outside the output"
            f" {'x'.join(map(str, spatial))} of {graph[target].path}"
            f" (give {len(spatial)} indices, each from 0 to size - 1)")
    rank = len(spatial)
    boxes: dict[int, list[Box]] = {target: [tuple(frozenset((p,)) for p in position)]}
    clipped: dict[int, list[bool]] = {target: [False] * rank}
    dropped = approximate = False
    for i in range(target, -1, -1):
        if i not in boxes:
            continue
        step, here, cut = graph[i], boxes.pop(i), clipped.pop(i)
        maps = spatial_maps(step)
        if maps is None or len(maps) != rank:
            raise ShapeError(
                "the spatial axes are merged here (flatten), so positions after it do not map"
                " back to input positions per axis", path=step.path, layer_type=step.type)
        merge = step.is_merge
        if merge and any(len(s) != len(step.output_shape) for s in step.input_shapes):
            raise ShapeError("the inputs of this merge have fewer axes than its output (broadcast),"
                             " so its positions do not map back per axis", path=step.path, layer_type=step.type)
        joined = merge_axis(step.node, step.output_shape) if merge and step.node is not None else None
        offset = 0
        dims_in, dims = step.dims_in or (), step.dims or ()
        for source, in_shape in zip(inputs_of(step), step.input_shapes):  # value inputs only
            sizes = [in_shape[d] for d in dims_in]
            # A merge's broadcast input (size 1 where the output is not) is read at index 0.
            if merge:
                maps = tuple(cast(AxisMap, BROADCAST) if in_shape[a] == 1 and step.output_shape[b] != 1 else amap
                             for amap, a, b in zip(spatial_maps(step) or (), dims_in, dims))
            memo: list[dict[frozenset[int], frozenset[int]]] = [{} for _ in range(rank)]
            touched = list(cut)
            reached: list[Box] = []
            for box in here:
                if joined is not None:  # concatenated along a spatial axis: this input's part only
                    part = frozenset(o - offset for o in box[joined] if 0 <= o - offset < sizes[joined])
                    if not part:  # the other part: the per-axis field of the rest counts this input
                        dropped = True
                        continue
                    box = (*box[:joined], part, *box[joined + 1:])
                mapped = []
                for axis, (amap, n) in enumerate(zip(maps, sizes)):
                    if box[axis] not in memo[axis]:
                        got: set[int] = set()
                        for o in box[axis]:
                            indices, outside = amap.reads(o, n)
                            got.update(indices)
                            touched[axis] = touched[axis] or outside
                        memo[axis][box[axis]] = frozenset(got)
                    mapped.append(memo[axis][box[axis]])
                if all(mapped):
                    reached.append(tuple(mapped))
                else:
                    dropped = dropped or any(mapped)
            if joined is not None:
                offset += sizes[joined]
            merged = _prune(boxes.get(source, []) + reached)
            if len(merged) > MAX_BOXES:
                merged = [tuple(frozenset().union(*(b[a] for b in merged)) for a in range(rank))]
                approximate = True
            boxes[source] = merged
            previous = clipped.get(source, [False] * rank)
            clipped[source] = [a or b for a, b in zip(previous, touched)]
    final = boxes.get(INPUT, [])
    cut = clipped.get(INPUT, [False] * rank)
    return tuple(
        AxisRegion(tuple(sorted(frozenset().union(*(b[a] for b in final)))), cut[a], n,
                   dropped, approximate)
        for a, n in enumerate(network.input_shape[1:]))


def inputs_of(row: Row) -> tuple[int, ...]:
    """The ids of the rows (or INPUT) whose values a row reads (not a `size_of:` input's)."""
    assert row.node is not None, "rows come from analyze"
    return row.node.value_inputs


def _prune(boxes: list[Box]) -> list[Box]:
    """Distinct boxes, leaving out those inside another."""
    unique = sorted(set(boxes), key=lambda b: -sum(len(s) for s in b))
    kept: list[Box] = []
    for box in unique:
        if not any(all(a <= b for a, b in zip(box, k)) for k in kept):
            kept.append(box)
    return kept


# --- one layer's field, explained (what `convcalc rf` shows) --------------------------------

FIELD_WARNINGS = ("misaligned-branches", "uneven-overlap", "field-untracked")


@record
class AxisExplanation:
    axis: str
    field: AxisField  # the theoretical field of every output position (unclipped)
    taps_min: int  # this layer alone: fewest / most of its inputs one output reads (receptive.inputs_per_output)
    taps_max: int
    theory: tuple[int, int] | None  # the field of `position`, padding included
    region: AxisRegion  # what `position` really reads from the input


@record
class Explanation:
    path: str
    type: str
    input_shape: Shape
    output_shape: Shape
    position: tuple[int, ...]
    axes: tuple[AxisExplanation, ...]
    warnings: tuple[DesignWarning, ...]  # about fields, up to this layer

    @property
    def pixels(self) -> int:
        """Input pixels (per channel) the position reads."""
        return math.prod(len(a.region.indices) for a in self.axes)

    @property
    def whole(self) -> bool:
        """Does every output position see the whole input (a global-pool gate feeds it)?"""
        return all(a.field.covers_whole(a.region.size) for a in self.axes)

    @property
    def coverage(self) -> float:
        """Share of the input inside the box of the pixels read."""
        return math.prod(a.region.extent / a.region.size for a in self.axes)


def default_layer(network: Network, rows: Sequence[Row]) -> str | None:
    """The layer `rf` and `erf` explain without `--at`: with several outputs, the first output
    with spatial axes (not a single pixel); otherwise None (`find`'s last spatial layer)."""
    outputs = [i for i in network.graph.outputs if i != INPUT]
    if len(network.graph.outputs) < 2:
        return None
    spatial = [i for i in outputs if spatial_maps(rows[i]) is not None and len(rows[i].output_shape) > 1]
    wide = [i for i in spatial if any(n > 1 for n in rows[i].output_shape[1:])]
    return rows[(wide or spatial)[0]].path if spatial else None


def explain(network: Network, at: str | None = None, position: tuple[int, ...] | None = None) -> Explanation:
    """The field of layer `at` and of one of its positions.

    `at` defaults to the first output with spatial axes when the network has several, else
    to the last spatial layer. The warnings shown are those of the layers whose values reach
    `at` (every path to it, not what merely runs before it).
    """
    report = analyze(network)
    graph = report.rows
    target = find(graph, at if at is not None else default_layer(network, graph))
    step = row = graph[target]
    maps = spatial_maps(step)
    if row.field is None or maps is None:
        raise ShapeError("the receptive field is not tracked here (the spatial axes were merged"
                         " by flatten, or resampled too irregularly); pick an earlier layer",
                         path=step.path, layer_type=step.type)
    region = walk(network, position, step.path, graph)
    position = position if position is not None else centre(step.spatial_shape)
    names = SPATIAL_NAMES.get(len(region), tuple(f"axis{i}" for i in range(len(region))))
    axes = []
    dims_in = step.dims_in or tuple(range(1, len(step.input_shapes[0])))
    dims = step.dims or tuple(range(1, len(step.output_shape)))
    sizes = zip((step.input_shapes[0][d] for d in dims_in), (step.output_shape[d] for d in dims))
    for name, f, amap, o, r, (n_in, n_out) in zip(names, row.field, maps, position, region, sizes):
        fewest, most = inputs_per_output(amap, n_in, n_out)
        axes.append(AxisExplanation(name, f, fewest, most, f.at(o), r))
    paths = {graph[i].path for i in network.graph.ancestors(target)}
    warnings = tuple(w for w in report.warnings if w.code in FIELD_WARNINGS and w.path in paths)
    return Explanation(step.path, step.type, step.input_shapes[0], step.output_shape, tuple(position),
                       tuple(axes), warnings)
