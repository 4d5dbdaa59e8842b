"""Runs a `Network` forward in NumPy and checks every layer's shape against the `Report`.

`run` walks the tree (Layer / Sequence / Fork) in execution order, the same order as
`Report.rows`, and hands each `Step` (inputs, output, parameters, saved arrays) to a
callback; it keeps nothing itself, so memory stays at the live activations plus one
layer's parameters and temporaries. `verify` uses it to compare shapes; `trace` keeps
every step (for a backward pass).

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
from convcalc.layers import Shape
from convcalc.network import Fork, Layer, Network, Node, Sequence
from convcalc.numeric.base import Output
from convcalc.numeric.kernels import KERNELS, forward_layer, forward_merge, layer_params
from convcalc.numeric.result import LayerCheck, Verification

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


@dataclass(frozen=True)
class Step:
    """One executed layer or merge. `node` is the `Layer`, or the `Fork` for a merge."""

    path: str
    type: str
    node: Layer | Fork
    inputs: tuple[np.ndarray, ...]
    output: Output
    params: dict[str, np.ndarray] = field(default_factory=dict)


OnStep = Callable[[Step], None]
ParamTable = Mapping[str, Mapping[str, np.ndarray]]


class _Runner:
    def __init__(self, seed: int, dtype: str, save: bool, on_step: OnStep, params: ParamTable | None) -> None:
        self.seed = seed
        self.params = params
        self.dtype = VERIFY_DTYPES[dtype]
        self.save = save
        self.on_step = on_step

    def node(self, node: Node, x: np.ndarray) -> np.ndarray:
        if isinstance(node, Layer):
            if self.params is not None and node.path in self.params:
                params = dict(self.params[node.path])
            else:
                params = layer_params(node.type, node.args, x.shape[1:], param_rng(self.seed, node.path), self.dtype)
            out = forward_layer(node.type, node.args, x, params, save=self.save)
            self.on_step(Step(node.path, node.type.name, node, (x,), out, params))
            return out.y
        if isinstance(node, Sequence):
            for item in node.items:
                x = self.node(item, x)
            return x
        outputs = tuple(self.node(branch, x) for branch in node.branches)
        out = forward_merge(node.merge, outputs)
        self.on_step(Step(node.merge_path, node.merge.name, node, outputs, out))
        return out.y


def run(network: Network, x: np.ndarray, on_step: OnStep, *, seed: int = 0, save: bool = False,
        params: ParamTable | None = None) -> np.ndarray:
    """The network's output for the batched input `x`, calling `on_step` after each step.

    Parameters are drawn from `seed` per layer path, except for paths in `params`
    (path -> {name: array}, PyTorch names and layouts), which are used as given.
    """
    dtype = "float64" if x.dtype == np.float64 else "float32"
    return _Runner(seed, dtype, save, on_step, params).node(network.body, x)


def trace(network: Network, x: np.ndarray, *, seed: int = 0, save: bool = True,
          params: ParamTable | None = None) -> list[Step]:
    """Every step of a forward pass, kept (inputs, outputs, parameters, saved arrays)."""
    steps: list[Step] = []
    run(network, x, steps.append, seed=seed, save=save, params=params)
    return steps


# --- memory -------------------------------------------------------------------------------


def estimate_memory(network: Network, report: Report, dtype: str = "float32") -> tuple[int, str]:
    """Estimated peak bytes of `verify`, and the path of the step where it peaks.

    Per step: live activations (the step's input and output, plus whatever enclosing forks
    hold: their input and finished branch outputs), one layer's parameters and its
    temporaries (`Kernel.workspace`). Uses the report's shapes; allocates nothing.
    """
    itemsize = np.dtype(VERIFY_DTYPES[dtype]).itemsize
    batch = report.batch_size
    rows = iter(report.rows)
    peak = [0, ""]

    def elements(shape: Shape) -> int:
        return math.prod(shape) * batch

    def note(total: int, path: str) -> None:
        if total > peak[0]:
            peak[0], peak[1] = total, path

    def walk(node: Node, shape: Shape, held: int) -> Shape:
        if isinstance(node, Layer):
            row = next(rows)
            out = row.output_shape
            kernel = KERNELS[node.type.name]
            params = sum(math.prod(s.shape) for s in kernel.params(node.type, node.args, shape).values())
            work = kernel.workspace(node.type, node.args, shape, out) * batch
            note((held + elements(shape) + elements(out) + params + work) * itemsize, node.path)
            return out
        if isinstance(node, Sequence):
            for item in node.items:
                shape = walk(item, shape, held)
            return shape
        finished = 0
        shapes = []
        for branch in node.branches:
            branch_out = walk(branch, shape, held + elements(shape) + finished)
            shapes.append(branch_out)
            finished += elements(branch_out)
        row = next(rows)
        note((held + elements(shape) + 2 * finished + elements(row.output_shape)) * itemsize, node.merge_path)
        return row.output_shape

    note(elements(network.input_shape) * itemsize, "(input)")
    walk(network.body, network.input_shape, 0)
    return int(peak[0]), str(peak[1])


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
) -> Verification:
    """Run `network` forward on a random input and compare each output shape with `report`.

    Stops at the first disagreement (later layers are reported as not run). Raises
    `LimitError` before allocating anything when the estimated peak exceeds `max_memory`.
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
    try:
        with np.errstate(all="ignore"):  # overflow from random weights is reported as `nonfinite`
            run(network, x, on_step, seed=seed)
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
        seconds=seconds, memory_estimate=estimate, nonfinite=tuple(nonfinite),
    )
