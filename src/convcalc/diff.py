"""Two analyses of a network compared: what a change cost, and where.

Layers are matched by module path. A path on one side only is added or removed; a path on
both sides whose type, output shape, parameters, buffers, MACs or receptive field differ is
changed. Paths break when a layer is renamed or moved, so a removed and an added item with
identical types, arguments and shapes are paired as "renamed" (a guess, said as one).

At a `depth`, the items are the path prefixes of that many segments (`layer3.1` at depth 2),
each summing the layers under it, preceded by a subtotal for every shorter prefix that holds
several of them (`layer3`). An item's output shape and receptive field are those of its last
layer. Counts of added, removed and changed items leave subtotals out; the totals are always
the whole network's.

Pure: imports `analysis`, `layers` and `network` only.
"""

from __future__ import annotations

from dataclasses import field as record_field
from typing import Any

from convcalc.analysis import Report, Row
from convcalc.layers import Shape
from convcalc.network import Network
from convcalc.records import record

ADDED, REMOVED, CHANGED, RENAMED, UNCHANGED = "added", "removed", "changed", "renamed", "unchanged"
STATUSES = (CHANGED, ADDED, REMOVED, RENAMED, UNCHANGED)
# What may differ between the two sides of one path, in the order messages list it.
ASPECTS = ("type", "shape", "params", "buffers", "macs", "rf")
TOTALS = ("params", "buffers", "macs", "flops", "activation_bytes", "param_bytes")


@record
class Item:
    """One side of a row: a layer, or at a depth the layers under one path prefix."""

    path: str
    type: str  # the layer type; for a prefix, the block it calls or "N layers"
    output_shape: Shape
    params: int
    buffers: int
    macs: int
    rf: tuple[int, ...] | None  # receptive field size per spatial axis (None without axes)
    jump: tuple[Any, ...] | None  # effective stride per spatial axis
    layers: int  # how many rows (layers and merges) it stands for
    subtotal: bool = False  # a prefix shorter than the depth, summing the items below it
    # Types, arguments and shapes of its layers, in order: equal signatures on the two sides
    # of an added/removed pair mark a rename.
    signature: tuple[Any, ...] = record_field(default=(), compare=False, repr=False)


@record
class Change:
    status: str  # one of STATUSES
    old: Item | None
    new: Item | None
    aspects: tuple[str, ...] = ()  # what differs (ASPECTS), for changed and renamed rows

    @property
    def item(self) -> Item:
        """The new side, or the old one for a removed item."""
        item = self.new or self.old
        assert item is not None, "a change has at least one side"
        return item

    @property
    def path(self) -> str:
        return self.item.path

    @property
    def subtotal(self) -> bool:
        return self.item.subtotal


@record
class Total:
    name: str  # one of TOTALS
    old: int
    new: int

    @property
    def change(self) -> int:
        return self.new - self.old

    @property
    def relative(self) -> float | None:
        """The change as a fraction of the old value (None when the old value is 0)."""
        return self.change / self.old if self.old else None


@record
class Side:
    label: str  # the file, or REV:file
    name: str
    input_shape: Shape
    output_shape: Shape
    layers: int


@record
class Diff:
    old: Side
    new: Side
    batch_size: int
    dtype: str
    depth: int | None
    changes: tuple[Change, ...]  # every item of both sides, in execution order (unchanged too)
    totals: tuple[Total, ...]
    # Path-matched layers whose type differs: the sign of a layer inserted into or removed
    # from a numbered list, which renumbers every later item.
    retyped: int = 0

    def count(self, status: str) -> int:
        """Rows with this status, subtotals left out."""
        return sum(1 for c in self.changes if c.status == status and not c.subtotal)

    def total(self, name: str) -> Total:
        return next(t for t in self.totals if t.name == name)

    @property
    def identical(self) -> bool:
        return all(c.status == UNCHANGED for c in self.changes) and all(t.change == 0 for t in self.totals)


def prefixes(path: str, depth: int | None) -> list[str]:
    """The item `path` counts in and, at a depth, the subtotals above it (outermost first)."""
    if depth is None:
        return [path]
    parts = path.split(".")
    return [".".join(parts[:n]) for n in range(1, min(depth, len(parts)) + 1)]


def _signature(row: Row, base: str) -> tuple[Any, ...]:
    args = row.node.args if row.node is not None else {}
    # The path below the item, so that a renamed block matches only if its insides line up.
    inner = row.path[len(base):] if row.path.startswith(base) else row.path
    return (inner, row.type, tuple(sorted((k, repr(v)) for k, v in args.items())), row.input_shapes,
            row.output_shape)


