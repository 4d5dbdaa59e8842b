"""A network as a diagram: boxes, and the tensors that flow between them (`convcalc draw`).

Without a depth every node of the graph is a box (layers and merges). At a `depth`, a box
is a path prefix of that many segments (`layer3.1` at depth 2) with its layers summed, and a
`repeat` of two or more copies is drawn once: as one box (`layer3.1..5`, x5) when a copy
would be one box, else as the first copy's boxes in a frame marked x5 (`--depth 3`).
Edges are the graph's: a box's output read by another box, labelled with the shape of that
tensor, so branches and merges stay a graph. A prefix's layers are contiguous in execution
order, so boxes never form a cycle.

Pure: imports `analysis`, `graph`, `layers` and `network` only.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from convcalc.analysis import Report
from convcalc.graph import INPUT
from convcalc.layers import Shape
from convcalc.network import Network
from convcalc.records import record

INPUT_BOX, OUTPUT_BOX = "input", "output"


@record
class Box:
    id: int  # boxes are numbered in execution order, the input first and the output last
    role: str  # "input", "output", "layer" (one node) or "group" (a prefix or a repeat)
    title: str  # the path (`layer3.1`, `layer3.1..5` for a repeat), or input/output
    kind: str  # the layer type, the block called (`bottleneck`), or "N layers"
    detail: str  # block arguments or what repeats inside (`6 x dense_layer`); may be empty
    params: int
    macs: int
    layers: int  # graph nodes inside
    repeat: int  # copies a repeat box stands for (1 otherwise)
    shape: Shape  # the box's output shape (the input's for the input box)
    parent: str = ""  # the path the box sits in (`layer1.0` for `layer1.0.conv1`); "" at the top


@record
class Cluster:
    """A path that holds two or more boxes, drawn as a frame around them (clusters nest)."""

    path: str
    kind: str  # the block called there, or ""
    parent: str  # the enclosing cluster's path ("" at the top)
    boxes: tuple[int, ...]  # the boxes directly inside, not in a nested cluster
    rolled: Rolled | None = None  # set when the frame is the first copy of a repeat standing for all


@record
class Rolled:
    """A repeat drawn as its first copy: how many copies, the last one, and what they all hold."""

    repeat: int
    last: str  # the last copy's path
    kind: str  # the block each copy calls, or ""
    params: int  # of every copy
    macs: int


@record
class Edge:
    source: int  # box ids
    target: int
    shape: Shape  # the tensor that flows


@record
class Diagram:
    name: str
    depth: int | None
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    clusters: tuple[Cluster, ...] = ()  # outer before inner, in execution order
    hidden: tuple[int, ...] = ()  # rows drawn through the first copy of their repeat, not as boxes


def segments(path: str) -> int:
    return path.count(".") + 1 if path else 0


def layer_count(n: int) -> str:
    return f"{n} layer" if n == 1 else f"{n} layers"


def _value_text(value: Any) -> str:
    """A block argument as the spec would write it (`true`, `[3, 3]`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    return str(value)


def _call_text(call: tuple[str, tuple[tuple[str, Any], ...]]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in call[1])


@record
class Grouping:
    """Which box each row of the report is drawn in."""

    keys: list[str | None]  # per row, its box's key; None for a row not drawn (a later copy)
    alias: dict[int, int]  # a row not drawn -> the row whose box stands for it
    collapsed: dict[str, tuple[str, ...]]  # a repeat drawn as one box: its key -> the copies
    rolled: dict[str, tuple[str, ...]]  # a repeat drawn as its first copy: that copy's path -> the copies
    members: dict[str, list[int]] = field(default_factory=dict)  # such a repeat's first copy -> all its rows


def group_rows(network: Network, report: Report, depth: int | None) -> Grouping:
    """Per row, the key of its box (its path, or its prefix at `depth`), with repeats folded.

    A repeat of two or more whose copies sit at `depth` or above is drawn once: as one box
    (`layer3.1..5`, x5) when one copy would be one box, else as its first copy's boxes in a
    frame marked x N, the later copies' rows then drawn as the first copy's last box (their
    edges in and out become its edges).
    """
    paths = [row.path for row in report.rows]
    if depth is None:
        return Grouping(list(paths), {}, {}, {})
    keys: list[str | None] = [".".join(p.split(".")[:depth]) for p in paths]
    repeats = [c for c in network.repeats if segments(c[0]) <= depth]
    copy_of: dict[str, tuple[int, int]] = {}  # copy path -> (repeat, position among its copies)
    for r, copies in enumerate(repeats):
        for k, copy in enumerate(copies):
            copy_of.setdefault(copy, (r, k))
    if not copy_of:
        return Grouping(keys, {}, {}, {})
    chains: list[list[tuple[int, int]]] = []  # per row, the copies around it, outermost first
    first_rows: dict[int, list[int]] = {}  # repeat -> the rows of its first copy
    all_rows: dict[int, list[int]] = {}  # repeat -> the rows of every copy
    for i, path in enumerate(paths):
        parts = path.split(".")
        chain = [copy_of[pre] for pre in (".".join(parts[:n]) for n in range(1, min(depth, len(parts)) + 1))
                 if pre in copy_of]
        chains.append(chain)
        for r, k in chain:
            all_rows.setdefault(r, []).append(i)
            if k == 0:
                first_rows.setdefault(r, []).append(i)
    single = {r for r, rows in first_rows.items() if len({keys[i] for i in rows}) == 1}
    collapsed: dict[str, tuple[str, ...]] = {}
    rolled: dict[str, tuple[str, ...]] = {}
    members: dict[str, list[int]] = {}
    alias: dict[int, int] = {}
    out: list[str | None] = []
    for i, chain in enumerate(chains):
        key = keys[i]
        for r, k in chain:
            copies = repeats[r]
            if r in single:
                key = f"{copies[0]}..{copies[-1].rpartition('.')[2]}"
                collapsed[key] = copies
                break
            if k > 0:
                key = None
                alias[i] = first_rows[r][-1]
                break
            rolled[copies[0]] = copies
            members[copies[0]] = all_rows[r]
        out.append(key)
    return Grouping(out, alias, collapsed, rolled, members)


def build(network: Network, report: Report, depth: int | None = None) -> Diagram:
    """The diagram of `network` (analysed as `report`), with boxes at `depth` if given."""
    grouping = group_rows(network, report, depth)
    keys, collapsed = grouping.keys, grouping.collapsed
    calls = network.block_calls
    order: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            order.setdefault(key, []).append(i)
    boxes = [Box(0, "input", INPUT_BOX, "input", "", 0, 0, 0, 1, report.input_shape)]
    box_of: dict[str, int] = {}
    for key, rows_at in order.items():
        rows = [report.rows[i] for i in rows_at]
        last = rows[-1]
        repeat = 1
        detail = ""
        parent = key.rpartition(".")[0]
        if len(rows) == 1 and last.path == key:
            role, kind = "layer", last.type
        elif key in collapsed:
            copies = collapsed[key]
            repeat = len(copies)
            parent = copies[0].rpartition(".")[0]
            call = calls.get(copies[0])
            first = [r for r in rows if r.path == copies[0] or r.path.startswith(copies[0] + ".")]
            if call:
                kind = call[0]
            elif len(first) == 1 and first[0].path == copies[0]:
                kind = first[0].type
            else:
                kind = layer_count(len(first))
            role = "group"
            if call and call[1] and all(calls.get(c) == call for c in copies):
                detail = _call_text(call)
        else:
            role = "group"
            call = calls.get(key)
            kind = call[0] if call else layer_count(len(rows))
            if call and call[1]:
                detail = _call_text(call)
            inner = next((c for c in network.repeats if c[0].rpartition(".")[0] == key), None)
            if inner is not None:
                inner_call = calls.get(inner[0])
                what = inner_call[0] if inner_call else "items"
                detail = f"{detail}; {len(inner)} x {what}" if detail else f"{len(inner)} x {what}"
        box_of[key] = len(boxes)
        boxes.append(Box(len(boxes), role, key, kind, detail, sum(r.params for r in rows),
                         sum(r.macs for r in rows), len(rows), repeat, last.output_shape, parent))
    output_id = len(boxes)
    boxes.append(Box(output_id, "output", OUTPUT_BOX, "output", "", 0, 0, 0, 1, report.output_shape))

    def box(node: int) -> int:
        if node == INPUT:
            return 0
        while keys[node] is None:
            node = grouping.alias[node]
        return box_of[keys[node]]  # type: ignore[index]

    def shape(node: int) -> Shape:
        return report.input_shape if node == INPUT else report.rows[node].output_shape

    edges: dict[tuple[int, int], Edge] = {}
    for i, row in enumerate(report.rows):
        node = row.node
        inputs = node.inputs if node is not None else ((i - 1) if i else INPUT,)
        target = box(i)
        for j in inputs:
            source = box(j)
            if source != target and (source, target) not in edges:
                edges[(source, target)] = Edge(source, target, shape(j))
    for out in network.graph.outputs:
        edges[(box(out), output_id)] = Edge(box(out), output_id, shape(out))
    hidden = tuple(i for i, key in enumerate(keys) if key is None)
    frames = clusters(boxes, calls, _rolled_frames(grouping, report, calls))
    return Diagram(network.name, depth, tuple(boxes), tuple(edges.values()), frames, hidden)


def _rolled_frames(grouping: Grouping, report: Report,
                   calls: dict[str, tuple[str, tuple[tuple[str, Any], ...]]]) -> dict[str, Rolled]:
    """For each repeat drawn as its first copy: the copies and what they all hold."""
    out: dict[str, Rolled] = {}
    for first, copies in grouping.rolled.items():
        inside = [report.rows[i] for i in grouping.members[first]]
        call = calls.get(first)
        out[first] = Rolled(len(copies), copies[-1], call[0] if call else "",
                            sum(r.params for r in inside), sum(r.macs for r in inside))
    return out


def _ancestors(path: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]; "" -> []."""
    parts = path.split(".") if path else []
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


def clusters(boxes: list[Box], calls: dict[str, tuple[str, tuple[tuple[str, Any], ...]]],
             rolled: dict[str, Rolled] | None = None) -> tuple[Cluster, ...]:
    """The frames to draw: every path holding two or more boxes, nested as the paths are; a
    repeat drawn as its first copy is framed at that copy's path, marked with its count."""
    rolled = rolled or {}
    inside: dict[str, int] = {}
    for box in boxes:
        for path in _ancestors(box.parent):
            inside[path] = inside.get(path, 0) + 1
    kept = {path for path, count in inside.items() if count >= 2}

    def enclosing(path: str) -> str:
        return next((p for p in reversed(_ancestors(path)) if p in kept), "")

    direct: dict[str, list[int]] = {path: [] for path in kept}
    first: dict[str, int] = {}
    for box in boxes:
        home = enclosing(box.parent)
        if home:
            direct[home].append(box.id)
        for path in _ancestors(box.parent):
            first.setdefault(path, box.id)
    ordered = sorted(kept, key=lambda p: (first[p], p.count(".")))
    return tuple(Cluster(p, calls[p][0] if p in calls else "", enclosing(p.rpartition(".")[0]), tuple(direct[p]),
                         rolled.get(p)) for p in ordered)
