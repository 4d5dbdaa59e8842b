"""Graphs: `from:` references, standalone merges (add, mul, concat), several outputs, size_of.

Errors are pinned through the CLI; numbers are checked against PyTorch (tests/torch_oracle.py):
a hand-written DAG and hypothesis-drawn random DAGs (fan-out, fan-in by add/concat/mul, long
skips) run in NumPy and in torch on the same weights must agree on every output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from convcalc.analysis import analyze
from convcalc.numeric.runner import input_array, run_outputs
from convcalc.spec.parser import parse_text

DAG = """\
input: [3, 16, 16]
outputs: [p1, p2]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: c1}
  - conv2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: 1, name: c2}
  - conv2d: {out_channels: 4, kernel_size: 1, name: p2}
  - upsample: {size_of: c1, mode: nearest, name: up}
  - add: {from: [up, c1], name: sum}
  - adaptiveavgpool2d: {from: c1, output_size: 1, name: gate}
  - mul: {from: [sum, gate], name: gated}
  - centercrop: {from: input, size_of: p2, name: crop}
  - zeropad2d: {padding: [-1, -1, -2, 0], name: shrink}
  - concat: {from: [gated, c1], name: p1}
"""


def outputs_of(text: str, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every output of the network in NumPy and in torch (float64, the same weights)."""
    torch = pytest.importorskip("torch")
    from torch_oracle import convcalc_params, torch_network

    network = parse_text(text, "spec.yaml")
    report = analyze(network)
    params = convcalc_params(network, report, seed, np.float64)
    x = input_array(network.input_shape, 2, seed, "float64")
    ours = list(run_outputs(network, x, lambda step: None, params=params))
    theirs = torch_network(network, report, params, torch.float64)(torch.from_numpy(x))
    theirs = list(theirs) if isinstance(theirs, tuple) else [theirs]
    return ours, [t.detach().numpy() for t in theirs]