def items(report: Report, network: Network | None = None, depth: int | None = None) -> list[Item]:
    """The report's rows, or at `depth` its path prefixes with their layers summed (a subtotal
    comes before the items it sums)."""
    groups: dict[str, list[Row]] = {}
    for row in report.rows:
        for path in prefixes(row.path, depth):
            groups.setdefault(path, []).append(row)
    calls = network.block_calls if network is not None else {}
    out = []
    for path, rows in groups.items():
        last = rows[-1]
        leaf = len(rows) == 1 and last.path == path
        subtotal = depth is not None and not leaf and path.count(".") + 1 < depth
        if leaf:
            kind = last.type
        elif path in calls:
            kind = calls[path][0]
        else:
            kind = f"{len(rows)} layers" if len(rows) > 1 else "1 layer"
        field = last.field
        out.append(Item(
            path=path,
            type=kind,
            output_shape=last.output_shape,
            params=sum(r.params for r in rows),
            buffers=sum(r.buffers for r in rows),
            macs=sum(r.macs for r in rows),
            rf=tuple(f.size for f in field) if field is not None else None,
            jump=tuple(f.jump for f in field) if field is not None else None,
            layers=len(rows),
            subtotal=subtotal,
            signature=(kind, *(_signature(r, path) for r in rows)),
        ))
    return out


def aspects(old: Item, new: Item) -> tuple[str, ...]:
    differ = {
        "type": old.type != new.type,
        "shape": old.output_shape != new.output_shape,
        "params": old.params != new.params,
        "buffers": old.buffers != new.buffers,
        "macs": old.macs != new.macs,
        "rf": (old.rf, old.jump) != (new.rf, new.jump),
    }
    return tuple(a for a in ASPECTS if differ[a])


def side(label: str, report: Report) -> Side:
    return Side(label, report.name, report.input_shape, report.output_shape, len(report.rows))


def diff_reports(old: Report, new: Report, old_network: Network | None = None, new_network: Network | None = None,
                 depth: int | None = None, old_label: str = "old", new_label: str = "new") -> Diff:
    """`new` against `old`, matched by path (and renames guessed), at `depth` if given."""
    before = items(old, old_network, depth)
    after = items(new, new_network, depth)
    old_index = {item.path: i for i, item in enumerate(before)}
    new_index = {item.path: i for i, item in enumerate(after)}

    partner: dict[int, int] = {}  # old item -> new item, by path or by rename
    for i, item in enumerate(before):
        if item.path in new_index:
            partner[i] = new_index[item.path]
    added = [j for j, item in enumerate(after) if item.path not in old_index]
    renamed: set[int] = set()
    for i, item in enumerate(before):
        if i in partner:
            continue
        match = next((j for j in added if j not in renamed and after[j].signature == item.signature), None)
        if match is not None:
            partner[i] = match
            renamed.add(match)

    entries: list[tuple[tuple[int, int, int], Change]] = []
    matched_new = {j: i for i, j in partner.items()}
    for j, item in enumerate(after):
        if j not in matched_new:
            entries.append(((j, 0, 0), Change(ADDED, None, item)))
            continue
        previous = before[matched_new[j]]
        differ = aspects(previous, item)
        status = RENAMED if j in renamed else CHANGED if differ else UNCHANGED
        entries.append(((j, 0, 0), Change(status, previous, item, differ)))
    # A removed item goes after the new position of the last old item before it that has one.
    anchor = -1
    for i, item in enumerate(before):
        if i in partner:
            anchor = partner[i]
        else:
            entries.append(((anchor, 1, i), Change(REMOVED, item, None)))
    entries.sort(key=lambda e: e[0])
    changes = tuple(change for _, change in entries)

    retyped = 0
    if depth is None:
        retyped = sum(1 for c in changes if c.status == CHANGED and "type" in c.aspects)
    else:  # count at the layers, not the blocks
        leaf_old = {r.path: r.type for r in old.rows}
        retyped = sum(1 for r in new.rows if r.path in leaf_old and leaf_old[r.path] != r.type)

    ot, nt = old.totals, new.totals
    totals = tuple(Total(name, getattr(ot, name), getattr(nt, name)) for name in TOTALS)
    return Diff(side(old_label, old), side(new_label, new), new.batch_size, new.dtype, depth, changes, totals,
                retyped)
