"""The example specs: published totals, expected warnings, and a per-layer PyTorch oracle.

Oracles: the parameter and MAC counts are the published numbers (torchvision's model tables,
d2l, the DCGAN paper's architecture), written as literals; per-layer shapes, parameters,
buffers and MACs come from tests/fixtures/torch_models/*.json, written by scripts/make_torch_models.py
(hand-written PyTorch models, torch==2.13.0), and live from that script when torch is installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "torch_models"
SCRIPT = ROOT / "scripts" / "make_torch_models.py"

# Published trainable-parameter totals.
PARAMS = {
    "lenet": 61_706,
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "nin": 1_992_166,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "densenet121": 7_978_856,
    "mobilenet_v2": 3_504_872,
    "dcgan_generator": 3_576_704,
    "dilated_context": 9_280,
    # graphs: ResNet-50 without fc (25,557,032 - 2,049,000) + FPN laterals + 3x3 outputs
    "fpn_resnet50": 23_508_032 + (256 + 512 + 1024 + 2048) * 256 + 4 * 256 + 4 * (256 * 256 * 9 + 256),
    "unet": 31_030_658,   # the figure usually quoted for the original U-Net
    "yolo_neck": 1_872_157,  # ultralytics' YOLOv5n (v6.0), 80 classes
    # issue #10's modern networks (torchvision's tables)
    "efficientnet_b0": 5_288_548,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "shufflenet_v2_x1_0": 2_278_604,
    "convnext_tiny": 28_589_128,
    "regnet_y_400mf": 4_344_144,
}

# torchvision's published totals for networks whose plain-torch copy and fixture exist
# (scripts/make_torch_models.py) but whose example spec is still to be written. When
# examples/<name>.yaml lands, move its entry to PARAMS and add its LEAVES count.
PENDING: dict[str, int] = {}

# The networks whose torch copies carry torchvision's module paths and state_dict keys, so
# convcalc's weights load into them by path (the float64 forward comparison).
TORCHVISION_PATHS = ("efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x1_0",
                     "convnext_tiny", "regnet_y_400mf")

OUTPUT = {
    "lenet": [10], "nin": [10], "dcgan_generator": [3, 64, 64], "dilated_context": [16, 64, 64],
    # several outputs: a list of shapes, P2-P5 and P6 at strides 4..64; 3 detection levels at 8, 16, 32
    "fpn_resnet50": [[256, 512 // s, 512 // s] for s in (4, 8, 16, 32, 64)],
    "unet": [2, 388, 388],
    "yolo_neck": [[3 * (80 + 5), 640 // s, 640 // s] for s in (8, 16, 32)],
}  # the others classify ImageNet: [1000]

# The warnings these published architectures deserve, and no others (codes by path):
# - unread-pixels: a strided window leaves real input pixels unread when
#   (n + pl + pr - k_eff) % s > pr. Only NiN: 224 - 11 = 213 (conv 11/4, no padding) and the
#   3x3/2 pools on 54, 26 and 12 (54 - 3 = 51, ...). AlexNet's conv 11/4 p2 (217 % 4 = 1 <= 2),
#   the 7x7/2 p3 stems and the 3x3/2 p1 convs and pools only miss padding.
# - skipped-pixels: ResNet's 1x1 stride-2 shortcut convs read one pixel in four (the flaw
#   ResNet-D fixes).
# Everything else divides evenly: 2x2/2 pools on even sizes, stride-1 convs, ceil_mode pools
# (GoogLeNet), 4x4/2 transposed convs (DCGAN: kernel a multiple of the stride, no checkerboard).
# - misaligned-branches: nearest 2x upsampling of a stride-2 map (FPN's top-down path, YOLO's
#   PAN neck) repeats each coarse field twice, so the line through the upsampled fields' centres
#   sits half a fine jump before the lateral's (8 px at FPN's P4; the shift carries down, 12 at
#   P3, 14 at P2). The U-Net's 2x up-convolution is symmetric about its skip: no warning.
# - FPN's P6 is a 1x1 max pool with stride 2: skipped-pixels, as it should be.
RESNET_SHORTCUTS = {(f"layer{i}.0.downsample.0", "skipped-pixels") for i in (2, 3, 4)}
# - RegNet's projection shortcuts are 1x1 stride-2 convs as well, one per stage.
WARNINGS: dict[str, set[tuple[str, str]]] = {
    # NiN's global average pool (8) averages features whose field is
    # 11 + 2*4 + 4*8 + 2*8 + 2*16 + 2*16 + 2*32 = 195 pixels of 224: more than half, so no
    # small-head-field.
    "nin": {(path, "unread-pixels") for path in ("0.0", "1", "3", "5")},
    "resnet18": RESNET_SHORTCUTS,
    "resnet50": RESNET_SHORTCUTS,
    "fpn_resnet50": ({(f"body.{path}", code) for path, code in RESNET_SHORTCUTS}
                     | {("fpn.pool", "skipped-pixels")}
                     | {(f"fpn.p{i}.inner", "misaligned-branches") for i in (2, 3, 4)}),
    "yolo_neck": {("model.12", "misaligned-branches"), ("model.16", "misaligned-branches")},
    "regnet_y_400mf": {(f"trunk_output.block{i}.block{i}-0.proj.0", "skipped-pixels") for i in (1, 2, 3, 4)},
}


def shapes_json(run: Callable[..., Any], name: str) -> dict[str, Any]:
    result = run("shapes", str(EXAMPLES / f"{name}.yaml"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_every_example_is_covered():
    assert {p.stem for p in EXAMPLES.glob("*.yaml")} == set(PARAMS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_published_parameter_count(run, name):
    report = shapes_json(run, name)
    assert report["totals"]["params"] == PARAMS[name]
    assert report["output_shape"] == OUTPUT.get(name, [1000])


def test_macs(run):
    # torchvision's table: 4.09 "GFLOPS" for ResNet-50, which are MACs.
    assert shapes_json(run, "resnet50")["totals"]["macs"] == 4_089_184_256
    dcgan = shapes_json(run, "dcgan_generator")
    # Transposed conv: input positions x C_in x C_out x k x k.
    assert dcgan["totals"]["macs"] == 104_628_224 == (
        1 * 1 * 100 * 512 * 16 + 4 * 4 * 512 * 256 * 16 + 8 * 8 * 256 * 128 * 16
        + 16 * 16 * 128 * 64 * 16 + 32 * 32 * 64 * 3 * 16
    )


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_only_expected_warnings(name):
    """Every warning the design deserves, before the spec's `ignore:` silences any."""
    from convcalc.analysis import analyze
    from convcalc.lints import lint
    from convcalc.spec.parser import parse_text

    network = parse_text((EXAMPLES / f"{name}.yaml").read_text(), f"{name}.yaml")
    warnings = lint(network, analyze(network)).warnings
    assert {(w.path, w.code) for w in warnings} == WARNINGS.get(name, set()), warnings
    # the examples silence exactly the codes they deserve (each with a comment saying why)
    assert {code for code, _ in network.ignore} == {code for _, code in WARNINGS.get(name, set())}


