"""`convcalc draw`: the Mermaid text parsed back into nodes, edges and labels, SVG rendered by
Graphviz's dot (skipped where it is missing), and the errors."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from conftest import EXAMPLES
from convcalc.analysis import analyze
from convcalc.diagram import build
from convcalc.load import load_network
from convcalc.render.data import human_count, shape_text

NODE = re.compile(r'^\s*(n\d+)(\(\[|\[\[|\(\(|\[)"(.*)"(\]\)|\]\]|\)\)|\])$')
EDGE = re.compile(r'^\s*(n\d+) -->\|"([^"]*)"\| (n\d+)$')
SUBGRAPH = re.compile(r'^\s*subgraph (c\d+)\["(.*)"\]$')
SHAPES = {"([": "stadium", "[[": "subroutine", "((": "circle", "[": "box"}


@dataclass
class Parsed:
    nodes: dict[str, tuple[str, list[str]]]  # id -> (shape, label lines without tags)
    edges: list[tuple[str, str, str]]  # (source, target, label)
    subgraphs: list[tuple[str, str, list[str]]]  # (id, title, node ids directly inside)


def parse_mermaid(text: str) -> Parsed:
    """The flowchart's nodes, edges and subgraphs; fails on any line it does not understand."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, tuple[str, list[str]]] = {}
    edges, subgraphs, stack = [], [], []
    for line in lines[1:]:
        if m := NODE.match(line):
            label = [re.sub(r"</?b>", "", part) for part in m[3].split("<br/>")]
            nodes[m[1]] = (SHAPES[m[2]], label)
            if stack:
                stack[-1][2].append(m[1])
        elif m := EDGE.match(line):
            edges.append((m[1], m[3], m[2]))
        elif m := SUBGRAPH.match(line):
            stack.append((m[1], m[2], []))
        elif line.strip() == "end":
            subgraphs.append(stack.pop())
        elif line.strip().startswith(("classDef ", "class ")):
            continue
        else:
            raise AssertionError(f"unexpected Mermaid line: {line!r}")
    assert not stack, "unclosed subgraph"
    return Parsed(nodes, edges, subgraphs)


def mermaid(run, spec, *args):
    result = run("draw", str(EXAMPLES / f"{spec}.yaml"), *args)
    assert result.exit_code == 0, result.stderr
    return parse_mermaid(result.stdout)


def acyclic_from_input_to_output(parsed: Parsed) -> bool:
    order = list(parsed.nodes)
    position = {n: i for i, n in enumerate(order)}
    forward = all(position[a] < position[b] for a, b, _ in parsed.edges)
    reach = {order[0]}
    for a, b, _ in sorted(parsed.edges, key=lambda e: position[e[0]]):
        if a in reach:
            reach.add(b)
    return forward and order[-1] in reach


def test_resnet18_at_depth_2(run):
    parsed = mermaid(run, "resnet18", "--depth", "2")
    titles = [label[0] for _, label in parsed.nodes.values()]
    assert titles == ["input", "conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1", "layer2.0", "layer2.1",
                      "layer3.0", "layer3.1", "layer4.0", "layer4.1", "avgpool", "9", "fc", "output"]
    shape, label = parsed.nodes["n9"]
    assert shape == "subroutine"
    # BasicBlock with a strided 3x3 and a 1x1 downsample: 256 <- 128 channels, 14x14 outputs
    params = (256 * 128 * 9 + 2 * 256) + (256 * 256 * 9 + 2 * 256) + (256 * 128 + 2 * 256)
    macs = 14 * 14 * (256 * 128 * 9 + 256 * 256 * 9 + 256 * 128)
    assert label == ["layer3.0", "basic", "planes=256, stride=2, downsample=true",
                     f"{human_count(params)} params, {human_count(macs)} MACs"]
    assert [e[2] for e in parsed.edges][:5] == ["3x224x224", "64x112x112", "64x112x112", "64x112x112", "64x56x56"]
    assert ("n15", "n16", "1000") in parsed.edges
    assert [(title, members) for _, title, members in parsed.subgraphs][0] == ("layer1: stage", ["n5", "n6"])
    assert acyclic_from_input_to_output(parsed)


