"""Receptive fields for people and scripts: `rf`'s explanation and `erf`'s map and radii.

rich and NumPy are loaded inside the functions that draw, so the JSON paths stay light.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from convcalc.render.data import fraction_text, number, warning_dict, warning_place
from convcalc.render.output import Rendered

if TYPE_CHECKING:
    from convcalc.fieldwalk import Explanation
    from convcalc.numeric.backward import EffectiveField


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
        "exact": not any(a.region.approximate for a in e.axes),
        "warnings": [warning_dict(w, line=False) for w in e.warnings],
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
    row("jump", [fraction_text(f.jump) for f in fields])
    row("start", [fraction_text(f.start) for f in fields])
    if any(f.period > 1 for f in fields):
        row("period (outputs)", [str(f.period) if f.phases == f.period else f"{f.period} ({f.phases} here)"
                                 for f in fields])
        row("unreached phases", [f"{f.unreached} of {f.phases}" for f in fields])
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
    if any(a.region.approximate for a in e.axes):
        parts.append(Text("Too many distinct branch paths: the region is the per-axis union (may be larger).",
                          style="yellow"))
    for w in e.warnings:
        parts.append(Text.assemble("  ", (warning_place(w), "dim"), (w.path, "cyan"), f" ({w.layer_type}) ",
                                   (f"[{w.code}]", "yellow"),
                                   f" {w.message}"))
    return Group(*parts)


def render_explanation(e: Explanation, fmt: str) -> Rendered:
    """`rf`'s output: indented JSON, or the table with its title and summary."""
    if fmt == "json":
        return Rendered(json.dumps(explanation_dict(e), indent=2) + "\n")
    return Rendered(explanation_table(e))


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


def erf_dict(e: Explanation, field: EffectiveField, input_shape: tuple[int, ...], samples: int, seed: int,
             dtype: str) -> dict[str, Any]:
    """`erf --format json`: the run's settings, the centre, the 50 % and 95 % radii, the mass."""
    return {
        "path": e.path, "type": e.type, "position": list(e.position), "samples": samples, "seed": seed,
        "dtype": dtype, "input_shape": list(input_shape),
        "centre": list(field.centre), "theoretical_size": [a.field.size for a in e.axes],
        "pixels_read": e.pixels,
        "radius_50": round(field.radius50, 3), "radius_95": round(field.radius95, 3),
        "mass_total": float(field.heat.sum()),
    }


def render_erf(e: Explanation, field: EffectiveField, input_shape: tuple[int, ...], samples: int, seed: int,
               dtype: str, fmt: str, width: int) -> Rendered:
    """`erf`'s output: the JSON object, or a title, the heat map (`width` columns) and the radii."""
    if fmt == "json":
        return Rendered(json.dumps(erf_dict(e, field, input_shape, samples, seed, dtype), indent=2) + "\n")
    from rich.console import Group
    from rich.text import Text

    heat = field.heat
    flat = heat if heat.ndim <= 2 else heat[heat.shape[0] // 2]
    size = "x".join(str(a.field.size) for a in e.axes)
    lines = [
        Text.assemble("Effective receptive field of ", (e.path, "cyan"),
                      f" ({e.type}) at {','.join(map(str, e.position))}: {samples} samples, {dtype}, seed {seed}"),
        heat_text(flat, width),
        Text(f"50% of the gradient mass lies within radius {field.radius50:.1f} px"
             f" (~{2 * field.radius50 + 1:.0f} px wide), 95% within {field.radius95:.1f} px"
             f" (~{2 * field.radius95 + 1:.0f} px wide);"
             f" the theoretical field is {size} px ({e.pixels:,} input pixels read)."),
    ]
    return Rendered(Group(*lines))
