"""`convcalc shapes`, `convcalc layer` and `convcalc layers`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import yaml

from convcalc.analysis import Report, analyze
from convcalc.cli import cli
from convcalc.cli.common import emit, format_option, load_network, max_layers_option, memory_options, terminal
from convcalc.cli.lint import fail_on_warnings, linted_report, strict_option, training_options
from convcalc.cli.verify import finish_verification, verify_options, verify_report
from convcalc.errors import ConvcalcError, SpecError
from convcalc.layers import REGISTRY
from convcalc.network import Network
from convcalc.spec.parser import Limits, Parser
from convcalc.spec.source import Source

if TYPE_CHECKING:
    from convcalc.numeric.result import Verification
    from convcalc.training import TrainingMemory


def emit_report(report: Report, fmt: str, verification: Verification | None = None,
                training: TrainingMemory | None = None) -> None:
    """Print a report in the chosen format (see `render.report`)."""
    from convcalc.render.report import render_report

    emit(render_report(report, fmt, verification, training))


ignore_option = click.option(
    "--ignore", multiple=True, metavar="CODE",
    help="Leave out warnings with this code (e.g. unread-pixels); repeatable.")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@format_option()
@memory_options
@ignore_option
@strict_option
@training_options
@max_layers_option
@verify_options
def shapes(spec: str, fmt: str, batch_size: int, dtype: str, ignore: tuple[str, ...], strict: bool,
           training: bool, optimizer: str, max_layers: int, verify: bool, seed: int, max_memory: int,
           weights: str | None) -> None:
    """Per-layer output shapes, receptive fields, parameters, MACs and memory of SPEC.

    SPEC is a YAML or JSON file ('-' reads stdin). Each row is one leaf layer in execution
    order, named by its module path (like PyTorch's `layer3.1.conv2`); merges appear as
    `add` and `concat` rows. RF is the receptive field size in input pixels and Jump its
    effective stride (per axis when they differ).

    \b
    Examples:
      convcalc shapes examples/resnet50.yaml
      convcalc shapes net.yaml --format json > shapes.json
      convcalc shapes net.yaml --batch-size 32 --dtype float16
      convcalc shapes net.yaml --verify --seed 1
      convcalc shapes net.yaml --verify --weights trained.pt
    """
    network = load_network(spec, max_layers)
    report = linted_report(network, analyze(network, batch_size, dtype), ignore)
    if weights is not None and not verify:
        raise SpecError("--weights is for --verify: add --verify to run the network with them")
    verification = verify_report(network, report, seed, max_memory, terminal(), weights) if verify else None
    memory = None
    if training:
        from convcalc.training import training_memory

        memory = training_memory(network, report, optimizer)
    emit_report(report, fmt, verification, memory)
    if verification is not None:
        finish_verification(verification)
    if strict:
        fail_on_warnings(report)


def parse_layer_flags(words: list[str]) -> dict[str, Any]:
    """`--out-channels 64 --kernel-size 3,3 --no-bias` into {out_channels: 64, ...}."""
    args: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--") or len(word) < 3:
            raise SpecError(f"expected an option like --kernel-size, got {word!r}")
        name, _, inline = word[2:].partition("=")
        key = name.replace("-", "_")
        if inline:
            text: str | None = inline
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            text = words[i + 1]
            i += 1
        else:
            text = None
        if text is None:
            if key.startswith("no_"):
                args[key[3:]] = False
            else:
                args[key] = True
        else:
            if "," in text and not text.lstrip().startswith("["):
                text = f"[{text}]"
            try:
                args[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                args[key] = text
        i += 1
    return args


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("layer_type", metavar="TYPE")
@click.option("-i", "--input", "input_shape", required=True, metavar="SHAPE",
              help="Input shape without the batch, e.g. 3x224x224 or 64x56x56.")
@format_option()
@memory_options
@verify_options
@click.pass_context
def layer(ctx: click.Context, layer_type: str, input_shape: str, fmt: str, batch_size: int, dtype: str,
          verify: bool, seed: int, max_memory: int, weights: str | None) -> None:
    """One layer from flags, without a spec file.

    The layer's arguments are its torch.nn names in kebab case: `--out-channels 64`,
    `--kernel-size 3` or `--kernel-size 3,5`, `--padding same`, `--no-bias`.

    \b
    Example:
      convcalc layer conv2d --input 3x224x224 --out-channels 64 --kernel-size 7 --stride 2 --padding 3
    """
    args = parse_layer_flags(list(ctx.args))
    spec = {"name": layer_type, "input": input_shape, "layers": [{layer_type: args or None}]}
    node = yaml.SafeDumper(None).represent_data(spec)  # type: ignore[arg-type]
    try:
        network: Network = Parser(Source("<command line>", ""), Limits()).network(node)
        report = analyze(network, batch_size, dtype)
    except ConvcalcError as err:
        err.path = None  # the one layer's path ("0") means nothing on a command line
        raise
    if weights is not None and not verify:
        raise SpecError("--weights is for --verify: add --verify to run the layer with them")
    verification = verify_report(network, report, seed, max_memory, terminal(), weights) if verify else None
    emit_report(report, fmt, verification=verification)
    if verification is not None:
        finish_verification(verification)


@cli.command("layers")
@click.argument("name", required=False)
def list_layers(name: str | None) -> None:
    """Every layer type a spec may use, or one type's arguments in detail."""
    from convcalc.render.layers import render_layers

    if name is not None and name not in REGISTRY:
        from convcalc.errors import suggest

        raise SpecError(f"unknown layer type '{name}'{suggest(name, REGISTRY.names())}")
    emit(render_layers(name))
