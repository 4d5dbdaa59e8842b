"""Budgets a CI job holds a network to: limits on counts and bytes, and expected outputs.

Numbers accept SI suffixes (`25.6M` = 25,600,000; K, M, G, T are powers of 1000) and
binary byte suffixes (`64MiB` = 64 * 2**20; KiB, MiB, GiB, TiB); a trailing `B` on an SI
suffix is allowed for bytes (`2GB` = 2 * 10**9). A limit is inclusive: a measured value
equal to it holds. Budgets come from the spec (`budget:`) and the command line; the
command line wins, key by key. `expect_output` is one shape per output of the network, in
the order of `outputs:` (one shape for a network with one output).

Pure: imports `errors` and `analysis` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from convcalc.analysis import DTYPE_BYTES, Report
from convcalc.errors import Location, SpecError
from convcalc.records import record

SI = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
BINARY = {"KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}
NUMBER_RE = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


@record
class Limit:
    """One budget key: what it measures and how it is written."""

    name: str
    doc: str
    bytes: bool = False


LIMITS = {
    limit.name: limit
    for limit in (
        Limit("max_params", "Trainable parameters."),
        Limit("max_macs", "Multiply-accumulates of conv, transposed conv and linear layers (whole batch)."),
        Limit("max_flops", "FLOPs = 2 x MACs (whole batch)."),
        Limit("max_activation_bytes", "Bytes of every layer's output for the batch, at the dtype.", bytes=True),
        Limit("max_param_bytes", "Bytes of the trainable parameters, at the dtype.", bytes=True),
        Limit("max_peak_bytes", "Inference peak: the most bytes of live tensors at one step of a forward"
              " pass (batch, dtype).", bytes=True),
    )
}
# Keys of `budget:` that are not limits: the expected output shape and the measurement setup.
OTHER_KEYS = ("expect_output", "batch_size", "dtype")
BUDGET_KEYS = (*LIMITS, *OTHER_KEYS)


def parse_number(text: Any, what: str = "the value", allow_bytes: bool = True) -> int:
    """`25.6M` -> 25_600_000, `64MiB` -> 67_108_864, `1e9` -> 10**9; ints pass through.

    The result must be a whole number: `1.5` alone is refused, `1.5K` is 1500.
    """
    if isinstance(text, bool):
        raise ValueError(f"{what} must be a number like 25.6M or 64MiB (got {str(text).lower()})")
    if isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, float):
        value = Decimal(repr(text))
    elif isinstance(text, str):
        value = _parse_text(text, what, allow_bytes)
    else:
        raise ValueError(f"{what} must be a number like 25.6M or 64MiB (got {text!r})")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number like 25.6M or 64MiB (got {text})")
    if value < 0:
        raise ValueError(f"{what} must not be negative (got {text})")
    if value != value.to_integral_value():
        raise ValueError(f"{what} must be a whole number (got {text}, which is {value})")
    return int(value)


def _parse_text(text: str, what: str, allow_bytes: bool) -> Decimal:
    units = "K, M, G, T = 1000s" + ("; KiB, MiB, GiB, TiB = 1024s" if allow_bytes else "")
    match = NUMBER_RE.match(text)
    try:
        if match is None:  # scientific notation, 1e9
            return Decimal(text.strip().replace("_", ""))
        digits, suffix = match.groups()
        suffix = suffix.upper()
        if allow_bytes and suffix.endswith("B"):
            suffix = suffix[:-1]
        factor = SI.get(suffix) or (BINARY.get(suffix) if allow_bytes else None)
        if factor is None:
            raise InvalidOperation
        return Decimal(digits.replace("_", "").replace(",", "")) * factor
    except InvalidOperation:
        raise ValueError(f"{what} must be a number like 25.6M or 64MiB (got {text!r}; suffixes: {units})") from None


def parse_shape(value: Any, what: str = "expect_output") -> tuple[int, ...]:
    """`[1000]`, `1000`, `64x56x56` or `"64, 56, 56"` as a shape without the batch."""
    raw = value
    if isinstance(raw, str):
        parts = re.split(r"\s*[x×,]\s*", raw.strip().strip("[]()").lower())
        if all(p.isdigit() for p in parts):
            raw = [int(p) for p in parts]
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if isinstance(raw, (list, tuple)) and raw and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw
    ):
        return tuple(raw)
    raise ValueError(f"{what} must be a shape without the batch like 1000 or 64x56x56 (got {value!r})")


Shape = tuple[int, ...]


def parse_shapes(value: Any, what: str = "expect_output") -> tuple[Shape, ...]:
    """One shape (`[1000]`, `64x56x56`), or a list of shapes, one per output.

    A list of numbers is one shape; a list whose items are lists or strings is one shape per
    output (`[[256, 64, 64], 256x32x32]`).
    """
    if isinstance(value, (list, tuple)) and value and any(isinstance(v, (list, tuple, str)) for v in value):
        try:
            return tuple(parse_shape(v, what) for v in value)
        except ValueError:
            raise ValueError(f"{what} must be a shape without the batch like 1000 or 64x56x56, or a"
                             f" list of them, one per output (got {value!r})") from None
    return (parse_shape(value, what),)


@record
class Budget:
    """Limits and expectations for one network, each with where it came from."""

    limits: tuple[tuple[str, int, str], ...] = ()  # (key, limit, origin)
    expect_output: tuple[tuple[Shape, ...], str] | None = None  # (one shape per output, origin)
    batch_size: int | None = None
    dtype: str | None = None


def origin_text(where: Location | None) -> str:
    return f"spec line {where.line}" if where else "spec"


def from_spec(entries: Iterable[tuple[str, object, Location | None]]) -> Budget:
    """The spec's `budget:` mapping, validated; errors point at the key."""
    limits: list[tuple[str, int, str]] = []
    expect = None
    batch = dtype = None
    for key, value, where in entries:
        try:
            if key in LIMITS:
                limits.append((key, parse_number(value, f"budget '{key}'", LIMITS[key].bytes),
                               origin_text(where)))
            elif key == "expect_output":
                expect = (parse_shapes(value, "budget 'expect_output'"), origin_text(where))
            elif key == "batch_size":
                batch = parse_number(value, "budget 'batch_size'", allow_bytes=False)
                if batch < 1:
                    raise ValueError(f"budget 'batch_size' must be at least 1 (got {value})")
            elif key == "dtype":
                if value not in DTYPE_BYTES:
                    raise ValueError(f"budget 'dtype' must be one of {', '.join(DTYPE_BYTES)} (got {value!r})")
                dtype = str(value)
            else:
                from convcalc.errors import suggest

                raise ValueError(f"unknown budget key '{key}' (expected one of {', '.join(BUDGET_KEYS)})"
                                 + suggest(key, BUDGET_KEYS))
        except ValueError as err:
            raise SpecError(str(err), where=where) from None
    return Budget(tuple(limits), expect, batch, dtype)


