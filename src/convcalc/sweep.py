"""Sweeps: one network at many input sizes, or at many values of one of its `vars`.

`sweep_sizes` parses nothing: the network is parsed and lowered to its graph once, and each
size only re-runs shape inference (`analyze(..., input_shape=...)`, receptive fields left
out) and the training-memory walk. `sweep_var` cannot do that, because vars are resolved
while parsing: it composes the YAML once and re-runs the parser per value, with the var
replaced (`Parser(..., overrides=...)`). A point whose shapes do not work is kept, marked
invalid, with the reason (the layer and what is wrong); it is not an error.

Pure: imports `analysis`, `errors`, `graph`, `layers`, `network`, `spec` and `training` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from convcalc.analysis import Report, analyze
from convcalc.errors import ConvcalcError, SpecError
from convcalc.graph import INPUT
from convcalc.layers import Shape
from convcalc.network import Network
from convcalc.records import record
from convcalc.spec.parser import Limits, Parser, declared_vars
from convcalc.spec.source import Source, compose
from convcalc.training import training_memory

MAX_POINTS = 10_000  # a range longer than this is a typo, not a sweep
RANGE_RE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$")


@record
class Point:
    """The network at one value of the swept quantity; the counts are None when invalid."""

    value: int
    input_shape: Shape
    reason: str | None  # why the shapes do not work (None: valid)
    output_shapes: tuple[Shape, ...] = ()
    params: int | None = None
    macs: int | None = None
    activation_bytes: int | None = None
    training_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@record
class Sweep:
    name: str
    swept: str  # "size" (every spatial axis of the input) or the name of a var
    batch_size: int
    dtype: str
    optimizer: str
    points: tuple[Point, ...]


def parse_values(text: str, what: str) -> tuple[int, ...]:
    """`128:512:32` (start to stop inclusive, by step; `128:512` steps by 1), `224`, or `128,160,224`."""
    form = f"{what} takes START:STOP:STEP like 128:512:32 (inclusive), or values like 128,224"
    match = RANGE_RE.match(text)
    if match:
        start, stop = int(match[1]), int(match[2])
        step = int(match[3]) if match[3] is not None else 1
        if step < 1:
            raise SpecError(f"{what}: the step must be a positive int (got {step})")
        if stop < start:
            raise SpecError(f"{what}: the stop {stop} is below the start {start}")
        count = (stop - start) // step + 1
        if count > MAX_POINTS:
            raise SpecError(f"{what}: {count:,} values is more than {MAX_POINTS:,}; use a larger step")
        return tuple(range(start, stop + 1, step))
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise SpecError(f"{form} (got {text!r})")
    if len(parts) > MAX_POINTS:
        raise SpecError(f"{what}: {len(parts):,} values is more than {MAX_POINTS:,}")
    return tuple(int(p) for p in parts)


def reason_of(err: ConvcalcError) -> str:
    """What is wrong, at which layer: the headline without the file position."""
    if err.path:
        kind = f" ({err.layer_type})" if err.layer_type else ""
        return f"{err.path}{kind}: {err.message}"
    return err.message


def output_shapes(network: Network, report: Report) -> tuple[Shape, ...]:
    return tuple(report.input_shape if out == INPUT else report.rows[out].output_shape
                 for out in network.graph.outputs)


def measure(network: Network, value: int, batch_size: int, dtype: str, optimizer: str,
            input_shape: Shape | None = None) -> Point:
    """One point: shapes, MACs and memory of `network` (on `input_shape` when given)."""
    shape = network.input_shape if input_shape is None else input_shape
    try:
        report = analyze(network, batch_size, dtype, input_shape=shape, fields=False)
        training = training_memory(network, report, optimizer)
    except ConvcalcError as err:
        if err.exit_status != 2:  # pragma: no cover - analysis raises bad-input errors only
            raise
        return Point(value, tuple(shape), reason_of(err))
    return Point(value, tuple(shape), None, output_shapes(network, report), report.totals.params,
                 report.totals.macs, report.totals.activation_bytes, training.total_bytes)


def sized(input_shape: Shape, size: int) -> Shape:
    """The input with every spatial axis set to `size` (channels kept)."""
    return (input_shape[0], *(size for _ in input_shape[1:]))


def sweep_sizes(network: Network, sizes: Iterable[int], batch_size: int = 1, dtype: str = "float32",
                optimizer: str = "none") -> Sweep:
    """`network` at each input size (every spatial axis), reusing its one parsed graph."""
    points = []
    for size in sizes:
        if size < 1:
            points.append(Point(size, sized(network.input_shape, size), f"an input size must be positive (got {size})"))
            continue
        points.append(measure(network, size, batch_size, dtype, optimizer, sized(network.input_shape, size)))
    return Sweep(network.name, "size", batch_size, dtype, optimizer, tuple(points))


def sweep_var(source: Source, name: str, values: Iterable[int], batch_size: int = 1, dtype: str = "float32",
              optimizer: str = "none", limits: Limits | None = None) -> Sweep:
    """The spec in `source` with its var `name` set to each value, parsed per value from the
    YAML composed once. A spec that is malformed whatever the value is bad input (raised)."""
    root = compose(source)
    names = declared_vars(root, source)
    if name not in names:
        from convcalc.errors import suggest

        have = f"its vars: {', '.join(names)}" if names else "it has no 'vars'"
        raise SpecError(f"{source.name}: the spec has no var '{name}' ({have}){suggest(name, names)}")
    points = []
    network_name = None
    for value in values:
        try:
            network = Parser(source, limits or Limits(), overrides={name: value}).network(root)
        except ConvcalcError as err:
            if err.exit_status != 2:  # pragma: no cover - parsing raises bad-input errors only
                raise
            points.append(Point(value, (), reason_of(err)))
            continue
        network_name = network.name
        points.append(measure(network, value, batch_size, dtype, optimizer))
    return Sweep(network_name or "network", name, batch_size, dtype, optimizer, tuple(points))
