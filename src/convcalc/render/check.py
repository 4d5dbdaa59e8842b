"""`convcalc check` results: one JSON object per spec, the combined JSON, and PASS/FAIL lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convcalc.render.data import warning_dict

if TYPE_CHECKING:
    from convcalc.analysis import Report
    from convcalc.budget import Outcome


def check_dict(path: str, name: str, report: Report, outcomes: Sequence[Outcome], strict: bool) -> dict[str, Any]:
    """One spec's result; `ok` also needs no warnings left under --strict."""
    checks = [outcome_dict(o) for o in outcomes]
    warnings = [warning_dict(w) for w in report.warnings]
    ok = all(o.ok for o in outcomes) and not (strict and warnings)
    return {"file": path, "name": name, "ok": ok, "status": 0 if ok else 1,
            "batch_size": report.batch_size, "dtype": report.dtype, "checks": checks,
            "warnings": warnings, "error": None}


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    """One check as JSON; an expected output also names the output (`output`: its path)."""
    if outcome.name != "expect_output":
        return {"name": outcome.name, "measured": outcome.measured, "limit": outcome.limit, "ok": outcome.ok,
                "origin": outcome.origin, "text": outcome.describe()}
    return {"name": outcome.name, "output": outcome.output,
            "measured": None if outcome.measured is None else list(outcome.measured),
            "limit": None if outcome.limit is None else list(outcome.limit), "ok": outcome.ok,
            "origin": outcome.origin, "text": outcome.describe()}


def error_dict(path: str, status: int, headline: str, message: str) -> dict[str, Any]:
    """A spec that could not be checked; `message` (with its caret) is for the text output only."""
    return {"file": path, "ok": False, "status": status, "error": headline, "message": message}


def check_json(results: Sequence[dict[str, Any]], status: int) -> str:
    specs = [{k: v for k, v in r.items() if k != "message"} for r in results]
    return json.dumps({"schema_version": 1, "ok": status == 0, "status": status, "specs": specs}, indent=2)


def result_text(result: dict[str, Any], strict: bool) -> str:
    """`PASS file (n checks)` or `FAIL file` with each failure, or `ERROR file`."""
    if result.get("error"):
        return f"ERROR {result['file']}"
    failed = [c for c in result["checks"] if not c["ok"]]
    warned = result["warnings"]
    word = "PASS" if result["ok"] else "FAIL"
    held = _counted(len(result["checks"]), len(failed))
    extra = f", {len(warned)} warning{'s' if len(warned) != 1 else ''}" if warned else ""
    lines = [f"{word} {result['file']} ({held}{extra})"]
    lines += [f"  failed: {c['text']}" for c in failed]
    mark = "failed" if strict else "warning"
    lines += [f"  {mark}: {_place(result['file'], w['line'])}{w['path']} ({w['type']}) [{w['code']}]: {w['message']}"
              for w in warned]
    return "\n".join(lines)


def _place(file: str, line: int | None) -> str:
    """`file:line: ` as an editor or CI annotation reads it (nothing when the line is unknown)."""
    return f"{file}:{line}: " if line is not None else ""


def _counted(total: int, failed: int) -> str:
    """`3 checks hold`, `1 check holds`, `1 of 3 checks failed`, `1 check failed`, `no budgets`."""
    if not total:
        return "no budgets"
    if not failed:
        return f"{total} check{'s hold' if total > 1 else ' holds'}"
    if failed == total:
        return "1 check failed" if total == 1 else f"all {total} checks failed"
    return f"{failed} of {total} checks failed"