def override(base: Budget, limits: Mapping[str, int | None], expect_output: tuple[Shape, ...] | None,
             batch_size: int | None = None, dtype: str | None = None) -> Budget:
    """`base` with the command line's values replacing the spec's, key by key.

    `expect_output` (one shape per output) replaces the spec's list as a whole.
    """
    given = {k: v for k, v in limits.items() if v is not None}
    kept = [entry for entry in base.limits if entry[0] not in given]
    merged = kept + [(k, v, "--" + k.replace("_", "-")) for k, v in given.items()]
    order = list(LIMITS)
    return Budget(
        tuple(sorted(merged, key=lambda e: order.index(e[0]))),
        (expect_output, "--expect-output") if expect_output else base.expect_output,
        batch_size if batch_size is not None else base.batch_size,
        dtype if dtype is not None else base.dtype,
    )


@record
class Outcome:
    """One budget or expectation, measured.

    An `expect_output` outcome is one output: `measured` is its shape and `output` its path
    (None when more shapes are expected than the network has outputs: `measured` is None);
    `limit` is the expected shape (None for an output beyond the expected ones). `count`
    is how many outputs the network has and `index` which one this is (from 0).
    """

    name: str
    measured: Any
    limit: Any
    ok: bool
    origin: str
    output: str | None = None
    index: int = 0
    count: int = 1

    def describe(self) -> str:
        if self.name == "expect_output":
            return self.describe_output()
        rel = "<=" if self.ok else ">"
        what = self.name.removeprefix("max_").replace("_", " ")
        return f"{what} {self.measured:,} {rel} limit {self.limit:,} ({self.origin})"

    def describe_output(self) -> str:
        """`output 10 == expected 10`; with several outputs, the output's path too."""
        outputs = f"{self.count} output{'s' if self.count != 1 else ''}"
        if self.measured is None:
            return (f"expected {_shape(self.limit)} for output {self.index + 1}, but the network has"
                    f" {outputs} ({self.origin})")
        name = f"output {self.output}" if self.count > 1 or self.index > 0 else "output"
        if self.limit is None:
            return (f"{name} {_shape(self.measured)} has no expected shape: the network has {outputs},"
                    f" give one shape per output ({self.origin})")
        rel = "==" if self.ok else "!="
        return f"{name} {_shape(self.measured)} {rel} expected {_shape(self.limit)} ({self.origin})"