@pytest.mark.torch
def test_hand_written_dag_matches_torch():
    ours, theirs = outputs_of(DAG.replace("outputs: [p1, p2]", "outputs: [p1, p2, shrink]"))
    assert [o.shape for o in ours] == [t.shape for t in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_size_of_and_negative_padding_shapes():
    report = analyze(parse_text(DAG, "spec.yaml"))
    rows = {r.path: r for r in report.rows}
    assert rows["up"].output_shape == (4, 16, 16)
    assert rows["up"].input_shapes == ((4, 8, 8), (4, 16, 16))  # input 1 is the size_of reference
    assert rows["crop"].output_shape == (3, 8, 8)
    assert rows["shrink"].output_shape == (3, 8 - 1 - 1, 8 - 2 + 0)
    assert rows["gated"].input_shapes == ((4, 16, 16), (4, 1, 1))  # mul broadcasts
    assert rows["gated"].output_shape == (4, 16, 16)
    # the field does not flow through size_of: `up` has p2's field (not c1's)
    assert rows["up"].field is not None and rows["up"].field[0].size == rows["p2"].field[0].size
    assert [(o.path, o.shape) for o in report.outputs] == [("p1", (8, 16, 16)), ("p2", (4, 8, 8))]
    assert [w.code for w in report.warnings].count("dead-layer") == 1  # shrink is read by nothing


def test_json_lists_outputs(run, tmp_path):
    path = tmp_path / "dag.yaml"
    path.write_text(DAG)
    result = run("shapes", str(path), "--format", "json")
    data = json.loads(result.stdout)
    assert data["output_shape"] == [[8, 16, 16], [4, 8, 8]]
    assert [o["path"] for o in data["outputs"]] == ["p1", "p2"]
    assert data["outputs"][1]["receptive_field"] == {"size": [5, 5], "jump": [2, 2], "start": [0, 0]}


def test_table_prints_one_line_per_output(run, tmp_path):
    path = tmp_path / "dag.yaml"
    path.write_text(DAG)
    out = run("shapes", str(path)).stdout
    assert "Total                      2 outputs" in out
    # p1 = [gated, c1]: gated = sum * gate, the gate pooled over all of c1 ([-1, 16]), so
    # every output sees it; at output 0 sum adds up's [-2, 2]: [-2, 16], 19 pixels.
    assert "Output p1  8x16x16  RF 19, jump 1\n" in out
    assert "Output p2  4x8x8  RF 5, jump 2\n" in out
    assert "[dead-layer]" in out


ERRORS = [
    ("  - conv2d: {from: c3, out_channels: 4, kernel_size: 1}\n",
     "error: spec.yaml:5:20: 2: no layer or block has the path 'c3'; did you mean 'c2' or 'c1'?"),
    ("  - conv2d: {from: later, out_channels: 4, kernel_size: 1}\n  - relu: {name: later}\n",
     "error: spec.yaml:5:20: 2: 'later' refers to later, which comes later (or encloses this item):"
     " a reference must name an earlier output, graphs cannot have cycles"),
    ("  - relu: {from: [c1, c2]}\n",
     "error: spec.yaml:5:18: 2 (relu): 'from' of relu takes one path; only merges (concat, add, mul)"
     " take a list"),
    ("  - add: {from: [c1]}\n",
     "error: spec.yaml:5:17: 2 (add): 'from' of add must be a list of two or more paths, like [lat3, up4]"),
    ("  - add: {from: [c1, c2]}\n",
     "error: spec.yaml:5:5: 2 (add): add needs shapes that broadcast (equal, or 1 on an axis):"
     " input c1 gives [4, 16, 16] but input c2 gives [4, 8, 8]"),
    ("  - mul: {from: [c2, c1]}\n",
     "error: spec.yaml:5:5: 2 (mul): mul needs shapes that broadcast (equal, or 1 on an axis):"
     " input c2 gives [4, 8, 8] but input c1 gives [4, 16, 16]"),
    ("  - concat: {from: [c1, c2]}\n",
     "error: spec.yaml:5:5: 2 (concat): concat needs equal sizes except channels:"
     " input c1 gives [4, 16, 16] but input c2 gives [4, 8, 8]"),
]

HEAD = """\
input: [3, 16, 16]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: c1}
  - conv2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: 1, name: c2}
"""


@pytest.mark.parametrize(("tail", "message"), ERRORS)
def test_reference_errors(run, tmp_path, monkeypatch, tail, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(HEAD + tail)
    result = run("shapes", "spec.yaml")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message


def test_outputs_errors(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(HEAD + "outputs: [c1, c1]\n")
    result = run("shapes", "spec.yaml")
    assert result.stderr.splitlines()[0] == "error: spec.yaml:5:15: output 'c1' is listed twice"
    (tmp_path / "spec.yaml").write_text(HEAD + "outputs: [c9]\n")
    result = run("shapes", "spec.yaml")
    assert result.stderr.splitlines()[0] == ("error: spec.yaml:5:11: no layer or block has the path 'c9';"
                                             " did you mean 'c2' or 'c1'?")


def test_block_takes_its_skip_as_an_argument():
    spec = """\
input: [4, 8, 8]
blocks:
  merge_with:
    args: {skip: ~}
    layers:
      - conv2d: {out_channels: 4, kernel_size: 1, name: lat}
      - add: {from: [lat, $skip]}
layers:
  - relu: {name: a}
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: b}
  - merge_with: {skip: a, name: m}
"""
    report = analyze(parse_text(spec, "spec.yaml"))
    merge = report.rows[-1]
    assert merge.path == "m.1" and merge.node is not None
    assert [report.rows[i].path for i in merge.node.inputs] == ["m.lat", "a"]


# --- the differential: random DAGs against PyTorch -------------------------------------


@st.composite
def dags(draw):
    """A random DAG of same-size convs and activations with fan-out, long skips and merges."""
    lines = ["input: [3, 8, 8]", "layers:"]
    channels = {"input": 3}
    names = ["input"]
    for i in range(draw(st.integers(2, 9))):
        name = f"n{i}"
        kind = draw(st.sampled_from(["conv", "conv", "relu", "add", "mul", "concat"]))
        if kind in ("add", "mul") and len(names) > 2:
            a = draw(st.lists(st.sampled_from(names[1:]), min_size=2, max_size=3, unique=True))
            if len({channels[n] for n in a}) != 1:
                kind = "concat"
            lines.append(f"  - {kind}: {{from: [{', '.join(a)}], name: {name}}}")
            channels[name] = sum(channels[n] for n in a) if kind == "concat" else channels[a[0]]
        elif kind == "concat" and len(names) > 1:
            a = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
            lines.append(f"  - concat: {{from: [{', '.join(a)}], name: {name}}}")
            channels[name] = sum(channels[n] for n in a)
        else:
            source = draw(st.sampled_from(names))
            if kind == "relu":
                lines.append(f"  - relu: {{from: {source}, name: {name}}}")
                channels[name] = channels[source]
            else:
                out = draw(st.integers(1, 4))
                k = draw(st.sampled_from([1, 3]))
                lines.append(f"  - conv2d: {{from: {source}, out_channels: {out}, kernel_size: {k},"
                             f" padding: {k // 2}, name: {name}}}")
                channels[name] = out
        names.append(name)
    outputs = draw(st.lists(st.sampled_from(names[1:]), min_size=1, max_size=2, unique=True))
    lines.insert(1, f"outputs: [{', '.join(outputs)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.torch
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dags_match_torch(spec):
    network = parse_text(spec, "spec.yaml")
    report = analyze(network)
    ours, theirs = outputs_of(spec)
    assert [o.shape[1:] for o in ours] == [tuple(o.shape) for o in report.outputs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


# --- fields, rf and erf on graphs ---------------------------------------------------------

BRANCHES = """\
input: [1, 32, 32]
outputs: [wide, narrow, merged]
layers:
  - conv2d: {out_channels: 2, kernel_size: 3, padding: 1, name: stem}
  - conv2d: {out_channels: 2, kernel_size: 5, padding: 2, name: wide}
  - conv2d: {from: stem, out_channels: 2, kernel_size: 3, name: shifted}
  - zeropad2d: {padding: [2, 0, 2, 0]}
  - add: {from: [wide, 3], name: merged}
  - conv2d: {from: stem, out_channels: 2, kernel_size: 1, name: narrow}
"""


def test_each_output_has_its_own_field(run, tmp_path):
    path = tmp_path / "fpn.yaml"
    data = json.loads(run("shapes", str(ROOT / "examples" / "fpn_resnet50.yaml"), "-f", "json").stdout)
    fields = [(o["path"], o["receptive_field"]["size"][0], o["receptive_field"]["jump"][0]) for o in data["outputs"]]
    # P5 = layer4 (427, jump 32) + a 3x3 at jump 32; P6 pools it 1x1 stride 2. The finer levels
    # add the resized coarser level to their lateral: its field, in steps of the coarser jump,
    # plus the 3x3 (P4: 427 + 2 x 16; P3 and P2 are reached by the same union, 459).
    assert fields == [("fpn.p2.out", 459, 4), ("fpn.p3.out", 459, 8), ("fpn.p4.out", 427 + 2 * 16, 16),
                      ("fpn.p5.out", 427 + 2 * 32, 32), ("fpn.pool", 427 + 2 * 32, 64)]
    rows = {r["path"]: r for r in data["layers"]}
    assert all(rows[p]["receptive_field"] == o["receptive_field"] for p, o in zip([f[0] for f in fields], data["outputs"]))
    path.write_text(BRANCHES)
    table = run("shapes", str(path)).stdout
    assert "Output wide    2x32x32  RF 7, jump 1\n" in table  # 3 + (5 - 1)
    assert "Output narrow  2x32x32  RF 3, jump 1\n" in table  # the stem's field through a 1x1


def test_rf_at_any_path_of_a_graph(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(BRANCHES)
    # no --at: the first output; the centre (15, 15) of wide sees stem's 13..17, input 12..18
    data = json.loads(run("rf", "net.yaml", "-f", "json").stdout)
    assert data["path"] == "wide" and data["position"] == [15, 15]
    assert [a["field"] for a in data["axes"]] == [[15 - 3, 15 + 3]] * 2
    assert data["warnings"] == []  # the shifted branch does not feed wide
    # a layer inside the other branch, and the merge: the shift is reported there
    data = json.loads(run("rf", "net.yaml", "--at", "3", "--position", "0,0", "-f", "json").stdout)
    # output 0 of the pad is shifted's -2, which reads stem's -2..0, so input -3..1
    assert [a["field"] for a in data["axes"]] == [[-3, 1]] * 2
    merged = json.loads(run("rf", "net.yaml", "--at", "merged", "-f", "json").stdout)
    assert [w["path"] for w in merged["warnings"]] == ["merged"]  # once for both axes
    assert merged["warnings"][0]["message"] == (
        "branch 3's field centres lie 1 input pixel before (along H and W) those of branch wide, on average over"
        " a period (off-centre windows: shifted (+1), 3 (-2)), so the merged features are shifted; centre every"
        " window in both branches (odd kernels with padding (k_eff - 1) / 2) or shift both alike")
    # the other output, after the merge in execution order, does not inherit its warnings
    assert json.loads(run("rf", "net.yaml", "--at", "narrow", "-f", "json").stdout)["warnings"] == []
    result = run("rf", "net.yaml", "--at", "merge")
    assert result.exit_code == 2
    assert "no layer is named 'merge'; did you mean 'merged'?" in result.stderr


def test_erf_layer_at_any_path_of_a_graph(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(BRANCHES)
    # merged at 15: wide's 12..18, and the padded branch's (shifted at 13: stem 13..15) 12..16
    for layer, lo, hi in (("merged", 15 - 3, 15 + 3), ("narrow", 15 - 1, 15 + 1)):
        result = run("erf", "net.yaml", "--layer", layer, "--samples", "2", "--npy", f"{layer}.npy", "-f", "json",
                     "--dtype", "float64")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["path"] == layer
        heat = np.load(tmp_path / f"{layer}.npy")
        rows, cols = np.nonzero(heat)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (lo, hi, lo, hi), layer
    # no --layer: the first output
    assert json.loads(run("erf", "net.yaml", "--samples", "1", "-f", "json").stdout)["path"] == "wide"


def test_unet_skips_cropped_by_negative_padding_as_by_centercrop():
    # Some U-Net code crops its skips with F.pad and negative widths: the same crops, written
    # per level (4, 16, 40, 88 pixels a side), give the same network, layer by layer.
    text = (ROOT / "examples" / "unet.yaml").read_text()
    padded = text.replace("args: {skip: ~, out: ~}", "args: {skip: ~, out: ~, cut: ~}").replace(
        "- centercrop: {name: crop, from: $skip, size_of: up}",
        "- zeropad2d: {name: crop, from: $skip, padding: [$(-cut), $(-cut), $(-cut), $(-cut)]}")
    for level, cut in ((4, 4), (3, 16), (2, 40), (1, 88)):
        padded = padded.replace(f"skip: enc{level},", f"skip: enc{level}, cut: {cut},")
    assert padded.count("cut: ") == 1 + 4 and "centercrop" not in padded  # the argument, 4 calls
    crop, pad = (analyze(parse_text(t, "unet.yaml")) for t in (text, padded))
    assert [(r.path, r.output_shape, r.params, r.macs, r.field) for r in crop.rows] == \
           [(r.path, r.output_shape, r.params, r.macs, r.field) for r in pad.rows]
    assert {r.type for r in pad.rows if r.path.endswith(".crop")} == {"zeropad2d"}
