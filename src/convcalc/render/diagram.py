"""A `diagram.Diagram` as Mermaid flowchart text, as Graphviz DOT, or (through `dot`) SVG/PNG.

Every box shows its path, its type (or block, with "x N" for a collapsed repeat), and its
parameters and MACs; every edge the shape of the tensor it carries (batch left out). Boxes
are coloured by family: convolutions, normalisation, pooling, linear, merges, blocks.
Mermaid is what GitHub renders inside a ```mermaid block; DOT goes to Graphviz's `dot`,
which `render_image` runs (the only program convcalc starts besides git).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from convcalc.diagram import Box, Cluster, Diagram
from convcalc.errors import ConvcalcError
from convcalc.render.data import human_count, shape_text

IMAGE_FORMATS = ("svg", "png")
TEXT_FORMATS = ("mermaid", "dot")
DRAW_FORMATS = (*TEXT_FORMATS, *IMAGE_FORMATS)

# family -> (fill, border) colours, shared by both formats
COLOURS = {
    "io": ("#f2f2f2", "#666666"),
    "conv": ("#dbe8fb", "#3d6bb3"),
    "norm": ("#e3f4e1", "#4b9447"),
    "pool": ("#fdebd3", "#c77c12"),
    "linear": ("#efe3f7", "#7d4aa8"),
    "merge": ("#fbe1e1", "#b34747"),
    "block": ("#fff8d6", "#a68a00"),
    "other": ("#ffffff", "#888888"),
}


def family(box: Box) -> str:
    """The colour family of a box, from its role and layer type."""
    if box.role in ("input", "output"):
        return "io"
    if box.role == "group":
        return "block"
    kind = box.kind
    if kind.startswith(("conv", "convtranspose")):
        return "conv"
    if "norm" in kind:
        return "norm"
    if "pool" in kind:
        return "pool"
    if kind == "linear":
        return "linear"
    if kind in ("add", "concat"):
        return "merge"
    return "other"


def box_lines(box: Box) -> list[str]:
    """The text of a box, one entry per line; the first is the title."""
    if box.role in ("input", "output"):
        return [box.title, shape_text(box.shape)]
    kind = f"{box.kind} x{box.repeat}" if box.repeat > 1 else box.kind
    # `relu` of type relu, `flatten` of type flatten: the type once
    lines = [box.title] if kind == box.title.rpartition(".")[2] else [box.title, kind]
    if box.detail:
        lines.append(box.detail)
    costs = []
    if box.params:
        costs.append(f"{human_count(box.params)} params")
    if box.macs:
        costs.append(f"{human_count(box.macs)} MACs")
    if costs:
        lines.append(", ".join(costs))
    return lines


def nest(diagram: Diagram, node: Callable[[Box], list[str]],
         frame: Callable[[Cluster, int], tuple[list[str], list[str]]]) -> list[str]:
    """Node statements wrapped in their clusters' frames (`frame` gives the lines that open
    and close one, given its number), in execution order, indented by nesting."""
    placed = {i for c in diagram.clusters for i in c.boxes}
    boxes: dict[str, list[Box]] = {"": [b for b in diagram.boxes if b.id not in placed]}
    frames: dict[str, list[tuple[int, Cluster]]] = {}
    for number, cluster in enumerate(diagram.clusters):
        boxes[cluster.path] = [diagram.boxes[i] for i in cluster.boxes]
        frames.setdefault(cluster.parent, []).append((number, cluster))

    def first(cluster: Cluster) -> int:
        return min([*cluster.boxes, *(first(c) for _, c in frames.get(cluster.path, []))])

    def emit(path: str, indent: str) -> list[str]:
        entries: list[tuple[int, list[str]]] = []
        for box in boxes.get(path, []):
            entries.append((box.id, [indent + line for line in node(box)]))
        for number, cluster in frames.get(path, []):
            opening, closing = frame(cluster, number)
            inner = emit(cluster.path, indent + "  ")
            entries.append((first(cluster), [indent + line for line in opening] + inner
                            + [indent + line for line in closing]))
        return [line for _, lines in sorted(entries, key=lambda e: e[0]) for line in lines]

    return emit("", "  ")


def cluster_title(cluster: Cluster) -> str:
    """`layer1: stage`; for a repeat drawn as its first copy, `layer1.1..2: bottleneck x2`, what
    the copies hold together, and that only the first is drawn."""
    rolled = cluster.rolled
    if rolled is None:
        return f"{cluster.path}: {cluster.kind}" if cluster.kind else cluster.path
    kind = f": {rolled.kind}" if rolled.kind else ""
    costs = [f"{human_count(n)} {unit}" for n, unit in ((rolled.params, "params"), (rolled.macs, "MACs")) if n]
    total = f", {' and '.join(costs)} in all" if costs else ""
    return (f"{cluster.path}..{rolled.last.rpartition('.')[2]}{kind} x{rolled.repeat}"
            f" (the first drawn{total})")


# --- Mermaid ------------------------------------------------------------------------------

def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (entities for what the parser would read)."""
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;"))


