"""`convcalc rf` (one layer's theoretical field, explained) and `convcalc erf` (effective field).

`rf` is pure arithmetic (no NumPy). `erf` runs NumPy forward and backward passes; NumPy is
imported inside the command only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from convcalc.cli import cli
from convcalc.cli.common import Assignments, Shape, emit, input_options, load_network, max_layers_option, terminal
from convcalc.errors import SpecError
from convcalc.render.env import Terminal

if TYPE_CHECKING:  # the walk is imported by the commands that use it, not at start-up
    from convcalc.fieldwalk import Explanation
    from convcalc.numeric.backward import EffectiveField

FORMATS = ("table", "json")


def parse_position(text: str | None) -> tuple[int, ...] | None:
    """`3,4` or `3x4` (one index per spatial axis)."""
    if text is None:
        return None
    parts = text.replace("x", ",").split(",")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise SpecError(f"--position must be integers separated by commas, like 3,4 (got {text!r})") from None


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@input_options
@click.option("--at", "at", metavar="PATH", help="The layer (module path as in `shapes`); default: the"
              " first of several outputs: with spatial axes, else the last spatial layer whose output is"
              " not 1 pixel.")
@click.option("--position", metavar="Y,X", help="Output position (one index per spatial axis);"
              " default: the centre, (n - 1) // 2 per axis.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for scripts.")
@max_layers_option
def rf(spec: str, input_shape: Shape | None, assignments: Assignments, at: str | None, position: str | None,
       fmt: str, max_layers: int) -> None:
    """Explain one layer's receptive field in SPEC.

    Size, jump (effective stride) and start per axis, for every output position
    (padding included; fields of transposed convolutions and upsampling vary with the
    position, so the min and max are shown); then the input region that one output
    position really reads (padding excluded, branches united), whether the input border
    clips it, and how much of the input it covers.

    \b
    Examples:
      convcalc rf examples/resnet18.yaml --at layer3.1.relu_out
      convcalc rf net.yaml --at up2 --position 0,0 --format json
      convcalc rf examples/resnet18.yaml --input 3x512x512
    """
    network = load_network(spec, max_layers, dict(assignments), input_shape)
    from convcalc.fieldwalk import explain
    from convcalc.render.field import render_explanation

    emit(render_explanation(explain(network, at, parse_position(position)), fmt))


# --- erf --------------------------------------------------------------------------------------

def run_erf(network: Any, at: str | None, position: tuple[int, ...] | None, samples: int, seed: int,
            dtype: str, terminal: Terminal | None = None) -> tuple[EffectiveField, Explanation]:
    from convcalc.analysis import analyze
    from convcalc.fieldwalk import explain, find
    from convcalc.numeric.backward import effective_field

    e = explain(network, at, position)
    graph = analyze(network).rows
    target = find(graph, e.path)
    centre = tuple((a.theory[0] + a.theory[1]) / 2 if a.theory else (a.region.size - 1) / 2 for a in e.axes)
    if not (terminal or Terminal.detect()).stderr_tty:
        return effective_field(graph, network, target, e.position, centre, samples, seed, dtype), e
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("forward + backward"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("", total=2 * (target + 1))
        field = effective_field(graph, network, target, e.position, centre, samples, seed, dtype,
                                progress=lambda done, total: bar.update(task, completed=done))
    return field, e


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@input_options
@click.option("--layer", "--at", "at", metavar="PATH", help="The layer (module path as in `shapes`; --at as"
              " in `rf`); default: the first of several outputs with spatial axes, else the last spatial"
              " layer whose output is not 1 pixel.")
@click.option("--position", metavar="Y,X", help="Output position; default: the centre.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="Random inputs to average over (run as one batch).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and inputs.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--png", "png_path", type=click.Path(dir_okay=False, writable=True),
              help="Write a figure of the map as PNG: the theoretical field and a margin, in input pixels, with"
              " the field's box and the 50 %/95 % radii (1D: a line plot; 3D: the centre slice).")
@click.option("--npy", "npy_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the map as a NumPy .npy array (input spatial shape, float64).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the map as CSV (one row per input row; 3D: the centre slice).")
@click.option("--width", type=click.IntRange(min=8), default=64, show_default=True,
              help="Columns of the terminal heat map.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@max_layers_option
def erf(spec: str, input_shape: Shape | None, assignments: Assignments, at: str | None, position: str | None,
        samples: int, seed: int, dtype: str, png_path: str | None, npy_path: str | None, csv_path: str | None,
        width: int, fmt: str, max_layers: int) -> None:
    """Effective receptive field of one output of SPEC (Luo et al., 2016).

    With random weights and real activations (ReLU masks, max-pool arg-max, BatchNorm
    in inference mode), the mean over --samples random inputs of |d(output at the
    position, summed over channels)/d(input)|, summed over input channels. Shows it as a
    heat map, with the radius around the field centre that holds 50 % and 95 % of it
    next to the theoretical size.

    \b
    Examples:
      convcalc erf examples/resnet18.yaml --png erf.png
      convcalc erf net.yaml --layer layer3.1.relu_out --samples 32 --npy erf.npy
    """
    import numpy as np

    network = load_network(spec, max_layers, dict(assignments), input_shape)
    loading = None
    if png_path:
        from convcalc.render.figure import preload

        loading = preload()  # matplotlib's import overlaps the NumPy passes
    field, e = run_erf(network, at, parse_position(position), samples, seed, dtype, terminal())
    heat = field.heat
    flat = heat if heat.ndim <= 2 else heat[heat.shape[0] // 2]
    if png_path:
        from convcalc.render.figure import erf_png

        if loading is not None:
            loading.join()
        Path(png_path).write_bytes(erf_png(e, field, samples, seed, dtype))
    if npy_path:
        with open(npy_path, "wb") as out:
            np.save(out, heat)
    if csv_path:
        rows = flat if flat.ndim == 2 else flat[None, :]
        Path(csv_path).write_text("\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    from convcalc.render.field import render_erf

    emit(render_erf(e, field, network.input_shape, samples, seed, dtype, fmt, width, terminal().colour()))
