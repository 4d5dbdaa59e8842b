"""JSON, CSV and Markdown renderings of a `Report`: deterministic, no terminal involved."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from convcalc.analysis import Report
from convcalc.render.data import add_verification, field_text, human_bytes, report_dict, shape_text

CSV_COLUMNS = (
    "path", "type", "input_shape", "output_shape", "params", "buffers", "macs", "flops",
    "activation_bytes", "rf_size", "rf_jump", "rf_start",
)


def to_json(report: Report, verification: Any = None, extra: dict[str, Any] | None = None) -> str:
    """Indented at the top level, one compact line per layer and warning.

    Readable and diffable, and json's C encoder does the per-layer work (with `indent`
    json falls back to pure Python, several times slower on big networks).
    """
    data = report_dict(report)
    if verification is not None:
        add_verification(data, verification)
    data.update(extra or {})  # e.g. `training` (--training)
    parts = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join("    " + json.dumps(v) for v in value)
            parts.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def to_csv(report: Report) -> str:
    """One row per layer, then a `(total)` row; shapes as `CxHxW`, fields per axis as `a;b`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for layer in report_dict(report)["layers"]:
        rf = layer["receptive_field"]
        writer.writerow([
            layer["path"], layer["type"], shape_text(layer["input_shape"]),
            shape_text(layer["output_shape"]), layer["params"], layer["buffers"], layer["macs"],
            layer["flops"], layer["activation_bytes"],
            *(";".join(str(v) for v in rf[key]) if rf else "" for key in ("size", "jump", "start")),
        ])
    t = report.totals
    writer.writerow(["(total)", "", shape_text(report.input_shape), shape_text(report.output_shape),
                     t.params, t.buffers, t.macs, t.flops, t.activation_bytes, "", "", ""])
    return buffer.getvalue()


def to_markdown(report: Report) -> str:
    """A GitHub table of the layers, then the totals, for pasting into docs."""
    header = ("Layer", "Type", "Output", "Params", "Buffers", "MACs", "RF", "Jump")
    lines = [f"### {report.name}", "",
             f"Input {shape_text(report.input_shape)}, batch {report.batch_size}, {report.dtype}.", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join(["---", "---", "---", "---:", "---:", "---:", "---:", "---:"]) + "|"]
    for row in report.rows:
        size, jump = field_text(row.field, report.input_shape)
        lines.append("| " + " | ".join([
            f"`{row.path}`", row.type, shape_text(row.output_shape), f"{row.params:,}",
            f"{row.buffers:,}", f"{row.macs:,}", size, jump]) + " |")
    t = report.totals
    lines += [
        "",
        f"- Trainable parameters: {t.params:,} ({human_bytes(t.param_bytes)})",
        f"- Buffers (running statistics, not trainable): {t.buffers:,}",
        f"- MACs (conv + linear multiply-accumulates): {t.macs:,}",
        f"- FLOPs (= 2 x MACs): {t.flops:,}",
        f"- Activations (all layer outputs): {human_bytes(t.activation_bytes)}",
    ]
    if report.warnings:
        lines += ["", "Warnings:", ""]
        lines += [f"- `{w.path}` ({w.layer_type}) [{w.code}]: {w.message}" for w in report.warnings]
    return "\n".join(lines) + "\n"
