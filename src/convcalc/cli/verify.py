"""`--verify` for any command that shows shapes: options, progress bar, column, verdict.

A command adds `@verify_options`, then calls `verify_report(...)` after `analyze` and
`finish_verification(...)` after printing; `render.verification` formats the results. NumPy is imported only inside
`verify_report`, so commands stay light without `--verify`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from convcalc.analysis import Report
from convcalc.errors import CheckFailed
from convcalc.network import Network
from convcalc.render.data import shape_text
from convcalc.render.env import Terminal

if TYPE_CHECKING:
    from convcalc.numeric.result import Verification

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_MEMORY = "4GiB"
UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
         "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


class ByteSize(click.ParamType):
    """`512MiB`, `1.5GB`, `2e9`: a number of bytes with an optional unit."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else ""
        if not match or unit not in UNITS or float(match.group(1)) <= 0:
            self.fail(f"{value!r} is not a size; write e.g. 512MiB, 2GiB, 1.5GB or a number of bytes",
                      param, ctx)
        return int(float(match.group(1)) * UNITS[unit])


def verify_options(func: F) -> F:
    func = click.option(
        "--weights", type=click.Path(dir_okay=False), default=None, metavar="FILE",
        help="With --verify: run with these weights instead of random ones: a PyTorch state_dict"
             " (.pt/.pth, needs torch) or a .npz, keyed by path (layer1.0.conv1.weight).")(func)
    func = click.option(
        "--max-memory", type=ByteSize(), default=DEFAULT_MAX_MEMORY, show_default=True,
        help="With --verify: refuse (exit 2) when the forward pass would need more memory.")(func)
    func = click.option("--seed", type=int, default=0, show_default=True,
                        help="With --verify: seed of the random weights and input.")(func)
    func = click.option(
        "--verify", is_flag=True,
        help="Run the network forward in NumPy with random weights and check every output shape"
             " (exit 1 on a disagreement). Runs in float64 when --dtype float64, else float32.")(func)
    return func


def verify_report(network: Network, report: Report, seed: int, max_memory: int,
                  terminal: Terminal | None = None, weights: str | None = None) -> Verification:
    """Run the forward pass (with the weights of the file `weights`, if given); a progress
    bar on stderr when stderr is a terminal."""
    from convcalc.numeric.runner import verify, verify_dtype

    params = None
    if weights is not None:
        from convcalc.numeric.weights import load_weights

        params = load_weights(weights, network, report, verify_dtype(report.dtype))
    terminal = terminal or Terminal.detect()
    if not terminal.stderr_tty:
        return verify(network, report, seed=seed, dtype=report.dtype, max_memory=max_memory, params=params,
                      weights=weights)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}", style="cyan"))
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("", total=len(report.rows))

        def progress(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, description=path)

        return verify(network, report, seed=seed, dtype=report.dtype, max_memory=max_memory,
                      progress=progress, params=params, weights=weights)


def finish_verification(verification: Verification) -> None:
    """Raise CheckFailed (exit 1) naming the first layer whose shape disagreed."""
    check = verification.failure
    if check is None:
        return
    if check.status == "error":
        message = (f"the forward pass failed here ({check.error}); the computed output is"
                   f" {shape_text(check.expected)}")
    else:
        message = (f"computed output {shape_text(check.expected)} but the forward pass gave"
                   f" {shape_text(check.actual)}")
    raise CheckFailed(f"verification failed: {message}", where=check.where, path=check.path,
                      layer_type=check.type)
