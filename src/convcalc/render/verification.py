"""`--verify` results as table cells and the one-line verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convcalc.render.data import shape_text

if TYPE_CHECKING:
    from convcalc.numeric.result import Verification
    from convcalc.render.table import Extra


def verified_cells(verification: Verification) -> list[str]:
    """One cell per report row: `ok`, `MISMATCH 64x57x57`, `ERROR` or `-` (not run)."""
    cells = []
    for check in verification.checks:
        status = check.status
        if status == "mismatch":
            cells.append(f"MISMATCH {shape_text(check.actual)}")
        else:
            cells.append({"ok": "ok", "error": "ERROR", "not-run": "-"}[status])
    return cells


def verified_extra(verification: Verification) -> Extra:
    """The Verified column: a layer's cell, or for a group the worst of its layers'."""
    from convcalc.render.table import Extra

    cells = verified_cells(verification)

    def cell(entry: Any) -> str:
        if not entry.is_group:
            return cells[entry.start]
        statuses = {c.status for c in verification.checks[entry.start:entry.stop]}
        for status, text in (("mismatch", "MISMATCH"), ("error", "ERROR"), ("ok", "ok")):
            if status in statuses:
                return text
        return "-"

    return Extra("Verified", cell)


def summary(verification: Verification) -> str:
    v = verification
    drawn = f"weights from {v.weights}" if v.weights else f"seed {v.seed}"
    how = f"NumPy forward pass ({v.dtype}, {drawn}, batch {v.batch_size}, {v.seconds:.2f} s)"
    if v.ok:
        text = f"Verified: {how} confirmed all {len(v.checks)} output shapes."
    else:
        text = f"Verification FAILED: {how}; see the error below."
    if v.nonfinite:
        cause = "" if v.weights else " (random weights overflowed)"
        text += f" Note: non-finite values from {v.nonfinite[0]} on{cause}."
    return text