def _shape(shape: Shape) -> str:
    return "x".join(map(str, shape))


def measure(report: Report, key: str) -> int:
    t = report.totals
    return {
        "max_params": t.params,
        "max_macs": t.macs,
        "max_flops": t.flops,
        "max_activation_bytes": t.activation_bytes,
        "max_param_bytes": t.param_bytes,
        "max_peak_bytes": t.peak_activation_bytes,
    }[key]


def evaluate(report: Report, budget: Budget) -> tuple[Outcome, ...]:
    """Every limit, then each output against its expected shape, in a fixed order."""
    out = []
    for key, limit, origin in budget.limits:
        value = measure(report, key)
        out.append(Outcome(key, value, limit, value <= limit, origin))
    if budget.expect_output is not None:
        expected, origin = budget.expect_output
        outputs: list[tuple[str, Shape]] = [(o.path, tuple(o.shape)) for o in report.outputs]
        for k in range(max(len(expected), len(outputs))):
            path: str | None = outputs[k][0] if k < len(outputs) else None
            shape: Shape | None = outputs[k][1] if k < len(outputs) else None
            want: Shape | None = expected[k] if k < len(expected) else None
            out.append(Outcome("expect_output", shape, want, shape is not None and shape == want, origin,
                               path, k, len(outputs)))
    return tuple(out)


# --- growth limits (`convcalc diff --max-growth`) ---------------------------------------------

# What a growth limit may name: the totals of the JSON contract, counts and bytes.
GROWTH_KEYS = {"params": False, "buffers": False, "macs": False, "flops": False,
               "activation_bytes": True, "param_bytes": True}  # name -> takes byte units


@record
class Growth:
    """How much one total may grow: by a percentage of the old value, or by an amount."""

    name: str
    limit: Decimal  # percent when `relative`, else an absolute count or byte size
    relative: bool
    text: str  # as written, for messages

    def allows(self, old: int, new: int) -> bool:
        growth = new - old
        if growth <= 0:
            return True
        if not self.relative:
            return growth <= self.limit
        return old > 0 and Decimal(growth) * 100 <= self.limit * old


def parse_growth(text: str, what: str = "--max-growth") -> tuple[Growth, ...]:
    """`params=5%,macs=10%,activation_bytes=2MiB`: a limit per total, relative or absolute."""
    out: dict[str, Growth] = {}
    keys = ", ".join(GROWTH_KEYS)
    for part in (p.strip() for p in text.split(",")):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"{what} takes NAME=LIMIT pairs like params=5%,macs=10% or params=100K"
                             f" (got {part!r})")
        if name not in GROWTH_KEYS:
            from convcalc.errors import suggest

            raise ValueError(f"{what}: unknown total '{name}' (expected one of {keys}){suggest(name, GROWTH_KEYS)}")
        if name in out:
            raise ValueError(f"{what}: '{name}' is given twice")
        if value.endswith("%"):
            try:
                percent = Decimal(value[:-1].strip())
            except InvalidOperation:
                percent = Decimal("NaN")
            if not percent.is_finite() or percent < 0:
                raise ValueError(f"{what}: {name} must be a percentage like 5% or an amount like 100K"
                                 f" (got {value!r})")
            out[name] = Growth(name, percent, True, value)
        else:
            amount = parse_number(value, f"{what}: {name}", GROWTH_KEYS[name])
            out[name] = Growth(name, Decimal(amount), False, value)
    return tuple(out.values())
