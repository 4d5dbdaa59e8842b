"""What `--verify` found, as plain records (no NumPy, so renderers can import it).

One `LayerCheck` per report row, in execution order: the computed output shape and the
shape the forward pass produced (None when that layer did not run because an earlier one
failed). `Verification.ok` is the overall verdict. Imports `errors` only.
"""

from __future__ import annotations

from convcalc.errors import Location
from convcalc.records import record

Shape = tuple[int, ...]


@record
class LayerCheck:
    path: str
    type: str
    expected: Shape
    actual: Shape | None
    error: str | None = None  # the forward pass raised here
    where: Location | None = None

    @property
    def status(self) -> str:
        """`ok`, `mismatch`, `error` or `not-run`."""
        if self.error is not None:
            return "error"
        if self.actual is None:
            return "not-run"
        return "ok" if self.actual == self.expected else "mismatch"


@record
class Verification:
    checks: tuple[LayerCheck, ...]
    seed: int
    dtype: str  # the dtype the forward pass ran in (float32 or float64)
    batch_size: int
    seconds: float
    memory_estimate: int  # bytes, estimated before running
    nonfinite: tuple[str, ...] = ()  # paths whose output had NaN or inf (random weights)
    live_peak_bytes: int = 0  # the most bytes of input and layer outputs held at once (runner.LiveBytes)
    weights: str | None = None  # the file the weights came from (--weights), else random

    @property
    def ok(self) -> bool:
        return all(c.status == "ok" for c in self.checks)

    @property
    def failure(self) -> LayerCheck | None:
        return next((c for c in self.checks if c.status in ("mismatch", "error")), None)
