"""`convcalc.torch.build`: a spec's network as torch.nn modules, checked against convcalc.

For every example: the parameter and buffer counts, the output shape and every layer's
output shape (forward hooks on the modules at the report's paths) equal convcalc's report;
the examples written with torchvision's names load the state_dict of the hand-written
torchvision copies in scripts/make_torch_models.py with strict=True and compute the same
outputs; the receptive field measured as the support of a float64 gradient equals
convcalc's; and `--verify`'s NumPy forward with the built module's weights (saved as .pt
and .npz, loaded with `--weights`) equals the module's forward. Random specs drawn by
hypothesis get the same checks in tests/test_torch_random.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT
from convcalc.analysis import Report, analyze
from convcalc.errors import SpecError
from convcalc.network import Network
from convcalc.spec.parser import parse_text
from convcalc.spec.reserved import RESERVED_NAMES
from test_examples import ALIASES
from test_receptive_gradient import SMALLER

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
# The examples whose module paths are torchvision's (or d2l's / the DCGAN tutorial's), with
# the hand-written copies in scripts/make_torch_models.py.
NAMED_LIKE_TORCH = ["alexnet", "convnext_tiny", "dcgan_generator", "densenet121", "dilated_context",
                    "efficientnet_b0", "fpn_resnet50", "googlenet", "lenet", "mobilenet_v2", "mobilenet_v3_large",
                    "mobilenet_v3_small", "nin", "regnet_y_400mf", "resnet18", "resnet50", "shufflenet_v2_x1_0",
                    "unet", "vgg16", "yolo_neck"]


torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from convcalc.torch import build, load_spec, modules_of  # noqa: E402


def load_script(name: str = "make_torch_models") -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example(name: str) -> tuple[Network, Report]:
    path = EXAMPLES / f"{name}.yaml"
    network = parse_text(path.read_text(), path.name)
    return network, analyze(network)


def check_against_report(model: Any, network: Network, report: Report, batch: int = 2) -> None:
    """Counts, output shape, and every row's output shape through a forward hook."""
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    assert sum(b.numel() for b in model.buffers()) == report.totals.buffers
    modules = dict(model.named_modules())
    seen: dict[str, tuple[int, ...]] = {}
    handles = []
    def hook(path: str) -> Any:
        def record(module: Any, inputs: Any, out: Any) -> None:  # returns None: keeps the output
            seen.setdefault(path, tuple(out.shape[1:]))
        return record

    for row in report.rows:
        assert row.path in modules, f"no module at {row.path}"
        handles.append(modules[row.path].register_forward_hook(hook(row.path)))
    with torch.no_grad():
        out = model.eval()(torch.randn(batch, *network.input_shape))
    for handle in handles:
        handle.remove()
    outs = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in outs] == [(batch, *o.shape) for o in report.outputs]
    assert seen == {row.path: row.output_shape for row in report.rows}
    for key in model.state_dict():  # every key is a layer's path and a parameter or buffer name
        assert key.rpartition(".")[0] in modules, key


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_builds_as_convcalc_reports_it(name):
    network, report = example(name)
    torch.manual_seed(0)
    check_against_report(modules_of(network, report), network, report, batch=1)


@pytest.mark.parametrize("name", NAMED_LIKE_TORCH)
def test_torchvision_state_dicts_load_strictly_and_outputs_agree(name):
    script = load_script()
    make, shape = script.MODELS[name]
    torch.manual_seed(0)
    reference = make().eval()
    with torch.no_grad():  # running statistics away from 0 and 1, so BatchNorm matters
        for key, buffer in reference.state_dict().items():
            if key.endswith(("running_mean", "running_var")):
                buffer.uniform_(0.5, 1.5)
    model = build(EXAMPLES / f"{name}.yaml").eval()
    # The FPN's levels are named p2..p5 where torchvision numbers them (tests/test_examples.py).
    alias = ALIASES.get(name, lambda path: path)
    state = {f"{alias(key.rpartition('.')[0])}.{key.rpartition('.')[2]}": value
             for key, value in reference.state_dict().items()}
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    if isinstance(expected, dict):
        expected = tuple(expected.values())
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_every_example_is_named_like_its_torch_model():
    script = load_script()
    assert set(NAMED_LIKE_TORCH) == set(script.MODELS) <= set(EXAMPLE_NAMES)


