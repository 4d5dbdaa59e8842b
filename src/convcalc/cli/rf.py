"""`convcalc rf` (one layer's theoretical field, explained) and `convcalc erf` (effective field).

`rf` is pure arithmetic (no NumPy). `erf` runs NumPy forward and backward passes; NumPy is
imported inside the command only.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from convcalc.cli import cli
from convcalc.cli.common import echo_rich, load_network, max_layers_option
from convcalc.errors import SpecError

if TYPE_CHECKING:  # the walk is imported by the commands that use it, not at start-up
    from convcalc.fieldwalk import Explanation

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


def number(value: Fraction | int | None) -> int | float | None:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else float(value)
    return value


def frac(value: Fraction | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    return str(int(value))


def explanation_dict(e: Explanation) -> dict[str, Any]:
    axes = []
    for a in e.axes:
        f, r = a.field, a.region
        axes.append({
            "axis": a.axis,
            "size": f.size, "size_min": f.size_min,
            "jump": number(f.jump), "start": number(f.start),
            "period": f.period, "unreached_phases": f.unreached,
            "layer_inputs_per_output": [a.taps_min, a.taps_max],
            "field": list(a.theory) if a.theory else None,
            "reads": list(r.span) if r.span else None,
            "pixels_read": len(r.indices),
            "clipped": r.clipped,
            "input_size": r.size,
        })
    return {
        "path": e.path, "type": e.type, "input_shape": list(e.input_shape),
        "output_shape": list(e.output_shape), "position": list(e.position),
        "axes": axes, "pixels_read": e.pixels, "coverage": round(e.coverage, 6),
        **({"whole_input": True} if e.whole else {}),  # only after a global-pool gate
        "exact": not any(a.region.approximate for a in e.axes),
        "warnings": [{"path": w.path, "type": w.layer_type, "code": w.code, "message": w.message}
                     for w in e.warnings],
    }


def explanation_table(e: Explanation) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("")
    for a in e.axes:
        table.add_column(a.axis, justify="right")

    def row(label: str, cells: list[str]) -> None:
        table.add_row(label, *cells)

    fields = [a.field for a in e.axes]
    row("field size (max)", [str(f.size) for f in fields])
    if any(f.size_min != f.size for f in fields):
        row("field size (min)", [str(f.size_min) for f in fields])
    row("jump", [frac(f.jump) for f in fields])
    row("start", [frac(f.start) for f in fields])
    if any(f.period > 1 for f in fields):
        row("period (outputs)", [str(f.period) for f in fields])
        row("unreached phases", [f"{f.unreached} of {f.period}" for f in fields])
    if any(a.taps_min != a.taps_max for a in e.axes):
        row("this layer's inputs/output", [f"{a.taps_min}..{a.taps_max}" for a in e.axes])
    row("position", [str(p) for p in e.position])
    row("field of position", [f"[{a.theory[0]}, {a.theory[1]}]" if a.theory else "none" for a in e.axes])
    row("reads from input", [f"[{a.region.span[0]}, {a.region.span[1]}]" if a.region.span else "nothing"
                             for a in e.axes])
    row("pixels read", [f"{len(a.region.indices)} of {a.region.size}" for a in e.axes])
    row("clipped by border", ["yes" if a.region.clipped else "no" for a in e.axes])
    title = Text.assemble((e.path, "cyan"), f" ({e.type}): input {'x'.join(map(str, e.input_shape))}"
                          f" -> output {'x'.join(map(str, e.output_shape))}")
    summary = Text(f"Position {','.join(map(str, e.position))} reads {e.pixels:,} input pixels per channel;"
                   f" its box covers {100 * e.coverage:.1f}% of the input.")
    parts: list[Any] = [title, table, Text(""), summary]
    if e.whole:
        parts.append(Text("Every position's field is the whole input: a global-pool gate (mul) feeds this layer."))
    if any(a.region.approximate for a in e.axes):
        parts.append(Text("Too many distinct branch paths: the region is the per-axis union (may be larger).",
                          style="yellow"))
    for w in e.warnings:
        parts.append(Text.assemble("  ", (w.path, "cyan"), f" ({w.layer_type}) ", (f"[{w.code}]", "yellow"),
                                   f" {w.message}"))
    return Group(*parts)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--at", "at", metavar="PATH", help="The layer (module path as in `shapes`); default: the"
              " last spatial layer whose output is not 1 pixel.")
@click.option("--position", metavar="Y,X", help="Output position (one index per spatial axis);"
              " default: the centre, (n - 1) // 2 per axis.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, json for scripts.")
@max_layers_option
def rf(spec: str, at: str | None, position: str | None, fmt: str, max_layers: int) -> None:
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
    """
    network = load_network(spec, max_layers)
    from convcalc.fieldwalk import explain

    e = explain(network, at, parse_position(position))
    if fmt == "json":
        click.echo(json.dumps(explanation_dict(e), indent=2))
    else:
        echo_rich(explanation_table(e))


