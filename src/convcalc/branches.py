"""Why the branches of a merge disagree: shapes that do not fit, fields that do not line up.

A merge (`add`, `concat`) reads several branches that fork from one value. When their shapes
do not fit, `mismatch` finds the layer where the branches part (the first layer of a branch
whose output differs from the fork's in the dims that disagree), points the error at it,
shows both shapes and proposes a fix: a shortcut conv with the stride and padding that
match, or the padding that keeps the size. When their fields do not line up, `alignment`
words one warning per pair of branches: different jumps, or centres that are shifted on
average over a period (a U-Net skip, whose up-path centres alternate half a pixel either
side of the identity's, is aligned), naming the layers that shift them.

Pure: imports `errors`, `geometry`, `graph`, `layers` and `receptive` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from convcalc.errors import ShapeError
from convcalc.geometry import conv_output, effective_kernel
from convcalc.graph import Graph
from convcalc.layers import InputMismatch, Note, Shape
from convcalc.layers.base import SPATIAL_NAMES, shape_str
from convcalc.layers.conv import along
from convcalc.receptive import AxisField, AxisMap, Window

if TYPE_CHECKING:  # imported where an offset is not whole (most merges line up)
    from fractions import Fraction

Maps = tuple[AxisMap, ...] | None
Fields = tuple[AxisField, ...] | None


# --- shapes that do not fit ------------------------------------------------------------------


def mismatch(graph: Graph, merge: int, err: InputMismatch, shapes: Mapping[int, Shape],
             maps: Mapping[int, Maps]) -> ShapeError:
    """The error for merge `merge` whose input `err.index` does not fit input 0.

    Located at the layer where the branches part, when there is one; else at the merge.
    """
    node = graph.nodes[merge]
    k = err.index
    fork, lines = graph.branches(merge)
    start = shapes[fork]
    concat = node.type.name == "concat"
    dims = _differing(err.shapes[0], err.shapes[k], concat, broadcast=not concat)
    part: tuple[int, int] | None = None  # (node id, branch)
    for branch in (0, k):
        for j in lines[branch]:
            if dims is None or _parts(shapes[j], start, dims):
                if part is None or j < part[0]:
                    part = (j, branch)
                break
    if part is None or dims is None:
        named = err.named(node.labels)
        named.where, named.path, named.layer_type = node.where, node.path, node.type.name
        return named
    j, branch = part
    other = k if branch == 0 else 0
    layer = graph.nodes[j]
    before, after = shapes[layer.inputs[0]], shapes[j]
    final, other_final = err.shapes[branch], err.shapes[other]
    ends = "" if final == after else f"; its branch ends as {shape_str(final)}"
    message = (f"{err.rule}, and the branches part here: this layer gives {shape_str(after)} from"
               f" {shape_str(before)}{ends}, while branch {node.labels[other]} gives"
               f" {shape_str(other_final)} at {node.path}")
    fix = _fix(graph, merge, j, lines[other], node.labels[other], start, final, dims, maps, concat)
    return ShapeError(f"{message}; {fix}", where=layer.where, path=layer.path, layer_type=layer.type.name)


def _differing(a: Shape, b: Shape, concat: bool, broadcast: bool = False) -> tuple[int, ...] | None:
    """The dims in which `a` and `b` disagree for the merge (None when the ranks differ); with
    `broadcast` (add, mul), a size 1 on either side is no disagreement."""
    if len(a) != len(b):
        return None
    return tuple(d for d in range(1 if concat else 0, len(a))
                 if a[d] != b[d] and not (broadcast and 1 in (a[d], b[d])))


def _parts(shape: Shape, start: Shape, dims: tuple[int, ...]) -> bool:
    return len(shape) != len(start) or any(shape[d] != start[d] for d in dims)


def _fix(graph: Graph, merge: int, j: int, other_line: tuple[int, ...], other_label: str, start: Shape,
         final: Shape, dims: tuple[int, ...], maps: Mapping[int, Maps], concat: bool) -> str:
    """What would make the branches agree, in spec syntax."""
    layer = graph.nodes[j]
    spatial = [d for d in dims if d >= 1]
    windows = maps.get(j)
    own = [w for w in windows or () if isinstance(w, Window)]
    if spatial and windows is not None and len(own) == len(windows) and "padding" in layer.args \
            and all(own[d - 1].stride == 1 for d in spatial):
        # A stride-1 window that shrinks: the padding is short.
        pads = [effective_kernel(w.kernel, w.dilation) - 1 for w in own]
        if all(p % 2 == 0 for p in pads):
            written = _per_axis([p // 2 for p in pads])
        else:
            written = "[" + ", ".join(f"[{p // 2}, {p - p // 2}]" for p in pads) + "]"
        kernel = _per_axis([w.kernel for w in own])
        return f"keep the size here with padding: {written} (for kernel_size {kernel})"
    rank = len(start) - 1
    stride = _stride(windows, spatial)
    if not other_line and rank in SPATIAL_NAMES:
        # The other branch is the identity: give it a layer that maps the fork's shape to this one's.
        found = _window_for(start[1:], final[1:], stride, pool=concat)
        if found is not None:
            if concat:
                return f"downsample branch {other_label} the same way, e.g. with {found.format(f'maxpool{rank}d')}"
            conv = found.format(f"conv{rank}d", out_channels=final[0])
            where = "shortcut: [" + conv + "]" if len(graph.nodes[merge].inputs) == 2 else conv
            return f"add a shortcut conv, e.g. {where}"
    if not other_line and rank == 0 and not concat:
        return f"add a shortcut layer, e.g. shortcut: [linear: {{out_features: {final[0]}}}]"
    if concat and rank in SPATIAL_NAMES:
        names = SPATIAL_NAMES[rank]
        wanted = f"{'x'.join(str(n) for n in final[1:])} ({'x'.join(names)})"
    else:
        wanted = shape_str(final)
    how = "the same strides and padding as this branch"
    if stride and other_line:
        how += f", e.g. stride {stride} in {graph.nodes[other_line[0]].path}"
    return f"make branch {other_label} give {wanted} too ({how}), or change this layer"


def _per_axis(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "[" + ", ".join(map(str, values)) + "]"


def _stride(windows: Maps, spatial: Sequence[int]) -> int | None:
    """The layer's stride along the disagreeing axes, when it is one number above 1."""
    if windows is None or not spatial:
        return None
    strides = {w.stride for d, w in enumerate(windows, start=1) if d in spatial and isinstance(w, Window)}
    return strides.pop() if len(strides) == 1 and max(strides) > 1 else None


