"""Exporting a spec as code for a framework: one module per target, listed in TARGETS.

A target module defines `SUFFIX` (the file extension) and `export(network, report,
spec_label, version) -> str`. Adding a framework is one more module and one entry here;
`export.template` (the spec as written, linked to the parsed layers) and `export.python`
(expressions, literals and line wrapping as Python) are shared. No target imports its
framework: exporting runs without it.

Imports `export.template`, `export.pytorch`, `analysis` and `network` only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from convcalc.analysis import Report
from convcalc.export.template import ExportError
from convcalc.network import Network

# target name -> module (imported when used)
TARGETS = {"pytorch": "convcalc.export.pytorch"}


def target(name: str) -> ModuleType:
    if name not in TARGETS:
        raise ExportError(f"unknown export target {name!r} (known: {', '.join(TARGETS)})")
    return importlib.import_module(TARGETS[name])


def export(network: Network, report: Report, to: str, spec_label: str) -> str:
    """The source of `network` for target `to` (`pytorch`)."""
    from convcalc import __version__

    return target(to).export(network, report, spec_label, __version__)


__all__ = ["TARGETS", "ExportError", "export", "target"]
