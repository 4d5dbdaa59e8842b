"""JSON, CSV and Markdown renderings of a `Report`: deterministic, no terminal involved.

`--columns` picks CSV and Markdown columns (by the table's names, `COLUMNS` in
`render.table`); `--depth` adds group rows (an `analysis.outline`): to JSON as a `groups`
list, to CSV as rows of their own among the layers, to Markdown as the table's rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from convcalc.analysis import Entry, Field, Report, Row
from convcalc.render.data import add_verification, field_dict, human_bytes, number, report_dict, shape_text

if TYPE_CHECKING:
    from fractions import Fraction

CSV_COLUMNS = (
    "path", "type", "input_shape", "output_shape", "params", "buffers", "macs", "flops",
    "activation_bytes", "rf_size", "rf_jump", "rf_start",
)


def to_json(report: Report, verification: Any = None, extra: dict[str, Any] | None = None,
            groups: Sequence[Entry] | None = None) -> str:
    """Indented at the top level, one compact line per layer, group (`groups`: an outline,
    for --depth) and warning.

    Readable and diffable, and the layers and groups are written from memoised pieces
    (`rows_json`, `groups_json`); with `indent` json falls back to pure Python, several times
    slower on big networks.
    """
    fields: dict[int, str] = {}  # field JSON by id, for layers and groups; the report keeps them alive
    data = report_dict(report, layers=verification is not None)
    if verification is not None:
        add_verification(data, verification)
    else:
        data["layers"] = JsonLines(rows_json(report.rows, fields))
    data.update(extra or {})  # e.g. `training` (--training)
    if groups is not None:
        data["groups"] = groups_json(groups, fields)
    # Pieces joined once at the end: the layers of a big network are megabytes, and each
    # concatenation would copy them again.
    pieces = ["{\n"]
    for key, value in data.items():
        pieces.append(f"  {json.dumps(key)}: ")
        if isinstance(value, JsonLines) and value:  # objects already written
            pieces += ("[\n    ", ",\n    ".join(value), "\n  ]")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            pieces += ("[\n    ", ",\n    ".join([json.dumps(v) for v in value]), "\n  ]")
        else:
            pieces.append(json.dumps(value))
        pieces.append(",\n")
    pieces[-1] = "\n}\n"
    return "".join(pieces)


class JsonLines(list[str]):
    """A list of JSON objects already written (each as json.dumps writes it), for `to_json`."""


def rows_json(rows: Iterable[Row], fields: dict[int, str] | None = None) -> list[str]:
    """`json.dumps(row_dict(row))` of each row, byte for byte, from memoised pieces: a big
    network repeats its shapes, types and fields, which json's encoder would encode afresh
    for every row (and building the dicts first cost as much again). `fields` memoises
    fields' JSON by id (for fields that stay alive meanwhile)."""
    texts: dict[Any, str] = {}  # shape tuples -> their JSON
    fields = {} if fields is None else fields
    out = []
    for row in rows:
        shapes = row.input_shapes
        rf, shape_in, shape_out = _memoised(row.field, shapes[0] if len(shapes) == 1 or not row.is_merge else shapes,
                                            row.output_shape, texts, fields)
        out.append(f'{{"path": {encode_basestring_ascii(row.path)}, "type": {encode_basestring_ascii(row.type)},'
                   f' "input_shape": {shape_in}, "output_shape": {shape_out}, "params": {row.params},'
                   f' "buffers": {row.buffers}, "macs": {row.macs}, "flops": {2 * row.macs},'
                   f' "activation_bytes": {row.activation_bytes}, "receptive_field": {rf}}}')
    return out


def _memoised(field: Field, shape_in: Any, shape_out: tuple[int, ...], texts: dict[Any, str],
              fields: dict[int, str]) -> tuple[str, str, str]:
    """The JSON of a field (memoised by id) and of two shapes (by value)."""
    rf = fields.get(id(field))
    if rf is None:
        rf = fields[id(field)] = field_json(field)
    text_in = texts.get(shape_in)
    if text_in is None:
        text_in = texts[shape_in] = json.dumps(shape_in)
    text_out = texts.get(shape_out)
    if text_out is None:
        text_out = texts[shape_out] = json.dumps(shape_out)
    return rf, text_in, text_out


