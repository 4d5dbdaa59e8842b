"""Design lints that need more than one layer: gridding, empty fields, a short-sighted head.

Single-layer warnings (unread pixels, uneven overlap, skipped pixels, asymmetric padding)
are notes of the layer types themselves; this module walks the network beside its report,
adds the warnings that need a stack of layers, and knows every warning code by name so the
CLI can silence them (`--ignore CODE`, the spec's `ignore:`) or fail on them (`--strict`).

Pure: imports `analysis`, `errors`, `graph`, `layers`, `network` and `receptive` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import cast

from convcalc.analysis import DesignWarning, Field, Report, Row, input_field, looks_channels_last
from convcalc.errors import suggest
from convcalc.graph import INPUT, Graph
from convcalc.layers.base import SPATIAL_NAMES
from convcalc.layers.conv import along
from convcalc.network import Network
from convcalc.receptive import Window
from convcalc.records import record

# Every warning code, with what it means; `--ignore` accepts exactly these.
CODES = {
    "unread-pixels": "a strided window never reaches the last input rows/cols",
    "skipped-pixels": "the stride is larger than the kernel span, so input positions are skipped",
    "uneven-overlap": "a transposed conv whose kernel span is not a multiple of its stride"
                      " (checkerboard artefacts)",
    "asymmetric-padding": "padding='same' with an even effective kernel pads one side more",
    "gridding": "stacked dilated convs whose rates share a factor: some inputs never reach an output",
    "empty-field": "output positions that no input reaches (they hold only the bias)",
    "small-head-field": "the features a global-pooling head averages each see less than half the input",
    "misaligned-branches": "merged branches whose fields have different jumps or centres",
    "field-untracked": "the receptive field became too irregular to track, or a permuted spatial axis"
                       " is mixed",
    "channels-last-input": "the input looks like an image written channels-last ([H, W, C])",
    "unflattened-linear": "a linear layer on an input with spatial axes acts on the last axis only",
    "dead-layer": "a layer whose output nothing reads and that is not one of the network's outputs",
}


_Windows = tuple[Window, ...]


@record
class _Step:
    """One layer as executed: its row and the field entering it."""

    row: Row
    field_in: Field


@record
class _Run:
    """A run of stride-1 window layers ending at one layer, on one path (for gridding).

    `previous` links back along the path, so runs that share a prefix (a tensor read by
    several layers) share it. Per axis: how many windows with a kernel larger than 1 the
    run holds, and the gcd of their dilations; only a run where some axis has two or more
    such windows with a common factor (`suspicious`) is walked back and confirmed. Layers
    whose windows are all of size 1 (element-wise ones) continue a run without joining it:
    gridding is about the others.
    """

    step: _Step
    windows: tuple[Window, ...]
    previous: _Run | None
    counts: tuple[int, ...]
    gcds: tuple[int, ...]
    suspicious: bool
    # Every axis has a window of dilation 1 (gcd 1): no layer added can make the run
    # suspicious, so it is passed on as it is (a plain conv stack is one short run).
    settled: bool

    def extend(self, step: _Step, windows: tuple[Window, ...]) -> _Run:
        counts = tuple(c + (w.kernel > 1) for c, w in zip(self.counts, windows))
        gcds = tuple(math.gcd(g, w.dilation) if w.kernel > 1 else g for g, w in zip(self.gcds, windows))
        return _Run(step, windows, self, counts, gcds, _suspicious(counts, gcds), _settled(gcds))

    def steps(self) -> list[tuple[_Step, tuple[Window, ...]]]:
        out = []
        run: _Run | None = self
        while run is not None:
            out.append((run.step, run.windows))
            run = run.previous
        return out[::-1]


def _start(step: _Step, windows: tuple[Window, ...]) -> _Run:
    counts = tuple(int(w.kernel > 1) for w in windows)
    gcds = tuple(w.dilation if w.kernel > 1 else 0 for w in windows)
    return _Run(step, windows, None, counts, gcds, _suspicious(counts, gcds), _settled(gcds))


def _suspicious(counts: tuple[int, ...], gcds: tuple[int, ...]) -> bool:
    return any(c >= 2 and g > 1 for c, g in zip(counts, gcds))


def _settled(gcds: tuple[int, ...]) -> bool:
    return all(g == 1 for g in gcds)


class _Linter:
    def __init__(self, report: Report) -> None:
        self.input_shape = report.input_shape
        self.found: list[tuple[str, str, str, Row]] = []  # (code, message, path, row)
        self.seen: set[tuple[str, str, str]] = set()
        self.head_seen = False

    def warn(self, code: str, message: str, row: Row) -> None:
        """Note a warning, once (runs that share a prefix can end at the same layer's taps)."""
        if (code, message, row.path) not in self.seen:
            self.seen.add((code, message, row.path))
            self.found.append((code, message, row.path, row))

    def run(self, graph: Graph, report: Report) -> None:
        """Each layer in graph order, then gridding on every path.

        Gridding looks at runs of stride-1 window layers, each reading the one before it. A
        merge ends a run (another input may fill the gaps); a fan-out does not: every layer
        reading the same tensor continues the run that made it, so a dilated stack whose last
        rate sits in two branches is a run in each. A run is checked where it ends on some
        path: at a layer that some reader does not continue, or that nothing reads.
        The head is the first flatten, linear or global pool on every path to the output
        (a global pool inside a branch, as in squeeze-excite, is not the head).
        """
        rows = report.rows
        start = input_field(report.input_shape)
        first_readers = graph.consumers[INPUT]
        shape = report.input_shape
        if first_readers and looks_channels_last(shape):
            spatial = "x".join(map(str, shape[1:]))
            self.warn("channels-last-input",
                      f"the input {list(shape)} looks channels-last: convcalc reads it as {shape[0]} channels"
                      f" of {spatial}; channels come first, without the batch: input:"
                      f" {[shape[-1], *shape[:-1]]}", rows[first_readers[0]])
        runs: dict[int, _Run] = {}  # the stride-1 run ending at each layer that has one
        on_every_path = graph.on_every_path
        # id(maps) -> (stride-1 windows, some with a kernel larger than 1): identical layers share
        # their maps, and the rows keep them alive, so ids stay theirs.
        kinds: dict[int, tuple[bool, bool]] = {}
        for i, node in enumerate(graph.nodes):
            if node.type.arity != 1:
                continue
            source = node.inputs[0]
            row = rows[i]
            before = start if source == INPUT else rows[source].field
            self.layer(row, before, on_every_path[i])
            maps = row.maps
            if maps is None or before is None:
                continue
            kind = kinds.get(id(maps))
            if kind is None:
                kind = kinds[id(maps)] = (all(isinstance(m, Window) and m.stride == 1 for m in maps),
                                          any(isinstance(m, Window) and m.kernel > 1 for m in maps))
            if not kind[0]:
                continue
            run = runs.get(source)
            if run is None:
                runs[i] = _start(_Step(row, before), cast(_Windows, maps))
            elif kind[1] and not run.settled:
                runs[i] = run.extend(_Step(row, before), cast(_Windows, maps))
            else:  # element-wise layers (no window larger than 1) pass the run on as it is
                runs[i] = run
        for i, run in runs.items():
            if not run.suspicious:
                continue
            readers = [j for j in graph.consumers[i] if i in graph.nodes[j].value_inputs]  # not size_of
            if not readers or any(j not in runs for j in readers):
                self.gridding(run.steps())

    def layer(self, row: Row, before: Field, on_every_path: bool) -> None:
        """The warnings about one layer (`before`: the field entering it)."""
        after = row.field
        if (after is not None and before is not None and after is not before and len(after) == len(before)
                and any([None in f.lo for f in after])):  # some phase is reached by no input
            self.empty_field(row, before)
        if not self.head_seen and on_every_path and before is not None and row.field is None:
            self.head_seen = True  # flatten or linear: position-specific weights see everything
        elif not self.head_seen and on_every_path and before is not None and self.global_pool(row):
            self.head_seen = True
            self.small_head(row, before)

    def empty_field(self, row: Row, field_in: Field) -> None:
        """Warn where positions without any input first appear (not at every later layer)."""
        assert row.field is not None and field_in is not None
        names = SPATIAL_NAMES.get(len(row.field), ())
        facts = []
        for axis, before, after in zip(names, field_in, row.field):
            if after.unreached and not before.unreached:
                # an axis shorter than the period has only its first phases
                every = "every " if after.phases == after.period else "the "
                facts.append((axis, after.unreached, f"{every}{after.phases}"))
        if not facts:
            return
        groups: dict[tuple[int, str], list[str]] = {}
        for axis, empty, out_of in facts:
            groups.setdefault((empty, out_of), []).append(axis)
        text = "; ".join(f"{e} of {p} output positions along {along(axes)}"
                         for (e, p), axes in groups.items())
        self.warn("empty-field", f"{text} have an empty receptive field (no input reaches them, they"
                  " hold only the bias); use a kernel span of at least the stride, with dilation 1",
                  row)

    @staticmethod
    def global_pool(row: Row) -> bool:
        """A layer that pools every spatial axis down to 1: the head of a pooled classifier."""
        out = row.output_shape
        if len(out) < 2 or out[1] != 1:  # most layers, at once
            return False
        spatial_in, spatial_out = row.input_shapes[0][1:], out[1:]
        return all(n == 1 for n in spatial_out) and any(n > 1 for n in spatial_in)

    def small_head(self, row: Row, field_in: Field) -> None:
        assert field_in is not None
        spatial = self.input_shape[1:]
        if len(field_in) != len(spatial):
            return
        sizes = [f.size for f in field_in]
        # Below half the input, no feature sees two points half the input apart: the head
        # only averages local evidence. A field a little short of the input is normal.
        short = [i for i, (size, n) in enumerate(zip(sizes, spatial)) if 2 * size < n]
        if not short:
            return
        names = SPATIAL_NAMES.get(len(spatial), ())
        shares: dict[int, list[str]] = {}
        for i in short:
            shares.setdefault(math.floor(100 * sizes[i] / spatial[i]), []).append(names[i])
        share = "; ".join(f"{p}% of it along {along(axes)}" for p, axes in shares.items())
        seen, whole = "x".join(map(str, sizes)), "x".join(map(str, spatial))
        self.warn("small-head-field",
                  f"the features this head pools each see {seen} input pixels of the {whole} input, less"
                  f" than half ({share}), so none combines distant parts of it; add downsampling or"
                  " dilation before the head, or use a smaller input", row)

    def gridding(self, run: list[tuple[_Step, tuple[Window, ...]]]) -> None:
        if not run:
            return
        rank = len(run[0][1])
        names = SPATIAL_NAMES.get(rank, ())
        facts: dict[tuple[tuple[int, ...], int, int, int], list[str]] = {}
        for axis_index, axis in enumerate(names):
            windows = [(s, m[axis_index]) for s, m in run if m[axis_index].kernel > 1]
            rates = tuple(m.dilation for _, m in windows)
            if len(windows) < 2 or math.gcd(*rates) == 1:
                continue
            reached = reached_offsets([m for _, m in windows])
            span = max(reached) - min(reached) + 1
            if len(reached) < span:  # confirmed by the field's mask
                facts.setdefault((rates, math.gcd(*rates), len(reached), span), []).append(axis)
        if not facts:
            return
        layers = [s for s, m in run if any(w.kernel > 1 for w in m)]
        paths = ", ".join(s.row.path for s in layers)
        text = "; ".join(
            f"rates {', '.join(map(str, rates))} along {along(axes)} share the factor {g}, so only"
            f" {n} of the {span} input positions in each output's field reach it"
            for (rates, g, n, span), axes in facts.items())
        self.warn("gridding", f"stacked dilated convolutions ({paths}): {text} (gridding); use rates"
                  " without a common factor, e.g. 1, 2, 5, or a dilation-1 conv in the stack",
                  layers[-1].row)


def reached_offsets(windows: Iterable[Window]) -> set[int]:
    """Input indices of a window stack that reach output 0 (unclipped taps, walked back)."""
    reached = {0}
    for window in reversed(list(windows)):
        reached = {t for o in reached for t in window.taps(o)}
    return reached


def lint(network: Network, report: Report) -> Report:
    """`report` with the multi-layer design warnings added, all in execution order."""
    linter = _Linter(report)
    linter.run(network.graph, report)
    if not linter.found and not report.warnings:
        return report
    order = {row.path: i for i, row in enumerate(report.rows)}
    added = [DesignWarning(path, row.type, code, message, row.where)
             for code, message, path, row in linter.found]
    # In execution order; at the first layer, a channels-last input comes first (it explains the rest).
    merged = sorted([*report.warnings, *added],
                    key=lambda w: (order.get(w.path, len(order)), w.code != "channels-last-input"))
    return replace(report, warnings=tuple(merged))


def silence(report: Report, codes: Iterable[str]) -> Report:
    """`report` without the warnings whose code is in `codes`."""
    drop = set(codes)
    if not drop:
        return report
    return replace(report, warnings=tuple(w for w in report.warnings if w.code not in drop))


def check_codes(codes: Iterable[str]) -> str | None:
    """A message naming the first unknown warning code (with a suggestion), or None."""
    for code in codes:
        if code not in CODES:
            return f"unknown warning code '{code}'{suggest(code, CODES)} (known: {', '.join(CODES)})"
    return None
