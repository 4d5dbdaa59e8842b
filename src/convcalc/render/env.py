"""The terminal a command writes to, decided once per run (as httpie's `Environment`).

Whether stdout and stderr are terminals, whether colour is wanted (NO_COLOR, FORCE_COLOR,
TERM=dumb) and how wide the terminal is (COLUMNS, else its size). The CLI detects it when a
command starts and passes it on; tests build a `Terminal(...)` instead. No other convcalc
module looks at the environment variables or `isatty()` for these decisions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from convcalc.records import record


@record
class Terminal:
    stdout_tty: bool = False
    stderr_tty: bool = False
    no_color: bool = False  # NO_COLOR: no escape codes at all
    force_color: bool = False  # FORCE_COLOR: styles even when not a terminal
    dumb: bool = False  # TERM=dumb: a terminal that understands no escape codes
    width: int = 80

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None, stdout: IO[Any] | None = None,
               stderr: IO[Any] | None = None) -> Terminal:
        """The process's terminal: `os.environ`, `sys.stdout` and `sys.stderr` unless given."""
        env = os.environ if environ is None else environ
        columns = env.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else _terminal_columns()
        return cls(
            stdout_tty=_isatty(sys.stdout if stdout is None else stdout),
            stderr_tty=_isatty(sys.stderr if stderr is None else stderr),
            no_color=bool(env.get("NO_COLOR")),
            force_color=bool(env.get("FORCE_COLOR")),
            dumb=env.get("TERM", "").lower() in ("dumb", "unknown"),
            width=width,
        )

    def is_terminal(self, err: bool = False) -> bool:
        """Output to this stream is laid out for a terminal (FORCE_COLOR counts as one)."""
        return self.force_color or (self.stderr_tty if err else self.stdout_tty)

    def styled(self, err: bool = False) -> bool:
        """Styles are written: FORCE_COLOR, or a terminal without NO_COLOR."""
        return self.force_color or (self.is_terminal(err) and not self.no_color)

    def colour(self, err: bool = False) -> bool:
        """Colour escape codes are written (styled, on a terminal that is not dumb)."""
        return self.styled(err) and not self.dumb


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, without importing shutil (and its compression
    modules): COLUMNS, else the width of the terminal on the process's stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
