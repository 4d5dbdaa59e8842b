"""The example specs: published totals, expected warnings, and a per-layer PyTorch oracle.

Oracles: the parameter and MAC counts are the published numbers (torchvision's model tables,
d2l, the DCGAN paper's architecture), written as literals; per-layer shapes, parameters and
buffers come from tests/fixtures/torch_models/*.json, written by scripts/make_torch_models.py
(hand-written PyTorch models, torch==2.13.0), and live from that script when torch is installed.
"""

from __future__ import annotations

import importlib.util
import json
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
}

OUTPUT = {
    "lenet": [10], "nin": [10], "dcgan_generator": [3, 64, 64], "dilated_context": [16, 64, 64],
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
RESNET_SHORTCUTS = {(f"layer{i}.0.downsample.0", "skipped-pixels") for i in (2, 3, 4)}
WARNINGS: dict[str, set[tuple[str, str]]] = {
    # NiN's global average pool (8) averages features whose field is
    # 11 + 2*4 + 4*8 + 2*8 + 2*16 + 2*16 + 2*32 = 195 < 224 pixels: small-head-field.
    "nin": {(path, "unread-pixels") for path in ("0.0", "1", "3", "5")} | {("8", "small-head-field")},
    "resnet18": RESNET_SHORTCUTS,
    "resnet50": RESNET_SHORTCUTS,
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
def test_only_expected_warnings(run, name):
    warnings = shapes_json(run, name)["warnings"]
    assert {(w["path"], w["code"]) for w in warnings} == WARNINGS.get(name, set()), warnings


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
# DenseNet's denseblock1.denselayer1.conv1), so every torch leaf is a row of the same path.


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
}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def compare_with_torch(torch_model: dict[str, Any], report: dict[str, Any], name: str) -> int:
    """Every torch leaf must be a convcalc row with equal shape, params and buffers."""
    rows = {row["path"]: row for row in report["layers"]}
    missing, matched = [], 0
    for leaf in torch_model["leaves"]:
        path = leaf["path"]
        if path not in rows:
            missing.append(leaf["path"])
            continue
        row = rows[path]
        got = (row["output_shape"], row["params"], row["buffers"])
        assert got == (leaf["output_shape"], leaf["params"], leaf["buffers"]), (leaf, path)
        matched += 1
    assert not missing, f"torch leaves without a convcalc row: {missing}"
    assert report["totals"]["params"] == torch_model["totals"]["params"]
    assert report["totals"]["buffers"] == torch_model["totals"]["buffers"]
    assert report["output_shape"] == torch_model["output_shape"]
    assert report["input_shape"] == torch_model["input_shape"]
    return matched


def test_fixtures_cover_the_required_models():
    have = {p.stem for p in FIXTURES.glob("*.json")}
    required = {"alexnet", "dcgan_generator", "resnet50", "googlenet", "densenet121",
                "mobilenet_v2"}
    assert required <= have
    assert have <= set(PARAMS)


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
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
@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_live_torch_matches_fixture_and_convcalc(run, name):
    live = _script().describe(name)
    stored = fixture(name)
    for key in ("generated_by",):
        live.pop(key)
        stored.pop(key)
    assert live == stored, "fixture is stale: rerun python3 scripts/make_torch_models.py"
    assert compare_with_torch(live, shapes_json(run, name), name) == len(live["leaves"])


def test_script_defines_a_model_per_fixture():
    """The live test can only run models the script defines (checked without torch)."""
    text = Path(SCRIPT).read_text()
    for path in FIXTURES.glob("*.json"):
        assert f'"{path.stem}": (' in text
