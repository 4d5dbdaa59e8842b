"""`convcalc layers`: every layer type with its arguments, or one type in detail."""

from __future__ import annotations

from convcalc.render.output import Rendered


def render_layers(name: str | None = None) -> Rendered:
    """All registered types (a table), or `name`'s arguments with defaults and meanings.

    `name` must be registered; the caller reports an unknown one.
    """
    from rich.markup import escape
    from rich.table import Table

    from convcalc.layers import REGISTRY
    from convcalc.layers.base import describe

    if name is not None:
        lt = REGISTRY[name]
        if not lt.args:
            return Rendered(f"{name}: {lt.summary}\nIt takes no arguments.\n")
        # Cells are rich markup: a doc's "[before, after]" would be read as a style tag.
        table = Table(title=escape(f"{name}: {lt.summary}"), title_justify="left", box=None, header_style="bold")
        for column in ("Argument", "Default", "Meaning"):
            table.add_column(column)
        for arg in lt.args:
            table.add_row(arg.name, escape("required" if arg.required else describe(arg.default)), escape(arg.doc))
        return Rendered(table)
    table = Table(box=None, header_style="bold")
    table.add_column("Type", style="cyan", no_wrap=True)
    table.add_column("Arguments (torch.nn names; * required)")
    for type_name in REGISTRY.names():
        lt = REGISTRY[type_name]
        table.add_row(type_name, escape(", ".join(a.name + ("*" if a.required else "") for a in lt.args) or "-"))
    return Rendered(table)
