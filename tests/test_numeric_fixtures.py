"""NumPy forward kernels against committed PyTorch outputs (no torch needed).

The fixtures come from scripts/make_forward_fixtures.py (torch 2.13.0): per case the input,
the parameters and torch.nn's output; max-pool cases also torch's arg-max indices on a
ReLU'd input (ties everywhere).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT
from convcalc.analysis import analyze
from convcalc.layers import REGISTRY
from convcalc.numeric.kernels import forward_layer
from convcalc.numeric.runner import run_outputs
from convcalc.spec.parser import parse_text

FIXTURES = ROOT / "tests" / "fixtures" / "forward"
CASES = json.loads((FIXTURES / "cases.json").read_text())
NETWORKS = json.loads((FIXTURES / "networks.json").read_text())


@pytest.fixture(scope="module")
def arrays():
    with np.load(FIXTURES / "cases.npz") as data:
        yield {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def net_arrays():
    with np.load(FIXTURES / "networks.npz") as data:
        yield {k: data[k] for k in data.files}


def params_of(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def test_every_layer_type_has_a_fixture():
    # Merges take several inputs; the branched differential (test_differential) runs them.
    single = {n for n in REGISTRY.names() if REGISTRY[n].arity == 1}
    assert single <= {c["type"] for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_layer_matches_torch(case, arrays):
    lt = REGISTRY[case["type"]]
    args = lt.parse_args(case["args"])
    name = case["case"]
    x, expected = arrays[f"{name}/x"], arrays[f"{name}/y"]
    out = forward_layer(lt, args, x, params_of(arrays, f"{name}/param/"))
    assert out.y.shape == expected.shape
    assert out.y.dtype == np.float32
    np.testing.assert_allclose(out.y, expected, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("case", [c for c in CASES if "maxpool" in c["type"]],
                         ids=[c["case"] for c in CASES if "maxpool" in c["type"]])
def test_max_pool_indices_match_torch_including_ties(case, arrays):
    lt = REGISTRY[case["type"]]
    name = case["case"]
    out = forward_layer(lt, lt.parse_args(case["args"]), arrays[f"{name}/relu_x"], {}, save=True)
    np.testing.assert_array_equal(out.saved["indices"], arrays[f"{name}/indices"])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_matches_torch(name, net_arrays):
    network = parse_text(NETWORKS[name], f"{name}.yaml")
    report = analyze(network, batch_size=2)
    params: dict[str, dict] = {}
    for key, value in net_arrays.items():
        if key.startswith(f"{name}/param/"):
            path, _, pname = key[len(f"{name}/param/"):].rpartition("/")
            params.setdefault(path, {})[pname] = value
    assert set(params) >= {leaf.path for leaf in network.leaves() if leaf.type.name.startswith("conv")}
    shapes = []
    ys = run_outputs(network, net_arrays[f"{name}/x"], lambda step: shapes.append(step.output.y.shape[1:]),
                     params=params)
    assert shapes == [row.output_shape for row in report.rows]
    # Every output: `<name>/y` is the first, `<name>/y1`, ... the others.
    assert len(ys) == len(report.outputs) == len([k for k in net_arrays if k.startswith(f"{name}/y")])
    for k, y in enumerate(ys):
        expected = net_arrays[f"{name}/y{k or ''}"]
        assert y.shape[1:] == report.outputs[k].shape
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


def test_a_graph_network_is_stored():
    # fan-out, long skips, size_of, a broadcasting mul, a crop and several outputs
    graph = parse_text(NETWORKS["graph2d"], "graph2d.yaml").graph
    assert len(graph.outputs) == 3
    assert {"mul", "concat", "centercrop", "upsample"} <= {n.type.name for n in graph.nodes}
