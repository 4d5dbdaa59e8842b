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
        **({"whole_input": True} if e.whole else {}),  # only after a global-pool gate
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
    if e.whole:
        parts.append(Text("Every position's field is the whole input: a global-pool gate (mul) feeds this layer."))
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


# (position, (r, g, b)) anchors of the terminal map's colours, an inferno-like ramp (black,
# purple, orange, pale yellow), linearly interpolated; the PNG uses matplotlib's inferno.
COLOURS = (
    (0.0, (0, 0, 4)),
    (0.25, (87, 16, 110)),
    (0.5, (188, 55, 84)),
    (0.75, (249, 142, 9)),
    (1.0, (252, 255, 164)),
)


def colour(value: float) -> tuple[int, int, int]:
    """The ramp's colour at `value` (clamped to [0, 1])."""
    v = min(max(value, 0.0), 1.0)
    for (a, ca), (b, cb) in zip(COLOURS, COLOURS[1:]):
        if v <= b:
            t = (v - a) / (b - a)
            return tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))  # type: ignore[return-value]
    return COLOURS[-1][1]


RAMP = " .:-=+*#%@"  # without colour: ' ' is zero, '@' the peak
BARS = " ▁▂▃▄▅▆▇█"  # a 1D map's columns, in eighths of a line
BAR_LINES = 8


