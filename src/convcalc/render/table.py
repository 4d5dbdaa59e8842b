"""The table for people: one row per layer (or per block), exact totals, a summary, warnings.

The layout is computed here, as lines of styled segments, and the CLI prints them with rich
(colour on a terminal) or as plain text. rich's own Table measures every cell and takes
~0.2 s for a 70-row network, which would make `convcalc shapes` feel slow; aligned columns
need none of that.

Piped (`View.width` None) the table is full and exact: every chosen column, exact numbers,
lines as long as they need to be. On a terminal (`View.width` set) it fits the width: the
numbers are abbreviated (`1.50G`) and then the least important columns are left out (and
named below the table) before anything would wrap; prose wraps at word boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convcalc.analysis import Entry, Report
from convcalc.records import record
from convcalc.render.data import field_text, fraction_text, human_bytes, human_count, shape_text, warning_place
from convcalc.render.fit import Line, abbreviate, abbreviate_bytes, join_or_stack, wrap


@record
class Column:
    header: str
    cells: Sequence[str]
    footer: str = ""
    right: bool = False
    style: str | None = None
    styles: Sequence[str | None] | None = None  # per cell, instead of `style`


def layout(columns: Sequence[Column], gap: str = "  ", row_styles: Sequence[str | None] | None = None) -> list[Line]:
    """Header, rows and footer (if any column has one) with aligned columns."""
    widths = [max([len(c.header), len(c.footer), *(len(x) for x in c.cells)]) for c in columns]

    def line(texts: Sequence[str], styles: Sequence[str | None], row_style: str | None = None) -> Line:
        out: Line = []
        for i, (col, text, width, style) in enumerate(zip(columns, texts, widths, styles)):
            last = i == len(columns) - 1
            cell = text.rjust(width) if col.right else (text if last else text.ljust(width))
            if row_style:
                style = f"{row_style} {style}" if style else row_style
            out.append((cell, style))
            if not last:
                out.append((gap, None))
        return out

    lines = [line([c.header for c in columns], ["bold"] * len(columns))]
    for r in range(len(columns[0].cells)):
        styles = [c.styles[r] if c.styles is not None else c.style for c in columns]
        lines.append(line([c.cells[r] for c in columns], styles, row_styles[r] if row_styles else None))
    if any(c.footer for c in columns):
        lines.append(line([c.footer for c in columns], ["bold"] * len(columns)))
    return lines


# --- columns ----------------------------------------------------------------------------------

@record
class View:
    """How the table is laid out: which columns, the nesting, and the terminal's width."""

    columns: tuple[str, ...] | None = None  # --columns; None: the default for the destination
    depth: int | None = None  # --depth
    width: int | None = None  # a terminal's width, to fit; None: piped, full and exact


PIPED = View()  # the default: today's columns, full and exact


@record
class Extra:
    """A column a command adds (Verified, Kept for backward): a cell for any row or group,
    and optionally a shorter header and cell for a narrow terminal."""

    header: str
    cell: Callable[[Entry], str]
    right: bool = False
    short_header: str | None = None
    short_cell: Callable[[Entry], str] | None = None


def _short(n: int) -> str:
    return abbreviate(n) if n else "-"


def _share(part: int, whole: int) -> str:
    if not part or not whole:
        return "-"
    text = f"{100 * part / whole:.1f}"
    return "<0.1" if text == "0.0" else text


def _start_text(entry: Entry) -> str:
    if entry.field is None:
        return "-"
    starts = [fraction_text(f.start) for f in entry.field]
    return starts[0] if len(set(starts)) == 1 else "x".join(starts)


@record
class ColumnKind:
    key: str  # the name --columns takes
    header: str
    right: bool
    cell: Callable[[Entry, Report, bool], str]  # (entry, report, abbreviated) -> text
    footer: Callable[[Report, bool], str] = lambda report, short: ""


def _counted(attr: str, total: str, human: Callable[[int], str] = abbreviate,
             exact: Callable[[int], str] = "{:,}".format) -> tuple[
        Callable[[Entry, Report, bool], str], Callable[[Report, bool], str]]:
    def cell(e: Entry, r: Report, short: bool) -> str:
        n = getattr(e, attr)
        return (human(n) if short else exact(n)) if n else "-"

    def footer(r: Report, short: bool) -> str:
        n = getattr(r.totals, total)
        return human(n) if short else exact(n)

    return cell, footer


