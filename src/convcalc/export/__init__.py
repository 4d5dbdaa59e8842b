"""Exporting a spec as code for a framework: one module per target, listed in TARGETS.

A target module defines `SUFFIX` (the file extension) and `export(network, report,
spec_label, version) -> str`. Adding a framework is one more module and one entry here;
`export.template` (the spec as written, linked to the parsed layers) and `export.python`
(expressions, literals and line wrapping as Python) are shared. No target imports its
framework: exporting runs without it.

Imports `errors`, `export.template`, `export.pytorch`, `analysis` and `network` only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from convcalc.analysis import Report
from convcalc.errors import Location
from convcalc.export.template import ExportError
from convcalc.network import Network

# target name -> module (imported when used)
TARGETS = {"pytorch": "convcalc.export.pytorch"}


def target(name: str) -> ModuleType:
    if name not in TARGETS:
        raise ExportError(f"unknown export target {name!r} (known: {', '.join(TARGETS)})")
    return importlib.import_module(TARGETS[name])


def export(network: Network, report: Report, to: str, spec_label: str) -> str:
    """The source of `network` for target `to` (`pytorch`). An `ExportError` raised at a
    spec item names the path of the first layer or structure written there."""
    from convcalc import __version__

    try:
        return target(to).export(network, report, spec_label, __version__)
    except ExportError as err:
        if err.where is None or err.path is not None:
            raise
        raise err.located(where=None, path=path_written_at(network, err.where), layer_type=None) from None


def path_written_at(network: Network, where: Location) -> str | None:
    """The path of the first layer, or residual / parallel (its merge's parent), written at `where`."""
    at = (where.file, where.line, where.column)
    for node in network.graph.nodes:
        if node.where is not None and (node.where.file, node.where.line, node.where.column) == at:
            forked = node.type.arity is None and not node.from_paths
            return node.path.rpartition(".")[0] if forked else node.path
    return None


__all__ = ["TARGETS", "ExportError", "export", "target"]