# --- the Python API ---------------------------------------------------------------------------

SPEC = """\
name: small
input: [3, 16, 16]
vars: {width: 8}
layers:
  - conv2d: {name: stem, out_channels: $width, kernel_size: 3, padding: 1}
  - relu
  - flatten
  - linear: {out_features: 4}
"""


def test_build_takes_a_path_text_or_network(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    network = parse_text(SPEC, "small.yaml")
    for spec in (path, str(path), SPEC, network):
        model = build(spec)
        assert dict(model.named_parameters())["stem.weight"].shape == (8, 3, 3, 3)


def test_build_sets_vars_like_set():
    model = build(SPEC, width=16)
    assert model.stem.out_channels == 16
    assert model[3].in_features == 16 * 16 * 16


def test_setting_an_unknown_var_names_the_known_ones():
    with pytest.raises(SpecError, match=r"the spec has no var 'depth' to set \(its vars: width\)"):
        build(SPEC, depth=3)


def test_vars_of_a_parsed_network_cannot_be_set():
    with pytest.raises(TypeError, match="still text or a file"):
        build(parse_text(SPEC), width=4)
    assert load_spec(SPEC).name == "small"


def test_a_spec_convcalc_refuses_is_its_spec_error():
    with pytest.raises(SpecError, match="groups=3 does not divide"):
        build("input: [4, 8, 8]\nlayers: [conv2d: {out_channels: 6, kernel_size: 1, groups: 3}]")


def test_reserved_names_are_every_attribute_a_torch_module_has():
    from convcalc.torch.modules import Add, Fork, Steps

    fork = Fork({"m": Add()}, [[]], "m")
    steps = Steps([("m", Add(), (-1, -1))], (0,))
    held = set(dir(torch.nn.Sequential())) | set(dir(fork)) | set(dir(steps))
    attributes = {n for n in held if n.isidentifier()} - {"m"}
    assert attributes <= RESERVED_NAMES, sorted(attributes - RESERVED_NAMES)
    with pytest.raises(SpecError, match="name 'train' cannot be used"):
        parse_text("input: [3, 8, 8]\nlayers: [relu: {name: train}]")


def test_residual_concat_and_index_names():
    spec = """\
input: [4, 8, 8]
blocks:
  dense:
    residual:
      merge: concat
      body: [batchnorm2d: {name: norm}, conv2d: {name: conv, out_channels: 2, kernel_size: 3, padding: 1}]
layers:
  - dense: {name: layer$(i + 1), repeat: {count: 3, index: i}}
"""
    model = build(spec)
    assert [n for n, _ in model.named_children()] == ["layer1", "layer2", "layer3"]
    assert model.layer3.conv.in_channels == 8
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (1, 10, 8, 8)
    torch.testing.assert_close(out[:, :4], x)  # the input's channels first, unchanged


# --- receptive field: the gradient's support --------------------------------------------------


def linearised(model: Any) -> Any:
    """The network with every layer that is not a linear map of its window replaced by one
    that is: activations, norms and dropout as the identity (with positive weights and a
    positive input nothing is cut), max pooling as a depthwise all-ones convolution with
    the same window, padding and ceil rule, adaptive max pooling as adaptive averaging and
    softmax as a sum along its dim. The gradient's support is then the field."""

    def swap(parent: Any) -> None:
        for name, child in parent.named_children():
            kind = type(child).__name__
            if kind.startswith(("MaxPool", "PaddedMaxPool")):
                setattr(parent, name, WindowSum(child))
            elif kind.startswith("AdaptiveMaxPool"):
                setattr(parent, name, getattr(torch.nn, kind.replace("Max", "Avg"))(child.output_size))
            elif kind in ("Softmax", "LogSoftmax"):
                setattr(parent, name, SumAlong(child.dim))
            elif any(kind.startswith(k) for k in ACTIVATIONS) or "Norm" in kind or "Dropout" in kind:
                setattr(parent, name, torch.nn.Identity())
            elif child._modules:  # a container: Steps, a namespace of paths, Fork, Sequential
                swap(child)

    swap(model)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.5)
    return model


