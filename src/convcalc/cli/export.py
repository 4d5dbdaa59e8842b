"""`convcalc export`: a spec as code for a framework (`--to pytorch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from convcalc.analysis import analyze
from convcalc.cli import cli
from convcalc.cli.common import load_network, max_layers_option, set_option
from convcalc.errors import SpecError

TARGETS = ("pytorch",)  # convcalc.export.TARGETS, named here so --help does not import the exporters


@cli.command("export")
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--to", "target", type=click.Choice(TARGETS), required=True,
              help="The framework: pytorch writes a standalone Python file that needs only torch.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write to this file instead of stdout.")
@set_option
@max_layers_option
def export_command(spec: str, target: str, output: str | None, assignments: tuple[tuple[str, Any], ...],
                   max_layers: int) -> None:
    """Write SPEC as code to train: with --to pytorch, a standalone Python file.

    The file imports torch only. Each block of the spec is an nn.Module class whose
    constructor takes the input channels and the block's arguments; the network is the
    class `Network()`; vars are module constants; repeat is a loop. Where layers read
    outputs by path (from:, add/mul/concat items, size_of, several outputs), the class
    writes its forward, one named value per step. Module paths are convcalc's, so its
    state_dict keys are the paths `convcalc shapes` shows, and it equals
    `convcalc.torch.build(SPEC)`. Running the file prints the output shape.

    \b
    Examples:
      convcalc export examples/resnet50.yaml --to pytorch -o resnet50.py
      convcalc export net.yaml --to pytorch --set width=64 > net.py
    """
    from convcalc.export import export

    network = load_network(spec, max_layers, dict(assignments))
    report = analyze(network)
    label = "<stdin>" if spec == "-" else spec
    text = export(network, report, target, label)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text)
    except OSError as err:
        raise SpecError(f"cannot write {output}: {err.strerror or err}") from None
    click.echo(f"wrote {output}: class Network ({network.name}, {report.totals.params:,} parameters)", err=True)
