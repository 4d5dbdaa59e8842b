"""`convcalc solve`: padding, output_padding and input sizes, in every output format."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from convcalc.cli import cli
from convcalc.cli.common import echo_lines, format_option, load_network, max_layers_option


def emit(title: str, fields: dict[str, Any], notes: list[str], fmt: str) -> None:
    """One result: `fields` as a two-column table, one JSON object, one CSV row or Markdown."""
    def text(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else str(value)
        return "-" if value is None else str(value)

    if fmt == "json":
        click.echo(json.dumps({**fields, "notes": notes}, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(fields))
        writer.writerow([";".join(map(str, v)) if isinstance(v, (list, tuple)) else text(v)
                         for v in fields.values()])
        click.echo(buffer.getvalue(), nl=False)
        for note in notes:
            click.echo(f"note: {note}", err=True)
    elif fmt == "markdown":
        lines = [f"### {title}", "", "| | |", "|---|---:|"]
        lines += [f"| {key} | {text(value)} |" for key, value in fields.items()]
        lines += ["", *(f"- {note}" for note in notes)] if notes else []
        click.echo("\n".join(lines))
    else:
        width = max(len(k) for k in fields)
        out: list[Any] = [[(title, "bold")]]
        out += [[(key.ljust(width) + "  ", "cyan"), (text(value), None)] for key, value in fields.items()]
        out += [[(note, None)] for note in notes]
        echo_lines(out)


@cli.group()
def solve() -> None:
    """Answer design questions: padding, output_padding, valid input sizes.

    \b
    Examples:
      convcalc solve padding --input 224 --kernel-size 7 --stride 2 --output 112
      convcalc solve output-padding --input 224 --kernel-size 3 --stride 2 --padding 1
      convcalc solve input examples/resnet50.yaml --min 200 --max 256
    """


def geometry_options(func: Any) -> Any:
    for decorator in reversed([
        click.option("-i", "--input", "n", type=click.IntRange(min=1), required=True,
                     help="Input size along one axis."),
        click.option("-k", "--kernel-size", type=click.IntRange(min=1), required=True),
        click.option("-s", "--stride", type=click.IntRange(min=1), default=1, show_default=True),
        click.option("-d", "--dilation", type=click.IntRange(min=1), default=1, show_default=True),
    ]):
        func = decorator(func)
    return func


@solve.command("padding")
@geometry_options
@click.option("-o", "--output", "target", type=click.IntRange(min=1), required=True,
              help="Wanted output size.")
@format_option()
def solve_padding_command(n: int, kernel_size: int, stride: int, dilation: int, target: int, fmt: str) -> None:
    """The padding that gives an output of size OUTPUT (symmetric if possible).

    The smallest total padding is chosen, preferring an even total (the same before and
    after, as PyTorch's int padding). Otherwise the extra pixel goes after, as TensorFlow's
    SAME does; write it in a spec as `padding: [[before, after], ...]`.
    """
    from convcalc.solve import solve_padding

    sol = solve_padding(n, kernel_size, stride, dilation, target)
    notes = []
    if sol.symmetric:
        notes.append(f"PyTorch: padding={sol.before}")
    else:
        notes.append(f"asymmetric: no symmetric padding gives {target}; in a spec write"
                     f" padding: [[{sol.before}, {sol.after}], ...] (or ZeroPad before a conv)")
    lost = sol.unread - sol.after
    if lost > 0:
        notes.append(f"the last {lost} input positions are never read with this padding")
    emit(f"padding for {target} outputs", {
        "input": n, "kernel_size": kernel_size, "stride": stride, "dilation": dilation,
        "output": target, "padding_before": sol.before, "padding_after": sol.after,
        "symmetric": sol.symmetric}, notes, fmt)


@solve.command("output-padding")
@geometry_options
@click.option("-p", "--padding", type=click.IntRange(min=0), default=0, show_default=True,
              help="The conv's padding on each side.")
@format_option()
def solve_output_padding_command(n: int, kernel_size: int, stride: int, dilation: int, padding: int,
                                 fmt: str) -> None:
    """The output_padding of the transposed conv that exactly inverts a conv's size change.

    The conv (INPUT, KERNEL_SIZE, STRIDE, DILATION, PADDING) gives m outputs; a
    convtranspose with the same kernel_size, stride, dilation and padding and this
    output_padding turns m back into INPUT.
    """
    from convcalc.solve import solve_output_padding

    sol = solve_output_padding(n, kernel_size, stride, dilation, (padding, padding))
    emit("output_padding that inverts the conv", {
        "input": n, "kernel_size": kernel_size, "stride": stride, "dilation": dilation,
        "padding": padding, "conv_output": sol.conv_output, "output_padding": sol.output_padding,
    }, [f"PyTorch: ConvTranspose(kernel_size={kernel_size}, stride={stride}, padding={padding},"
        f" dilation={dilation}, output_padding={sol.output_padding}) maps {sol.conv_output}"
        f" back to {n}"], fmt)


@solve.command("input")
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--min", "low", type=click.IntRange(min=1), default=1, show_default=True,
              help="Smallest input size to try.")
@click.option("--max", "high", type=click.IntRange(min=1),
              help="Largest input size to try [twice the spec's largest spatial size].")
@click.option("--axis", type=click.IntRange(min=1),
              help="Vary only this spatial axis (1 = first), keeping the others as in the spec;"
              " by default every spatial axis takes the same size.")
@format_option()
@max_layers_option
def solve_input_command(spec: str, low: int, high: int | None, axis: int | None, fmt: str,
                        max_layers: int) -> None:
    """The smallest valid input size of SPEC, and the sizes where no layer drops pixels.

    A size is valid when every layer has a non-empty output and every merge matches; it is
    exact when, in addition, no strided layer leaves input rows/cols unread (no
    unread-pixels warning).
    """
    from convcalc.solve import progression_text, scan_inputs

    network = load_network(spec, max_layers)
    high = high or 2 * max(network.input_shape[1:] or (1,))
    scan = scan_inputs(network, low, high, None if axis is None else axis - 1)
    where = "every spatial axis" if axis is None else f"spatial axis {axis}"
    fields: dict[str, Any] = {"spec": spec, "axis": axis if axis is not None else "all", "min": low,
                              "max": high, "smallest_valid": scan.smallest_valid}
    if fmt == "json":
        fields.update({"valid": list(scan.valid), "exact": list(scan.exact)})
    else:
        fields.update({"valid": progression_text(scan.valid), "exact": progression_text(scan.exact)})
    notes = [f"sizes of {where} in {low}..{high}"]
    if scan.smallest_valid is None:
        notes.append(f"no size up to {high} is valid; raise --max")
    emit(f"input sizes of {network.name}", fields, notes, fmt)
