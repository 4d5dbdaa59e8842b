"""`convcalc draw`: the network as a diagram (Mermaid text, Graphviz DOT, SVG or PNG)."""

from __future__ import annotations

from pathlib import Path

import click

from convcalc.analysis import analyze
from convcalc.cli import cli
from convcalc.cli.common import load_network, max_layers_option
from convcalc.errors import SpecError

# What an --output file's extension implies when --format is not given.
EXTENSIONS = {".mmd": "mermaid", ".mermaid": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot",
              ".svg": "svg", ".png": "png"}


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=True, allow_dash=True))
@click.option("--depth", type=click.IntRange(min=1), help="Boxes for the blocks at this nesting depth (path"
              " prefixes of this many segments) instead of every layer; repeated blocks become one box, x N.")
@click.option("-f", "--format", "fmt", type=click.Choice(["mermaid", "dot", "svg", "png"]),
              help="mermaid (GitHub renders it), dot (Graphviz), or svg/png drawn by Graphviz's dot"
              " [default: from --output's extension, else mermaid].")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              help="Write to this file instead of stdout (png needs a file).")
@click.option("--markdown", is_flag=True, help="Wrap Mermaid text in a ```mermaid block, for pasting into Markdown.")
@max_layers_option
def draw(spec: str, depth: int | None, fmt: str | None, output: str | None, markdown: bool, max_layers: int) -> None:
    """Draw SPEC as a diagram: boxes with parameters and MACs, edges with tensor shapes.

    Without --depth every layer (and every add/concat) is a box; with it, the blocks at
    that depth are (`--depth 2`: layer3.1), and the copies of a `repeat` are one box
    marked x N. Branches and merges are drawn as a graph. SVG and PNG need Graphviz's
    `dot` program (apt-get install graphviz).

    \b
    Examples:
      convcalc draw examples/resnet18.yaml --depth 2 > resnet18.mmd
      convcalc draw examples/densenet121.yaml --depth 2 -o densenet.svg
      convcalc draw net.yaml --format png --output net.png
    """
    from convcalc.diagram import build
    from convcalc.render.diagram import render_image, to_dot, to_mermaid

    if fmt is None:
        fmt = EXTENSIONS.get(Path(output).suffix.lower(), "mermaid") if output and output != "-" else "mermaid"
    if fmt == "png" and (output is None or output == "-"):
        raise SpecError("--format png writes an image: give a file with --output FILE.png")
    if markdown and fmt != "mermaid":
        raise SpecError(f"--markdown wraps Mermaid text; it does not apply to --format {fmt}")
    network = load_network(spec, max_layers)
    diagram = build(network, analyze(network), depth)
    if fmt == "mermaid":
        text = to_mermaid(diagram)
        data = (f"```mermaid\n{text}```\n" if markdown else text).encode()
    elif fmt == "dot":
        data = to_dot(diagram).encode()
    else:
        data = render_image(to_dot(diagram), fmt)
    if output is None or output == "-":
        click.echo(data, nl=False)  # bytes go to stdout's binary stream as they are
    else:
        Path(output).write_bytes(data)
