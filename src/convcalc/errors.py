"""Every error convcalc raises on purpose, and the exit statuses they map to.

Layering: from the package this module imports only `records` (the dataclass decorator).
The CLI catches `ConvcalcError` in one place; anything else escaping is a bug.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from convcalc.records import record


class ExitStatus(enum.IntEnum):
    """The documented exit codes."""

    OK = 0
    CHECK_FAILED = 1  # a budget, expectation or --verify disagreement failed
    BAD_INPUT = 2  # the spec or the command line is wrong


@record
class Location:
    """Where in a spec file something was written (1-based line and column)."""

    file: str
    line: int
    column: int
    end_column: int | None = None  # exclusive, on the same line, when known

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConvcalcError(Exception):
    """Base of all deliberate errors; carries what the user needs to find the problem."""

    exit_status = ExitStatus.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        where: Location | None = None,
        path: str | None = None,
        layer_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.path = path
        self.layer_type = layer_type

    def located(
        self, *, where: Location | None, path: str | None, layer_type: str | None
    ) -> ConvcalcError:
        """A copy of this error with the context that the raiser did not know filled in."""
        import copy  # errors only: not imported on the way to a result

        located = copy.copy(self)
        located.where = self.where or where
        located.path = self.path if self.path is not None else path
        located.layer_type = self.layer_type or layer_type
        return located

    def headline(self) -> str:
        """`file:line:col: path (type): message`, leaving out what is not known."""
        parts = []
        if self.where is not None:
            parts.append(f"{self.where}: ")
        if self.path:
            parts.append(self.path)
            parts.append(f" ({self.layer_type}): " if self.layer_type else ": ")
        elif self.layer_type:
            parts.append(f"{self.layer_type}: ")
        parts.append(self.message)
        return "".join(parts)

    def __str__(self) -> str:
        return self.headline()


class SpecError(ConvcalcError, ValueError):
    """The spec (or a command-line layer) is malformed or its shapes do not work out."""


class ArgumentError(SpecError):
    """One layer argument has the wrong type or value; `arg` names it when known."""

    def __init__(self, message: str, *, arg: str | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.arg = arg


class ShapeError(SpecError):
    """The arguments are well-formed but the shapes do not work (empty output, mismatch)."""


class LimitError(SpecError):
    """The spec exceeds a safety bound (expansion, depth, memory); each has an option."""


class CheckFailed(ConvcalcError):
    """A budget, expectation or verification did not hold."""

    exit_status = ExitStatus.CHECK_FAILED


def suggest(word: str, options: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest option, or nothing: the tail of a message."""
    import difflib  # errors only

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
