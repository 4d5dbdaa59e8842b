"""What the commands share: loading specs, options, the terminal and writing output."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from convcalc import cli
from convcalc.analysis import DTYPE_BYTES
from convcalc.network import Network
from convcalc.render import FORMATS
from convcalc.render.env import Terminal
from convcalc.render.output import Rendered
from convcalc.spec.parser import DEFAULT_MAX_LAYERS

F = TypeVar("F", bound=Callable[..., Any])
Shape = tuple[int, ...]
Assignments = tuple[tuple[str, Any], ...]  # --set NAME=VALUE, in order


def load_network(path: str, max_layers: int = DEFAULT_MAX_LAYERS, overrides: dict[str, Any] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> Network:
    """`convcalc.load.load_network`, keeping the text for the caret under an error; `overrides`
    (`--set`) replace vars and `input_shape` (`--input`) the spec's input."""
    from convcalc.load import load_network as load

    ctx = click.get_current_context(silent=True)
    sources = ctx.meta.setdefault("convcalc.sources", {}) if ctx is not None else None
    return kept(load(path, max_layers, sources, overrides, input_shape, cli.KEPT))


def kept(network: Network) -> Network:
    """`network`, kept to the end of the process when `convcalc.cli.main` runs the command."""
    if cli.KEPT is not None:
        cli.KEPT.append(network)
    return network


class InputShape(click.ParamType):
    """`3x256x256` or `[3, 256, 256]`: an input shape without the batch."""

    name = "SHAPE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        import yaml

        from convcalc.errors import SpecError
        from convcalc.spec.parser import checked_input

        if isinstance(value, tuple):
            return value
        raw: Any = value
        if str(value).lstrip().startswith("["):
            with contextlib.suppress(yaml.YAMLError):
                raw = yaml.safe_load(value)
        try:
            return checked_input(raw, "the input")
        except SpecError as err:
            self.fail(f"{err.message}; write it like 3x224x224", param, ctx)


class Assignment(click.ParamType):
    """`NAME=VALUE`: a var and its new value, read as YAML (`64`, `true`, `[3, 5]`, `relu`)."""

    name = "NAME=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        import yaml

        if isinstance(value, tuple):
            return value
        name, equals, text = str(value).partition("=")
        name = name.strip()
        if not equals or not name or not text.strip():
            self.fail(f"expected NAME=VALUE, like size=256 (got {value!r})", param, ctx)
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text
        if isinstance(parsed, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", parsed.strip()):
            parsed = float(parsed)  # 1e-3, which YAML 1.1 reads as text
        return name, parsed


def set_option(func: F) -> F:
    """`--set NAME=VALUE` (repeatable): the spec's vars from the command line; the command
    gets `assignments`, (name, value) pairs."""
    return click.option(
        "--set", "assignments", type=Assignment(), multiple=True, metavar="NAME=VALUE",
        help="Give a var of the spec's `vars` another value (repeatable), e.g. --set size=256.")(func)


def input_options(func: F) -> F:
    """`--input SHAPE` and `--set NAME=VALUE` (repeatable): a spec's input and vars from the
    command line; the command gets `input_shape` and `assignments`."""
    func = set_option(func)
    func = click.option(
        "-i", "--input", "input_shape", type=InputShape(), metavar="SHAPE",
        help="Use this input shape (without the batch) instead of the spec's, e.g. 3x256x256.")(func)
    return func


def load_revision(path: str, rev: str, max_layers: int = DEFAULT_MAX_LAYERS) -> Network:
    """The spec at `path` as committed at git revision `rev` (`convcalc.load.read_revision`)."""
    from convcalc.load import parse_source, read_revision

    ctx = click.get_current_context(silent=True)
    sources = ctx.meta.setdefault("convcalc.sources", {}) if ctx is not None else None
    return kept(parse_source(read_revision(path, rev), max_layers, sources, keep=cli.KEPT))


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
    from rich.console import COLOR_SYSTEMS, Console
    from rich.control import strip_control_codes
    from rich.style import Style

    console = Console(file=stream, highlight=False, force_terminal=True, width=term.width,
                      color_system="auto" if term.colour(err) else None)
    if console.legacy_windows or any("\t" in text for line in lines for text, _ in line):
        from rich.text import Text  # tabs to expand, or a console that is not written with escape codes

        for line in lines:
            console.print(Text.assemble(*line), soft_wrap=True)
        return
    # What console.print(Text.assemble(*line), soft_wrap=True) writes for each line, byte for
    # byte (tests/test_cli_table.py compares them), without rich's layout machinery, which took
    # a third of the command's time: each piece in its style's escape codes.
    system = COLOR_SYSTEMS.get(console.color_system or "")
    out = []
    for line in lines:
        for text, style in line:
            text = strip_control_codes(text)
            out.append(Style.parse(style).render(text, color_system=system) if style and system else text)
        out.append("\n")
    console.file.write("".join(out))
    console.file.flush()


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