def field_json(field: Field) -> str:
    """`json.dumps(field_dict(field))`, without the dict."""
    if field is None:
        return "null"
    sizes = ", ".join([str(f.size) for f in field])
    jumps = ", ".join([_number_json(f.jump) for f in field])
    starts = ", ".join([_number_json(f.start) for f in field])
    return f'{{"size": [{sizes}], "jump": [{jumps}], "start": [{starts}]}}'


def _number_json(value: Fraction | int | None) -> str:
    """A jump or start as json writes `number(value)`."""
    if type(value) is int:
        return str(value)
    return json.dumps(number(value))


# --columns name -> CSV header
CSV_NAMES = {
    "path": "path", "type": "type", "input": "input_shape", "output": "output_shape", "params": "params",
    "params%": "params_percent", "buffers": "buffers", "macs": "macs", "macs%": "macs_percent", "flops": "flops",
    "activations": "activation_bytes", "rf": "rf_size", "jump": "rf_jump", "start": "rf_start",
}
DEFAULT_CSV = ("path", "type", "input", "output", "params", "buffers", "macs", "flops", "activations", "rf", "jump",
               "start")
assert tuple(CSV_NAMES[k] for k in DEFAULT_CSV) == CSV_COLUMNS


def _percent(part: int, whole: int) -> float | int:
    return round(100 * part / whole, 4) if whole and part else 0


def _csv_values(e: Entry, report: Report) -> dict[str, object]:
    rf = field_dict(e.field)
    t = report.totals
    values: dict[str, object] = {
        "path": e.path, "type": e.type, "input": shape_text(e.input_shapes), "output": shape_text(e.output_shape),
        "params": e.params, "params%": _percent(e.params, t.params), "buffers": e.buffers, "macs": e.macs,
        "macs%": _percent(e.macs, t.macs), "flops": e.flops, "activations": e.activation_bytes,
    }
    for key, name in (("rf", "size"), ("jump", "jump"), ("start", "start")):
        values[key] = ";".join(str(v) for v in rf[name]) if rf else ""
    return values


