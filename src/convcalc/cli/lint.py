"""What `shapes` and `check` share about design warnings: linting, silencing, --strict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from convcalc.analysis import Report
from convcalc.errors import CheckFailed, SpecError
from convcalc.network import Network

# convcalc.training.OPTIMIZER_STATES, written out so that `shapes` imports training only
# with --training (tests/test_training.py checks they agree).
OPTIMIZERS = ("none", "sgd", "sgd-momentum", "adam", "adamw")

F = TypeVar("F", bound=Callable[..., Any])


def strict_option(func: F) -> F:
    return click.option(
        "--strict", is_flag=True,
        help="Fail (exit status 1) when any design warning remains after --ignore and the"
        " spec's ignore: list.")(func)


# convcalc.training.AMP_DTYPES, written out for the same reason.
AMP_DTYPES = ("float16", "bfloat16")


def training_options(func: F) -> F:
    func = click.option(
        "--amp-dtype", type=click.Choice(AMP_DTYPES), default="float16", show_default=True,
        help="The low precision of --amp.")(func)
    func = click.option(
        "--amp", is_flag=True,
        help="With --training: mixed precision as autocast + GradScaler do it: float32 weights,"
        " gradients and optimizer state; activations kept in --amp-dtype where autocast casts them"
        " (implies --training; see docs/check.md).")(func)
    func = click.option(
        "--optimizer", type=click.Choice(OPTIMIZERS), default="none", show_default=True,
        help="Optimizer state for --training: sgd none, sgd-momentum 1, adam/adamw 2 values per"
        " parameter.")(func)
    func = click.option(
        "--training", is_flag=True,
        help="Add the memory one training step needs: what each layer keeps for backward, weights,"
        " gradients and optimizer state (see docs/check.md).")(func)
    return func


def ignored_codes(network: Network, ignore: tuple[str, ...]) -> tuple[str, ...]:
    """--ignore plus the spec's `ignore:`, every code checked (a typo is bad input)."""
    from convcalc.lints import check_codes

    problem = check_codes(ignore)
    if problem:
        raise SpecError(f"--ignore: {problem}")
    for code, where in network.ignore:
        problem = check_codes([code])
        if problem:
            raise SpecError(f"ignore: {problem}", where=where)
    return (*ignore, *(code for code, _ in network.ignore))


def linted_report(network: Network, report: Report, ignore: tuple[str, ...]) -> Report:
    """The report with every design lint, less the silenced codes."""
    from convcalc.lints import lint, silence

    return silence(lint(network, report), ignored_codes(network, ignore))


def fail_on_warnings(report: Report) -> None:
    if report.warnings:
        codes = sorted({w.code for w in report.warnings})
        count = len(report.warnings)
        raise CheckFailed(
            f"--strict: {count} design warning{'s' if count > 1 else ''} ({', '.join(codes)});"
            " fix them or silence each by name with --ignore CODE or the spec's ignore: list")