class _Layer:
    """A kernel, stride and padding written as spec arguments."""

    def __init__(self, kernel: int, stride: int, pad: int) -> None:
        self.kernel, self.stride, self.pad = kernel, stride, pad

    def format(self, layer_type: str, out_channels: int | None = None) -> str:
        args = [] if out_channels is None else [f"out_channels: {out_channels}"]
        args.append(f"kernel_size: {self.kernel}")
        if self.stride != 1:
            args.append(f"stride: {self.stride}")
        if self.pad:
            args.append(f"padding: {self.pad}")
        return f"{layer_type}: {{{', '.join(args)}}}"


def _window_for(sizes: Sequence[int], targets: Sequence[int], stride: int | None, pool: bool) -> _Layer | None:
    """One kernel, stride and padding that turns every size into its target (a conv or pool)."""
    if any(t > n for n, t in zip(sizes, targets)):
        return None  # an upsampling branch: no window shrinks into it
    largest = max(sizes, default=1)
    strides = [*([stride] if stride else []), *range(1, min(largest, 64) + 1)]
    for s in strides:
        kernels = (s, 3) if pool else (1, 3)
        for k in dict.fromkeys(kernels):
            for p in range(k // 2 + 1):
                if all(conv_output(n, k, s, 1, (p, p)) == t for n, t in zip(sizes, targets)):
                    return _Layer(k, s, p)
    return None


# --- fields that do not line up -------------------------------------------------------------


def alignment(graph: Graph, merge: int, fields: Mapping[int, Fields], out_shape: Shape) -> Note | None:
    """One `misaligned-branches` note for the merge, or None when its branches line up."""
    node = graph.nodes[merge]
    first = fields[node.inputs[0]]
    if first is None:
        return None
    names = SPATIAL_NAMES.get(len(first), tuple(f"axis {i + 1}" for i in range(len(first))))
    parts = []
    for k in range(1, len(node.inputs)):
        other = fields[node.inputs[k]]
        if other is None or len(other) != len(first):
            continue
        a, b = node.labels[0], node.labels[k]
        jumps: dict[tuple[str, str], list[str]] = {}
        shifts: dict[Fraction | int, list[str]] = {}
        shifted: list[int] = []
        for axis, (fa, fb, n) in enumerate(zip(first, other, out_shape[1:])):
            if fa.jump != fb.jump:
                jumps.setdefault((number_text(fa.jump), number_text(fb.jump)), []).append(names[axis])
                continue
            offset = mean_offset(fa, fb, n)
            if offset:
                shifts.setdefault(offset, []).append(names[axis])
                shifted.append(axis)
        for (ja, jb), axes in jumps.items():
            parts.append(f"branches {a} and {b} have different jumps along {along(axes)} ({ja} vs {jb}):"
                         " their outputs do not line up; give both branches the same total stride")
        if shifts:
            cause = _movers(graph, merge, (0, k), fields, shifted)
            parts.append(f"branch {b}'s field centres lie {_shift_text(shifts)} those of branch {a}, on"
                         f" average over a period{cause}, so the merged features are shifted; centre"
                         " every window in both branches (odd kernels with padding (k_eff - 1) / 2) or"
                         " shift both alike")
    return Note("misaligned-branches", "; ".join(parts)) if parts else None


def _shift_text(shifts: dict[Fraction | int, list[str]]) -> str:
    """`0.5 input pixels after ... along H and W`, or per axis group when they differ."""
    def one(offset: Fraction | int) -> str:
        size = abs(offset)
        return f"{number_text(size)} input pixel{'' if size == 1 else 's'} {'after' if offset > 0 else 'before'}"
    if len(shifts) == 1:
        offset, axes = next(iter(shifts.items()))
        return f"{one(offset)} (along {along(axes)})"
    return " and ".join(f"{one(offset)} (along {along(axes)})" for offset, axes in shifts.items())


def mean_centre(field: AxisField) -> Fraction | None:
    """The centres of the field less their place on the output grid (o * jump), averaged over
    the phases the output has (None when none is reached)."""
    from fractions import Fraction

    jump = Fraction(field.jump)
    centres = [Fraction(span[0] + span[1], 2) - r * jump
               for r in range(field.phases) if (span := field.at(r)) is not None]
    return sum(centres, Fraction(0)) / len(centres) if centres else None


def mean_offset(a: AxisField, b: AxisField, n: int) -> Fraction | int:
    """How far `b`'s field centres lie after `a`'s, averaged over a period of outputs (both with
    the same jump, on an axis of `n` outputs); positions either leaves unreached do not count."""
    if len(a.lo) == 1 and len(b.lo) == 1 and n > 0:  # one phase each: output 0 says it all
        sa, sb = a.at(0), b.at(0)
        total = sb[0] + sb[1] - sa[0] - sa[1] if sa is not None and sb is not None else 0
        if not total:
            return 0
        from fractions import Fraction

        return Fraction(total, 2)
    total = count = 0  # twice the offsets, summed: integers until the one division
    for o in range(min(math.lcm(a.period, b.period), n)):
        sa, sb = a.at(o), b.at(o)
        if sa is not None and sb is not None:
            total += sb[0] + sb[1] - sa[0] - sa[1]
            count += 1
    if not total:
        return 0
    from fractions import Fraction

    return Fraction(total, 2 * count)


def _movers(graph: Graph, merge: int, branches: tuple[int, ...], fields: Mapping[int, Fields],
            axes: Sequence[int]) -> str:
    """`(layer X moves its branch by +0.5, ...)`: the layers whose windows are off centre."""
    _, lines = graph.branches(merge)
    found = []
    for branch in branches:
        for j in lines[branch]:
            before, after = fields.get(graph.nodes[j].inputs[0]), fields.get(j)
            if before is None or after is None or len(before) != len(after):
                continue
            moves = set()
            for axis in axes:
                old, new = mean_centre(before[axis]), mean_centre(after[axis])
                if old is not None and new is not None and new != old:
                    moves.add(new - old)
            if len(moves) == 1:
                move = moves.pop()
                found.append(f"{graph.nodes[j].path} ({'+' if move > 0 else ''}{number_text(move)})")
            elif moves:
                found.append(graph.nodes[j].path)
    if not found:
        return ""
    shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    return f" (off-centre windows: {shown})"


def number_text(value: object) -> str:
    """An int, or a Fraction as an int when whole, else as a decimal; anything else as str()."""
    denominator = getattr(value, "denominator", None)  # ints and Fractions have one
    if denominator is None or isinstance(value, bool):
        return str(value)
    return str(value) if denominator == 1 else f"{float(value):g}"  # type: ignore[arg-type]
