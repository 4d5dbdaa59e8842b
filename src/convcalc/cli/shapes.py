"""`convcalc shapes`, `convcalc layer` and `convcalc layers`."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

import click
import yaml

from convcalc.analysis import Report, analyze
from convcalc.cli import cli
from convcalc.cli.common import (
    Assignments,
    Shape,
    emit,
    format_option,
    input_options,
    load_network,
    max_layers_option,
    memory_options,
    terminal,
)
from convcalc.cli.lint import fail_on_warnings, linted_report, strict_option, training_options
from convcalc.cli.verify import finish_verification, verify_options, verify_report
from convcalc.errors import ConvcalcError, SpecError
from convcalc.layers import REGISTRY
from convcalc.layers.base import Bool
from convcalc.network import Network
from convcalc.spec.parser import Limits, Parser
from convcalc.spec.source import Source

if TYPE_CHECKING:
    from convcalc.graph import Graph
    from convcalc.numeric.result import Verification
    from convcalc.training import TrainingMemory


def emit_report(report: Report, fmt: str, verification: Verification | None = None,
                training: TrainingMemory | None = None, columns: tuple[str, ...] | None = None,
                depth: int | None = None, graph: Graph | None = None) -> None:
    """Print a report in the chosen format (see `render.report`); a table on a terminal is
    fitted to its width."""
    from convcalc.render.report import render_report
    from convcalc.render.table import View

    term = terminal()
    width = term.width if fmt == "table" and term.is_terminal() else None
    emit(render_report(report, fmt, verification, training, View(columns, depth, width), graph))


class ColumnList(click.ParamType):
    """`path,output,params,macs`: table columns by name, in order."""

    name = "NAMES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        from convcalc.render.table import COLUMN_NAMES

        if isinstance(value, tuple):
            return value
        names = tuple(n.strip().lower() for n in str(value).split(",") if n.strip())
        unknown = [n for n in names if n not in COLUMN_NAMES]
        if unknown or not names:
            what = f"unknown column '{unknown[0]}'" if unknown else "no columns given"
            self.fail(f"{what}; choose from {', '.join(COLUMN_NAMES)}", param, ctx)
        if len(set(names)) != len(names):
            self.fail(f"a column is named twice in {value!r}", param, ctx)
        return names


def view_options(func: Any) -> Any:
    func = click.option(
        "--columns", type=ColumnList(), metavar="NAMES",
        help="The table's columns, comma-separated, from: path, type, input, output, params, params%, buffers,"
             " macs, macs%, flops, activations, rf, jump, start (also for csv and markdown).")(func)
    func = click.option(
        "-d", "--depth", type=click.IntRange(min=0), metavar="N",
        help="Rows for the blocks, branches and repeats nested at most N deep, each with the subtotals of"
             " everything inside, and the layers at that depth (1: the top-level items). JSON and CSV keep"
             " every layer and gain the groups.")(func)
    return func


ignore_option = click.option(
    "--ignore", multiple=True, metavar="CODE",
    help="Leave out warnings with this code (e.g. unread-pixels); repeatable.")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@input_options
@format_option()
@memory_options
@ignore_option
@strict_option
@training_options
@view_options
@max_layers_option
@verify_options
def shapes(spec: str, input_shape: Shape | None, assignments: Assignments, fmt: str, batch_size: int, dtype: str,
           ignore: tuple[str, ...], strict: bool, training: bool, amp: bool, amp_dtype: str, optimizer: str,
           depth: int | None, columns: tuple[str, ...] | None, max_layers: int, verify: bool, seed: int,
           max_memory: int, weights: str | None) -> None:
    """Per-layer output shapes, receptive fields, parameters, MACs and memory of SPEC.

    SPEC is a YAML or JSON file ('-' reads stdin). Each row is one leaf layer in execution
    order, named by its module path (like PyTorch's `layer3.1.conv2`); merges appear as
    `add` and `concat` rows. RF is the receptive field size in input pixels and Jump its
    effective stride (per axis when they differ); Params% and MACs% are shares of the totals.

    On a terminal the table shows the nesting (layers indented under their block, each
    block with its subtotals) and fits the terminal's width: numbers are abbreviated and the
    least important columns left out rather than wrapped. Piped, it is complete and exact.

    \b
    Examples:
      convcalc shapes examples/resnet50.yaml
      convcalc shapes net.yaml --format json > shapes.json
      convcalc shapes net.yaml --batch-size 32 --dtype float16
      convcalc shapes net.yaml --verify --seed 1
      convcalc shapes net.yaml --training --amp --optimizer adam -b 32
      convcalc shapes net.yaml --input 3x256x256 --set width=32
      convcalc shapes examples/resnet50.yaml --depth 1
      convcalc shapes net.yaml --columns path,output,params,macs,macs%
      convcalc shapes net.yaml --verify --weights trained.pt
    """
    if columns is not None and fmt == "json":
        raise click.BadParameter("JSON always has every field; --columns picks the columns of table, csv and"
                                 " markdown output", param_hint="'--columns'")
    network = load_network(spec, max_layers, dict(assignments), input_shape)
    report = linted_report(network, analyze(network, batch_size, dtype), ignore)
    if weights is not None and not verify:
        raise SpecError("--weights is for --verify: add --verify to run the network with them")
    verification = verify_report(network, report, seed, max_memory, terminal(), weights) if verify else None
    memory = None
    if training or amp:
        from convcalc.training import training_memory

        memory = training_memory(network, report, optimizer, amp_dtype if amp else None)
    emit_report(report, fmt, verification, memory, columns, depth, network.graph)
    if verification is not None:
        finish_verification(verification)
    if strict:
        fail_on_warnings(report)


def parse_layer_flags(words: list[str]) -> dict[str, Any]:
    """`--out-channels 64 --kernel-size 3,3 --no-bias` into {out_channels: 64, ...}."""
    args: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) < 3:
            raise SpecError(f"expected an option like --kernel-size, got {word!r}")
        name, _, inline = word[2:].partition("=")
        key = name.replace("-", "_")
        if inline:
            text: str | None = inline
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            text = words[i + 1]
            i += 1
        else:
            text = None
        if text is None:
            if key.startswith("no_"):
                args[key[3:]] = False
            else:
                args[key] = True
        else:
            if "," in text and not text.lstrip().startswith("["):
                text = f"[{text}]"
            try:
                args[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                args[key] = text
        i += 1
    return args


class LayerCommand(click.Command):
    """`convcalc layer`: its help lists the arguments of the TYPE named on the command line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # --help is eager and runs before TYPE is an argument: note TYPE from the words first.
        named = [word for word in args if word in REGISTRY]
        if named:
            ctx.meta["convcalc.layer_type"] = named[0]
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        name = ctx.meta.get("convcalc.layer_type")
        if name is not None:
            from convcalc.layers.base import describe

            lt = REGISTRY[name]
            rows = []
            for arg in lt.args:
                flag = f"--{arg.name.replace('_', '-')}"
                if isinstance(arg.kind, Bool):
                    flag = f"{flag} / --no-{arg.name.replace('_', '-')}"
                default = "required" if arg.required else f"default: {describe(arg.default)}"
                rows.append((flag, f"{arg.doc} [{default}]"))
            with formatter.section(f"Arguments of {name}"):
                formatter.write_text(lt.summary)
                formatter.write_paragraph()
                if rows:
                    formatter.write_dl(rows)
                else:
                    formatter.write_text("It takes no arguments.")
        super().format_epilog(ctx, formatter)


@cli.command(cls=LayerCommand, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("layer_type", metavar="TYPE")
@click.option("-i", "--input", "input_shape", required=True, metavar="SHAPE",
              help="Input shape without the batch, e.g. 3x224x224 or 64x56x56.")
@format_option()
@memory_options
@verify_options
@click.pass_context
def layer(ctx: click.Context, layer_type: str, input_shape: str, fmt: str, batch_size: int, dtype: str,
          verify: bool, seed: int, max_memory: int, weights: str | None) -> None:
    """One layer from flags, without a spec file.

    The layer's arguments are its torch.nn names in kebab case: `--out-channels 64`,
    `--kernel-size 3` or `--kernel-size 3,5`, `--padding same`, `--no-bias`
    (`convcalc layer TYPE --help` lists them). A layer without spatial axes takes a
    one-number input: `convcalc layer linear -i 2048 --out-features 1000`.

    \b
    Example:
      convcalc layer conv2d --input 3x224x224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3
    """
    args = parse_layer_flags(list(ctx.args))
    # A spec's input has a channel and spatial axes; one layer may take a plain vector (linear).
    vector = re.fullmatch(r"\s*\[?\s*(\d+)\s*\]?\s*", input_shape)
    spec = {"name": layer_type, "input": "1x1" if vector else input_shape, "layers": [{layer_type: args or None}]}
    node = yaml.SafeDumper(None).represent_data(spec)  # type: ignore[arg-type]
    try:
        network: Network = Parser(Source("<command line>", ""), Limits()).network(node)
        if vector:
            network = dataclasses.replace(network, input_shape=(int(vector.group(1)),))
        report = analyze(network, batch_size, dtype)
    except ConvcalcError as err:
        err.path = None  # the one layer's path ("0") means nothing on a command line
        raise
    if weights is not None and not verify:
        raise SpecError("--weights is for --verify: add --verify to run the layer with them")
    verification = verify_report(network, report, seed, max_memory, terminal(), weights) if verify else None
    emit_report(report, fmt, verification=verification)
    if verification is not None:
        finish_verification(verification)


@cli.command("layers")
@click.argument("name", required=False)
def list_layers(name: str | None) -> None:
    """Every layer type a spec may use, or one type's arguments in detail."""
    from convcalc.render.layers import render_layers

    if name is not None and name not in REGISTRY:
        from convcalc.errors import suggest

        raise SpecError(f"unknown layer type '{name}'{suggest(name, REGISTRY.names())}")
    emit(render_layers(name))
