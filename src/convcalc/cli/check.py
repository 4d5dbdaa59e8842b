"""`convcalc check`: budgets and expectations for CI and pre-commit, several specs per call."""

from __future__ import annotations

from typing import Any

import click

from convcalc.analysis import DTYPE_BYTES, analyze
from convcalc.cli import cli
from convcalc.cli.common import Assignments, Shape, input_options, load_network, max_layers_option, terminal
from convcalc.cli.lint import linted_report, strict_option
from convcalc.cli.shapes import ignore_option
from convcalc.errors import ConvcalcError
from convcalc.render.check import check_json, error_dict, result_text
from convcalc.render.error import format_error


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
              max_layers: int, overrides: dict[str, Any] | None = None,
              input_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """One spec's result as the JSON object; ConvcalcError escapes for bad input."""
    from convcalc.budget import Budget, evaluate, from_spec, override
    from convcalc.render.check import check_dict

    network = load_network(path, max_layers, overrides, input_shape)
    budget: Budget = override(from_spec(network.budget), limits, expect, batch_size, dtype)
    report = analyze(network, budget.batch_size or 1, budget.dtype or "float32")
    report = linted_report(network, report, ignore)
    return check_dict(path, network.name, report, evaluate(report, budget), strict)


@cli.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=True, allow_dash=True))
@input_options
@click.option("--max-params", type=Number(), help="Most trainable parameters (e.g. 25.6M).")
@click.option("--max-macs", type=Number(), help="Most MACs for the batch (e.g. 4.1G).")
@click.option("--max-flops", type=Number(), help="Most FLOPs (= 2 x MACs) for the batch.")
@click.option("--max-activation-bytes", type=Number(),
              help="Most bytes of layer outputs for the batch (e.g. 64MiB).")
@click.option("--max-param-bytes", type=Number(), help="Most bytes of trainable parameters.")
@click.option("--max-peak-bytes", type=Number(),
              help="Most bytes of live tensors at any step of an inference pass (the peak; e.g. 16MiB).")
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
def check(specs: tuple[str, ...], input_shape: Shape | None, assignments: Assignments,
          max_params: int | None, max_macs: int | None, max_flops: int | None,
          max_activation_bytes: int | None, max_param_bytes: int | None, max_peak_bytes: int | None,
          expect_output: tuple[tuple[int, ...], ...], batch_size: int | None, dtype: str | None,
          strict: bool, ignore: tuple[str, ...], fmt: str, max_layers: int) -> None:
    """Check each SPEC against its budgets; for CI jobs and pre-commit hooks.

    Budgets come from the spec's `budget:` mapping (max_params, max_macs, max_flops,
    max_activation_bytes, max_param_bytes, max_peak_bytes, expect_output, batch_size, dtype) and from these
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
      convcalc check net.yaml --input 3x512x512 --max-activation-bytes 1GiB
      convcalc check fpn.yaml --expect-output 256x128x128 --expect-output 256x64x64
    """
    limits = {"max_params": max_params, "max_macs": max_macs, "max_flops": max_flops,
              "max_activation_bytes": max_activation_bytes, "max_param_bytes": max_param_bytes,
              "max_peak_bytes": max_peak_bytes}
    ctx = click.get_current_context()
    results = []
    for path in specs:
        try:
            results.append(check_one(path, limits, expect_output, batch_size, dtype, ignore, strict,
                                     max_layers, dict(assignments), input_shape))
        except ConvcalcError as err:
            if ctx.meta.get("convcalc.traceback"):
                raise
            message = format_error(err, ctx.meta.get("convcalc.sources", {}))
            results.append(error_dict(path, int(err.exit_status), err.headline(), message))
    status = max(r["status"] for r in results)
    if fmt == "json":
        click.echo(check_json(results, status))
    else:
        from convcalc.render.fit import wrap_text

        term = terminal()
        width = term.width if term.is_terminal() else None  # on a terminal, lines wrap between words
        for result in results:
            if result.get("error"):  # the details, with the caret, go to stderr
                click.echo(result["message"], err=True)
            click.echo(wrap_text(result_text(result, strict), width))
    ctx.exit(status)