# --- erf --------------------------------------------------------------------------------------

SHADES = " .:-=+*#%@"


def heat_text(heat: Any, width: int) -> Any:
    """The map as coloured half-blocks (two rows per line), shrunk to `width` columns."""
    import numpy as np
    from rich.text import Text

    from convcalc.render.png import colour

    if heat.ndim == 1:
        heat = heat[None, :]
    step = max(1, -(-heat.shape[1] // width))
    h, w = -(-heat.shape[0] // step), -(-heat.shape[1] // step)
    padded = np.zeros((h * step, w * step))
    padded[: heat.shape[0], : heat.shape[1]] = heat
    small = padded.reshape(h, step, w, step).mean(axis=(1, 3))
    small = small / small.max() if small.max() > 0 else small
    text = Text()
    for top in range(0, h, 2):
        for x in range(w):
            upper = colour(float(small[top, x]))
            lower = colour(float(small[top + 1, x])) if top + 1 < h else (0, 0, 0)
            text.append("▀", style=f"rgb({upper[0]},{upper[1]},{upper[2]}) on rgb({lower[0]},{lower[1]},{lower[2]})")
        text.append("\n")
    return text


def run_erf(network: Any, at: str | None, position: tuple[int, ...] | None, samples: int, seed: int,
            dtype: str) -> tuple[Any, Explanation]:
    from convcalc.analysis import analyze
    from convcalc.fieldwalk import explain, find
    from convcalc.numeric.backward import effective_field

    e = explain(network, at, position)
    graph = analyze(network).rows
    target = find(graph, e.path)
    centre = tuple((a.theory[0] + a.theory[1]) / 2 if a.theory else (a.region.size - 1) / 2 for a in e.axes)
    if not sys.stderr.isatty():
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
@click.option("--layer", "at", metavar="PATH", help="The layer (module path as in `shapes`); default: the"
              " last spatial layer whose output is not 1 pixel.")
@click.option("--position", metavar="Y,X", help="Output position; default: the centre.")
@click.option("--samples", type=click.IntRange(min=1), default=8, show_default=True,
              help="Random inputs to average over (run as one batch).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and inputs.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--png", "png_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the map as a PNG image (2D: the map; 3D: the centre slice).")
@click.option("--npy", "npy_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the map as a NumPy .npy array (input spatial shape, float64).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the map as CSV (one row per input row; 3D: the centre slice).")
@click.option("--width", type=click.IntRange(min=8), default=64, show_default=True,
              help="Columns of the terminal heat map.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@max_layers_option
def erf(spec: str, at: str | None, position: str | None, samples: int, seed: int, dtype: str,
        png_path: str | None, npy_path: str | None, csv_path: str | None, width: int, fmt: str,
        max_layers: int) -> None:
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

    network = load_network(spec, max_layers)
    field, e = run_erf(network, at, parse_position(position), samples, seed, dtype)
    heat = field.heat
    flat = heat if heat.ndim <= 2 else heat[heat.shape[0] // 2]
    if png_path:
        from convcalc.render.png import heatmap_png

        image = flat if flat.ndim == 2 else np.repeat(flat[None, :], max(1, flat.shape[0] // 16), axis=0)
        scaled = image / image.max() if image.max() > 0 else image
        Path(png_path).write_bytes(heatmap_png(scaled.tolist()))
    if npy_path:
        with open(npy_path, "wb") as out:
            np.save(out, heat)
    if csv_path:
        rows = flat if flat.ndim == 2 else flat[None, :]
        Path(csv_path).write_text("\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    theory = [a.field.size for a in e.axes]
    data = {
        "path": e.path, "type": e.type, "position": list(e.position), "samples": samples, "seed": seed,
        "dtype": dtype, "input_shape": list(network.input_shape),
        "centre": list(field.centre), "theoretical_size": theory,
        "pixels_read": e.pixels,
        "radius_50": round(field.radius50, 3), "radius_95": round(field.radius95, 3),
        "mass_total": float(heat.sum()),
    }
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Group
    from rich.text import Text

    size = "x".join(map(str, theory))
    lines = [
        Text.assemble("Effective receptive field of ", (e.path, "cyan"),
                      f" ({e.type}) at {','.join(map(str, e.position))}: {samples} samples, {dtype}, seed {seed}"),
        heat_text(flat, width),
        Text(f"50% of the gradient mass lies within radius {field.radius50:.1f} px"
             f" (~{2 * field.radius50 + 1:.0f} px wide), 95% within {field.radius95:.1f} px"
             f" (~{2 * field.radius95 + 1:.0f} px wide);"
             f" the theoretical field is {size} px ({e.pixels:,} input pixels read)."),
    ]
    echo_rich(Group(*lines))
