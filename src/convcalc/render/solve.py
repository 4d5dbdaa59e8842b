"""`convcalc solve` results: named fields and notes as a table, JSON, one CSV row or Markdown."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from convcalc.render.output import Rendered


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else str(value)
    return "-" if value is None else str(value)


def render_solution(title: str, fields: Mapping[str, Any], notes: Sequence[str], fmt: str) -> Rendered:
    """One result: `fields` as a two-column table, one JSON object, one CSV row or Markdown."""
    if fmt == "json":
        return Rendered(json.dumps({**fields, "notes": list(notes)}, indent=2) + "\n")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(fields))
        writer.writerow([";".join(map(str, v)) if isinstance(v, (list, tuple)) else _text(v)
                         for v in fields.values()])
        return Rendered(buffer.getvalue(), tuple(f"note: {note}" for note in notes))
    if fmt == "markdown":
        lines = [f"### {title}", "", "| | |", "|---|---:|"]
        lines += [f"| {key} | {_text(value)} |" for key, value in fields.items()]
        lines += ["", *(f"- {note}" for note in notes)] if notes else []
        return Rendered("\n".join(lines) + "\n")
    width = max(len(k) for k in fields)
    out: list[Any] = [[(title, "bold")]]
    out += [[(key.ljust(width) + "  ", "cyan"), (_text(value), None)] for key, value in fields.items()]
    out += [[(note, None)] for note in notes]
    return Rendered(out)
