"""`convcalc sweep`: one spec at many input sizes, or at many values of one of its vars."""

from __future__ import annotations

from pathlib import Path

import click

from convcalc.cli import cli
from convcalc.cli.common import emit, load_network, max_layers_option, memory_options
from convcalc.cli.lint import OPTIMIZERS
from convcalc.errors import SpecError


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--size", metavar="START:STOP:STEP", help="Input sizes, every spatial axis set to each:"
              " 128:512:32 (stop included), or a list like 224,256,320.")
@click.option("--set", "assignment", metavar="NAME=START:STOP:STEP",
              help="Sweep one of the spec's vars instead: width=16:64:16 (or NAME=a,b,c).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="none", show_default=True,
              help="Optimizer state counted in the training memory (sgd none, sgd-momentum 1, adam 2 per param).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE.png",
              help="Also draw MACs and memory against the swept value as a PNG (invalid values marked).")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="table for people, csv or json (versioned contract) for scripts.")
@memory_options
@max_layers_option
def sweep(spec: str, size: str | None, assignment: str | None, optimizer: str, plot_path: str | None, fmt: str,
          batch_size: int, dtype: str, max_layers: int) -> None:
    """SPEC at many input sizes (--size) or values of one var (--set).

    For each value: whether the shapes work (if not, which layer fails and why), the
    output shape, parameters, MACs, activation memory (every layer's output) and the
    memory of one training step (--training of `shapes`). --size parses the spec once and
    re-runs shape inference per size; --set parses it again per value, since vars are
    resolved while parsing. An invalid value is a row, not an error.

    \b
    Examples:
      convcalc sweep examples/resnet50.yaml --size 128:512:32
      convcalc sweep net.yaml --size 32:2048:32 --plot sweep.png --format csv > sweep.csv
      convcalc sweep examples/densenet121.yaml --set growth=16:48:8 -b 32 --optimizer adam
    """
    from convcalc.render.sweep import render_sweep
    from convcalc.sweep import parse_values, sweep_sizes, sweep_var

    if (size is None) == (assignment is None):
        raise SpecError("give one of --size START:STOP:STEP and --set NAME=START:STOP:STEP")
    if size is not None:
        network = load_network(spec, max_layers)
        result = sweep_sizes(network, parse_values(size, "--size"), batch_size, dtype, optimizer)
    else:
        assert assignment is not None
        name, sep, values = assignment.partition("=")
        if not sep or not name.strip():
            raise SpecError(f"--set takes NAME=START:STOP:STEP like width=16:64:16 (got {assignment!r})")
        from convcalc.load import read_source
        from convcalc.spec.parser import Limits

        ctx = click.get_current_context()
        source = read_source(spec)
        ctx.meta.setdefault("convcalc.sources", {})[source.name] = source
        result = sweep_var(source, name.strip(), parse_values(values, f"--set {name.strip()}"), batch_size, dtype,
                           optimizer, Limits(max_layers=max_layers))
    emit(render_sweep(result, fmt))
    if plot_path:
        from convcalc.render.sweep import plot_png

        Path(plot_path).write_bytes(plot_png(result))
