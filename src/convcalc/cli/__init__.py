"""The command line: a thin click layer over the parser, the core and the renderers.

This package is the only place that prints or knows about click. The terminal (ttys, colour,
width) is decided once, when a command starts, as a `render.env.Terminal` in `ctx.obj` (tests
may pass their own: `CliRunner().invoke(cli, args, obj=Terminal(...))`). Every deliberate
error is a `ConvcalcError`, caught here in one place and turned into one message and its exit
status (0 ok, 1 a check failed or the output could not be written, 2 bad input);
`--traceback` re-raises.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from convcalc import __version__

if TYPE_CHECKING:
    from convcalc.errors import ExitStatus

HELP = """Shapes, receptive fields, parameters and costs of convolutional networks.

\b
Describe a network in a YAML or JSON spec (see the README's "Spec format") and run:
  convcalc shapes net.yaml                  the per-layer table and totals
  convcalc shapes net.yaml --format json    the same for scripts (versioned contract)
  convcalc layer conv2d --input 3x224x224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3
  convcalc layers                           every layer type and its arguments

\b
Counting conventions: "Params" are trainable parameters; "Buffers" are running
statistics (BatchNorm), not trainable. MACs count the multiply-accumulates of conv,
transposed conv and linear layers only; FLOPs = 2 x MACs. Activation memory is every
layer's output for the batch, at --dtype.

\b
Exit status: 0 ok, 1 a check failed (or the output could not be written), 2 bad input.
"""


# Command name -> the module that defines it, and the first paragraph of its help (its short
# help, as `convcalc --help` lists it; a test checks it against the command). A module
# is imported only when one of its commands runs, so `convcalc shapes` does not load the others
# and `convcalc --help` loads none.
COMMANDS = {
    "check": ("check", "Check each SPEC against its budgets; for CI jobs and pre-commit hooks."),
    "diff": ("diff", "Compare two specs: the layers added, removed and changed, and the totals."),
    "draw": ("draw", "Draw SPEC as a diagram: boxes with parameters and MACs, edges with tensor shapes."),
    "erf": ("rf", "Effective receptive field of one output of SPEC (Luo et al., 2016)."),
    "export": ("export", "Write SPEC as code to train: with --to pytorch, a standalone Python file."),
    "layer": ("shapes", "One layer from flags, without a spec file."),
    "layers": ("shapes", "Every layer type a spec may use, or one type's arguments in detail."),
    "rf": ("rf", "Explain one layer's receptive field in SPEC."),
    "schema": ("schema", "Print the JSON Schema (draft-07) of the spec format."),
    "shapes": ("shapes", "Per-layer output shapes, receptive fields, parameters, MACs and memory of SPEC."),
    "solve": ("solve", "Answer design questions: padding, output_padding, valid input sizes."),
    "sweep": ("sweep", "SPEC at many input sizes (--size) or values of one var (--set)."),
}
COMMAND_MODULES = {name: module for name, (module, _) in COMMANDS.items()}


class ConvcalcGroup(click.Group):
    """Loads command modules on demand, and turns ConvcalcError into one message on
    stderr and its exit status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            importlib.import_module(f"convcalc.cli.{COMMAND_MODULES[name]}")
        command = self.commands.get(name)
        if command is not None and name in COMMANDS and command.short_help is None:
            command.short_help = COMMANDS[name][1]  # what format_commands lists, as click would
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, as click lists them, without importing them."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                summary = COMMANDS[name][1]
            else:  # added at run time (tests, plugins): ask the command itself
                command = self.commands[name]
                if command.hidden:
                    continue
                summary = command.get_short_help_str(limit)
            rows.append((name, summary))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from convcalc.errors import ConvcalcError
        from convcalc.render.env import Terminal

        if not isinstance(ctx.obj, Terminal):
            ctx.obj = Terminal.detect()
        try:
            return super().invoke(ctx)
        except ConvcalcError as err:
            if ctx.meta.get("convcalc.traceback"):
                raise
            from convcalc.render.error import format_error

            click.echo(format_error(err, ctx.meta.get("convcalc.sources", {})), err=True)
            ctx.exit(int(err.exit_status))


def _traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["convcalc.traceback"] = value
    return value


@click.group(cls=ConvcalcGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="convcalc")
@click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=_traceback,
              help="Show the Python traceback of an error (for debugging convcalc).")
def cli() -> None:
    pass


# What the command loaded (the spec's YAML tree and network), kept to the end of the process
# when `main` runs it (see there); None otherwise (in tests, and for library use).
KEPT: list[object] | None = None


def main() -> NoReturn:
    """Console-script entry point: run the command, write its output, exit with its status.

    The process ends with `os._exit` once the exit handlers have run and the output is
    written: Python's own exit would free every object left one by one (the spec's YAML tree
    and network, kept in `KEPT`, and the modules) for memory the system takes back whole.
    Parsing keeps the YAML tree (`convcalc.load.parse_source`) rather than free it halfway
    through the command. Measured side by side, that takes a few percent off a 10,000-layer
    spec's command and off a short command's start-up (`benchmarks/shapes_bench.py`).
    """
    global KEPT
    # A spec becomes many small objects that hold no reference cycles worth collecting (a
    # 40,000-layer spec peaks at the same memory with the collector off), and the cyclic
    # collector rescans them again and again: even at thresholds of 50,000 a 10,000-layer spec
    # spent a quarter of its time there, and more the bigger it grows. A run is short, and
    # reference counting frees what it drops: no cyclic collection during a command.
    gc.disable()
    KEPT = []
    code: object = 0
    try:
        cli(prog_name="convcalc")
    except SystemExit as done:  # how click's main always ends
        code = done.code
    except OSError as err:  # writing the output failed (a full disk; click handles a closed pipe)
        _unwritten(err)
    atexit._run_exitfuncs()  # as Python's exit does, before the streams are flushed
    if code is not None and not isinstance(code, int):  # sys.exit("message"), as Python does it
        print(code, file=sys.stderr)
        code = 1
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except OSError as err:
        _unwritten(err)
    os._exit(code or 0)


def _unwritten(err: OSError) -> NoReturn:
    """Say that the output could not be written, and exit with status 1 (what is left in the
    output's buffer cannot be written either)."""
    try:
        print(f"convcalc: cannot write the output: {err.strerror or err}", file=sys.stderr, flush=True)
    finally:
        os._exit(1)


def __getattr__(name: str) -> Any:
    if name == "ExitStatus":  # re-exported, imported only when asked for
        from convcalc.errors import ExitStatus

        return ExitStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExitStatus", "cli", "main"]