def test_branches_and_merges_are_a_graph(run):
    parsed = mermaid(run, "resnet18")  # every layer a box
    by_title = {label[0]: node for node, (_, label) in parsed.nodes.items()}
    add = by_title["layer2.0.add"]
    assert parsed.nodes[add][0] == "circle"
    into_add = sorted(parsed.nodes[a][1][0] for a, b, _ in parsed.edges if b == add)
    assert into_add == ["layer2.0.bn2", "layer2.0.downsample.1"]
    fan_out = sorted(parsed.nodes[b][1][0] for a, b, _ in parsed.edges if a == by_title["layer1.1.relu_out"])
    assert fan_out == ["layer2.0.conv1", "layer2.0.downsample.0"]
    # an identity shortcut: the block's input goes straight to the add
    assert (by_title["maxpool"], by_title["layer1.0.add"], "64x56x56") in parsed.edges
    assert acyclic_from_input_to_output(parsed)


def test_concat_of_four_branches(run):
    parsed = mermaid(run, "googlenet", "--depth", "2")
    by_title = {label[0]: node for node, (_, label) in parsed.nodes.items()}
    concat = by_title["inception3a.concat"]
    incoming = sorted((parsed.nodes[a][1][0], shape) for a, b, shape in parsed.edges if b == concat)
    assert incoming == [("inception3a.branch1", "64x28x28"), ("inception3a.branch2", "128x28x28"),
                        ("inception3a.branch3", "32x28x28"), ("inception3a.branch4", "32x28x28")]


def test_repeats_collapse_at_a_depth(run):
    parsed = mermaid(run, "densenet121", "--depth", "3")
    labels = {label[0]: label for _, label in parsed.nodes.values()}
    assert labels["features.denseblock1.denselayer1..denselayer6"][1] == "dense_layer x6"
    assert labels["features.denseblock3.denselayer1..denselayer24"][1] == "dense_layer x24"
    assert len(parsed.nodes) == 27
    resnet = mermaid(run, "resnet50", "--depth", "2")
    assert {label[0]: label for _, label in resnet.nodes.values()}["layer3.1..5"][1] == "bottleneck x5"


def test_a_repeat_below_the_depth_is_drawn_as_its_first_copy(run):
    parsed = mermaid(run, "densenet121", "--depth", "4")
    titles = {title: members for _, title, members in parsed.subgraphs}
    frame = ("features.denseblock1.denselayer1..denselayer6: dense_layer x6 (the first drawn, 335.04K params"
             " and 1.04G MACs in all)")
    first = "features.denseblock1.denselayer1"
    assert [parsed.nodes[n][1][0] for n in titles[frame]] == [
        f"{first}.{name}" for name in ("norm1", "relu1", "conv1", "norm2", "relu2", "conv2", "concat")]
    by_title = {label[0]: node for node, (_, label) in parsed.nodes.items()}
    # the dense connection: the block's input joins the new features in the concat
    concat = by_title[f"{first}.concat"]
    assert sorted(s for a, b, s in parsed.edges if b == concat) == ["32x56x56", "64x56x56"]
    # out of the frame flows what the last copy makes: 64 + 6 x 32 channels
    assert (concat, by_title["features.transition1.norm"], f"{64 + 6 * 32}x56x56") in parsed.edges
    assert not any("denseblock1.denselayer2" in label[0] for _, label in parsed.nodes.values())


def test_densenet_at_depth_2_is_small(run):
    parsed = mermaid(run, "densenet121", "--depth", "2")
    assert len(parsed.nodes) == 18 and len(parsed.edges) == 17
    label = {lab[0]: lab for _, lab in parsed.nodes.values()}["features.denseblock2"]
    assert label[1:3] == ["dense_block", "layers=12; 12 x dense_layer"]


