"""Runs a `Network` forward in NumPy and checks every layer's shape against the `Report`.

`run` executes the network's graph node by node (the order of `Report.rows`) and hands
each `Step` (inputs, output, parameters, saved arrays) to a callback. It frees each value
after its last reader (`Graph.last_use`, the same liveness `estimate_memory` counts), so
memory stays at the live activations plus one layer's parameters and temporaries.
`verify` uses it to compare shapes; `trace` keeps every step (for a backward pass).

Weights are random and seeded: layer parameters come from `seed` and the layer's path
(`param_rng`), so a layer's weights do not depend on the rest of the network.
`estimate_memory` bounds the peak before anything is allocated; `verify` refuses (a
`LimitError`, exit 2) when it exceeds `max_memory`.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from convcalc.analysis import Report, Row
from convcalc.errors import ConvcalcError, LimitError
from convcalc.graph import INPUT, Node
from convcalc.layers import Shape
from convcalc.network import Network
from convcalc.numeric.base import Output
from convcalc.numeric.kernels import KERNELS, forward_node, layer_params
from convcalc.numeric.result import LayerCheck, Verification
from convcalc.records import record

VERIFY_DTYPES = {"float32": np.float32, "float64": np.float64}
DEFAULT_MAX_MEMORY = 4 << 30


def verify_dtype(dtype: str) -> str:
    """The dtype the forward pass runs in: float64 when asked, else float32."""
    return "float64" if dtype == "float64" else "float32"


def param_rng(seed: int, path: str) -> np.random.Generator:
    return np.random.default_rng([seed, 1, zlib.crc32(path.encode())])


def input_array(shape: Shape, batch_size: int, seed: int, dtype: str = "float32") -> np.ndarray:
    """The random input `(batch, *shape)`, standard normal, from `seed` (drawn in float32)."""
    rng = np.random.default_rng([seed, 0])
    return rng.standard_normal((batch_size, *shape), dtype=np.float32).astype(VERIFY_DTYPES[dtype], copy=False)


@record
class Step:
    """One executed node of the graph, with its arrays."""

    node: Node
    inputs: tuple[np.ndarray, ...]
    output: Output
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.node.path

    @property
    def type(self) -> str:
        return self.node.type.name


OnStep = Callable[[Step], None]
ParamTable = Mapping[str, Mapping[str, np.ndarray]]


@dataclass
class LiveBytes:
    """What `run` holds: the bytes of the values (the input, each node's output) it keeps now,
    and the most it held at once. The inference peak (`Totals.peak_activation_bytes`) is
    checked against it."""

    now: int = 0
    peak: int = 0

    def add(self, array: np.ndarray) -> None:
        self.now += array.nbytes
        self.peak = max(self.peak, self.now)


def run(network: Network, x: np.ndarray, on_step: OnStep, *, seed: int = 0, save: bool = False,
        params: ParamTable | None = None, live: LiveBytes | None = None) -> np.ndarray:
    """The network's (first) output for the batched input `x`; see `run_outputs`."""
    return run_outputs(network, x, on_step, seed=seed, save=save, params=params, live=live)[0]


def run_outputs(network: Network, x: np.ndarray, on_step: OnStep, *, seed: int = 0, save: bool = False,
                params: ParamTable | None = None, live: LiveBytes | None = None) -> tuple[np.ndarray, ...]:
    """Every output of the network (in `outputs:` order) for the batched input `x`.

    Calls `on_step` after each step. Parameters are drawn from `seed` per layer path,
    except for paths in `params` (path -> {name: array}, PyTorch names and layouts), which
    are used as given. Outputs live to the end (`Graph.last_use`); other values are freed
    after their last reader. `live` (when given) counts the bytes of the values held, as
    they are made and freed.
    """
    dtype = VERIFY_DTYPES["float64" if x.dtype == np.float64 else "float32"]
    graph = network.graph
    last_use = graph.last_use
    live = live if live is not None else LiveBytes()
    values: dict[int, np.ndarray] = {INPUT: x}
    live.add(x)
    for i, node in enumerate(graph.nodes):
        xs = tuple(values[j] for j in node.inputs)
        if params is not None and node.path in params:
            weights = dict(params[node.path])
        elif node.type.arity == 1:
            weights = layer_params(node.type, node.args, xs[0].shape[1:], param_rng(seed, node.path), dtype)
        else:
            weights = {}
        out = forward_node(node.type, node.args, xs, weights, save=save)
        values[i] = out.y
        live.add(out.y)
        on_step(Step(node, xs, out, weights))
        del xs, out, weights
        for j in {*node.inputs, i}:
            if last_use[j] == i:
                live.now -= values.pop(j).nbytes
    return tuple(values[o] for o in graph.outputs)


def trace(network: Network, x: np.ndarray, *, seed: int = 0, save: bool = True,
          params: ParamTable | None = None) -> list[Step]:
    """Every step of a forward pass, kept (inputs, outputs, parameters, saved arrays)."""
    steps: list[Step] = []
    run(network, x, steps.append, seed=seed, save=save, params=params)
    return steps


# --- memory -------------------------------------------------------------------------------


def estimate_memory(network: Network, report: Report, dtype: str = "float32") -> tuple[int, str]:
    """Estimated peak bytes of `verify`, and the path of the step where it peaks.

    Per step: the values alive then (made earlier and read at this step or later, as
    `run` frees them: `Graph.last_use`), the step's output, one layer's parameters and its
    temporaries (`Kernel.workspace`). Uses the report's shapes; allocates nothing.
    """
    itemsize = np.dtype(VERIFY_DTYPES[dtype]).itemsize
    batch = report.batch_size
    graph = network.graph
    last_use = graph.last_use
    size = {INPUT: math.prod(network.input_shape) * batch}
    live = size[INPUT]
    peak, where = live * itemsize, "(input)"
    for i, (node, row) in enumerate(zip(graph.nodes, report.rows)):
        kernel = KERNELS[node.type.name]
        shape = row.input_shapes[0]
        params = sum(math.prod(s.shape) for s in kernel.params(node.type, node.args, shape).values())
        work = kernel.workspace(node.type, node.args, shape, row.output_shape) * batch
        size[i] = math.prod(row.output_shape) * batch
        live += size[i]
        total = (live + params + work) * itemsize
        if total > peak:
            peak, where = total, node.path
        for j in {*node.inputs, i}:
            if last_use[j] == i:
                live -= size[j]
    return int(peak), where


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# --- verification -------------------------------------------------------------------------


class _Stop(Exception):
    pass


def verify(
    network: Network,
    report: Report,
    *,
    seed: int = 0,
    dtype: str = "float32",
    max_memory: int = DEFAULT_MAX_MEMORY,
    progress: Callable[[int, int, str], None] | None = None,
    params: ParamTable | None = None,
    weights: str | None = None,
) -> Verification:
    """Run `network` forward on a random input and compare each output shape with `report`.

    Stops at the first disagreement (later layers are reported as not run). Raises
    `LimitError` before allocating anything when the estimated peak exceeds `max_memory`.
    `params` (path -> {name: array}) replaces the random weights of those layers; `weights`
    names where they came from, for the verdict.
    """
    dtype = verify_dtype(dtype)
    estimate, where = estimate_memory(network, report, dtype)
    if estimate > max_memory:
        row = next((r for r in report.rows if r.path == where), None)
        raise LimitError(
            f"the forward pass would need about {human(estimate)} (peak at this layer, batch"
            f" {report.batch_size}, {dtype}), more than --max-memory {human(max_memory)};"
            " raise --max-memory or lower --batch-size",
            where=row.where if row else None, path=where if row else None,
            layer_type=row.type if row else None,
        )
    rows: list[Row] = list(report.rows)
    checks: list[LayerCheck] = []
    nonfinite: list[str] = []

    def on_step(step: Step) -> None:
        row = rows[len(checks)]
        if row.path != step.path:
            raise AssertionError(f"report row {row.path} does not match step {step.path}")
        actual = tuple(step.output.y.shape[1:])
        checks.append(LayerCheck(row.path, row.type, tuple(row.output_shape), actual, where=row.where))
        if step.output.y.dtype.kind == "f" and not np.isfinite(step.output.y).all():
            nonfinite.append(row.path)
        if progress is not None:
            progress(len(checks), len(rows), row.path)
        if actual != tuple(row.output_shape):
            raise _Stop

    start = time.perf_counter()
    x = input_array(network.input_shape, report.batch_size, seed, dtype)
    live = LiveBytes()
    try:
        with np.errstate(all="ignore"):  # overflow from random weights is reported as `nonfinite`
            run(network, x, on_step, seed=seed, live=live, params=params)
    except _Stop:
        pass
    except MemoryError:
        row = rows[len(checks)]
        raise LimitError(
            f"ran out of memory in the forward pass (estimated peak {human(estimate)}); lower"
            " --batch-size or --max-memory to what this machine has",
            where=row.where, path=row.path, layer_type=row.type,
        ) from None
    except ConvcalcError:
        raise
    except Exception as err:  # a kernel failed: report it as a failed check, not a traceback
        row = rows[len(checks)]
        checks.append(LayerCheck(row.path, row.type, tuple(row.output_shape), None,
                                 error=f"{type(err).__name__}: {err}", where=row.where))
    del x
    seconds = time.perf_counter() - start
    for row in rows[len(checks):]:
        checks.append(LayerCheck(row.path, row.type, tuple(row.output_shape), None, where=row.where))
    return Verification(
        checks=tuple(checks), seed=seed, dtype=dtype, batch_size=report.batch_size,
        seconds=seconds, memory_estimate=estimate, nonfinite=tuple(nonfinite), live_peak_bytes=live.peak,
        weights=weights,
    )