def test_the_readme_ci_recipe_passes_on_the_examples(run, monkeypatch):
    """`convcalc check examples/*.yaml --strict`, as the README's CI step runs it."""
    monkeypatch.chdir(ROOT)
    result = run("check", *sorted(f"examples/{p.name}" for p in EXAMPLES.glob("*.yaml")), "--strict")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.count("PASS ") == len(PARAMS)
    for path in EXAMPLES.glob("*.yaml"):  # an `ignore:` says why, in a comment just above it
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("ignore:"):
                assert lines[i - 1].startswith("#"), path.name


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_table_output(run, name):
    result = run("shapes", str(EXAMPLES / f"{name}.yaml"))
    assert result.exit_code == 0, result.stderr
    assert f"{PARAMS[name]:,}" in result.stdout


# Receptive field of the last feature map (before global pooling), r = 1 + sum (k - 1) * jump,
# written out per stage; AlexNet 195 and VGG-16 212 are also in Araujo et al. (Distill, 2019).
FEATURE_FIELDS = {
    # conv 11/4, pool 3/2 at jump 4, conv 5 at 8, pool 3 at 8, 3 x conv 3 at 16, pool 3 at 16
    "alexnet": ("features.12", 11 + 2 * 4 + 4 * 8 + 2 * 8 + 3 * 2 * 16 + 2 * 16, 32),
    # per stage n 3x3 convs at jump j, then a 2x2/2 pool: 2*n*j + j
    "vgg16": ("features.30", 1 + sum(2 * n * j + j for n, j in ((2, 1), (2, 2), (3, 4), (3, 8), (3, 16))), 32),
    # conv 7/2, pool 3/2 at 2; one 3x3 per bottleneck, the first of a stage strided at the
    # previous jump: 3 blocks at 4, then 8 + 3 x 16, 16 + 5 x 32, 32 + 2 x 64
    "resnet50": ("layer4.2.relu_out", 7 + 2 * 2 + 3 * 8 + (8 + 3 * 16) + (16 + 5 * 32) + (32 + 2 * 64), 32),
}