@pytest.mark.parametrize("spec", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
@pytest.mark.parametrize("depth", [None, 1, 2, 3, 4, 5])
def test_every_box_and_tensor_is_accounted_for(spec, depth):
    network = load_network(str(EXAMPLES / f"{spec}.yaml"))
    report = analyze(network)
    diagram = build(network, report, depth)
    hidden = [report.rows[i] for i in diagram.hidden]  # later copies of a repeat drawn as its first
    assert sum(b.params for b in diagram.boxes) + sum(r.params for r in hidden) == report.totals.params
    assert sum(b.macs for b in diagram.boxes) + sum(r.macs for r in hidden) == report.totals.macs
    assert sum(b.layers for b in diagram.boxes) + len(hidden) == len(report.rows)
    for cluster in diagram.clusters:  # a repeat's frame holds what all its copies hold
        if cluster.rolled is not None:
            first = [b for b in diagram.boxes if b.title == cluster.path or b.title.startswith(cluster.path + ".")]
            assert cluster.rolled.params >= sum(b.params for b in first)
    ids = [b.id for b in diagram.boxes]
    assert ids == list(range(len(ids)))
    assert all(e.source < e.target for e in diagram.edges)  # execution order: no cycle
    into_output = {e.shape for e in diagram.edges if e.target == diagram.boxes[-1].id}
    assert into_output and into_output <= {o.shape for o in report.outputs}  # each output's shape, once per box
    from convcalc.render.diagram import to_mermaid

    parsed = parse_mermaid(to_mermaid(diagram))
    assert len(parsed.nodes) == len(diagram.boxes) and len(parsed.edges) == len(diagram.edges)
    assert acyclic_from_input_to_output(parsed)


def test_markdown_wraps_the_mermaid_block(run):
    text = run("draw", str(EXAMPLES / "lenet.yaml"), "--markdown").stdout
    assert text.startswith("```mermaid\nflowchart TD\n") and text.endswith("\n```\n")


# --- Graphviz ----------------------------------------------------------------------------------

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@needs_dot
def test_svg_rendered_by_dot_has_every_box_and_edge(run, tmp_path):
    out = tmp_path / "resnet18.svg"
    result = run("draw", str(EXAMPLES / "resnet18.yaml"), "--depth", "3", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    root = ET.fromstring(out.read_bytes())
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = root.findall(".//svg:g", ns)
    nodes = [g for g in groups if g.get("class") == "node"]
    edges = [g for g in groups if g.get("class") == "edge"]
    network = load_network(str(EXAMPLES / "resnet18.yaml"))
    diagram = build(network, analyze(network), 3)
    assert len(nodes) == len(diagram.boxes) and len(edges) == len(diagram.edges)
    texts = {"".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"layer2.0.downsample", "layer2.0.add", " 128x28x28", "input", "output"} <= texts
    clusters = [g for g in groups if g.get("class") == "cluster"]
    assert len(clusters) == len(diagram.clusters)


@needs_dot
def test_png_needs_a_file_and_is_a_png(run, tmp_path):
    result = run("draw", str(EXAMPLES / "lenet.yaml"), "--format", "png")
    assert (result.exit_code, result.stderr) == (2, "error: --format png writes an image: give a file with"
                                                    " --output FILE.png\n")
    out = tmp_path / "lenet.png"
    assert run("draw", str(EXAMPLES / "lenet.yaml"), "-o", str(out)).exit_code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dot_names_the_install(run, tmp_path, monkeypatch):
    import convcalc.render.diagram as module

    monkeypatch.setattr(module.shutil, "which", lambda name: None)
    result = run("draw", str(EXAMPLES / "lenet.yaml"), "--format", "svg")
    assert result.exit_code == 2
    assert result.stderr == ("error: drawing svg needs Graphviz's `dot` program, which is not on PATH: install"
                             " Graphviz (apt-get install graphviz; brew install graphviz), or use --format mermaid"
                             " or --format dot\n")


def test_dot_text_names_every_box(run):
    text = run("draw", str(EXAMPLES / "lenet.yaml"), "--format", "dot").stdout
    assert text.startswith('digraph "lenet" {')
    assert text.count(" -> ") == 13  # input, 12 layers, output: a chain
    assert f'label=" {shape_text((6, 28, 28))}"' in text


@pytest.mark.parametrize("args, message", [
    (["--markdown", "--format", "dot"], "error: --markdown wraps Mermaid text; it does not apply to --format dot\n"),
])
def test_bad_options_are_status_2(run, args, message):
    result = run("draw", str(EXAMPLES / "lenet.yaml"), *args)
    assert (result.exit_code, result.stderr) == (2, message)


def test_the_readme_diagram_is_committed_and_current():
    from conftest import ROOT

    assert "docs/resnet18.svg" in (ROOT / "README.md").read_text()
    svg = ET.fromstring((ROOT / "docs" / "resnet18.svg").read_bytes())
    texts = {"".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    network = load_network(str(EXAMPLES / "resnet18.yaml"))
    report = analyze(network)
    diagram = build(network, report, 2)
    from convcalc.render.diagram import box_lines

    expected = {line for box in diagram.boxes for line in box_lines(box)}
    assert expected <= texts, f"regenerate: convcalc draw examples/resnet18.yaml --depth 2 -o docs/resnet18.svg;" \
                              f" missing {sorted(expected - texts)[:5]}"
