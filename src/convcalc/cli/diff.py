"""`convcalc diff`: two specs (or one spec at two git revisions) compared, for review and CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from convcalc.analysis import analyze
from convcalc.cli import cli
from convcalc.cli.common import emit, load_network, max_layers_option, memory_options
from convcalc.errors import CheckFailed, SpecError

if TYPE_CHECKING:
    from convcalc.budget import Growth


class GrowthParam(click.ParamType):
    """`params=5%,macs=10%` or absolute amounts with check's units (`params=100K`)."""

    name = "NAME=LIMIT,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from convcalc.budget import parse_growth

        if not isinstance(value, str):
            return value
        try:
            return parse_growth(value)
        except ValueError as err:
            self.fail(str(err).removeprefix("--max-growth: "), param, ctx)


@cli.command()
@click.argument("specs", nargs=-1, metavar="OLD NEW", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--rev", metavar="REV", help="Compare SPEC with itself as committed at git revision REV"
              " (a branch, tag or commit; read with git show).")
@click.option("--depth", type=click.IntRange(min=1), help="Rows for the items at this nesting depth (path"
              " prefixes of this many segments, e.g. layer3.1 at 2), each summing its layers.")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged rows too.")
@click.option("--max-growth", type=GrowthParam(), help="Fail (exit status 1) when a total grows past a limit:"
              " params=5%,macs=10%, or amounts like params=100K,activation_bytes=64MiB. Totals: params, buffers,"
              " macs, flops, activation_bytes, param_bytes.")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for scripts, markdown for a pull-request comment.")
@memory_options
@max_layers_option
def diff(specs: tuple[str, ...], rev: str | None, depth: int | None, show_all: bool,
         max_growth: tuple[Growth, ...] | None, fmt: str, batch_size: int, dtype: str, max_layers: int) -> None:
    """Compare two specs: the layers added, removed and changed, and the totals.

    Layers are matched by module path. A changed layer differs in type, output shape,
    parameters, buffers, MACs or receptive field (RF/Jump). A removed and an added layer
    with the same type, arguments and shapes are paired as "renamed?". The totals are
    shown side by side with the absolute and relative change.

    \b
    Examples:
      convcalc diff old.yaml new.yaml
      convcalc diff net.yaml --rev main --format markdown > comment.md
      convcalc diff net.yaml --rev HEAD~1 --depth 2 --max-growth params=5%,macs=10%

    Exit status: 0 ok, 1 a --max-growth limit was exceeded, 2 bad input.
    """
    from convcalc.diff import diff_reports
    from convcalc.render.diff import growth_failure, growth_results, render_diff

    if rev is not None:
        if len(specs) != 1:
            raise SpecError(f"--rev compares one spec with its committed version; give one SPEC (got {len(specs)})")
        from convcalc.cli.common import load_revision

        old_label, new_label = f"{rev}:{specs[0]}", specs[0]
        old_network = load_revision(specs[0], rev, max_layers)
        new_network = load_network(specs[0], max_layers)
    else:
        if len(specs) != 2:
            raise SpecError(f"diff needs two specs, OLD and NEW, or one spec and --rev REV (got {len(specs)})")
        if specs == ("-", "-"):
            raise SpecError("only one of OLD and NEW can be '-' (stdin)")
        old_label, new_label = specs
        old_network = load_network(specs[0], max_layers)
        new_network = load_network(specs[1], max_layers)
    old = analyze(old_network, batch_size, dtype)
    new = analyze(new_network, batch_size, dtype)
    result = diff_reports(old, new, old_network, new_network, depth, old_label, new_label)
    growth = growth_results(result, max_growth or ())
    emit(render_diff(result, fmt, show_all, growth))
    failure = growth_failure(growth)
    if failure:
        raise CheckFailed(failure)
