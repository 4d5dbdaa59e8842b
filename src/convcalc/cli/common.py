"""What the commands share: loading specs, options, the terminal and writing output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from convcalc.analysis import DTYPE_BYTES
from convcalc.network import Network
from convcalc.render import FORMATS
from convcalc.render.env import Terminal
from convcalc.render.output import Rendered
from convcalc.spec.parser import DEFAULT_MAX_LAYERS

F = TypeVar("F", bound=Callable[..., Any])


def load_network(path: str, max_layers: int = DEFAULT_MAX_LAYERS, overrides: dict[str, Any] | None = None) -> Network:
    """`convcalc.load.load_network`, keeping the text for the caret under an error."""
    from convcalc.load import load_network as load

    ctx = click.get_current_context(silent=True)
    sources = ctx.meta.setdefault("convcalc.sources", {}) if ctx is not None else None
    return load(path, max_layers, sources, overrides)


def set_option(func: F) -> F:
    return click.option(
        "--set", "assignments", multiple=True, metavar="NAME=VALUE",
        help="Override one of the spec's vars (repeatable); VALUE is read as YAML: 64, 0.5, true, [3, 5].")(func)


def parse_sets(assignments: tuple[str, ...]) -> dict[str, Any]:
    """`--set NAME=VALUE` options as {name: value}; a malformed one is a SpecError (exit 2)."""
    import yaml

    from convcalc.errors import SpecError

    out: dict[str, Any] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SpecError(f"--set takes NAME=VALUE, like --set width=64 (got {text!r})")
        try:
            out[name] = yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            out[name] = value
    return out


def terminal() -> Terminal:
    """The terminal decided when the command started (`cli.ConvcalcGroup`), else detected now."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(Terminal) if ctx is not None else None
    return found if found is not None else Terminal.detect()


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


def emit(rendered: Rendered) -> None:
    """Print a renderer's output: stdout (text, styled lines or a rich renderable), then stderr."""
    out = rendered.stdout
    if isinstance(out, str):
        click.echo(out, nl=False)
    elif isinstance(out, list):
        echo_lines(out)
    else:
        echo_rich(out)
    for message in rendered.stderr:
        click.echo(message, err=True)


def echo_lines(lines: list[Any], err: bool = False) -> None:
    """Print styled lines (render.table): coloured on a terminal, plain text otherwise.

    Plain output never contains escape codes and does not depend on the terminal width.
    """
    term = terminal()
    stream = sys.stderr if err else sys.stdout
    if not term.styled(err):
        from convcalc.render.table import plain_text

        click.echo(plain_text(lines), nl=False, err=err)
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=stream, highlight=False, force_terminal=True, width=term.width,
                      color_system="auto" if term.colour(err) else None)
    for line in lines:
        console.print(Text.assemble(*line), soft_wrap=True)


def echo_rich(renderable: Any, err: bool = False) -> None:
    """Print a rich renderable; when not a terminal, no colour and no wrapping."""
    from rich.console import Console

    term = terminal()
    stream = sys.stderr if err else sys.stdout
    if term.is_terminal(err):
        console = Console(file=stream, highlight=False, force_terminal=True, width=term.width,
                          color_system="auto" if term.colour(err) else None)
    else:
        console = Console(file=stream, width=10_000, color_system=None, highlight=False)
    console.print(renderable, crop=False, soft_wrap=not term.is_terminal(err))
