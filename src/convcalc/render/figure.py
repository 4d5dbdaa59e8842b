"""The effective receptive field as a figure (`erf --png`), drawn with matplotlib.

What is drawn is the part of the input around the theoretical field of the chosen output
(its box plus a margin, and a little of the padding beyond the input's border when the field
reaches into it), never the whole input: the work is proportional to the field. A 2D field is
a heat map in input pixels with a colour bar, the theoretical field's box, the circles holding
50 % and 95 % of the gradient mass and the field's centre; a 1D field is a line plot with the
same marks; a 3D field is drawn as its centre slice. `view` is the shared crop, which the
terminal map uses too.

matplotlib and NumPy are loaded inside the functions (only `erf --png` draws), through the
Agg canvas without pyplot, which is faster to load and keeps no global state. From the
package it imports `fieldwalk` and `numeric` (for types only).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import threading
from typing import TYPE_CHECKING, Any

from convcalc.records import record

if TYPE_CHECKING:
    from convcalc.fieldwalk import Explanation
    from convcalc.numeric.backward import EffectiveField

MARGIN = 0.08  # of the field's size, on each side (at least 2 pixels)
PADDING = 0.15  # of the input's size: how far the view may reach beyond the input's border


@record
class AxisView:
    """The input coordinates shown along one axis: `low..high`; `first..last` is the part
    inside the input (empty when first > last)."""

    low: int
    high: int
    first: int
    last: int
    field: tuple[int, int] | None  # the theoretical field of the position (padding included)


def view(e: Explanation, spatial: tuple[int, ...]) -> tuple[AxisView, ...]:
    """Per axis: the theoretical field plus a margin, allowed past the border by PADDING."""
    out = []
    for a, n in zip(e.axes, spatial):
        if a.theory is None:
            lo, hi = 0, n - 1
        else:
            lo, hi = a.theory
        margin = max(2, math.ceil(MARGIN * (hi - lo + 1)))
        pad = max(2, math.ceil(PADDING * n))
        low, high = max(lo - margin, -pad), min(hi + margin, n - 1 + pad)
        out.append(AxisView(low, high, max(low, 0), min(high, n - 1), a.theory))
    return tuple(out)


def preload() -> threading.Thread:
    """Start importing matplotlib in a background thread and return it.

    `erf --png` calls this before computing the field: NumPy releases the GIL in its heavy
    loops, so most of matplotlib's import time (the larger part of drawing) overlaps them.
    """
    thread = threading.Thread(target=_import_matplotlib, name="convcalc-preload-matplotlib", daemon=True)
    thread.start()
    return thread


def _import_matplotlib() -> None:
    with contextlib.suppress(ImportError):  # drawing imports it again and reports the error
        for name in ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.patches"):
            importlib.import_module(name)


def _slice(heat: Any, views: tuple[AxisView, ...], centre: tuple[float, ...]) -> tuple[Any, tuple[AxisView, ...], str]:
    """The 2D (or 1D) part of the map to draw: a 3D map's slice through the field's centre."""
    if heat.ndim == 3:
        depth = min(max(round(centre[0]), 0), heat.shape[0] - 1)
        return heat[depth], views[1:], f"slice at depth {depth}"
    return heat, views, ""


def erf_png(e: Explanation, field: EffectiveField, samples: int, seed: int, dtype: str) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    erf_figure(e, field, samples, seed, dtype).savefig(buffer, format="png")
    return buffer.getvalue()


def erf_figure(e: Explanation, field: EffectiveField, samples: int, seed: int, dtype: str) -> Any:
    """The figure (a matplotlib `Figure` on an Agg canvas)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heat = field.heat
    views = view(e, tuple(heat.shape))
    heat, views, note = _slice(heat, views, field.centre)
    centre = field.centre[-heat.ndim:]
    peak = float(heat.max()) or 1.0
    fig = Figure(figsize=(7.2, 6.4) if heat.ndim == 2 else (8.0, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    size = "x".join(str(a.field.size) for a in e.axes)
    where = ",".join(map(str, e.position))
    unit = "samples" if heat.ndim == 1 else "px"
    fig.suptitle(f"Effective receptive field of {e.path} ({e.type}), position {where}", fontsize=11)
    ax.set_title(f"{samples} samples, seed {seed}, {dtype}; theoretical field {size} {unit}"
                 + (f"; {note}" if note else ""), fontsize=9)
    if heat.ndim == 1:
        _line(ax, np.asarray(heat), views[0], centre[0], field, peak)
    else:
        _map(fig, ax, np.asarray(heat), views, centre, field, peak)
    return fig


FIELD_COLOUR = "#2bd0e0"  # the theoretical field: cyan, visible on inferno's dark and bright ends
OUTSIDE = "#9a9a9a"  # beyond the input's border (padding)


def _radius_labels(field: EffectiveField) -> tuple[str, str]:
    return (f"50 % of the mass: r = {field.radius50:.1f} px",
            f"95 % of the mass: r = {field.radius95:.1f} px")


def _map(fig: Any, ax: Any, heat: Any, views: tuple[AxisView, ...], centre: tuple[float, ...],
         field: EffectiveField, peak: float) -> None:
    from matplotlib.patches import Circle, Rectangle

    rows, cols = views
    ax.set_facecolor(OUTSIDE)
    part = heat[rows.first:rows.last + 1, cols.first:cols.last + 1] / peak
    image = ax.imshow(part, cmap="inferno", vmin=0, vmax=1, interpolation="nearest", origin="upper",
                      extent=(cols.first - 0.5, cols.last + 0.5, rows.last + 0.5, rows.first - 0.5))
    ax.set_xlim(cols.low - 0.5, cols.high + 0.5)
    ax.set_ylim(rows.high + 0.5, rows.low - 0.5)
    ax.set_xlabel("input column (pixels)")
    ax.set_ylabel("input row (pixels)")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label("mean |d output / d input|, share of the peak")
    n_rows, n_cols = heat.shape
    if rows.low < 0 or cols.low < 0 or rows.high >= n_rows or cols.high >= n_cols:
        ax.add_patch(Rectangle((-0.5, -0.5), n_cols, n_rows, fill=False, edgecolor="white", linewidth=0.8,
                               label="the input's border (grey: padding)"))
    if rows.field is not None and cols.field is not None:
        (r0, r1), (c0, c1) = rows.field, cols.field
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False, edgecolor=FIELD_COLOUR,
                               linestyle="--", linewidth=1.4,
                               label=f"theoretical field {r1 - r0 + 1}x{c1 - c0 + 1} px"
                               + _beyond((r0, r1, c0, c1), rows, cols)))
    cy, cx = centre
    r50, r95 = _radius_labels(field)
    ax.add_patch(Circle((cx, cy), field.radius50, fill=False, edgecolor="white", linewidth=1.4, label=r50))
    ax.add_patch(Circle((cx, cy), field.radius95, fill=False, edgecolor="white", linewidth=1.2, linestyle=":",
                        label=r95))
    ax.plot([cx], [cy], marker="+", markersize=10, color=FIELD_COLOUR, linestyle="none",
            label=f"centre ({cy:g}, {cx:g})")
    # white marks read on the map's dark end; the legend gets a dark box so they read there too
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, facecolor="#303030",
              edgecolor="#303030", labelcolor="white", framealpha=1)


