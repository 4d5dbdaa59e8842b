"""A `Report` in the format asked for, with the `--verify` and `--training` additions.

The table gains a Verified and a "Kept for backward" column and their summaries; JSON gains
the `verified` fields and the `training` object; csv and markdown keep their columns and get
the summaries (and, for csv, the warnings) on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcalc.analysis import Report
from convcalc.render.output import Rendered

if TYPE_CHECKING:
    from convcalc.numeric.result import Verification
    from convcalc.render.table import Line
    from convcalc.training import TrainingMemory


def render_report(report: Report, fmt: str, verification: Verification | None = None,
                  training: TrainingMemory | None = None) -> Rendered:
    if fmt == "table":
        return Rendered(_table(report, verification, training))
    from convcalc.render import plain

    if fmt == "json":
        sections = None
        if training is not None:
            from convcalc.render.training import training_dict

            sections = {"training": training_dict(training, report.totals.buffers)}
        return Rendered(plain.to_json(report, verification, sections))
    text = {"csv": plain.to_csv, "markdown": plain.to_markdown}[fmt](report)
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


def _table(report: Report, verification: Verification | None, training: TrainingMemory | None) -> list[Line]:
    from convcalc.render.table import Column, report_table

    columns: tuple[Column, ...] = ()
    if verification is not None:
        from convcalc.render.verification import verified_cells

        columns = (Column("Verified", verified_cells(verification)),)
    if training is not None:
        from convcalc.render.training import saved_cells

        columns = (*columns, Column("Kept for backward", saved_cells(training), right=True))
    lines: list[Line] = report_table(report, columns)
    if verification is not None:
        from convcalc.render.verification import summary

        lines += [[], [(summary(verification), "bold green" if verification.ok else "bold red")]]
    if training is not None:
        from convcalc.render.training import summary_lines

        lines.append([])
        lines.extend([(text, None)] for text in summary_lines(training, report.batch_size))
    return lines
