"""A `Report` in the format asked for, with the `--verify` and `--training` additions.

The table gains a Verified and a "Kept for backward" column and their summaries; JSON gains
the `verified` fields and the `training` object; csv and markdown keep their columns and get
the summaries (and, for csv, the warnings) on stderr.

`View` carries `--columns`, `--depth` and the terminal's width. With a depth (or on a
terminal, where the table shows the nesting) the rows come from `analysis.outline`: groups
with their subtotals, names indented under them. JSON gains a `groups` list and CSV its
group rows only with `--depth`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convcalc.analysis import Entry, Report, outline
from convcalc.render.output import Rendered
from convcalc.render.table import PIPED, View

if TYPE_CHECKING:
    from convcalc.graph import Graph
    from convcalc.numeric.result import Verification
    from convcalc.render.table import Extra, Line
    from convcalc.training import TrainingMemory


def render_report(report: Report, fmt: str, verification: Verification | None = None,
                  training: TrainingMemory | None = None, view: View = PIPED,
                  graph: Graph | None = None) -> Rendered:
    """`graph` (the network's) is needed for `view.depth` and for the terminal's tree."""
    entries: tuple[Entry, ...] | None = None
    if graph is not None and fmt != "csv" and (view.depth is not None or (fmt == "table" and view.width is not None)):
        entries = outline(report, graph, view.depth, layers=fmt != "json")  # JSON lists the groups only
    if fmt == "table":
        return Rendered(_table(report, verification, training, view, entries))
    from convcalc.render import plain

    if fmt == "json":
        sections: dict[str, Any] = {}
        if training is not None:
            from convcalc.render.training import training_dict

            sections["training"] = training_dict(training, report.totals.buffers)
        groups = entries if view.depth is not None else None
        return Rendered(plain.to_json(report, verification, sections or None, groups))
    if fmt == "csv":
        grouped = None
        if view.depth is not None and graph is not None:  # every layer, and the groups down to the depth
            depth = view.depth
            grouped = tuple(e for e in outline(report, graph) if not e.is_group or e.depth <= depth)
        text = plain.to_csv(report, view.columns, grouped)
    else:
        text = plain.to_markdown(report, view.columns, entries if view.depth is not None else None)
    notes: list[str] = []
    if verification is not None:
        from convcalc.render.verification import summary

        notes.append(summary(verification))
    if training is not None:
        from convcalc.render.training import summary_lines

        notes.append("\n".join(summary_lines(training, report.batch_size)))
    if fmt == "csv":
        from convcalc.render.data import warning_text

        notes += [f"warning: {warning_text(w)}" for w in report.warnings]
    return Rendered(text, tuple(notes))


def _table(report: Report, verification: Verification | None, training: TrainingMemory | None, view: View,
           entries: tuple[Entry, ...] | None) -> list[Line]:
    from convcalc.render.table import prose_lines, report_table

    columns: list[Extra] = []
    if verification is not None:
        from convcalc.render.verification import verified_extra

        columns.append(verified_extra(verification))
    if training is not None:
        from convcalc.render.training import saved_extra

        columns.append(saved_extra(training))
    lines: list[Line] = report_table(report, columns, entries, view)
    if verification is not None:
        from convcalc.render.verification import summary

        lines.append([])
        lines += prose_lines([(summary(verification), "bold green" if verification.ok else "bold red")], view.width)
    if training is not None:
        from convcalc.render.training import summary_lines

        lines.append([])
        lines += prose_lines([(text, None) for text in summary_lines(training, report.batch_size)], view.width,
                             indent=4)
    return lines

