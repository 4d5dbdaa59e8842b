"""What the commands share: reading spec files, options, output and error messages."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from convcalc.analysis import DTYPE_BYTES
from convcalc.errors import ConvcalcError, Location, SpecError
from convcalc.network import Network
from convcalc.render import FORMATS
from convcalc.spec.parser import DEFAULT_MAX_LAYERS, Limits, Parser
from convcalc.spec.source import Source, compose

F = TypeVar("F", bound=Callable[..., Any])


def read_source(path: str) -> Source:
    """The text of a spec file ('-' is stdin), or a SpecError that names it."""
    if path == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        name = path
        p = Path(path)
        if p.is_dir():
            raise SpecError(f"{path} is a directory; give a spec file (.yaml, .yml or .json)")
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise SpecError(f"{path}: no such file") from None
        except OSError as err:
            raise SpecError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        utf16 = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise SpecError(
            f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}{utf16};"
            " save the spec as UTF-8",
            where=Location(name, line, column),
        ) from None
    return Source(name, text)


def load_network(path: str, max_layers: int = DEFAULT_MAX_LAYERS) -> Network:
    """Read and parse one spec, remembering its text for error carets."""
    source = read_source(path)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta.setdefault("convcalc.sources", {})[source.name] = source
    return Parser(source, Limits(max_layers=max_layers)).network(compose(source))


def format_error(err: ConvcalcError, sources: dict[str, Source]) -> str:
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


SHOWN = 100  # characters of a long source line shown around the error


def _window(text: str, column: int, width: int) -> tuple[str, int, int]:
    """A long line cut to SHOWN characters around `column` (0-based), marked with '...'."""
    if len(text) <= SHOWN:
        return text, column, width
    first = max(0, min(column - 20, len(text) - SHOWN))
    before = "..." if first else ""
    after = "..." if first + SHOWN < len(text) else ""
    column = column - first + len(before)
    return before + text[first : first + SHOWN] + after, column, min(width, SHOWN + len(before) - column)


def format_option(default: str = "table") -> Callable[[F], F]:
    return click.option(
        "-f", "--format", "fmt", type=click.Choice(FORMATS), default=default, show_default=True,
        help="table for people; json (versioned contract), csv or markdown for scripts and docs.",
    )


def memory_options(func: F) -> F:
    func = click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)), default="float32",
                        show_default=True, help="Element type for activation and parameter bytes.")(func)
    func = click.option("-b", "--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Batch size for activation memory and MACs.")(func)
    return func


def max_layers_option(func: F) -> F:
    return click.option(
        "--max-layers", type=click.IntRange(min=1), default=DEFAULT_MAX_LAYERS, show_default=True,
        help="Refuse specs that expand (blocks, repeat) to more layers than this.")(func)


def echo_lines(lines: list[Any], err: bool = False) -> None:
    """Print styled lines (render.table): coloured on a terminal, plain text otherwise.

    Colour follows rich's rules (a terminal, NO_COLOR, FORCE_COLOR); plain output never
    contains escape codes and does not depend on the terminal width.
    """
    stream = sys.stderr if err else sys.stdout
    if not os.environ.get("FORCE_COLOR") and (os.environ.get("NO_COLOR") or not stream.isatty()):
        from convcalc.render.table import plain_text

        click.echo(plain_text(lines), nl=False, err=err)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False)
    for line in lines:
        console.print(Text.assemble(*line), soft_wrap=True)


def echo_rich(renderable: Any, err: bool = False) -> None:
    """Print a rich renderable; when not a terminal, no colour and no wrapping."""
    from rich.console import Console

    stream = sys.stderr if err else sys.stdout
    # rich's no_color keeps bold and italics; NO_COLOR means no escape codes at all
    plain = bool(os.environ.get("NO_COLOR")) and not os.environ.get("FORCE_COLOR")
    console = Console(file=stream, highlight=False, color_system=None if plain else "auto")
    if not console.is_terminal:
        console = Console(file=stream, width=10_000, color_system=None, highlight=False)
    console.print(renderable, crop=False, soft_wrap=not console.is_terminal)
