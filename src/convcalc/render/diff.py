"""A `diff.Diff` as a table for people, JSON for scripts, or Markdown for a pull-request comment.

JSON contract (schema_version 1, `convcalc diff --format json`): `old` and `new` (label, name,
input_shape, output_shape, layers), `batch_size`, `dtype`, `depth`, `counts` (per status),
`renamed` (the guessed pairs: old and new path), `retyped`, `totals` (per total: old, new,
change, relative — null when the old value is 0), `layers` (the rows shown: status, path,
old_path, changed, old and new sides or null) and `growth` (the --max-growth limits: name,
limit, measured change, ok). Unchanged rows appear only with --all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convcalc.diff import ADDED, CHANGED, REMOVED, RENAMED, UNCHANGED, Change, Diff, Item, Total
from convcalc.render.data import SCHEMA_VERSION, fraction_text, human_bytes, human_count, number, shape_text
from convcalc.render.output import Rendered

if TYPE_CHECKING:
    from convcalc.budget import Growth
    from convcalc.render.table import Line

DIFF_FORMATS = ("table", "json", "markdown")

TOTAL_NAMES = {
    "params": "Params",
    "buffers": "Buffers",
    "macs": "MACs",
    "flops": "FLOPs",
    "activation_bytes": "Activation bytes",
    "param_bytes": "Param bytes",
}


def shown(diff: Diff, show_all: bool) -> list[Change]:
    return [c for c in diff.changes if show_all or c.status != UNCHANGED]


def signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "0"


def relative_text(total: Total) -> str:
    """`+1.26%`, `-50.00%`, `0%`, or `new` when the old value was 0."""
    rel = total.relative
    if rel is None:
        return "new" if total.new else "0%"
    if rel == 0:
        return "0%"
    return f"{rel * 100:+.2f}%"


def human(name: str, value: int) -> str:
    return human_bytes(value) if name.endswith("bytes") else human_count(value)


def growth_results(diff: Diff, limits: Sequence[Growth]) -> list[dict[str, Any]]:
    """Each --max-growth limit against the totals: what was allowed, what happened, ok or not."""
    out = []
    for limit in limits:
        total = diff.total(limit.name)
        ok = limit.allows(total.old, total.new)
        measured = relative_text(total) if limit.relative else signed(total.change)
        allowed = f"+{limit.text}" if not limit.text.startswith("+") else limit.text
        out.append({
            "name": limit.name, "limit": limit.text, "relative": limit.relative, "change": total.change,
            "relative_change": total.relative, "ok": ok,
            "text": f"{limit.name} {measured} {'<=' if ok else '>'} {allowed}",
        })
    return out


def growth_failure(results: Sequence[dict[str, Any]]) -> str | None:
    """The message for exit status 1, or None when every limit holds."""
    failed = [r["text"] for r in results if not r["ok"]]
    if not failed:
        return None
    return "--max-growth: " + "; ".join(failed)


# --- cells ----------------------------------------------------------------------------------

def _rf(item: Item | None) -> str:
    if item is None or item.rf is None or item.jump is None:
        return "-"
    sizes = {str(s) for s in item.rf}
    size = sizes.pop() if len(sizes) == 1 else "x".join(str(s) for s in item.rf)
    jumps = {fraction_text(j) for j in item.jump}
    jump = jumps.pop() if len(jumps) == 1 else "x".join(fraction_text(j) for j in item.jump)
    return f"{size}/{jump}"


def _pair(old: str | None, new: str | None) -> str:
    """`old -> new`, or one value when they agree or a side is missing."""
    if old is None:
        return new or "-"
    if new is None or old == new:
        return old
    return f"{old} -> {new}"


def cells(change: Change, indent: bool = False) -> dict[str, str]:
    """The text of one row: status, layer, type, output, params, MACs (with their changes), RF.
    With `indent`, an item is indented by its nesting (two spaces a level)."""
    old, new = change.old, change.new
    status = "renamed?" if change.status == RENAMED else change.status
    path = f"{old.path} -> {new.path}" if change.status == RENAMED and old and new else change.path
    if indent:
        path = "  " * change.path.count(".") + path
    o_params, n_params = (old.params if old else 0), (new.params if new else 0)
    o_macs, n_macs = (old.macs if old else 0), (new.macs if new else 0)
    return {
        "status": status,
        "path": path,
        "type": _pair(old.type if old else None, new.type if new else None),
        "output": _pair(shape_text(old.output_shape) if old else None, shape_text(new.output_shape) if new else None),
        "params": f"{change.item.params:,}",
        "params_change": signed(n_params - o_params),
        "macs": f"{change.item.macs:,}",
        "macs_change": signed(n_macs - o_macs),
        "rf": _pair(_rf(old) if old else None, _rf(new) if new else None),
    }


def counts_text(diff: Diff) -> str:
    """`2 changed, 1 added, 0 removed, 3 renamed?` (layers, or items at a depth)."""
    unit = "layers" if diff.depth is None else f"items at depth {diff.depth}"
    parts = [f"{diff.count(CHANGED)} changed", f"{diff.count(ADDED)} added", f"{diff.count(REMOVED)} removed"]
    if diff.count(RENAMED):
        parts.append(f"{diff.count(RENAMED)} renamed?")
    return f"{', '.join(parts)} {unit}"


def notes(diff: Diff) -> list[str]:
    out = []
    renamed = diff.count(RENAMED)
    if renamed:
        what = "layer" if diff.depth is None else "item"
        out.append(f"{renamed} {what}{'s' if renamed > 1 else ''} renamed? A removed and an added {what} with the"
                   " same types, arguments and shapes are paired; check the paths.")
    if diff.retyped:
        out.append(f"{diff.retyped} layer{'s' if diff.retyped > 1 else ''} changed type at the same path: a layer"
                   " inserted into or removed from a numbered list renumbers the items after it (give items a"
                   " name: to keep paths stable).")
    return out


def summary_line(diff: Diff) -> str:
    """`params +147.46K (+1.26%), MACs +115.61M (+6.38%), activations ...; 2 changed, ... layers`."""
    if diff.identical:
        return f"no change ({diff.new.layers} layers, {diff.total('params').new:,} params)"
    parts = []
    for name in ("params", "macs", "activation_bytes"):
        t = diff.total(name)
        label = {"params": "params", "macs": "MACs", "activation_bytes": "activations"}[name]
        sign = "+" if t.change > 0 else "-" if t.change < 0 else ""
        amount = human(name, abs(t.change)) if t.change else "0"
        parts.append(f"{label} {sign}{amount} ({relative_text(t)})")
    return f"{', '.join(parts)}; {counts_text(diff)}"


# --- table ----------------------------------------------------------------------------------

STATUS_STYLES = {ADDED: "green", REMOVED: "red", CHANGED: "yellow", "renamed?": "magenta", UNCHANGED: None}


def to_table(diff: Diff, show_all: bool, growth: Sequence[dict[str, Any]]) -> list[Line]:
    from convcalc.render.table import Column, layout

    lines: list[Line] = [[(f"{diff.old.label} -> {diff.new.label}", "bold"),
                          (f" ({diff.new.name}, batch {diff.batch_size}, {diff.dtype})", None)]]
    rows = [cells(c, indent=diff.depth is not None) for c in shown(diff, show_all)]
    if rows:
        columns = [
            Column("Change", [r["status"] for r in rows]),
            Column("Layer" if diff.depth is None else f"Item (depth {diff.depth})", [r["path"] for r in rows],
                   style="cyan"),
            Column("Type", [r["type"] for r in rows]),
            Column("Output", [r["output"] for r in rows]),
            Column("Params", [r["params"] for r in rows], right=True),
            Column("+/-", [r["params_change"] for r in rows], right=True),
            Column("MACs", [r["macs"] for r in rows], right=True),
            Column("+/-", [r["macs_change"] for r in rows], right=True),
            Column("RF/Jump", [r["rf"] for r in rows], right=True),
        ]
        table = layout(columns)
        for line, row in zip(table[1:], rows):  # colour the status cell
            line[0] = (line[0][0], STATUS_STYLES.get(row["status"]))
        lines += table
    else:
        lines.append([("No layer changed." if diff.identical or not show_all else "No layers.", None)])
    lines.append([])
    total_columns = [
        Column("Total", [TOTAL_NAMES[t.name] for t in diff.totals] + ["Output"], style="bold"),
        Column("Old", [f"{t.old:,}" for t in diff.totals] + [shape_text(diff.old.output_shape)], right=True),
        Column("New", [f"{t.new:,}" for t in diff.totals] + [shape_text(diff.new.output_shape)], right=True),
        Column("Change", [signed(t.change) for t in diff.totals] + [""], right=True),
        Column("", [relative_text(t) for t in diff.totals] + [""], right=True),
    ]
    lines += layout(total_columns)
    lines += [[], [(counts_text(diff), None)]]
    lines += [[(note, "yellow")] for note in notes(diff)]
    if growth:
        lines.append([])
        lines += [[("max-growth ", "bold"), (r["text"], "green" if r["ok"] else "bold red")] for r in growth]
    return lines


# --- JSON -----------------------------------------------------------------------------------

def item_dict(item: Item | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "type": item.type,
        "output_shape": list(item.output_shape),
        "params": item.params,
        "buffers": item.buffers,
        "macs": item.macs,
        "receptive_field": None if item.rf is None or item.jump is None else {
            "size": list(item.rf), "jump": [number(j) for j in item.jump]},
        "layers": item.layers,
    }


def diff_dict(diff: Diff, show_all: bool, growth: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def side(s: Any) -> dict[str, Any]:
        return {"label": s.label, "name": s.name, "input_shape": list(s.input_shape),
                "output_shape": list(s.output_shape), "layers": s.layers}

    return {
        "schema_version": SCHEMA_VERSION,
        "old": side(diff.old),
        "new": side(diff.new),
        "batch_size": diff.batch_size,
        "dtype": diff.dtype,
        "depth": diff.depth,
        "counts": {status: diff.count(status) for status in (CHANGED, ADDED, REMOVED, RENAMED, UNCHANGED)},
        "renamed": [{"old": c.old.path, "new": c.new.path} for c in diff.changes
                    if c.status == RENAMED and c.old and c.new],
        "retyped": diff.retyped,
        "totals": {t.name: {"old": t.old, "new": t.new, "change": t.change, "relative": t.relative}
                   for t in diff.totals},
        "layers": [{"status": c.status, "path": c.path, "old_path": c.old.path if c.old else None,
                    "subtotal": c.subtotal, "changed": list(c.aspects), "old": item_dict(c.old),
                    "new": item_dict(c.new)}
                   for c in shown(diff, show_all)],
        "growth": [{k: r[k] for k in ("name", "limit", "relative", "change", "relative_change", "ok")}
                   for r in growth],
    }


def to_json(diff: Diff, show_all: bool, growth: Sequence[dict[str, Any]]) -> str:
    """Indented at the top level, one line per layer (as `shapes --format json`)."""
    data = diff_dict(diff, show_all, growth)
    parts = []
    for key, value in data.items():
        if key == "layers" and value:
            items = ",\n".join("    " + json.dumps(v) for v in value)
            parts.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# --- Markdown -------------------------------------------------------------------------------

def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(diff: Diff, show_all: bool, growth: Sequence[dict[str, Any]]) -> str:
    """A pull-request comment: the summary line, then the totals and the layers in <details>."""
    labels = f"`{_md(diff.old.label)}` -> `{_md(diff.new.label)}`"
    lines = [f"**{_md(diff.new.name)}**: {_md(summary_line(diff))} ({labels})"]
    if growth:
        lines += ["", "Growth limits: " + "; ".join(
            f"{r['text']} ({'ok' if r['ok'] else '**exceeded**'})" for r in growth)]
    changes = shown(diff, show_all)
    rows = [cells(c) for c in changes]
    lines += ["", f"<details><summary>Totals and {len(rows)} changed row{'s' if len(rows) != 1 else ''}"
              " (convcalc diff)</summary>",
              "", f"Batch {diff.batch_size}, {diff.dtype}.", "",
              "| Total | Old | New | Change | |", "|---|---:|---:|---:|---:|"]
    for t in diff.totals:
        lines.append(f"| {TOTAL_NAMES[t.name]} | {t.old:,} | {t.new:,} | {signed(t.change)} | {relative_text(t)} |")
    lines.append(f"| Output | {shape_text(diff.old.output_shape)} | {shape_text(diff.new.output_shape)} | | |")
    if rows:
        head = "Layer" if diff.depth is None else f"Item (depth {diff.depth})"
        lines += ["", f"| Change | {head} | Type | Output | Params | +/- | MACs | +/- | RF/Jump |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|"]
        for change, r in zip(changes, rows):
            path = f"`{_md(r['path'])}`"
            lines.append("| " + " | ".join([  # a subtotal in bold, its items follow
                r["status"], f"**{path}**" if change.subtotal else path, _md(r["type"]), _md(r["output"]), r["params"],
                r["params_change"], r["macs"], r["macs_change"], _md(r["rf"])]) + " |")
    lines += [""] + [f"> {note}" for note in notes(diff)] + ([""] if notes(diff) else [])
    lines += ["</details>"]
    return "\n".join(lines) + "\n"


def render_diff(diff: Diff, fmt: str, show_all: bool = False,
                growth: Sequence[dict[str, Any]] = ()) -> Rendered:
    if fmt == "json":
        return Rendered(to_json(diff, show_all, growth))
    if fmt == "markdown":
        return Rendered(to_markdown(diff, show_all, growth))
    return Rendered(to_table(diff, show_all, growth))