COLUMNS: dict[str, ColumnKind] = {c.key: c for c in (
    ColumnKind("path", "Layer", False, lambda e, r, s: e.path, lambda r, s: "Total"),
    ColumnKind("type", "Type", False, lambda e, r, s: e.type + (f" x{e.group.repeat}" if e.group and e.group.repeat
                                                                 else "")),
    ColumnKind("input", "Input", False, lambda e, r, s: shape_text(e.input_shapes),
               lambda r, s: shape_text(r.input_shape)),
    ColumnKind("output", "Output", False, lambda e, r, s: shape_text(e.output_shape),
               lambda r, s: shape_text(r.output_shape) if len(r.outputs) < 2 else f"{len(r.outputs)} outputs"),
    ColumnKind("params", "Params", True, *_counted("params", "params")),
    ColumnKind("params%", "Params%", True, lambda e, r, s: _share(e.params, r.totals.params)),
    ColumnKind("buffers", "Buffers", True, *_counted("buffers", "buffers")),
    ColumnKind("macs", "MACs", True, *_counted("macs", "macs")),
    ColumnKind("macs%", "MACs%", True, lambda e, r, s: _share(e.macs, r.totals.macs)),
    ColumnKind("flops", "FLOPs", True, *_counted("flops", "flops")),
    ColumnKind("activations", "Activations", True, *_counted("activation_bytes", "activation_bytes",
                                                              abbreviate_bytes, human_bytes)),
    ColumnKind("rf", "RF", True, lambda e, r, s: field_text(e.field, r.input_shape)[0]),
    ColumnKind("jump", "Jump", True, lambda e, r, s: field_text(e.field, r.input_shape)[1]),
    ColumnKind("start", "Start", True, lambda e, r, s: _start_text(e)),
)}

COLUMN_NAMES = tuple(COLUMNS)
# Piped: the columns the table has always had (scripts and golden files rely on them).
PLAIN_COLUMNS = ("path", "type", "output", "params", "buffers", "macs", "rf", "jump")
# On a terminal the shares of the cost join them.
TERMINAL_COLUMNS = ("path", "type", "output", "params", "params%", "buffers", "macs", "macs%", "rf", "jump")
# With --depth a group's input and its activation bytes are shown too.
DEPTH_COLUMNS = ("path", "type", "input", "output", "params", "buffers", "macs", "activations", "rf", "jump")
DEPTH_TERMINAL_COLUMNS = ("path", "type", "input", "output", "params", "params%", "buffers", "macs", "macs%",
                          "activations", "rf", "jump")
# What goes first when a terminal is too narrow (the commands' own columns, "extra", come
# after the receptive field); the layer name always stays.
DROP_ORDER = ("start", "input", "flops", "activations", "buffers", "jump", "params%", "rf", "extra", "type",
              "params", "macs%", "output", "macs")
MIN_NAME = 12  # a name column is not cut below this


def _share_style(text: str) -> str | None:
    try:
        return "bold magenta" if float(text) >= 10 else None
    except ValueError:
        return None


class _Table:
    """The cells of every candidate column, computed once, exact and abbreviated."""

    def __init__(self, report: Report, entries: Sequence[Entry], names: list[str], keys: Sequence[str],
                 extras: Sequence[Extra]) -> None:
        self.report, self.entries, self.names = report, entries, names
        self.keys = list(keys) + [f"extra{i}" for i in range(len(extras))]
        self.extras = {f"extra{i}": x for i, x in enumerate(extras)}
        self.cache: dict[tuple[str, bool], Column] = {}

    def column(self, key: str, short: bool) -> Column:
        if key in self.extras and self.extras[key].short_cell is None or key in (
                "path", "type", "input", "output", "rf", "jump", "start", "params%", "macs%"):
            short = False  # the same either way
        hit = self.cache.get((key, short))
        if hit is not None:
            return hit
        if key in self.extras:
            x = self.extras[key]
            if short and x.short_cell is not None:
                col = Column(x.short_header or x.header, [x.short_cell(e) for e in self.entries], right=x.right)
            else:
                col = Column(x.header, [x.cell(e) for e in self.entries], right=x.right)
        elif key == "path":
            col = Column("Layer", self.names, "Total", style="cyan")
        else:
            kind = COLUMNS[key]
            cells = [kind.cell(e, self.report, short) for e in self.entries]
            styles = [_share_style(c) for c in cells] if key.endswith("%") else None
            col = Column(kind.header, cells, kind.footer(self.report, short), kind.right, styles=styles)
        self.cache[(key, short)] = col
        return col

    def columns(self, keys: Sequence[str], short: bool) -> list[Column]:
        return [self.column(k, short) for k in keys]


def table_width(columns: Sequence[Column], gap: int = 2) -> int:
    widths = [max([len(c.header), len(c.footer), *(len(x) for x in c.cells)]) for c in columns]
    return sum(widths) + gap * (len(columns) - 1)


def fit(table: _Table, width: int) -> tuple[list[Column], list[str]]:
    """The columns that fit `width`: exact if they fit, else abbreviated, then the least
    important left out (their headers returned), then the names cut with an ellipsis."""
    keys = list(table.keys)
    for short in (False, True):
        columns = table.columns(keys, short)
        if table_width(columns) <= width:
            return columns, []
    dropped: list[str] = []
    for key in DROP_ORDER:
        for k in [k for k in keys if k == key or (key == "extra" and k in table.extras)]:
            dropped.append(table.column(k, True).header)
            keys.remove(k)
            columns = table.columns(keys, True)
            if table_width(columns) <= width:
                return columns, dropped
    columns = table.columns(keys, True)
    room = max(MIN_NAME, width - (table_width(columns) - table_width(columns[:1])) + 0)
    if "path" in keys:
        i = keys.index("path")
        names = columns[i]
        cut = [n if len(n) <= room else n[: room - 1] + "…" for n in names.cells]
        columns[i] = Column(names.header, cut, names.footer, names.right, names.style, names.styles)
    return columns, dropped