@pytest.mark.parametrize("name", sorted(FEATURE_FIELDS))
def test_feature_receptive_field(run, name):
    path, size, jump = FEATURE_FIELDS[name]
    rows = {row["path"]: row for row in shapes_json(run, name)["layers"]}
    assert rows[path]["receptive_field"]["size"] == [size, size]
    assert rows[path]["receptive_field"]["jump"] == [jump, jump]


def test_published_receptive_fields():
    assert [FEATURE_FIELDS[n][1] for n in ("alexnet", "vgg16", "resnet50")] == [195, 212, 427]


def test_dilated_context_receptive_field(run):
    last = shapes_json(run, "dilated_context")["layers"][-1]
    assert last["receptive_field"]["size"] == [1 + 2 * (1 + 2 + 4 + 8)] * 2
    assert last["receptive_field"]["jump"] == [1, 1]


# --- per-layer comparison with PyTorch -------------------------------------------------------

# The examples use torchvision's module paths (VGG-16's flat features.0 .. features.30,
# DenseNet's denseblock1.denselayer1.conv1), so every torch leaf is a row of the same path;
# the FPN's levels are named (p2..p5) where torchvision numbers its inner and layer blocks.


def _fpn_path(path: str) -> str:
    """torchvision's fpn.inner_blocks.I.0 / fpn.layer_blocks.I.0 are level P(I+2)'s lateral / out."""
    match = re.fullmatch(r"fpn\.(inner|layer)_blocks\.(\d)\.0", path)
    return f"fpn.p{int(match[2]) + 2}.{'lateral' if match[1] == 'inner' else 'out'}" if match else path


ALIASES: dict[str, Callable[[str], str]] = {
    "fpn_resnet50": _fpn_path,
}

