"""What a command prints, as data: the renderers build it, the CLI writes it.

`stdout` is plain text (written as is), styled lines (`render.table.Line`, coloured on a
terminal) or a rich renderable; `stderr` holds messages written after it, one per line.
"""

from __future__ import annotations

from typing import Any

from convcalc.records import record


@record
class Rendered:
    stdout: Any
    stderr: tuple[str, ...] = ()
