"""The table for people: one row per layer, exact totals, a summary, then warnings.

The layout is computed here, as lines of styled segments, and the CLI prints them with rich
(colour on a terminal) or as plain text. rich's own Table measures every cell and takes
~0.2 s for a 70-row network, which would make `convcalc shapes` feel slow; aligned columns
need none of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convcalc.analysis import Report
from convcalc.render.data import field_text, human_bytes, human_count, shape_text

Segment = tuple[str, str | None]  # text and a rich style name (or None)
Line = list[Segment]


@dataclass(frozen=True)
class Column:
    header: str
    cells: Sequence[str]
    footer: str = ""
    right: bool = False
    style: str | None = None


def layout(columns: Sequence[Column], gap: str = "  ") -> list[Line]:
    """Header, rows and footer (if any column has one) with aligned columns."""
    widths = [max([len(c.header), len(c.footer), *(len(x) for x in c.cells)]) for c in columns]

    def line(texts: Sequence[str], style: str | None, body: bool) -> Line:
        out: Line = []
        for i, (col, text, width) in enumerate(zip(columns, texts, widths)):
            last = i == len(columns) - 1
            cell = text.rjust(width) if col.right else (text if last else text.ljust(width))
            out.append((cell, col.style if body else style))
            if not last:
                out.append((gap, None))
        return out

    lines = [line([c.header for c in columns], "bold", body=False)]
    for r in range(len(columns[0].cells)):
        lines.append(line([c.cells[r] for c in columns], None, body=True))
    if any(c.footer for c in columns):
        lines.append(line([c.footer for c in columns], "bold", body=False))
    return lines


def _count(n: int) -> str:
    return f"{n:,}" if n else "-"


def report_table(report: Report, extra: Sequence[Column] = ()) -> list[Line]:
    """The layer table and summary; `extra` columns go after the standard ones."""
    rows, t = report.rows, report.totals
    fields = [field_text(r.field, report.input_shape) for r in rows]
    columns = [
        Column("Layer", [r.path for r in rows], "Total", style="cyan"),
        Column("Type", [r.type for r in rows]),
        Column("Output", [shape_text(r.output_shape) for r in rows], shape_text(report.output_shape)),
        Column("Params", [_count(r.params) for r in rows], f"{t.params:,}", right=True),
        Column("Buffers", [_count(r.buffers) for r in rows], f"{t.buffers:,}", right=True),
        Column("MACs", [_count(r.macs) for r in rows], f"{t.macs:,}", right=True),
        Column("RF", [f[0] for f in fields], right=True),
        Column("Jump", [f[1] for f in fields], right=True),
        *extra,
    ]
    title = f"{report.name}: input {shape_text(report.input_shape)}, batch {report.batch_size}, {report.dtype}"
    out: list[Line] = [[(title, "bold")], *layout(columns), []]
    out += [
        [("Trainable params ", "bold"), (f"{t.params:,} ({human_count(t.params)}, {human_bytes(t.param_bytes)})", None),
         ("   Buffers ", "bold"), (f"{t.buffers:,} (running statistics, not trainable)", None)],
        [("MACs ", "bold"), (f"{t.macs:,} ({human_count(t.macs)}; conv + linear only)", None),
         ("   FLOPs ", "bold"), (f"{t.flops:,} (= 2 x MACs)", None)],
        [("Activations ", "bold"),
         (f"{human_bytes(t.activation_bytes)} (every layer's output, batch {report.batch_size})", None)],
    ]
    if report.warnings:
        count = len(report.warnings)
        out += [[], [(f"{count} warning{'s' if count > 1 else ''}:", "bold yellow")]]
        out += [[("  ", None), (w.path, "cyan"), (f" ({w.layer_type}) ", None), (f"[{w.code}]", "yellow"),
                 (f" {w.message}", None)] for w in report.warnings]
    return out


def plain_text(lines: Sequence[Line]) -> str:
    """The lines without styles, trailing spaces removed."""
    return "".join("".join(text for text, _ in line).rstrip() + "\n" for line in lines)