def to_csv(report: Report, columns: Sequence[str] | None = None, entries: Sequence[Entry] | None = None) -> str:
    """One row per layer, then a `(total)` row; shapes as `CxHxW`, fields per axis as `a;b`.

    `columns` picks and orders the columns; `entries` (every layer and the groups, in tree
    order) adds the groups' subtotal rows and two columns: `depth` and `row` (layer or group).
    """
    if columns is not None or entries is not None:
        return _csv_picked(report, columns or DEFAULT_CSV, entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for layer in report_dict(report)["layers"]:
        rf = layer["receptive_field"]
        writer.writerow([
            layer["path"], layer["type"], shape_text(layer["input_shape"]),
            shape_text(layer["output_shape"]), layer["params"], layer["buffers"], layer["macs"],
            layer["flops"], layer["activation_bytes"],
            *(";".join(str(v) for v in rf[key]) if rf else "" for key in ("size", "jump", "start")),
        ])
    t = report.totals
    writer.writerow(["(total)", "", shape_text(report.input_shape), shape_text(report.output_shape),
                     t.params, t.buffers, t.macs, t.flops, t.activation_bytes, "", "", ""])
    return buffer.getvalue()


def _csv_picked(report: Report, columns: Sequence[str], entries: Sequence[Entry] | None) -> str:
    from convcalc.render.table import leaf_entries

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ["depth", "row"] if entries is not None else []
    writer.writerow([CSV_NAMES[k] for k in columns] + extra)
    for e in entries if entries is not None else leaf_entries(report):
        values = _csv_values(e, report)
        writer.writerow([values[k] for k in columns] + ([e.depth, "group" if e.is_group else "layer"] if extra else []))
    t = report.totals
    totals: dict[str, object] = {
        "path": "(total)", "input": shape_text(report.input_shape), "output": shape_text(report.output_shape),
        "params": t.params, "params%": 100 if t.params else 0, "buffers": t.buffers, "macs": t.macs,
        "macs%": 100 if t.macs else 0, "flops": t.flops, "activations": t.activation_bytes,
    }
    writer.writerow([totals.get(k, "") for k in columns] + (["0", "total"] if extra else []))
    return buffer.getvalue()


_COUNTS = {"params": "params", "buffers": "buffers", "macs": "macs", "flops": "flops",
           "activations": "activation_bytes"}


def to_markdown(report: Report, columns: Sequence[str] | None = None, entries: Sequence[Entry] | None = None) -> str:
    """A GitHub table of the layers (or of `entries`, an outline), then the totals, for docs."""
    from convcalc.render.table import COLUMNS, PLAIN_COLUMNS, leaf_entries

    keys = columns or PLAIN_COLUMNS
    kinds = [COLUMNS[k] for k in keys]
    lines = [f"### {report.name}", "",
             f"Input {shape_text(report.input_shape)}, batch {report.batch_size}, {report.dtype}.", "",
             "| " + " | ".join(k.header for k in kinds) + " |",
             "|" + "|".join("---:" if k.right else "---" for k in kinds) + "|"]
    for e in entries if entries is not None else leaf_entries(report):
        cells = []
        for key, kind in zip(keys, kinds):
            if key == "path":
                cells.append(f"**`{e.path}`**" if e.is_group else f"`{e.path}`")
            elif key in _COUNTS:
                cells.append(f"{getattr(e, _COUNTS[key]):,}")
            else:
                cells.append(kind.cell(e, report, False))
        lines.append("| " + " | ".join(cells) + " |")
    t = report.totals
    lines += [
        "",
        f"- Trainable parameters: {t.params:,} ({human_bytes(t.param_bytes)})",
        f"- Buffers (running statistics, not trainable): {t.buffers:,}",
        f"- MACs (conv + linear multiply-accumulates): {t.macs:,}",
        f"- FLOPs (= 2 x MACs): {t.flops:,}",
        f"- Activations (all layer outputs): {human_bytes(t.activation_bytes)}",
        f"- Inference peak (live tensors, at `{t.peak_activation_at}`): {human_bytes(t.peak_activation_bytes)}",
    ]
    if report.warnings:
        lines += ["", "Warnings:", ""]
        lines += [f"- `{w.path}` ({w.layer_type}) [{w.code}]: {w.message}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def group_dict(e: Entry) -> dict[str, Any]:
    """One of `--depth`'s `groups`: a group of the outline with its subtotals. `rows` is the
    slice [start, stop) of `layers` it sums; `input_shape` is what flows into it (a list of
    shapes when several values do)."""
    assert e.group is not None
    shapes = [list(s) for s in e.input_shapes]
    return {
        "path": e.path, "type": e.type, "depth": e.depth, "repeat": e.group.repeat,
        "input_shape": shapes[0] if len(shapes) == 1 else shapes, "output_shape": list(e.output_shape),
        "params": e.params, "buffers": e.buffers, "macs": e.macs, "flops": e.flops,
        "activation_bytes": e.activation_bytes, "receptive_field": field_dict(e.field),
        "rows": [e.start, e.stop],
    }


def groups_json(entries: Sequence[Entry], fields: dict[int, str] | None = None) -> JsonLines:
    """`json.dumps(group_dict(e))` of each group among `entries`, byte for byte, from memoised
    pieces (as `rows_json`)."""
    texts: dict[Any, str] = {}  # shape tuples -> their JSON
    fields = {} if fields is None else fields
    out = JsonLines()
    for e in entries:
        group = e.group
        if group is None:
            continue
        shapes = e.input_shapes
        rf, shape_in, shape_out = _memoised(e.field, shapes[0] if len(shapes) == 1 else shapes, e.output_shape,
                                            texts, fields)
        repeat = "null" if group.repeat is None else str(group.repeat)
        out.append(f'{{"path": {encode_basestring_ascii(e.path)}, "type": {encode_basestring_ascii(e.type)},'
                   f' "depth": {e.depth}, "repeat": {repeat}, "input_shape": {shape_in},'
                   f' "output_shape": {shape_out}, "params": {e.params}, "buffers": {e.buffers}, "macs": {e.macs},'
                   f' "flops": {e.flops}, "activation_bytes": {e.activation_bytes}, "receptive_field": {rf},'
                   f' "rows": [{e.start}, {e.stop}]}}')
    return out
