"""`--verify` results as table cells and the one-line verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convcalc.render.data import shape_text

if TYPE_CHECKING:
    from convcalc.numeric.result import Verification


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
