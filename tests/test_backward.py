"""Input gradients of every layer type against PyTorch's autograd.

The fixtures (tests/fixtures/backward, written by scripts/make_backward_fixtures.py with
torch) hold one layer, an input, parameters, an output gradient and torch's input
gradient. The live tests rerun torch on the same arrays when it is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convcalc.analysis import analyze
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.numeric.backward import BACKWARD, MERGE_BACKWARD, layer_backward, network_backward
from convcalc.spec.parser import parse_text

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "backward"
CASES = sorted(FIXTURES.glob("*.npz"))


def load(path: Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def ours(case: dict) -> np.ndarray:
    spec = str(case["spec"])
    (step,) = analyze(parse_text(spec, "case.json")).rows
    params = {k.removeprefix("param."): v for k, v in case.items() if k.startswith("param.")}
    return layer_backward(step, case["g"], case["x"], params)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_backward_matches_torch_fixture(path):
    case = load(path)
    got = ours(case)
    assert got.shape == case["x"].shape
    np.testing.assert_allclose(got, case["gx"], rtol=1e-9, atol=1e-10)


def family(name: str) -> str:
    return name[:-2] if name[-2:] in ("1d", "2d", "3d") else name


def test_fixtures_cover_every_layer_type():
    covered = {family(next(iter(json.loads(str(load(p)["spec"]))["layers"][0]))) for p in CASES}
    # Dropout variants share one kernel (identity at inference); two are covered.
    # Merges have several inputs: the network tests below check their backward.
    single = [n for n in REGISTRY.names() if n not in MERGE_TYPES]
    expected = {family(n) for n in single} - {"dropout", "featurealphadropout"}
    assert expected <= covered, f"no torch fixture for {sorted(expected - covered)}"
    assert set(single) <= set(BACKWARD), sorted(set(single) - set(BACKWARD))
    assert set(MERGE_TYPES) <= set(MERGE_BACKWARD), sorted(set(MERGE_TYPES) - set(MERGE_BACKWARD))


@pytest.mark.torch
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_backward_matches_torch_live(path):
    pytest.importorskip("torch")
    import sys

    sys.path.insert(0, str(FIXTURES.parent.parent.parent / "scripts"))
    from make_backward_fixtures import gradient, module

    case = load(path)
    spec = json.loads(str(case["spec"]))
    kind, args = next(iter(spec["layers"][0].items()))
    layer = module(kind, args, spec["input"]).double().eval()
    from torch_oracle import load as copy_params  # by attribute name, [C] into layer scale's [C, 1, 1]

    copy_params(layer, {k.removeprefix("param."): v for k, v in case.items() if k.startswith("param.")})
    np.testing.assert_allclose(ours(case), gradient(layer, case["x"], case["g"]), rtol=1e-9, atol=1e-10)


def test_network_backward_adds_branch_gradients():
    # out = x + conv1x1(x) with weight w: d(sum out)/dx = 1 + w per channel (one channel).
    network = parse_text('{"input": [1, 5], "layers": [{"residual": {"body": ['
                         '{"conv1d": {"out_channels": 1, "kernel_size": 1, "bias": false}}]}}]}', "r.json")
    graph = analyze(network).rows
    w = np.array([[[3.0]]])
    g = np.ones((1, 1, 5))
    gx = network_backward(graph, len(graph) - 1, g, lambda i: None,
                          lambda i: {"weight": w} if graph[i].type == "conv1d" else {})
    np.testing.assert_array_equal(gx, np.full((1, 1, 5), 1.0 + 3.0))


def test_network_backward_splits_concat_by_channels():
    network = parse_text('{"input": [2, 4], "layers": [{"parallel": {"merge": "concat", "branches": ['
                         '[], [{"conv1d": {"out_channels": 3, "kernel_size": 1, "bias": false}}]]}}]}', "c.json")
    graph = analyze(network).rows
    w = np.arange(6, dtype=float).reshape(3, 2, 1)
    g = np.zeros((1, 5, 4))
    g[0, 2:, :] = 1.0  # only the conv branch's three channels
    gx = network_backward(graph, len(graph) - 1, g, lambda i: None,
                          lambda i: {"weight": w} if graph[i].type == "conv1d" else {})
    # d/dx_c = sum over output channels of w[o, c]: c=0: 0+2+4, c=1: 1+3+5
    np.testing.assert_array_equal(gx[0, :, 0], [0 + 2 + 4, 1 + 3 + 5])