def to_mermaid(diagram: Diagram) -> str:
    """A `flowchart TD`: one node per box, one labelled edge per tensor, colours by family."""
    def node(box: Box) -> list[str]:
        text = box_lines(box)
        label = "<br/>".join([f"<b>{_mermaid_text(text[0])}</b>", *(_mermaid_text(t) for t in text[1:])])
        if box.role in ("input", "output"):
            return [f'n{box.id}(["{label}"])']
        if box.role == "group":
            return [f'n{box.id}[["{label}"]]']
        if family(box) == "merge":
            return [f'n{box.id}(("{label}"))']
        return [f'n{box.id}["{label}"]']

    def frame(cluster: Cluster, number: int) -> tuple[list[str], list[str]]:
        return [f'subgraph c{number}["{_mermaid_text(cluster_title(cluster))}"]'], ["end"]

    lines = ["flowchart TD", *nest(diagram, node, frame)]
    for edge in diagram.edges:
        lines.append(f'  n{edge.source} -->|"{shape_text(edge.shape)}"| n{edge.target}')
    used: dict[str, list[int]] = {}
    for box in diagram.boxes:
        used.setdefault(family(box), []).append(box.id)
    for name, ids in used.items():
        fill, stroke = COLOURS[name]
        lines.append(f"  classDef {name} fill:{fill},stroke:{stroke},color:#000")
        lines.append(f"  class {','.join(f'n{i}' for i in ids)} {name}")
    return "\n".join(lines) + "\n"


# --- Graphviz DOT ---------------------------------------------------------------------------

def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(diagram: Diagram) -> str:
    """Graphviz DOT, top to bottom: HTML labels with the title in bold, a repeat box drawn
    with a double border, merges as small ellipses."""
    title = diagram.name + (f" (depth {diagram.depth})" if diagram.depth is not None else "")
    lines = [
        f"digraph {_dot_string(diagram.name)} {{",
        f"  graph [rankdir=TB, label={_dot_string(title)}, labelloc=t, fontname=\"Helvetica\","
        " fontsize=16, nodesep=0.35, ranksep=0.3];",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, margin="0.15,0.06"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", fontcolor="#333333", arrowsize=0.7];',
    ]

    def node(box: Box) -> list[str]:
        text = box_lines(box)
        rest = "".join(f'<br/><font point-size="10">{_html(t)}</font>' for t in text[1:])
        label = f"<<b>{_html(text[0])}</b>{rest}>"
        fill, stroke = COLOURS[family(box)]
        attrs = [f"label={label}", f'fillcolor="{fill}"', f'color="{stroke}"']
        if box.role in ("input", "output"):
            attrs.append("shape=oval")
        elif family(box) == "merge":
            attrs.append('shape=ellipse, margin="0.05,0.02"')
        if box.repeat > 1:
            attrs.append("peripheries=2")
        return [f"n{box.id} [{', '.join(attrs)}];"]

    def frame(cluster: Cluster, number: int) -> tuple[list[str], list[str]]:
        return ([f"subgraph cluster_{number} {{",
                 f'  graph [label={_dot_string(cluster_title(cluster))}, style="rounded,dashed", color="#999999",'
                 ' fontsize=11, fontcolor="#555555", labeljust=l];'], ["}"])

    lines += nest(diagram, node, frame)
    for edge in diagram.edges:
        lines.append(f"  n{edge.source} -> n{edge.target} [label={_dot_string(' ' + shape_text(edge.shape))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


MISSING_DOT = ("drawing {fmt} needs Graphviz's `dot` program, which is not on PATH: install Graphviz"
               " (apt-get install graphviz; brew install graphviz), or use --format mermaid or --format dot")


def render_image(dot_text: str, fmt: str, dot: str | None = None) -> bytes:
    """SVG or PNG bytes of DOT text, made by Graphviz's `dot` (found on PATH unless given)."""
    program = dot or shutil.which("dot")
    if program is None:
        raise ConvcalcError(MISSING_DOT.format(fmt=fmt))
    try:
        options = ["-Gdpi=144"] if fmt == "png" else []  # sharp on high-density screens
        done = subprocess.run([program, f"-T{fmt}", *options], input=dot_text.encode(), capture_output=True,
                              check=False, timeout=300)
    except OSError as err:
        raise ConvcalcError(f"could not run Graphviz's dot ({program}): {err.strerror}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConvcalcError(f"Graphviz's dot failed (exit status {done.returncode})"
                            + (f": {message[0]}" if message else ""))
    return done.stdout
