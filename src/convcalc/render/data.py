"""The JSON contract (schema_version 1) and the plain values every format shares.

Contract: top level `schema_version`, `name`, `input_shape`, `output_shape` (a list of shapes
when the network has several outputs), `outputs` (each output's `path`, `shape` and
`receptive_field`, also with one output), `batch_size`, `dtype`, `layers`, `totals` (with
`peak_activation_bytes`, the inference peak), `warnings`. Each layer: `path`, `type`,
`input_shape` (a list of shapes for a merge), `output_shape`, `params`, `buffers`, `macs`,
`flops`, `activation_bytes`, `receptive_field` ({size, jump, start} per spatial axis, or
null). Shapes leave out the batch. Numbers are exact; a fractional jump or start is a float.
With `--verify` (`add_verification`): top-level `verified` (bool) and `verification` ({seed,
dtype, batch_size, seconds, memory_estimate, live_peak_bytes, nonfinite, failure}); each
layer gains `verified` (true, false, or null when it did not run) and `actual_shape`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from convcalc.analysis import DesignWarning, Field, Report, Row

if TYPE_CHECKING:
    from fractions import Fraction

SCHEMA_VERSION = 1


def number(value: Fraction | int | None) -> int | float | None:
    """Fractions as JSON numbers: ints when whole (None stays None)."""
    if value is None or isinstance(value, (int, float)):  # not a Fraction (fractions is imported lazily)
        return value
    return value.numerator if value.denominator == 1 else float(value)


def fraction_text(value: Fraction | int | None) -> str:
    """`3`, `1/2`, or `-` for None."""
    if value is None:
        return "-"
    if not isinstance(value, (int, float)) and value.denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    return str(int(value))


def warning_dict(warning: DesignWarning, line: bool = True) -> dict[str, Any]:
    """One design warning as JSON: path, type, code, message and (with `line`) its source line."""
    data: dict[str, Any] = {"path": warning.path, "type": warning.layer_type, "code": warning.code,
                            "message": warning.message}
    if line:
        data["line"] = warning.where.line if warning.where else None
    return data


def warning_place(warning: DesignWarning) -> str:
    """`file:line: ` of the layer a warning is about (as JSON's `line`), or nothing when unknown."""
    where = warning.where
    return f"{where.file}:{where.line}: " if where is not None else ""


def warning_text(warning: DesignWarning) -> str:
    """`file:line: path (type) [code]: message`, as the plain formats and stderr show a warning."""
    return f"{warning_place(warning)}{warning.path} ({warning.layer_type}) [{warning.code}]: {warning.message}"


def field_dict(field: Field) -> dict[str, list[int | float | None]] | None:
    if field is None:
        return None
    return {
        "size": [f.size for f in field],
        "jump": [number(f.jump) for f in field],
        "start": [number(f.start) for f in field],
    }


def row_dict(row: Row, fields: dict[int, Any] | None = None) -> dict[str, Any]:
    """One layer of the contract; `fields` memoises receptive fields by identity (element-wise
    layers pass their input's field object on, so long stacks share a few)."""
    if fields is None:
        rf = field_dict(row.field)
    else:
        rf = fields.get(id(row.field), fields)
        if rf is fields:
            rf = fields[id(row.field)] = field_dict(row.field)
    shape: Any = list(row.input_shape)
    if row.is_merge:
        shape = [list(s) for s in row.input_shapes]
    return {
        "path": row.path,
        "type": row.type,
        "input_shape": shape,
        "output_shape": list(row.output_shape),
        "params": row.params,
        "buffers": row.buffers,
        "macs": row.macs,
        "flops": row.flops,
        "activation_bytes": row.activation_bytes,
        "receptive_field": rf,
    }


def report_dict(report: Report, layers: bool = True) -> dict[str, Any]:
    """The JSON contract as Python data; `layers=False` leaves the `layers` list empty (for a
    writer that makes them itself, as `render.plain.to_json` does)."""
    t = report.totals
    fields: dict[int, Any] = {}  # the rows keep every field alive, so ids stay unique
    return {
        "schema_version": SCHEMA_VERSION,
        "name": report.name,
        "input_shape": list(report.input_shape),
        "output_shape": ([list(o.shape) for o in report.outputs] if len(report.outputs) > 1
                         else list(report.output_shape)),
        "outputs": [{"path": o.path, "shape": list(o.shape), "receptive_field": field_dict(o.field)}
                    for o in report.outputs],
        "batch_size": report.batch_size,
        "dtype": report.dtype,
        "layers": [row_dict(r, fields) for r in report.rows] if layers else [],
        "totals": {
            "params": t.params,
            "buffers": t.buffers,
            "macs": t.macs,
            "flops": t.flops,
            "activation_bytes": t.activation_bytes,
            "param_bytes": t.param_bytes,
            "peak_activation_bytes": t.peak_activation_bytes,
        },
        "warnings": [warning_dict(w) for w in report.warnings],
    }


def add_verification(data: dict[str, Any], verification: Any) -> dict[str, Any]:
    """`report_dict` output plus the `--verify` results (a numeric.result.Verification)."""
    for layer, check in zip(data["layers"], verification.checks):
        layer["verified"] = None if check.status in ("not-run", "error") else check.status == "ok"
        layer["actual_shape"] = list(check.actual) if check.actual is not None else None
    failure = verification.failure
    data["verified"] = verification.ok
    data["verification"] = {
        "seed": verification.seed,
        "dtype": verification.dtype,
        "batch_size": verification.batch_size,
        "seconds": round(verification.seconds, 3),
        "memory_estimate": verification.memory_estimate,
        "live_peak_bytes": verification.live_peak_bytes,
        "nonfinite": list(verification.nonfinite),
        **({"weights": verification.weights} if verification.weights else {}),
        "failure": None if failure is None else {
            "path": failure.path, "type": failure.type, "expected": list(failure.expected),
            "actual": list(failure.actual) if failure.actual is not None else None, "error": failure.error,
        },
    }
    return data


def shape_text(shape: Any) -> str:
    """`64x56x56`; a merge's inputs joined with ` + `."""
    if shape and isinstance(shape[0], (tuple, list)):
        return " + ".join(shape_text(s) for s in shape)
    return "x".join(str(d) for d in shape)


def field_text(field: Field, input_shape: Any = None) -> tuple[str, str]:
    """(size, jump) as short text: `427` when all axes agree, else `427x300`; `1,051` as counts are;
    `427 all` when every position sees the whole input (after a global-pool gate)."""
    if field is None:
        return "-", "-"
    sizes = {f.size for f in field}
    jumps = {fraction_text(f.jump) for f in field}
    size = f"{field[0].size:,}" if len(sizes) == 1 else "x".join(f"{f.size:,}" for f in field)
    if input_shape is not None and len(input_shape) == len(field) + 1 and all(
            f.covers_whole(n) for f, n in zip(field, input_shape[1:])):
        size += " all"
    jump = jumps.pop() if len(jumps) == 1 else "x".join(fraction_text(f.jump) for f in field)
    return size, jump


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    """`4.09G`, `25.56M`: SI prefixes, for the summary line beside exact counts."""
    for factor, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}"
    return str(n)
