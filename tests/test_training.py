"""Training memory against PyTorch's autograd: committed fixtures, and live when torch is here."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import EXAMPLES, ROOT, report_of
from convcalc.analysis import analyze
from convcalc.errors import SpecError
from convcalc.layers import REGISTRY
from convcalc.spec.parser import parse_text
from convcalc.training import OPTIMIZER_STATES, SAVES, training_memory

FIXTURE = ROOT / "tests" / "fixtures" / "training" / "training.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def spec_text(case: dict) -> str:
    return (ROOT / case["example"]).read_text() if "example" in case else json.dumps(case["spec"])


def network_and_report(case: dict):
    network = parse_text(spec_text(case), f"{case['name']}.yaml")
    return network, analyze(network, batch_size=case["batch_size"], dtype="float32")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_saved_bytes_match_autograd(case):
    network, report = network_and_report(case)
    memory = training_memory(network, report, "adam")
    assert memory.saved_bytes == case["saved_bytes"]
    assert report.totals.params == case["params"]
    assert memory.gradient_bytes == 4 * case["params"]
    assert memory.optimizer_bytes == 4 * case["adam_state"]
    momentum = training_memory(network, report, "sgd-momentum")
    assert momentum.optimizer_bytes == 4 * case["sgd_momentum_state"]


def test_fixtures_cover_every_layer_type():
    used = set()
    for case in CASES:
        network, _ = network_and_report(case)
        used |= {leaf.type.name for leaf in network.leaves()}
    assert set(REGISTRY.names()) - used == set()


def test_every_layer_type_says_what_it_keeps():
    # A layer added without its entry would otherwise be silently counted as keeping nothing.
    assert set(SAVES) == set(REGISTRY.names())


def test_arithmetic_of_a_small_stack():
    report = report_of("input: [3, 8, 8]\nlayers:\n"
                       "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                       "  - relu\n  - conv2d: {out_channels: 2, kernel_size: 1}\n", batch_size=5)
    network = parse_text("input: [3, 8, 8]\nlayers:\n"
                         "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                         "  - relu\n  - conv2d: {out_channels: 2, kernel_size: 1}\n")
    memory = training_memory(network, report, "adam")
    # conv0 keeps the input; relu keeps its output, which conv2 keeps too (counted once).
    assert memory.per_layer == (5 * 3 * 8 * 8 * 4, 5 * 4 * 8 * 8 * 4, 0)
    params = 4 * 3 * 3 * 3 + 4 + 2 * 4 + 2
    assert memory.weight_bytes == memory.gradient_bytes == params * 4
    assert memory.optimizer_bytes == 2 * params * 4
    assert memory.total_bytes == sum(memory.per_layer) + 4 * params * 4


def test_unknown_optimizer_is_refused():
    network = parse_text("input: [3, 8, 8]\nlayers: [relu]\n")
    with pytest.raises(SpecError, match="unknown optimizer 'rmsprop'"):
        training_memory(network, analyze(network), "rmsprop")
    assert OPTIMIZER_STATES["sgd"] == 0


def test_cli_shapes_training_json(run):
    result = run("shapes", str(EXAMPLES / "resnet18.yaml"), "-f", "json", "-b", "2",
                 "--training", "--optimizer", "adam")
    assert result.exit_code == 0, result.stderr
    training = json.loads(result.stdout)["training"]
    case = next(c for c in CASES if c["name"] == "resnet18")
    assert training["saved_bytes"] == case["saved_bytes"]
    assert training["optimizer"] == "adam"
    assert training["total_bytes"] == (case["saved_bytes"] + 4 * (11_689_512 * 4 + training["buffers"]))


@pytest.mark.torch
def test_live_against_torch():
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_training_fixtures import CASES as SPECS
    from make_training_fixtures import measure, sequential

    for name in ("conv_bn_relu", "inplace_activations", "norms_and_dropout"):
        shape, items = SPECS[name]
        expected = measure(sequential(shape, items), shape)
        network, report = network_and_report({"name": name, "spec": {"input": shape, "layers": items},
                                              "batch_size": 2})
        assert training_memory(network, report).saved_bytes == expected["saved_bytes"], name


@pytest.mark.torch
@pytest.mark.parametrize("name", ["se_gate", "broadcast_mul", "crops_and_fanout"])
def test_live_graphs_against_torch(name):
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "scripts"))
    import yaml
    from make_training_fixtures import GRAPH_CASES, graph, measure

    text = GRAPH_CASES[name]
    spec = yaml.safe_load(text)
    expected = measure(graph(text), spec["input"])
    network, report = network_and_report({"name": name, "spec": spec, "batch_size": 2})
    assert training_memory(network, report).saved_bytes == expected["saved_bytes"]


def test_a_product_keeps_its_partial_products():
    # (a * rows) * plane at batch 1: the first product keeps a (already kept by the pool and
    # plane) and rows; the second keeps the partial product a * rows (a new 4x6x6 tensor) and plane.
    spec = ("input: [4, 6, 6]\nlayers:\n"
            "  - conv2d: {out_channels: 4, kernel_size: 1, name: a}\n"
            "  - adaptiveavgpool2d: {output_size: [6, 1], name: rows}\n"
            "  - conv2d: {from: a, out_channels: 1, kernel_size: 1, name: plane}\n"
            "  - mul: {from: [a, rows, plane]}\n")
    network = parse_text(spec)
    memory = training_memory(network, analyze(network))
    conv_a = 4 * 6 * 6 * 4  # the input, kept by conv a
    assert memory.per_layer == (conv_a, 4 * 6 * 6 * 4, 0, (4 * 6 * 1 + 4 * 6 * 6 + 1 * 6 * 6) * 4)


def test_a_crop_is_a_view_unless_it_pads():
    # A conv after a crop keeps the uncropped tensor (the crop's storage); after a crop that
    # pads one axis, the padded tensor (as large as the input on the axis it crops).
    head = "input: [3, 8, 7]\nlayers:\n  - conv2d: {out_channels: 2, kernel_size: 1}\n"
    for size, kept in (("[4, 5]", 2 * 8 * 7), ("[10, 5]", 2 * 10 * 7), ("[10, 9]", 2 * 10 * 9)):
        network = parse_text(head + f"  - centercrop: {{size: {size}}}\n"
                             "  - conv2d: {out_channels: 1, kernel_size: 1}\n")
        memory = training_memory(network, analyze(network))
        assert memory.per_layer[-1] == kept * 4, size


def test_cli_optimizer_choices_match():
    from convcalc.cli.lint import OPTIMIZERS

    assert set(OPTIMIZERS) == set(OPTIMIZER_STATES)


# --- mixed precision (autocast + GradScaler) ---------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_amp_saved_bytes_match_cpu_autocast(case):
    """torch.autocast('cpu', dtype=torch.bfloat16) on every fixture: what autograd keeps, to the byte."""
    network, report = network_and_report(case)
    memory = training_memory(network, report, "adam", amp="bfloat16")
    assert memory.saved_bytes == case["amp_saved_bytes"]
    # weights, gradients and Adam's state stay float32, whatever --dtype says
    half = analyze(network, batch_size=case["batch_size"], dtype="float16")
    assert training_memory(network, half, "adam", amp="bfloat16") == memory
    assert memory.weight_bytes == 4 * (case["params"] + report.totals.buffers)
    assert memory.gradient_bytes == 4 * case["params"]
    assert memory.optimizer_bytes == 4 * case["adam_state"]
    assert memory.scaler_bytes == 8
    assert memory.total_bytes == (memory.saved_bytes + memory.weight_bytes + memory.gradient_bytes
                                  + memory.optimizer_bytes + 8)


def test_amp_arithmetic_of_a_small_stack():
    # batch 5; the conv casts the float32 input to float16 (a new tensor) and its weight;
    # relu keeps its float16 output, which the 1x1 conv keeps too (once), with its weight cast;
    # the replication pad runs in float32: it keeps a float32 cast of the relu output.
    text = ("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
            "  - relu\n  - conv2d: {out_channels: 2, kernel_size: 1}\n  - replicationpad2d: {padding: 1}\n")
    network = parse_text(text)
    memory = training_memory(network, analyze(network, batch_size=5), amp="float16")
    assert memory.per_layer == (5 * 3 * 8 * 8 * 2 + 4 * 3 * 3 * 3 * 2, 5 * 4 * 8 * 8 * 2, 2 * 4 * 2,
                                5 * 2 * 8 * 8 * 4)


def test_cli_amp_summary(run):
    result = run("shapes", str(EXAMPLES / "lenet.yaml"), "--amp", "--amp-dtype", "bfloat16", "--optimizer", "adam")
    assert result.exit_code == 0, result.stderr
    case = next(c for c in CASES if c["name"] == "lenet")
    network, report = network_and_report({**case, "batch_size": 1})
    memory = training_memory(network, report, "adam", amp="bfloat16")
    assert result.stdout.splitlines()[-4:] == [
        f"Training (batch 1, optimizer adam, mixed precision bfloat16): {memory.total_bytes / 2**20:.2f} MiB at least",
        f"  kept for backward {memory.saved_bytes / 1024:.2f} KiB + weights 241.04 KiB + gradients 241.04 KiB"
        " + optimizer state 482.08 KiB + GradScaler 8 B",
        "  (weights, gradients and optimizer state in float32; activations in bfloat16 where autocast casts"
        " them, with the casts of conv and linear weights)",
        "  (not counted: activation gradients during backward, workspaces, allocator overhead; see docs/check.md)",
    ]
    data = json.loads(run("shapes", str(EXAMPLES / "lenet.yaml"), "--training", "--amp", "-f", "json").stdout)
    assert data["training"]["amp"] == "float16" and data["training"]["scaler_bytes"] == 8
    assert data["training"]["saved_bytes"] == memory.saved_bytes  # float16 and bfloat16 agree
    plain = json.loads(run("shapes", str(EXAMPLES / "lenet.yaml"), "--training", "-f", "json").stdout)
    assert plain["training"]["amp"] is None and plain["training"]["scaler_bytes"] == 0


@pytest.mark.torch
@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
def test_amp_live_against_torch(amp):
    """CPU autocast in both low precisions, on fixture stacks and on a merge of float32 and low precision."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_training_fixtures import CASES as SPECS
    from make_training_fixtures import saved_bytes, sequential

    for name in ("conv_bn_relu", "norms_and_dropout", "padding_layers", "three_d"):
        shape, items = SPECS[name]
        expected, _ = saved_bytes(sequential(shape, items), shape, amp)
        network, report = network_and_report({"name": name, "spec": {"input": shape, "layers": items},
                                              "batch_size": 2})
        assert training_memory(network, report, amp=amp).saved_bytes == expected, name

    class Mixed(torch.nn.Module):
        """conv (low precision) -> residual: body conv + replication pad (float32) + shortcut -> relu -> conv."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.body = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), torch.nn.ReplicationPad2d(1))
            self.head = torch.nn.Conv2d(4, 2, 1)

        def forward(self, x):
            x = self.stem(x)
            return self.head(torch.relu(self.body(x) + x))

    expected, _ = saved_bytes(Mixed(), [3, 8, 8], amp)
    text = ("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
            "  - residual:\n      body: [conv2d: {out_channels: 4, kernel_size: 3}, replicationpad2d: {padding: 1}]\n"
            "      after: [relu]\n  - conv2d: {out_channels: 2, kernel_size: 1}\n")
    network = parse_text(text)
    assert training_memory(network, analyze(network, batch_size=2), amp=amp).saved_bytes == expected
