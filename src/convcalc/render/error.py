"""A `ConvcalcError` as people read it: the headline, then the source line with a caret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from convcalc.errors import ConvcalcError

if TYPE_CHECKING:
    from convcalc.spec.source import Source

SHOWN = 100  # characters of a long source line shown around the error


def format_error(err: ConvcalcError, sources: Mapping[str, Source]) -> str:
    """`error: file:line:col: path (type): message`, then the line with a caret."""
    lines = [f"error: {err.headline()}"]
    where = err.where
    source = sources.get(where.file) if where else None
    text = source.line(where.line) if source and where else None
    if where and text is not None and text.strip():
        gutter = f"{where.line} | "
        width = 1
        if where.end_column and where.end_column > where.column:
            width = where.end_column - where.column
        shown, column, width = _window(text.rstrip().replace("\t", " "), where.column - 1, width)
        lines.append(f"  {gutter}{shown}")
        lines.append("  " + " " * (len(gutter) + column) + "^" * max(1, width))
    return "\n".join(lines)


def _window(text: str, column: int, width: int) -> tuple[str, int, int]:
    """A long line cut to SHOWN characters around `column` (0-based), marked with '...'."""
    if len(text) <= SHOWN:
        return text, column, width
    first = max(0, min(column - 20, len(text) - SHOWN))
    before = "..." if first else ""
    after = "..." if first + SHOWN < len(text) else ""
    column = column - first + len(before)
    return before + text[first : first + SHOWN] + after, column, min(width, SHOWN + len(before) - column)
