"""Every layer type says which PyTorch module it is (`LayerType.torch_call`), and that module
computes what convcalc says: its output shape, parameters and buffers, and the NumPy
kernel's values with the module's own weights.

The registry test runs without torch; the others need it (`pip install torch==2.13.0`).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from convcalc.errors import SpecError
from convcalc.layers import MERGE_TYPES, REGISTRY, LayerType

# A layer type added to the registry must implement torch_call; the integrator of a new
# layer family adds it next to `infer` (README, "Development").
LAYER_TYPES = REGISTRY.names()


def test_every_layer_type_says_which_torch_module_it_is():
    missing = [name for name in LAYER_TYPES if type(REGISTRY[name]).torch_call is LayerType.torch_call]
    assert missing == [], f"layer types without torch_call (and so without torch_module): {missing}"


def test_torch_calls_are_data_and_need_no_torch():
    """torch_call runs without torch: the exporter writes its result as source."""
    for name in LAYER_TYPES:
        args, shape = sample(name)
        lt = REGISTRY[name]
        call = lt.torch_call(lt.parse_args(args), shape)
        assert isinstance(call.name, str) and call.name[0].isupper(), name


def test_import_without_torch_names_the_install_command():
    code = "import sys; sys.modules['torch'] = None\ntry:\n import convcalc.torch\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src")}).stdout
    assert "pip install 'convcalc[torch]'" in out


def test_convcalc_and_its_commands_do_not_import_torch():
    code = ("import sys; import convcalc.cli, convcalc.export.pytorch, convcalc.layers;"
            " print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src")}).stdout
    assert out.strip() == "False"


def sample(name: str) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Small valid arguments and an input shape for any registered layer type."""
    lt = REGISTRY[name]
    rank = lt.rank or 2
    values = {"out_channels": 6, "out_features": 5, "kernel_size": 3, "num_groups": 2, "size": 3,
              "output_size": 2, "upscale_factor": 2, "downscale_factor": 2, "padding": 1, "value": 0.5,
              "groups": 2, "dims": [0, 2, 3, 1], "p": 0.5, "mode": "row"}
    args = {a.name: values[a.name] for a in lt.args if a.required}
    if name in ("upsample", "upsamplingnearest2d", "upsamplingbilinear2d"):
        args = {"scale_factor": 2}
    args = {"centercrop": {"size": 4}, "narrow": {"start": 1, "length": 2}}.get(name, args)
    return args, (4, *(6,) * rank)


def _torch() -> Any:
    return pytest.importorskip("torch")


def counts(module: Any) -> tuple[int, int]:
    return (sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers()))


def numpy_params(module: Any) -> dict[str, np.ndarray]:
    """The module's parameters and buffers by attribute name (the NumPy kernels' names)."""
    named = [*module.named_parameters(), *module.named_buffers()]
    return {k: v.detach().double().numpy() for k, v in named if not k.endswith("num_batches_tracked")}


@pytest.mark.torch
@pytest.mark.parametrize("name", [n for n in LAYER_TYPES if n not in MERGE_TYPES])
def test_each_layer_types_module_matches_convcalc(name):
    torch = _torch()
    from convcalc.numeric.kernels import forward_layer

    args, shape = sample(name)
    lt = REGISTRY[name]
    parsed = lt.parse_args(args)
    inferred = lt.infer(parsed, shape)
    torch.manual_seed(0)
    module = lt.torch_module(parsed, shape).double().eval()
    assert counts(module) == (inferred.params, inferred.buffers)
    with torch.no_grad():
        for p in module.parameters():  # away from defaults (BN's ones and zeros)
            p.uniform_(0.5, 1.5)
        x = torch.randn(2, *shape, dtype=torch.float64)
        expected = module(x).numpy()
    assert expected.shape == (2, *inferred.output_shape)
    got = forward_layer(lt, parsed, x.numpy(), numpy_params(module)).y
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(MERGE_TYPES))
def test_merge_modules(name):
    torch = _torch()
    lt = MERGE_TYPES[name]
    a, b = torch.ones(1, 2, 3, 3), 2 * torch.ones(1, 2, 3, 3)
    out = lt.torch_module(lt.parse_args({}), ())(a, b)
    expected = {"add": a + b, "mul": a * b, "concat": torch.cat([a, b], 1)}[name]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    if name == "concat":
        assert lt.torch_module(lt.parse_args({"dim": -1}), ())(a, b).shape == (1, 2, 3, 6)


# --- asymmetric padding: the helper modules against the NumPy kernels ---------------------------

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@st.composite
def asymmetric_case(draw):
    rank = draw(st.integers(1, 3))
    family = draw(st.sampled_from(["conv", "convtranspose", "maxpool", "avgpool"]))
    spatial = [draw(st.integers(3, 9 if rank < 3 else 6)) for _ in range(rank)]
    k = [draw(st.integers(1, 4)) for _ in range(rank)]
    s = [draw(st.integers(1, 3)) for _ in range(rank)]
    if family in ("maxpool", "avgpool"):
        pads = [[draw(st.integers(0, ki // 2)), draw(st.integers(0, ki // 2))] for ki in k]
    else:
        pads = [[draw(st.integers(0, 3)), draw(st.integers(0, 3))] for _ in range(rank)]
    assume(any(a != b for a, b in pads))
    args: dict[str, Any] = {"kernel_size": k, "stride": s, "padding": pads}
    if family == "conv":
        args |= {"out_channels": draw(st.integers(1, 3)), "dilation": [draw(st.integers(1, 2)) for _ in range(rank)],
                 "padding_mode": draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))}
    elif family == "convtranspose":
        d = [draw(st.integers(1, 2)) for _ in range(rank)]
        args |= {"out_channels": draw(st.integers(1, 3)), "dilation": d,
                 "output_padding": [draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d)]}
    elif family == "maxpool":
        args |= {"dilation": [draw(st.integers(1, 2)) for _ in range(rank)], "ceil_mode": draw(st.booleans())}
    else:
        args |= {"ceil_mode": draw(st.booleans()), "count_include_pad": draw(st.booleans())}
        if rank > 1 and draw(st.booleans()):
            args["divisor_override"] = draw(st.integers(1, 5))
    return f"{family}{rank}d", args, (draw(st.integers(1, 3)), *spatial)


@pytest.mark.torch
@SETTINGS
@given(asymmetric_case(), st.integers(0, 2**31))
def test_asymmetric_padding_helpers_match_numpy(case, seed):
    torch = _torch()
    from convcalc.numeric.kernels import forward_layer

    name, raw, shape = case
    lt = REGISTRY[name]
    try:
        args = lt.parse_args(raw)
        inferred = lt.infer(args, shape)
    except SpecError:
        assume(False)
        return
    torch.manual_seed(seed % 1000)
    module = lt.torch_module(args, shape).double().eval()
    assert type(module).__name__.startswith(("Padded", "Cropped"))
    assert counts(module) == (inferred.params, inferred.buffers)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((2, *shape)))
    with torch.no_grad():
        expected = module(x).numpy()
    assert expected.shape == (2, *inferred.output_shape)
    got = forward_layer(lt, args, x.numpy(), numpy_params(module)).y
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