ACTIVATIONS = ("ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Mish", "Softplus", "Sigmoid", "Tanh",
               "Hardswish", "Hardsigmoid", "Hardtanh")


class SumAlong(torch.nn.Module):
    """The sum along one dim, spread over it: the same support as a softmax's gradient, which
    is zero when the dim has one element."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Any) -> Any:
        return x.sum(self.dim, keepdim=True).expand_as(x)


class WindowSum(torch.nn.Module):
    """Sum over a max pool's windows (every tap counts, not just the largest)."""

    def __init__(self, pool: Any) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Any) -> Any:
        rank = x.dim() - 2
        pool = self.pool
        if hasattr(pool, "pairs"):  # PaddedMaxPool: pad to fit, then plain windows
            from convcalc.torch.modules import pad_widths, pool_widths

            x = torch.nn.functional.pad(x, pad_widths(pool_widths(x, *pool.windows, pool.pairs, pool.round_up)))
            k, s, d = pool.windows
            p, ceil = (0,) * rank, False
        else:
            k, s, d, p = (tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank
                          for v in (pool.kernel_size, pool.stride, pool.dilation, pool.padding))
            ceil = pool.ceil_mode
        if ceil:  # as max_pool's ceil rule: pad on the right so the last window fits
            from convcalc.geometry import pool_output

            extra = []
            for n, kk, ss, dd, pp in zip(x.shape[2:], k, s, d, p):
                out = pool_output(n, kk, ss, dd, (pp, pp), True)
                extra.append(max(0, (out - 1) * ss + dd * (kk - 1) + 1 - n - 2 * pp))
            x = torch.nn.functional.pad(x, [w for e in reversed(extra) for w in (0, e)])
        weight = torch.ones((x.shape[1], 1, *k), dtype=x.dtype)
        conv = getattr(torch.nn.functional, f"conv{rank}d")
        return conv(x, weight, stride=s, padding=p, dilation=d, groups=x.shape[1])


def gradient_supports(model: Any, network: Network, targets: list[tuple[Any, tuple[int, ...]]]
                      ) -> list[list[tuple[int, ...]]]:
    """For each (report row, output position on its spatial axes): per spatial axis of the
    input, the input indices that output depends on. One forward pass; one gradient per target."""
    modules = dict(model.named_modules())
    captured: dict[str, Any] = {}
    handles = []
    for row, _ in targets:
        def keep(module: Any, inputs: Any, out: Any, path: str = row.path) -> None:
            captured.setdefault(path, out)
        handles.append(modules[row.path].register_forward_hook(keep))
    x = (torch.rand(1, *network.input_shape, dtype=torch.float64) + 0.5).requires_grad_()
    model(x)
    for handle in handles:
        handle.remove()
    out = []
    for row, position in targets:
        index: list[Any] = [0] + [slice(None)] * len(row.output_shape)
        for axis, at in zip(row.dims, position):  # the spatial axes (channels-last after a permute)
            index[1 + axis] = at
        (grad,) = torch.autograd.grad(captured[row.path][tuple(index)].sum(), x, retain_graph=True)
        nz = (grad[0] != 0).numpy()
        out.append([tuple(np.nonzero(nz.any(axis=tuple(i for i in range(nz.ndim) if i != a + 1)))[0])
                    for a in range(nz.ndim - 1)])
    return out


