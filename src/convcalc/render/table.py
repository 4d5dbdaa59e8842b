"""The rich table for people: one row per layer, exact totals, then warnings.

Builds rich renderables only; the CLI owns the Console and decides colour and width.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from convcalc.analysis import Report
from convcalc.render.data import field_text, human_bytes, human_count, shape_text


def report_table(report: Report, extra: dict[str, list[str]] | None = None) -> Group:
    """The layer table and summary; `extra` adds columns (name -> one cell per row)."""
    table = Table(
        title=f"{report.name}: input {shape_text(report.input_shape)}, batch {report.batch_size},"
        f" {report.dtype}",
        title_justify="left",
        header_style="bold",
        show_footer=True,
        box=None,
        pad_edge=False,
    )
    t = report.totals
    table.add_column("Layer", footer="Total", style="cyan", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Output", footer=shape_text(report.output_shape), no_wrap=True)
    table.add_column("Params", footer=f"{t.params:,}", justify="right", no_wrap=True)
    table.add_column("Buffers", footer=f"{t.buffers:,}", justify="right", no_wrap=True)
    table.add_column("MACs", footer=f"{t.macs:,}", justify="right", no_wrap=True)
    table.add_column("RF", justify="right", no_wrap=True)
    table.add_column("Jump", justify="right", no_wrap=True)
    for name in extra or {}:
        table.add_column(name, no_wrap=True)
    columns = list((extra or {}).values())
    for i, row in enumerate(report.rows):
        size, jump = field_text(row.field)
        cells = [
            row.path, row.type, shape_text(row.output_shape),
            f"{row.params:,}" if row.params else "-",
            f"{row.buffers:,}" if row.buffers else "-",
            f"{row.macs:,}" if row.macs else "-",
            size, jump,
        ]
        table.add_row(*cells, *(col[i] for col in columns))
    summary = Text.assemble(
        ("Trainable params ", "bold"), f"{t.params:,} ({human_count(t.params)}, {human_bytes(t.param_bytes)})",
        ("   Buffers ", "bold"), f"{t.buffers:,} (running statistics, not trainable)\n",
        ("MACs ", "bold"), f"{t.macs:,} ({human_count(t.macs)}; conv + linear only)",
        ("   FLOPs ", "bold"), f"{t.flops:,} (= 2 x MACs)\n",
        ("Activations ", "bold"), f"{human_bytes(t.activation_bytes)} (every layer's output, batch {report.batch_size})",
    )
    parts: list[Table | Text] = [table, Text(""), summary]
    if report.warnings:
        parts.append(Text(""))
        parts.append(Text(f"{len(report.warnings)} warning{'s' if len(report.warnings) > 1 else ''}:", style="bold yellow"))
        for w in report.warnings:
            parts.append(Text.assemble("  ", (w.path, "cyan"), f" ({w.layer_type}) ", (f"[{w.code}]", "yellow"), f" {w.message}"))
    return Group(*parts)
