"""NumPy kernels against PyTorch, live, on random configurations (only where torch is installed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES

torch = pytest.importorskip("torch")

from convcalc.analysis import analyze  # noqa: E402
from convcalc.errors import SpecError  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402
from convcalc.numeric.kernels import forward_layer, layer_params  # noqa: E402
from convcalc.numeric.runner import input_array, run, run_outputs  # noqa: E402
from convcalc.spec.parser import parse_text  # noqa: E402
from torch_oracle import convcalc_params, load, torch_layer, torch_network  # noqa: E402

pytestmark = pytest.mark.torch
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def small(lo: int, hi: int):
    return st.integers(lo, hi)


@st.composite
def layer_case(draw, family: str):
    rank = draw(st.integers(1, 3))
    spatial = [draw(small(1, 12 if rank < 3 else 6)) for _ in range(rank)]
    k = [draw(small(1, 4)) for _ in range(rank)]
    s = [draw(small(1, 3)) for _ in range(rank)]
    d = [draw(small(1, 3)) for _ in range(rank)]
    if family == "conv":
        g = draw(st.sampled_from([1, 2, 3]))
        c = g * draw(small(1, 3))
        out = g * draw(small(1, 3))
        args = {"out_channels": out, "kernel_size": k, "stride": s, "dilation": d, "groups": g,
                "padding": [draw(small(0, 3)) for _ in range(rank)], "bias": draw(st.booleans()),
                "padding_mode": draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))}
        name = f"conv{rank}d"
    elif family == "transposed":
        g = draw(st.sampled_from([1, 2]))
        c, out = g * draw(small(1, 3)), g * draw(small(1, 3))
        op = [draw(small(0, max(si, di) - 1)) for si, di in zip(s, d)]
        args = {"out_channels": out, "kernel_size": k, "stride": s, "dilation": d, "groups": g,
                "output_padding": op, "padding": [draw(small(0, 2)) for _ in range(rank)]}
        name = f"convtranspose{rank}d"
    elif family == "pool":
        c = draw(small(1, 3))
        kind = draw(st.sampled_from(["maxpool", "avgpool"]))
        args = {"kernel_size": k, "stride": s, "padding": [draw(small(0, ki // 2)) for ki in k],
                "ceil_mode": draw(st.booleans())}
        if kind == "maxpool":
            args["dilation"] = d
        else:
            args["count_include_pad"] = draw(st.booleans())
            if rank > 1 and draw(st.booleans()):
                args["divisor_override"] = draw(small(1, 5))
        name = f"{kind}{rank}d"
    else:  # upsample
        c = draw(small(1, 3))
        mode = draw(st.sampled_from(["nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]]
                                    + (["bicubic"] if rank == 2 else [])))
        args = {"mode": mode}
        if draw(st.booleans()):
            args["size"] = [draw(small(1, 14)) for _ in range(rank)]
        else:
            args["scale_factor"] = [draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 1.3])) for _ in range(rank)]
        if mode not in ("nearest", "nearest-exact"):
            args["align_corners"] = draw(st.booleans())
        name = "upsample"
    return name, args, (c, *spatial), draw(st.integers(0, 2**31))


def check(name, raw, shape, seed, atol=1e-5):
    lt = REGISTRY[name]
    try:
        args = lt.parse_args(raw)
        inferred = lt.infer(args, shape).output_shape
    except SpecError:
        assume(False)
        return
    if name.startswith("conv") and "transpose" not in name and raw["padding_mode"] != "zeros":
        # PyTorch's reflect/circular padding needs pad < size (circular: <= size)
        assume(all(p < n for p, n in zip(raw["padding"], shape[1:])))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *shape), dtype=np.float32)
    params = layer_params(lt, args, shape, rng)
    module, holder = torch_layer(lt, args, shape)
    load(holder, params)
    with torch.no_grad():
        expected = module.eval()(torch.from_numpy(x)).numpy()
    y = forward_layer(lt, args, x, params).y
    assert y.shape == expected.shape == (2, *inferred)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=atol)


@SETTINGS
@given(layer_case("conv"))
def test_convolution(case):
    check(*case)


@SETTINGS
@given(layer_case("transposed"))
def test_transposed_convolution(case):
    check(*case)


@SETTINGS
@given(layer_case("pool"))
def test_pooling(case):
    check(*case)


@SETTINGS
@given(layer_case("upsample"))
def test_upsampling(case):
    check(*case)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.booleans(), st.integers(0, 2**31))
def test_max_pool_indices(rank, n, out, ceil_mode, seed):
    x = np.maximum(np.random.default_rng(seed).standard_normal((1, 2, *(n,) * rank), dtype=np.float32), 0)
    assume(out <= n)
    lt = REGISTRY[f"adaptivemaxpool{rank}d"]
    got = forward_layer(lt, lt.parse_args({"output_size": out}), x, {}, save=True).saved["indices"]
    fn = getattr(torch.nn.functional, f"adaptive_max_pool{rank}d")
    _, idx = fn(torch.from_numpy(x), (out,) * rank, return_indices=True)
    np.testing.assert_array_equal(got, idx.numpy())


@pytest.mark.parametrize("name", ["lenet", "dcgan_generator", "dilated_context", "nin", "mobilenet_v2"])
def test_example_network_output_matches_torch(name):
    path = EXAMPLES / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")
    network = parse_text(path.read_text(), path.name)
    report = analyze(network)
    params = convcalc_params(network, report, seed=0)
    x = input_array(network.input_shape, 1, seed=0)
    y = run(network, x, lambda step: None, seed=0)
    with torch.no_grad():
        expected = torch_network(network, report, params)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(expected).max())))


# The graph examples on smaller inputs (every layer as in the example; a U-Net tile whose crops
# are the original's): every output of the NumPy pass against torch on the same weights.
GRAPH_EXAMPLES = {"unet": "[1, 188, 188]", "fpn_resnet50": "[3, 96, 128]", "yolo_neck": "[3, 128, 160]"}


@pytest.mark.parametrize("name", sorted(GRAPH_EXAMPLES))
def test_graph_example_outputs_match_torch(name):
    import re

    text = re.sub(r"(?m)^input: .*$", f"input: {GRAPH_EXAMPLES[name]}", (EXAMPLES / f"{name}.yaml").read_text(),
                  count=1)
    network = parse_text(text, f"{name}.yaml")
    report = analyze(network)
    params = convcalc_params(network, report, seed=0)
    x = input_array(network.input_shape, 1, seed=0)
    ours = run_outputs(network, x, lambda step: None, seed=0)
    with torch.no_grad():
        theirs = torch_network(network, report, params)(torch.from_numpy(x))
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    assert [y.shape[1:] for y in ours] == [o.shape for o in report.outputs] == [tuple(t.shape[1:]) for t in theirs]
    for y, expected in zip(ours, theirs):
        expected = expected.numpy()
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max())))


def test_float64_pass_matches_torch_double_tightly():
    network = parse_text((EXAMPLES / "lenet.yaml").read_text(), "lenet.yaml")
    report = analyze(network, dtype="float64")
    params = convcalc_params(network, report, seed=1, dtype=np.float64)
    x = input_array(network.input_shape, 3, seed=1, dtype="float64")
    y = run(network, x, lambda step: None, seed=1)
    assert y.dtype == np.float64
    with torch.no_grad():
        expected = torch_network(network, report, params, dtype=torch.float64)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