def tree_names(entries: Sequence[Entry], indent: int = 2) -> list[str]:
    """Each entry's path relative to its enclosing group, indented by its depth."""
    parents: dict[int, str] = {0: ""}
    names = []
    for e in entries:
        parent = parents.get(e.depth - 1, "")
        label = e.path[len(parent) + 1:] if parent and e.path.startswith(parent + ".") else e.path
        names.append(" " * (indent * (e.depth - 1)) + label)
        if e.is_group:
            parents[e.depth] = e.path
    return names


def leaf_entries(report: Report) -> list[Entry]:
    """Every row as an outline entry (no nesting)."""
    return [Entry(r.path, r.type, 1, i, i + 1, None, r.input_shapes, r.output_shape, r.params, r.buffers, r.macs,
                  r.activation_bytes, r.field) for i, r in enumerate(report.rows)]


def report_table(report: Report, extra: Sequence[Extra] = (), entries: Sequence[Entry] | None = None,
                 view: View = PIPED) -> list[Line]:
    """The layer table and summary. `entries` (an `analysis.outline`) shows the nesting:
    names indented under their group, groups with their subtotals; without it, one row per
    layer named by its full path. `extra` columns go after the chosen ones."""
    width = view.width
    keys = view.columns or (
        (DEPTH_TERMINAL_COLUMNS if width is not None else DEPTH_COLUMNS) if view.depth is not None
        else (TERMINAL_COLUMNS if width is not None else PLAIN_COLUMNS))
    rows = list(entries) if entries is not None else leaf_entries(report)
    names = tree_names(rows) if entries is not None else [e.path for e in rows]
    table = _Table(report, rows, names, keys, extra)
    dropped: list[str] = []
    if width is None:
        columns = table.columns(table.keys, False)
    else:
        columns, dropped = fit(table, width)
        if table_width(columns) > width and entries is not None:  # a deep tree: indent by one
            table = _Table(report, rows, tree_names(rows, indent=1), keys, extra)
            columns, dropped = fit(table, width)
    row_styles = ["bold" if e.is_group else None for e in rows] if width is not None else None
    t = report.totals
    title = f"{report.name}: input {shape_text(report.input_shape)}, batch {report.batch_size}, {report.dtype}"
    out: list[Line] = _prose([(title, "bold")], width)
    out += layout(columns, row_styles=row_styles)
    if len(report.outputs) > 1:
        longest = max(len(o.path) for o in report.outputs)
        for o in report.outputs:
            size, jump = field_text(o.field)
            out += _prose([("Output ", "bold"), (o.path.ljust(longest), "cyan"),
                           (f"  {shape_text(o.shape)}  RF {size}, jump {jump}", None)], width)
    if dropped:
        note = f"Left out to fit {width} columns: {', '.join(dropped)}; pick columns with --columns."
        out += _prose([(note, "dim")], width)
    out.append([])
    summary: list[list[Line]] = [
        [[("Trainable params ", "bold"), (f"{t.params:,} ({human_count(t.params)}, {human_bytes(t.param_bytes)})",
                                           None)],
         [("Buffers ", "bold"), (f"{t.buffers:,} (running statistics, not trainable)", None)]],
        [[("MACs ", "bold"), (f"{t.macs:,} ({human_count(t.macs)}; conv + linear only)", None)],
         [("FLOPs ", "bold"), (f"{t.flops:,} (= 2 x MACs)", None)]],
        [[("Activations ", "bold"),
          (f"{human_bytes(t.activation_bytes)} (every layer's output, batch {report.batch_size})", None)],
         [("Inference peak ", "bold"),
          (f"{human_bytes(t.peak_activation_bytes)} (live tensors, at {t.peak_activation_at})", None)]],
    ]
    for parts in summary:
        out += join_or_stack(parts, width)
    if report.warnings:
        count = len(report.warnings)
        out += [[], [(f"{count} warning{'s' if count > 1 else ''}:", "bold yellow")]]
        for w in report.warnings:
            out += _prose([("  ", None), (warning_place(w), "dim"), (w.path, "cyan"), (f" ({w.layer_type}) ", None),
                           (f"[{w.code}]", "yellow"),
                           (f" {w.message}", None)], width, indent=4)
    return out


def _prose(line: Line, width: int | None, indent: int = 2) -> list[Line]:
    return [line] if width is None else wrap(line, width, indent)


def prose_lines(texts: Sequence[tuple[str, str | None]], width: int | None, indent: int = 2) -> list[Line]:
    """Lines of text (with a style each), wrapped at word boundaries on a terminal."""
    out: list[Line] = []
    for text, style in texts:
        out += _prose([(text, style)], width, indent)
    return out


def plain_text(lines: Sequence[Line]) -> str:
    """The lines without styles, trailing spaces removed."""
    return "".join("".join(text for text, _ in line).rstrip() + "\n" for line in lines)

