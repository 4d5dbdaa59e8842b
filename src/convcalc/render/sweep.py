"""A `sweep.Sweep` as a table, CSV or JSON, and as a plot (PNG bytes, drawn with matplotlib).

JSON contract (schema_version 1, `convcalc sweep --format json`): `name`, `swept` ("size"
or the var's name), `batch_size`, `dtype`, `optimizer`, and `points`, one per value: `value`,
`input_shape`, `valid`, `reason` (null when valid), `output_shapes`, `params`, `macs`,
`flops`, `activation_bytes`, `training_bytes` (null when invalid).
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from convcalc.render.data import SCHEMA_VERSION, human_bytes, shape_text
from convcalc.render.output import Rendered
from convcalc.sweep import Point, Sweep

if TYPE_CHECKING:
    from convcalc.render.table import Line

SWEEP_FORMATS = ("table", "csv", "json")
CSV_COLUMNS = ("value", "input_shape", "valid", "output_shapes", "params", "macs", "flops", "activation_bytes",
               "training_bytes", "reason")


def outputs_text(point: Point) -> str:
    return " + ".join(shape_text(s) for s in point.output_shapes) if point.ok else "-"


def point_dict(point: Point) -> dict[str, Any]:
    return {
        "value": point.value,
        "input_shape": list(point.input_shape),
        "valid": point.ok,
        "reason": point.reason,
        "output_shapes": [list(s) for s in point.output_shapes],
        "params": point.params,
        "macs": point.macs,
        "flops": None if point.macs is None else 2 * point.macs,
        "activation_bytes": point.activation_bytes,
        "training_bytes": point.training_bytes,
    }


def to_json(sweep: Sweep) -> str:
    head = {"schema_version": SCHEMA_VERSION, "name": sweep.name, "swept": sweep.swept,
            "batch_size": sweep.batch_size, "dtype": sweep.dtype, "optimizer": sweep.optimizer}
    parts = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()]
    points = ",\n".join("    " + json.dumps(point_dict(p)) for p in sweep.points)
    parts.append(f'  "points": [\n{points}\n  ]' if points else '  "points": []')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def to_csv(sweep: Sweep) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in sweep.points:
        data = point_dict(p)
        writer.writerow([p.value, shape_text(p.input_shape), "true" if p.ok else "false",
                         outputs_text(p) if p.ok else "",
                         *("" if data[k] is None else data[k]
                           for k in ("params", "macs", "flops", "activation_bytes", "training_bytes")),
                         p.reason or ""])
    return buffer.getvalue()


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _bytes(n: int | None) -> str:
    return "-" if n is None else human_bytes(n)


def to_table(sweep: Sweep) -> list[Line]:
    from convcalc.render.table import Column, layout

    swept = "Size" if sweep.swept == "size" else sweep.swept
    points = sweep.points
    valid = sum(1 for p in points if p.ok)
    optimizer = "" if sweep.optimizer == "none" else f" ({sweep.optimizer})"
    title = (f"{sweep.name}: {len(points)} {'sizes' if sweep.swept == 'size' else 'values of ' + sweep.swept},"
             f" {valid} valid; batch {sweep.batch_size}, {sweep.dtype}")
    columns = [
        Column(swept, [str(p.value) for p in points], right=True, style="cyan"),
        Column("Input", [shape_text(p.input_shape) if p.input_shape else "-" for p in points]),
        Column("Valid", ["yes" if p.ok else "no" for p in points]),
        Column("Output", [outputs_text(p) for p in points]),
        Column("Params", [_count(p.params) for p in points], right=True),
        Column("MACs", [_count(p.macs) for p in points], right=True),
        Column("Activations", [_bytes(p.activation_bytes) for p in points], right=True),
        Column("Training" + optimizer, [_bytes(p.training_bytes) for p in points], right=True),
        Column("Reason", [p.reason or "" for p in points]),
    ]
    table = layout(columns)
    for line, point in zip(table[1:], points):
        if not point.ok:
            line[4] = (line[4][0], "red")  # the Valid cell
    return [[(title, "bold")], *table, [],
            [("Activations: every layer's output for the batch; Training: what one training step keeps"
              " (saved tensors, weights, gradients, optimizer state; see docs/check.md).", None)]]


def render_sweep(sweep: Sweep, fmt: str) -> Rendered:
    if fmt == "json":
        return Rendered(to_json(sweep))
    if fmt == "csv":
        return Rendered(to_csv(sweep))
    return Rendered(to_table(sweep))


def plot_png(sweep: Sweep) -> bytes:
    """MACs (top) and activation and training memory (bottom) against the swept value, invalid
    values shaded red with a cross on the axis. Imports matplotlib (its Agg canvas, no window)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = sweep.points
    good = [p for p in points if p.ok]
    bad = [p.value for p in points if not p.ok]
    values = sorted(p.value for p in points)
    width = min((b - a for a, b in zip(values, values[1:]) if b > a), default=1)
    xs = [p.value for p in good]
    figure = Figure(figsize=(8, 6.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    macs_axes, memory_axes = figure.subplots(2, 1, sharex=True)
    macs_axes.plot(xs, [(p.macs or 0) / 1e9 for p in good], marker="o", markersize=3, color="#3d6bb3", label="MACs")
    macs_axes.set_ylabel(f"GMACs (batch {sweep.batch_size})")
    memory_axes.plot(xs, [(p.activation_bytes or 0) / 2**20 for p in good], marker="o", markersize=3,
                     color="#c77c12", label="activations")
    memory_axes.plot(xs, [(p.training_bytes or 0) / 2**20 for p in good], marker="s", markersize=3,
                     color="#7d4aa8", label=f"training step (optimizer {sweep.optimizer})")
    memory_axes.set_ylabel(f"MiB ({sweep.dtype})")
    memory_axes.set_xlabel("input size (every spatial axis)" if sweep.swept == "size" else f"var {sweep.swept}")
    for axes in (macs_axes, memory_axes):
        axes.grid(True, alpha=0.3)
        for value in bad:
            axes.axvspan(value - width / 2, value + width / 2, color="#e06666", alpha=0.18, linewidth=0)
        if bad:
            axes.plot(bad, [0] * len(bad), linestyle="none", marker="x", color="#b30000", markersize=7,
                      clip_on=False, label="invalid")
        axes.legend(loc="best")
    figure.suptitle(f"{sweep.name}: {len(good)} of {len(points)} valid")
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