# Leaf modules per torch model, counted from the architectures; every one must match a row.
LEAVES = {
    "lenet": 12,
    "alexnet": 13 + 1 + 7,                        # features, avgpool, classifier
    "vgg16": 13 * 2 + 5 + 1 + 7,                  # conv + relu, pools, avgpool, classifier
    "nin": 4 * 6 + 3 + 1 + 1 + 1,                 # NiN blocks, pools, dropout, avgpool, flatten
    "googlenet": 3 * 2 + 4 + 9 * (2 + 4 + 4 + 3) + 3,  # BasicConv2d = conv + bn; 9 inceptions
    "resnet18": 4 + 8 * 5 + 3 * 2 + 2,            # stem, blocks, shortcuts, avgpool + fc
    "resnet50": 4 + 16 * 7 + 4 * 2 + 2,
    "densenet121": 4 + (6 + 12 + 24 + 16) * 6 + 3 * 4 + 1 + 1,
    "mobilenet_v2": 3 + 5 + 16 * 8 + 3 + 2,       # stem, t=1 block, t=6 blocks, last conv, head
    "dcgan_generator": 5 * 3 - 1,
    "dilated_context": 4 * 2,
    "fpn_resnet50": 4 + 16 * 7 + 4 * 2 + 2 * 4,   # ResNet-50 without avgpool and fc; 4 laterals, 4 outputs
    "unet": 5 * 4 + 4 + 4 * (1 + 4) + 1,          # double convs, pools, up-conv + double conv, head
    # YOLOv5n: a Conv is conv + bn + act; C3 = 3 Convs + 2 per bottleneck (n = 1, 2, 3, 1, then
    # four n = 1 in the neck); 9 plain Convs (0, 1, 3, 5, 7, 10, 14, 18, 21), SPPF's 2 Convs and
    # pool; 2 upsamples, 4 concats, 3 Detect convs.
    "yolo_neck": 3 * (9 + 2 + sum(3 + 2 * n for n in (1, 2, 3, 1, 1, 1, 1, 1))) + 1 + 2 + 4 + 3,
    # issue #10's networks: counted from the architectures, see scripts/torchvision_models.md
    "efficientnet_b0": 3 + 11 + 15 * 14 + 3 + 1 + 2,  # MBConv: [expand 3,] dw 3, SE 5, project 2, stochastic_depth
    "mobilenet_v3_large": 3 + 5 + 6 * 8 + 8 * 13 + 3 + 1 + 4,  # blocks: 5 (no expand), 8 (no SE), 13 (SE)
    "mobilenet_v3_small": 3 + 10 + 2 * 8 + 8 * 13 + 3 + 1 + 4,
    "shufflenet_v2_x1_0": 3 + 1 + 3 * (5 + 8) + 13 * 8 + 3 + 1,  # stride-2 blocks have branch1
    "convnext_tiny": 2 + 18 * 9 + 3 * 2 + 1 + 3,  # CNBlock: 7 + stochastic_depth + layer_scale
    "regnet_y_400mf": 3 + 16 * 14 + 4 * 2 + 1 + 1,  # a 3, b 3, se 5, c 2, activation; 4 projs
}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def compare_with_torch(torch_model: dict[str, Any], report: dict[str, Any], name: str) -> int:
    """Every torch leaf must be a convcalc row with equal shape, params, buffers and MACs.

    A leaf torch never called (EfficientNet's `stochastic_depth` where the block adds no
    residual) has no output shape to compare: its row must still exist, with equal params,
    buffers and MACs (all 0)."""
    rows = {row["path"]: row for row in report["layers"]}
    missing, matched = [], 0
    alias = ALIASES.get(name, lambda path: path)
    for leaf in torch_model["leaves"]:
        path = alias(leaf["path"])
        if path not in rows:
            missing.append(leaf["path"])
            continue
        row = rows[path]
        got = (row["params"], row["buffers"], row["macs"])
        assert got == (leaf["params"], leaf["buffers"], leaf["macs"]), (leaf, path)
        if leaf["calls"]:
            assert row["output_shape"] == leaf["output_shape"], (leaf, path)
        matched += 1
    assert not missing, f"torch leaves without a convcalc row: {missing}"
    assert report["totals"]["params"] == torch_model["totals"]["params"]
    assert report["totals"]["buffers"] == torch_model["totals"]["buffers"]
    assert report["totals"]["macs"] == torch_model["totals"]["macs"]
    assert report["output_shape"] == torch_model["output_shape"]
    assert report["input_shape"] == torch_model["input_shape"]
    return matched


ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXAMPLE_FIXTURES = [name for name in ALL_FIXTURES if name not in PENDING]


def test_fixtures_cover_the_required_models():
    have = set(ALL_FIXTURES)
    required = {"alexnet", "dcgan_generator", "resnet50", "googlenet", "densenet121",
                "mobilenet_v2"} | set(PENDING)
    assert required <= have
    assert have <= set(PARAMS) | set(PENDING)
    assert not set(PARAMS) & set(PENDING)