def _beyond(box: tuple[int, int, int, int], rows: AxisView, cols: AxisView) -> str:
    r0, r1, c0, c1 = box
    if r0 < rows.low or r1 > rows.high or c0 < cols.low or c1 > cols.high:
        return ", beyond the view"
    return ""


def _line(ax: Any, heat: Any, axis: AxisView, centre: float, field: EffectiveField, peak: float) -> None:
    import numpy as np

    n = heat.shape[0]
    x = np.arange(axis.first, axis.last + 1)
    y = heat[axis.first:axis.last + 1] / peak
    ax.set_xlim(axis.low - 0.5, axis.high + 0.5)
    ax.set_ylim(0, 1.08)
    if axis.low < 0:
        ax.axvspan(axis.low - 0.5, -0.5, color=OUTSIDE, alpha=0.5, lw=0, label="beyond the input (padding)")
    if axis.high >= n:
        ax.axvspan(n - 0.5, axis.high + 0.5, color=OUTSIDE, alpha=0.5, lw=0,
                   label=None if axis.low < 0 else "beyond the input (padding)")
    if axis.field is not None:
        lo, hi = axis.field
        ax.axvspan(lo - 0.5, hi + 0.5, color=FIELD_COLOUR, alpha=0.12, lw=0,
                   label=f"theoretical field {hi - lo + 1} samples")
    ax.fill_between(x, y, color="#d6542f", alpha=0.35, lw=0, step="mid")
    ax.plot(x, y, color="#a3261b", lw=0.9, drawstyle="steps-mid", label="mean |d output / d input|")
    r50, r95 = _radius_labels(field)
    for radius, style, label in ((field.radius50, "-", r50), (field.radius95, ":", r95)):
        ax.axvline(centre - radius, color="black", lw=1.1, linestyle=style, label=label.replace("px", "samples"))
        ax.axvline(centre + radius, color="black", lw=1.1, linestyle=style)
    ax.axvline(centre, color=FIELD_COLOUR, lw=1.2, linestyle="--", label=f"centre {centre:g}")
    ax.set_xlabel("input position (samples)")
    ax.set_ylabel("share of the peak")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
