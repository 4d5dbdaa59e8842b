"""`convcalc check`: budgets and expectations for CI and pre-commit, several specs per call."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from convcalc.analysis import DTYPE_BYTES, analyze
from convcalc.cli import cli
from convcalc.cli.common import format_error, load_network, max_layers_option
from convcalc.cli.lint import linted_report, strict_option
from convcalc.cli.shapes import ignore_option
from convcalc.errors import ConvcalcError

if TYPE_CHECKING:
    from convcalc.budget import Outcome


class Number(click.ParamType):
    """A count or byte size with an optional suffix: 25.6M, 4.1G, 64MiB."""

    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from convcalc.budget import parse_number

        try:
            return parse_number(value, "the value")
        except ValueError as err:
            self.fail(str(err), param, ctx)


class ShapeParam(click.ParamType):
    name = "SHAPE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        from convcalc.budget import parse_shape

        try:
            return parse_shape(value, "the shape")
        except ValueError as err:
            self.fail(str(err), param, ctx)


def check_one(path: str, limits: dict[str, int | None], expect: tuple[tuple[int, ...], ...],
              batch_size: int | None, dtype: str | None, ignore: tuple[str, ...], strict: bool,
              max_layers: int) -> dict[str, Any]:
    """One spec's result as the JSON object; ConvcalcError escapes for bad input."""
    from convcalc.budget import Budget, evaluate, from_spec, override

    network = load_network(path, max_layers)
    budget: Budget = override(from_spec(network.budget), limits, expect, batch_size, dtype)
    report = analyze(network, budget.batch_size or 1, budget.dtype or "float32")
    report = linted_report(network, report, ignore)
    outcomes = evaluate(report, budget)
    checks = [check_json(o) for o in outcomes]
    warnings = [{"path": w.path, "type": w.layer_type, "code": w.code, "message": w.message,
                 "line": w.where.line if w.where else None} for w in report.warnings]
    ok = all(o.ok for o in outcomes) and not (strict and warnings)
    return {"file": path, "name": network.name, "ok": ok, "status": 0 if ok else 1,
            "batch_size": report.batch_size, "dtype": report.dtype, "checks": checks,
            "warnings": warnings, "error": None}


def check_json(outcome: Outcome) -> dict[str, Any]:
    """One check as JSON; an expected output also names the output (`output`: its path)."""
    if outcome.name != "expect_output":
        return {"name": outcome.name, "measured": outcome.measured, "limit": outcome.limit, "ok": outcome.ok,
                "origin": outcome.origin, "text": outcome.describe()}
    return {"name": outcome.name, "output": outcome.output,
            "measured": None if outcome.measured is None else list(outcome.measured),
            "limit": None if outcome.limit is None else list(outcome.limit), "ok": outcome.ok,
            "origin": outcome.origin, "text": outcome.describe()}


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--max-params", type=Number(), help="Most trainable parameters (e.g. 25.6M).")
@click.option("--max-macs", type=Number(), help="Most MACs for the batch (e.g. 4.1G).")
@click.option("--max-flops", type=Number(), help="Most FLOPs (= 2 x MACs) for the batch.")
@click.option("--max-activation-bytes", type=Number(),
              help="Most bytes of layer outputs for the batch (e.g. 64MiB).")
@click.option("--max-param-bytes", type=Number(), help="Most bytes of trainable parameters.")
@click.option("--expect-output", type=ShapeParam(), multiple=True,
              help="The output shape without the batch (e.g. 1000); repeat it for each output, in"
                   " the order of the spec's outputs:.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1),
              help="Batch size for MACs and activations [spec budget's batch_size, else 1].")
@click.option("--dtype", type=click.Choice(list(DTYPE_BYTES)),
              help="Element type for bytes [spec budget's dtype, else float32].")
@strict_option
@ignore_option
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@max_layers_option
def check(specs: tuple[str, ...], max_params: int | None, max_macs: int | None, max_flops: int | None,
          max_activation_bytes: int | None, max_param_bytes: int | None,
          expect_output: tuple[tuple[int, ...], ...], batch_size: int | None, dtype: str | None,
          strict: bool, ignore: tuple[str, ...], fmt: str, max_layers: int) -> None:
    """Check each SPEC against its budgets; for CI jobs and pre-commit hooks.

    Budgets come from the spec's `budget:` mapping (max_params, max_macs, max_flops,
    max_activation_bytes, max_param_bytes, expect_output, batch_size, dtype) and from these
    options, which override the spec key by key. A network with several outputs takes one
    expected shape per output, in the order of its `outputs:` (repeat --expect-output, or
    give the spec's expect_output a list of shapes). Numbers take suffixes: K, M, G, T (1000s)
    and KiB, MiB, GiB, TiB (1024s). A limit holds when the measured value is at most it.

    Exit status: 0 every budget holds, 1 a budget or expectation failed (or, with --strict,
    a design warning remains), 2 a spec or option is bad input. With several specs, each is
    checked and the worst status wins.

    \b
    Examples:
      convcalc check models/*.yaml
      convcalc check net.yaml --max-params 25.6M --max-macs 4.1G --expect-output 1000
      convcalc check net.yaml --max-activation-bytes 2GiB -b 32 --dtype float16 --format json
      convcalc check fpn.yaml --expect-output 256x128x128 --expect-output 256x64x64
    """
    limits = {"max_params": max_params, "max_macs": max_macs, "max_flops": max_flops,
              "max_activation_bytes": max_activation_bytes, "max_param_bytes": max_param_bytes}
    ctx = click.get_current_context()
    results = []
    for path in specs:
        try:
            results.append(check_one(path, limits, expect_output, batch_size, dtype, ignore, strict,
                                     max_layers))
        except ConvcalcError as err:
            if ctx.meta.get("convcalc.traceback"):
                raise
            message = format_error(err, ctx.meta.get("convcalc.sources", {}))
            results.append({"file": path, "ok": False, "status": int(err.exit_status),
                            "error": err.headline(), "message": message})
    status = max(r["status"] for r in results)
    if fmt == "json":
        click.echo(json.dumps({"schema_version": 1, "ok": status == 0, "status": status,
                               "specs": [{k: v for k, v in r.items() if k != "message"} for r in results]},
                              indent=2))
    else:
        for result in results:
            echo_text(result, strict)
    ctx.exit(status)


def echo_text(result: dict[str, Any], strict: bool) -> None:
    """`PASS file (n checks)` or `FAIL file` with each failure; details of errors on stderr."""
    if result.get("error"):
        click.echo(result["message"], err=True)
        click.echo(f"ERROR {result['file']}")
        return
    failed = [c for c in result["checks"] if not c["ok"]]
    warned = result["warnings"]
    word = "PASS" if result["ok"] else "FAIL"
    held = f"{len(result['checks']) - len(failed)} of {len(result['checks'])} checks hold" \
        if result["checks"] else "no budgets"
    extra = f", {len(warned)} warning{'s' if len(warned) != 1 else ''}" if warned else ""
    click.echo(f"{word} {result['file']} ({held}{extra})")
    for c in failed:
        click.echo(f"  failed: {c['text']}")
    for w in warned:
        mark = "failed" if strict else "warning"
        click.echo(f"  {mark}: {w['path']} ({w['type']}) [{w['code']}]: {w['message']}")