def check_fields(network: Network, report: Report, model: Any, targets: int = 3) -> int:
    """The gradient's support equals the region `convcalc rf` walks, and the field size where
    that region is not clipped by the border; returns the comparisons made."""
    from convcalc.fieldwalk import centre, walk

    model = linearised(model.double().eval())
    rows = [r for r in report.rows if r.maps is not None and r.spatial_shape and r.field is not None]
    chosen = rows[:: max(1, len(rows) // targets)][:targets] + rows[-1:]
    positions = [centre(row.spatial_shape) for row in chosen]
    misaligned = any(w.code == "misaligned-branches" for w in report.warnings)
    supports = gradient_supports(model, network, list(zip(chosen, positions)))
    for row, position, got in zip(chosen, positions, supports):
        region = walk(network, position, row.path, report.rows)
        assert got == [r.indices for r in region], (row.path, position)
        # The recurrence is one field per axis: exact where nothing was clipped, no path was
        # emptied by another axis, and merged branches have one jump (else convcalc warns).
        if not any(r.dropped for r in region) and not misaligned:
            for r, f, o in zip(region, row.field, position):
                if not r.clipped:
                    assert r.span == f.at(o), (row.path, position)
    return len(chosen)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_receptive_field_is_the_float64_gradients_support(name):
    """At half the input size for the ImageNet networks (the same layers; a float64 backward
    through VGG-16 at 224x224 takes half a minute)."""
    text = (EXAMPLES / f"{name}.yaml").read_text().replace("input: [3, 224, 224]", "input: [3, 112, 112]")
    if name in SMALLER:  # the graphs on the smaller inputs tests/test_receptive_gradient.py uses
        text = re.sub(r"(?m)^input: .*$", f"input: {SMALLER[name]}", text, count=1)
    network = parse_text(text, f"{name}.yaml")
    report = analyze(network)
    torch.manual_seed(0)
    assert check_fields(network, report, modules_of(network, report)) > 0


# --- the NumPy forward with the built module's weights ------------------------------------------


def numpy_forward_matches(network: Network, report: Report, model: Any, tmp: Path, suffix: str) -> None:
    from convcalc.numeric.runner import input_array, run
    from convcalc.numeric.weights import load_weights

    model = model.double().eval()
    with torch.no_grad():  # away from the initial values (BatchNorm's running statistics are 0 and 1)
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.add_(torch.rand_like(value) * 0.1)
    file = tmp / f"weights{suffix}"
    state = model.state_dict()
    if suffix == ".npz":
        np.savez(file, **{k: v.numpy() for k, v in state.items()})
    else:
        torch.save(state, file)
    params = load_weights(str(file), network, report, "float64")
    x = input_array(network.input_shape, 2, seed=0, dtype="float64")
    got = run(network, x, lambda step: None, params=params)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize("name", ["lenet", "dcgan_generator", "googlenet", "mobilenet_v2", "resnet18",
                                  "densenet121", "convnext_tiny"])  # layer scale: keyed by its path
def test_numpy_forward_with_the_built_weights_equals_the_module(name, tmp_path):
    network, report = example(name)
    torch.manual_seed(0)
    numpy_forward_matches(network, report, modules_of(network, report), tmp_path,
                          ".npz" if name in ("lenet", "resnet18") else ".pt")


def test_verify_with_weights_from_the_command_line(tmp_path, run):
    torch.manual_seed(0)
    model = build(EXAMPLES / "resnet18.yaml")
    torch.save(model.state_dict(), tmp_path / "r18.pt")
    result = run("shapes", str(EXAMPLES / "resnet18.yaml"), "--verify", "--weights", str(tmp_path / "r18.pt"),
                 "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert '"weights": "' in result.stdout and '"verified": true' in result.stdout
    state = model.state_dict()
    state["fc.weight"] = state["fc.weight"][:10]
    del state["fc.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    result = run("shapes", str(EXAMPLES / "resnet18.yaml"), "--verify", "--weights", str(tmp_path / "bad.pt"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: --weights {tmp_path / 'bad.pt'} does not fit resnet18: missing 1: fc.bias;"
                             " wrong shape: fc.weight is [10, 512], the layer needs [1000, 512];"
                             " not in the network: extra.weight\n")


def test_a_layer_after_a_permute_may_view_its_input():
    # torch's LocalResponseNorm views its input, which a permute of the trailing dims leaves
    # strided: the built Permute hands on its output in the new order (found by hypothesis).
    spec = ("input: [1, 4, 5, 6]\nlayers:\n  - permute: {dims: [0, 1, 2, 4, 3]}\n"
            "  - localresponsenorm: {size: 1}\n")
    model = build(parse_text(spec))
    x = torch.randn(2, 1, 4, 5, 6)
    out = model(x)
    expected = torch.nn.functional.local_response_norm(x.permute(0, 1, 2, 4, 3).contiguous(), 1)
    assert out.shape == (2, 1, 4, 6, 5)
    torch.testing.assert_close(out, expected)