def test_pending_models_have_no_example_yet():
    """A pending model whose example exists must move to PARAMS, so the per-layer test runs."""
    assert not {name for name in PENDING if (EXAMPLES / f"{name}.yaml").exists()}


def test_pending_fixtures_match_published_totals():
    for name in PENDING:
        torch_model = fixture(name)
        assert torch_model["totals"]["params"] == PENDING[name]
        assert torch_model["input_shape"] == [3, 224, 224]
        assert torch_model["output_shape"] == [1000]
        assert torch_model["totals"]["macs"] == sum(leaf["macs"] for leaf in torch_model["leaves"])
        assert len(torch_model["leaves"]) == LEAVES[name]


@pytest.mark.parametrize("name", EXAMPLE_FIXTURES)
def test_layers_match_torch_fixture(run, name):
    torch_model = fixture(name)
    matched = compare_with_torch(torch_model, shapes_json(run, name), name)
    assert matched == len(torch_model["leaves"]) == LEAVES[name]
    # the fixture itself agrees with the published count
    assert torch_model["totals"]["params"] == PARAMS[name]


def _script() -> Any:
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("make_torch_models", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.torch
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_live_torch_matches_fixture_and_convcalc(run, name):
    live = _script().describe(name)
    stored = fixture(name)
    for key in ("generated_by",):
        live.pop(key)
        stored.pop(key)
    assert live == stored, "fixture is stale: rerun python3 scripts/make_torch_models.py"
    if name in PENDING:
        return  # no example to compare yet
    assert compare_with_torch(live, shapes_json(run, name), name) == len(live["leaves"])


def test_script_defines_a_model_per_fixture():
    """The live test can only run models the script defines (checked without torch)."""
    text = Path(SCRIPT).read_text()
    for path in FIXTURES.glob("*.json"):
        assert f'"{path.stem}": (' in text


# --- the modern networks' NumPy forward against the torchvision copies, same weights ------------


def torchvision_state(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """convcalc's parameters under torchvision's state_dict keys (`<path>.<name>`, as the paths
    are torchvision's); a layer scale is the block's own (C, 1, 1) parameter, named by its path."""
    state = {}
    for path, values in params.items():
        for key, value in values.items():
            if key == "gamma":
                state[path] = value.reshape(-1, 1, 1)
            else:
                state[f"{path}.{key}"] = value
    return state


@pytest.mark.torch
@pytest.mark.parametrize("name", TORCHVISION_PATHS)
def test_numpy_forward_matches_the_torchvision_model_in_float64(name):
    """Every torch parameter and running statistic gets convcalc's value by path; both run in
    float64 on the same input and agree to 1e-6 relative (in practice to ~1e-13)."""
    torch = _script().torch
    import numpy as np

    from convcalc.analysis import analyze
    from convcalc.numeric.runner import input_array, run
    from convcalc.spec.parser import parse_text
    from torch_oracle import convcalc_params

    network = parse_text((EXAMPLES / f"{name}.yaml").read_text(), f"{name}.yaml")
    report = analyze(network, dtype="float64")
    params = convcalc_params(network, report, seed=0, dtype=np.float64)
    model = _script().MODELS[name][0]().double().eval()
    wanted = {key for key in model.state_dict() if not key.endswith("num_batches_tracked")}
    state = torchvision_state(params)
    assert set(state) == wanted, (sorted(set(state) - wanted)[:5], sorted(wanted - set(state))[:5])
    model.load_state_dict({key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in state.items()},
                          strict=False)
    x = input_array(network.input_shape, 1, seed=0, dtype="float64")
    y = run(network, x, lambda step: None, seed=0)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert y.shape == expected.shape == (1, 1000)
    assert np.abs(y - expected).max() <= 1e-6 * np.abs(expected).max()


@pytest.mark.parametrize("name", TORCHVISION_PATHS)
def test_verify_confirms_every_shape_of_the_modern_networks(run, name):
    result = run("shapes", str(EXAMPLES / f"{name}.yaml"), "--verify", "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is True and all(row["verified"] for row in report["layers"])
