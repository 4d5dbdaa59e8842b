"""`convcalc shapes`, `convcalc layer` and `convcalc layers`."""

from __future__ import annotations

from typing import Any

import click
import yaml

from convcalc.analysis import Report, analyze
from convcalc.cli import cli
from convcalc.cli.common import echo_lines, echo_rich, format_option, load_network, max_layers_option, memory_options
from convcalc.cli.lint import fail_on_warnings, linted_report, strict_option, training_options
from convcalc.cli.verify import finish_verification, verify_options, verify_report
from convcalc.errors import ConvcalcError, SpecError
from convcalc.layers import REGISTRY
from convcalc.network import Network
from convcalc.spec.parser import Limits, Parser
from convcalc.spec.source import Source


def emit_report(report: Report, fmt: str, verification: Any = None, training: Any = None) -> None:
    """Print a report in the chosen format.

    With a `verification` (--verify), the table gains a Verified column and JSON the
    `verified` fields; csv and markdown get a summary line on stderr. `training` (--training)
    adds a column, a summary and a JSON object likewise.
    """
    if fmt == "table":
        from convcalc.render.table import Column, Line, report_table

        columns: tuple[Column, ...] = ()
        if verification is not None:
            from convcalc.cli.verify import summary, verified_cells

            columns = (Column("Verified", verified_cells(verification)),)
        if training is not None:
            from convcalc.render.training import saved_cells

            columns = (*columns, Column("Kept for backward", saved_cells(training), right=True))
        lines = report_table(report, columns)
        if verification is not None:
            lines += [[], [(summary(verification), "bold green" if verification.ok else "bold red")]]
        if training is not None:
            from convcalc.render.training import summary_lines

            summary_text: list[Line] = [[(text, None)] for text in summary_lines(training, report.batch_size)]
            lines += [[], *summary_text]
        echo_lines(lines)
        return
    from convcalc.render import plain

    if fmt == "json":
        sections = None
        if training is not None:
            from convcalc.render.training import training_dict

            sections = {"training": training_dict(training, report.totals.buffers)}
        text = plain.to_json(report, verification, sections)
    else:
        text = {"csv": plain.to_csv, "markdown": plain.to_markdown}[fmt](report)
    click.echo(text, nl=False)
    if verification is not None and fmt != "json":
        from convcalc.cli.verify import summary

        click.echo(summary(verification), err=True)
    if training is not None and fmt != "json":
        from convcalc.render.training import summary_lines

        click.echo("\n".join(summary_lines(training, report.batch_size)), err=True)
    if fmt == "csv":
        for w in report.warnings:
            click.echo(f"warning: {w.path} ({w.layer_type}) [{w.code}]: {w.message}", err=True)


ignore_option = click.option(
    "--ignore", multiple=True, metavar="CODE",
    help="Leave out warnings with this code (e.g. unread-pixels); repeatable.")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@format_option()
@memory_options
@ignore_option
@strict_option
@training_options
@max_layers_option
@verify_options
def shapes(spec: str, fmt: str, batch_size: int, dtype: str, ignore: tuple[str, ...], strict: bool,
           training: bool, optimizer: str, max_layers: int, verify: bool, seed: int, max_memory: int) -> None:
    """Per-layer output shapes, receptive fields, parameters, MACs and memory of SPEC.

    SPEC is a YAML or JSON file ('-' reads stdin). Each row is one leaf layer in execution
    order, named by its module path (like PyTorch's `layer3.1.conv2`); merges appear as
    `add` and `concat` rows. RF is the receptive field size in input pixels and Jump its
    effective stride (per axis when they differ).

    \b
    Examples:
      convcalc shapes examples/resnet50.yaml
      convcalc shapes net.yaml --format json > shapes.json
      convcalc shapes net.yaml --batch-size 32 --dtype float16
      convcalc shapes net.yaml --verify --seed 1
    """
    network = load_network(spec, max_layers)
    report = linted_report(network, analyze(network, batch_size, dtype), ignore)
    verification = verify_report(network, report, seed, max_memory) if verify else None
    memory = None
    if training:
        from convcalc.training import training_memory

        memory = training_memory(network, report, optimizer)
    emit_report(report, fmt, verification, memory)
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


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("layer_type", metavar="TYPE")
@click.option("-i", "--input", "input_shape", required=True, metavar="SHAPE",
              help="Input shape without the batch, e.g. 3x224x224 or 64x56x56.")
@format_option()
@memory_options
@verify_options
@click.pass_context
def layer(ctx: click.Context, layer_type: str, input_shape: str, fmt: str, batch_size: int, dtype: str,
          verify: bool, seed: int, max_memory: int) -> None:
    """One layer from flags, without a spec file.

    The layer's arguments are its torch.nn names in kebab case: `--out-channels 64`,
    `--kernel-size 3` or `--kernel-size 3,5`, `--padding same`, `--no-bias`.

    \b
    Example:
      convcalc layer conv2d --input 3x224x224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3
    """
    args = parse_layer_flags(list(ctx.args))
    spec = {"name": layer_type, "input": input_shape, "layers": [{layer_type: args or None}]}
    node = yaml.SafeDumper(None).represent_data(spec)  # type: ignore[arg-type]
    try:
        network: Network = Parser(Source("<command line>", ""), Limits()).network(node)
        report = analyze(network, batch_size, dtype)
    except ConvcalcError as err:
        err.path = None  # the one layer's path ("0") means nothing on a command line
        raise
    verification = verify_report(network, report, seed, max_memory) if verify else None
    emit_report(report, fmt, verification=verification)
    if verification is not None:
        finish_verification(verification)


@cli.command("layers")
@click.argument("name", required=False)
def list_layers(name: str | None) -> None:
    """Every layer type a spec may use, or one type's arguments in detail."""
    from rich.table import Table

    from convcalc.layers.base import describe

    if name is not None:
        if name not in REGISTRY:
            from convcalc.errors import suggest

            raise SpecError(f"unknown layer type '{name}'{suggest(name, REGISTRY.names())}")
        lt = REGISTRY[name]
        if not lt.args:
            click.echo(f"{name}: {lt.summary}\nIt takes no arguments.")
            return
        table = Table(title=f"{name}: {lt.summary}", title_justify="left", box=None, header_style="bold")
        for column in ("Argument", "Default", "Meaning"):
            table.add_column(column)
        for arg in lt.args:
            table.add_row(arg.name, "required" if arg.required else describe(arg.default), arg.doc)
        echo_rich(table)
        return
    table = Table(box=None, header_style="bold")
    table.add_column("Type", style="cyan", no_wrap=True)
    table.add_column("Arguments (torch.nn names; * required)")
    for type_name in REGISTRY.names():
        lt = REGISTRY[type_name]
        table.add_row(type_name, ", ".join(a.name + ("*" if a.required else "") for a in lt.args) or "-")
    echo_rich(table)