def _binned(values: Any, step_rows: int, step_cols: int) -> Any:
    """Means over blocks of `step_rows` x `step_cols` (the last blocks may be partial)."""
    import numpy as np

    h, w = -(-values.shape[0] // step_rows), -(-values.shape[1] // step_cols)
    padded = np.zeros((h * step_rows, w * step_cols))
    counts = np.zeros_like(padded)
    padded[: values.shape[0], : values.shape[1]] = values
    counts[: values.shape[0], : values.shape[1]] = 1
    sums = padded.reshape(h, step_rows, w, step_cols).sum(axis=(1, 3))
    return sums / np.maximum(counts.reshape(h, step_rows, w, step_cols).sum(axis=(1, 3)), 1)


def heat_text(heat: Any, width: int, coloured: bool = True, first: int = 0, centre: float | None = None) -> Any:
    """A 2D map as text at most `width` columns wide: coloured half-blocks (two rows per
    line) with colour, else a character ramp (`RAMP`, one line per two rows, as characters
    are about twice as tall as wide). A map less than half as wide as `width` is drawn two
    characters per pixel, one line per row. A 1D map is a bar chart `BAR_LINES` high, over
    an axis from input position `first`, marking `centre`."""
    from rich.text import Text

    if heat.ndim == 1:
        return _bars(heat, width, coloured, first, centre)
    text = Text()
    if 2 * heat.shape[1] <= width:  # small: each pixel two characters wide, one line high
        peak = heat.max()
        small = heat / peak if peak > 0 else heat
        for row in small:
            for v in row:
                if coloured:
                    r, g, b = colour(float(v))
                    text.append("██", style=f"rgb({r},{g},{b})")
                else:
                    text.append(_ramp(float(v)) * 2)
            text.append("\n")
        if not coloured:
            text = Text("".join(line.rstrip() + "\n" for line in text.plain.splitlines()))
        return text
    step = max(1, -(-heat.shape[1] // width))
    small = _binned(heat, step if coloured else 2 * step, step)
    peak = small.max()
    small = small / peak if peak > 0 else small
    if not coloured:
        for row in small:
            text.append("".join(_ramp(float(v)) for v in row).rstrip() + "\n")
        return text
    h, w = small.shape
    for top in range(0, h, 2):
        for x in range(w):
            upper = colour(float(small[top, x]))
            lower = colour(float(small[top + 1, x])) if top + 1 < h else (0, 0, 0)
            text.append("▀", style=f"rgb({upper[0]},{upper[1]},{upper[2]}) on rgb({lower[0]},{lower[1]},{lower[2]})")
        text.append("\n")
    return text


def _ramp(value: float) -> str:
    """' ' for zero, then '.' (anything above zero) to '@' (the peak)."""
    if value <= 0:
        return RAMP[0]
    return RAMP[1 + min(len(RAMP) - 2, int(value * (len(RAMP) - 1)))]


def _bars(heat: Any, width: int, coloured: bool, first: int, centre: float | None) -> Any:
    from rich.text import Text

    step = max(1, -(-heat.shape[0] // width))
    small = _binned(heat[None, :], 1, step)[0]
    peak = small.max()
    small = small / peak if peak > 0 else small
    eighths = [round(float(v) * 8 * BAR_LINES) for v in small]
    text = Text()
    for line in range(BAR_LINES, 0, -1):
        floor = (line - 1) * 8
        cells = "".join(BARS[min(8, max(0, e - floor))] for e in eighths)
        text.append(cells.rstrip() + "\n", style="red" if coloured else None)
    columns = len(eighths)
    axis = ["─"] * columns
    last = first + heat.shape[0] - 1
    labels = [(0, str(first)), (columns, str(last))]
    if centre is not None and first <= centre <= last:
        at = min(columns - 1, int((centre - first) // step))
        axis[at] = "┴"
        labels.insert(1, (at, f"{centre:g}"))
    text.append("".join(axis) + "\n", style="dim" if coloured else None)
    row = ""
    for at, label in labels:  # left, centre and right labels, without overlapping
        start = max(len(row) + 1 if row else 0, min(at - len(label) // 2, columns - len(label)) if at else 0)
        row = row.ljust(start) + label
    text.append(row + "\n")
    return text


def _trimmed(text: Any) -> Any:
    """The text without its last newline (the group puts one after it)."""
    if text.plain.endswith("\n"):
        text.right_crop(1)
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
               dtype: str, fmt: str, width: int, coloured: bool = True) -> Rendered:
    """`erf`'s output: the JSON object, or a title, the map (at most `width` columns; a
    character ramp unless `coloured`), what part of the input it shows, and the radii.

    The map shows the theoretical field and a margin (`render.figure.view`), inside the input.
    """
    if fmt == "json":
        return Rendered(json.dumps(erf_dict(e, field, input_shape, samples, seed, dtype), indent=2) + "\n")
    from rich.console import Group
    from rich.text import Text

    from convcalc.render.figure import view

    heat = field.heat
    views = view(e, tuple(heat.shape))
    if heat.ndim == 3:
        depth = min(max(round(field.centre[0]), 0), heat.shape[0] - 1)
        heat, views = heat[depth], views[1:]
    crop = heat[tuple(slice(v.first, v.last + 1) for v in views)]
    names = ("position",) if heat.ndim == 1 else ("rows", "columns")
    shown = ", ".join(f"{name} {v.first}..{v.last}" for name, v in zip(names, views))
    of = "x".join(str(n) for n in heat.shape)
    scale = "bar height"
    if heat.ndim == 2:
        scale = "dark to bright" if coloured else f"blank is zero, '{RAMP[1]}' to '{RAMP[-1]}'"
    size = "x".join(str(a.field.size) for a in e.axes)
    px = "samples" if heat.ndim == 1 else "px"
    reads = f"{e.pixels:,} input {'samples' if heat.ndim == 1 else 'pixels'} read"
    lines = [
        Text.assemble("Effective receptive field of ", (e.path, "cyan"),
                      f" ({e.type}) at {','.join(map(str, e.position))}: {samples} samples, {dtype}, seed {seed}"),
        _trimmed(heat_text(crop, width, coloured, views[0].first, field.centre[-1] if heat.ndim == 1 else None)),
        Text(f"Input {shown} of {of} (the theoretical field and a margin); {scale}: up to the peak."
             + (f" Slice at depth {depth}." if field.heat.ndim == 3 else "")),
        Text(f"50% of the gradient mass lies within radius {field.radius50:.1f} {px}"
             f" (~{2 * field.radius50 + 1:.0f} {px} wide), 95% within {field.radius95:.1f} {px}"
             f" (~{2 * field.radius95 + 1:.0f} {px} wide);"
             f" the theoretical field is {size} {px} ({reads})."),
    ]
    return Rendered(Group(*lines))
