"""convcalc against PyTorch: 12,000 random layers and 600 random stacks, zero disagreements.

The committed fixtures (tests/fixtures/differential/, made by
scripts/make_differential_fixtures.py with torch==2.13.0) hold what torch measured: output
shapes, parameter and buffer counts, MACs from the measured shapes, or torch's refusal.
They are checked here without torch; where torch is installed the same comparison also
runs live on fresh random draws.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from convcalc.analysis import analyze
from convcalc.errors import SpecError
from convcalc.spec.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "differential"


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_differential_fixtures", ROOT / "scripts" / "make_differential_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> list[dict[str, Any]]:
    with gzip.open(FIXTURES / name, "rt") as f:
        return [json.loads(line) for line in f]


def convcalc(spec: dict[str, Any]) -> dict[str, Any]:
    """convcalc's answer in the oracle's terms, or {"error": message} for a SpecError."""
    try:
        report = analyze(parse_text(json.dumps(spec), "case.json"))
    except SpecError as err:
        return {"error": str(err)}
    rows = {r.path: {"output": list(r.output_shape), "params": r.params, "buffers": r.buffers,
                     "macs": r.macs} for r in report.rows}
    t = report.totals
    return {"output": list(report.output_shape), "params": t.params, "buffers": t.buffers,
            "macs": t.macs, "rows": rows}


def disagreement(spec: dict[str, Any], torch: dict[str, Any], rows: bool) -> str | None:
    """None when convcalc agrees with torch; else what differs."""
    ours = convcalc(spec)
    if "error" in torch or "error" in ours:
        if ("error" in torch) != ("error" in ours):
            return f"torch: {torch.get('error', 'ok')}; convcalc: {ours.get('error', 'ok')}"
        return None
    keys = ("output", "params", "buffers", "macs")
    diff = {k: (torch[k], ours[k]) for k in keys if torch[k] != ours[k]}
    if rows:
        if set(torch["rows"]) != set(ours["rows"]):
            diff["paths"] = (sorted(torch["rows"]), sorted(ours["rows"]))
        for path in set(torch["rows"]) & set(ours["rows"]):
            for k in keys:
                if torch["rows"][path][k] != ours["rows"][path][k]:
                    diff[f"{path}.{k}"] = (torch["rows"][path][k], ours["rows"][path][k])
    return f"(torch, convcalc) differ: {diff}" if diff else None


def report(failures: list[str], total: int) -> str:
    return f"{len(failures)} of {total} disagree:\n" + "\n".join(failures[:20])


def check_singles(cases: list[dict[str, Any]], script) -> list[str]:
    failures = []
    for case in cases:
        problem = disagreement(script.single_spec(case), case["torch"], rows=False)
        if problem:
            failures.append(f"{case['layer']} {case['args']} on {case['input']}: {problem}")
    return failures


def check_stacks(cases: list[dict[str, Any]]) -> list[str]:
    failures = []
    for case in cases:
        problem = disagreement(case["spec"], case["torch"], rows=True)
        if problem:
            failures.append(f"{json.dumps(case['spec'])}: {problem}")
    return failures


@pytest.fixture(scope="module")
def script():
    return load_script()


def test_fixtures_cover_every_variant():
    singles, stacks = load("single.jsonl.gz"), load("stacks.jsonl.gz")
    families = ("conv", "convtranspose", "maxpool", "avgpool", "adaptiveavgpool", "adaptivemaxpool")
    windowed = [c for c in singles if c["layer"][:-2] in families]
    assert len(windowed) >= 10_000  # conv, transposed conv and pooling: the 10,000
    assert len(stacks) >= 500
    kinds = Counter(c["layer"] for c in singles)
    for family in families:
        for rank in (1, 2, 3):
            assert kinds[f"{family}{rank}d"] >= 30, (family, rank)
    for other in ("batchnorm2d", "instancenorm3d", "groupnorm", "layernorm", "linear", "flatten",
                  "upsample", "pixelshuffle", "pixelunshuffle", "reflectionpad1d", "prelu", "softmax"):
        assert kinds[other] >= 5, other
    args = [c["args"] for c in singles if "error" not in c["torch"]]
    # the variants the issue names, each present among cases torch accepted
    assert sum(a.get("padding") == "same" for a in args) >= 100
    assert sum(a.get("padding") == "valid" for a in args) >= 100
    assert sum(a.get("ceil_mode") is True for a in args) >= 100
    assert sum(a.get("output_padding", 0) != 0 for a in args) >= 100
    assert sum(isinstance(a.get("kernel_size"), list) and len(set(a["kernel_size"])) > 1 for a in args) >= 100
    assert sum(a.get("groups", 1) > 1 for a in args) >= 100
    assert sum(a.get("dilation", 1) != 1 for a in args) >= 100
    # both outcomes are exercised: torch refuses some of each kind, accepts most
    refused = sum("error" in c["torch"] for c in singles)
    assert 0.05 * len(singles) < refused < 0.4 * len(singles)
    accepted_stacks = [c for c in stacks if "error" not in c["torch"]]
    assert len(accepted_stacks) >= 400
    assert sum(any(p.endswith(".add") for p in c["torch"]["rows"]) for c in accepted_stacks) >= 50
    assert sum(any(p.endswith(".concat") for p in c["torch"]["rows"]) for c in accepted_stacks) >= 50


def test_single_layers_agree_with_committed_torch_fixtures(script):
    cases = load("single.jsonl.gz")
    failures = check_singles(cases, script)
    assert not failures, report(failures, len(cases))


def test_stacks_agree_with_committed_torch_fixtures():
    cases = load("stacks.jsonl.gz")
    failures = check_stacks(cases)
    assert not failures, report(failures, len(cases))


def test_disagreement_is_detected(script):
    """The comparison can fail: a wrong count or a missed refusal is reported."""
    case = {"layer": "conv2d", "args": {"out_channels": 4, "kernel_size": 3}, "input": [2, 5, 5]}
    right = {"output": [4, 3, 3], "params": 4 * 2 * 3 * 3 + 4, "buffers": 0,
             "macs": 3 * 3 * 4 * 2 * 3 * 3}
    spec = script.single_spec(case)
    assert disagreement(spec, right, rows=False) is None
    assert "params" in disagreement(spec, {**right, "params": right["params"] + 1}, rows=False)
    assert "torch: too small" in disagreement(spec, {"error": "too small"}, rows=False)


@pytest.mark.torch
def test_live_against_torch_on_fresh_draws(script):
    pytest.importorskip("torch")
    seed = random.SystemRandom().randrange(2**32)
    singles, stacks = script.generate(seed, 400, 40)
    failures = check_singles(singles, script) + check_stacks(stacks)
    assert not failures, f"seed {seed}: " + report(failures, len(singles) + len(stacks))


# Disagreements the differential found, pinned with torch's answers worked out by hand.
REGRESSIONS = [
    # ceil_mode keeps a window that starts inside the input even when it is longer than the
    # padded input: H = ceil((3 - 4) / 4) + 1 = 1, W = ceil((6 - 4) / 4) + 1 = 2
    ({"layer": "maxpool2d", "args": {"kernel_size": 4, "ceil_mode": True}, "input": [1, 3, 6]},
     {"output": [1, 1, 2], "params": 0, "buffers": 0, "macs": 0}),
    ({"layer": "avgpool1d", "args": {"kernel_size": 3, "stride": 2, "ceil_mode": True},
      "input": [2, 2]}, {"output": [2, -(-(2 - 3) // 2) + 1], "params": 0, "buffers": 0, "macs": 0}),
    ({"layer": "avgpool1d", "args": {"kernel_size": 3, "stride": 1, "ceil_mode": True},
      "input": [2, 2]}, {"error": "Output size is too small"}),
    # avg_pool3d (3D only) checks the unpadded input against the kernel: W 3 < 5
    ({"layer": "avgpool3d", "args": {"kernel_size": [2, 2, 5], "padding": 1}, "input": [1, 8, 9, 3]},
     {"error": "input image (T: 8 H: 9 W: 3) smaller than kernel size (kT: 2 kH: 2 kW: 5)"}),
    ({"layer": "avgpool2d", "args": {"kernel_size": 5, "padding": 2}, "input": [1, 3, 3]},
     {"output": [1, (3 + 4 - 5) // 5 + 1, (3 + 4 - 5) // 5 + 1], "params": 0, "buffers": 0, "macs": 0}),
    # reflect padding must be smaller than the input, circular at most the input
    ({"layer": "conv1d", "args": {"out_channels": 1, "kernel_size": 7, "padding": 3,
                                  "padding_mode": "reflect"}, "input": [1, 3]},
     {"error": "Padding size should be less than the corresponding input dimension"}),
    ({"layer": "conv1d", "args": {"out_channels": 1, "kernel_size": 7, "padding": 3,
                                  "padding_mode": "circular"}, "input": [1, 3]},
     {"output": [1, 3 + 6 - 7 + 1], "params": 1 * 1 * 7 + 1, "buffers": 0, "macs": 3 * 1 * 1 * 7}),
    ({"layer": "conv1d", "args": {"out_channels": 1, "kernel_size": 9, "padding": 4,
                                  "padding_mode": "circular"}, "input": [1, 3]},
     {"error": "Padding value causes wrapping around more than once."}),
    # the circular padding layers wrap around at most once (found in a 60,000-layer run)
    ({"layer": "circularpad2d", "args": {"padding": [2, 3, 1, 2]}, "input": [1, 4, 1]},
     {"error": "Padding value causes wrapping around more than once."}),
    ({"layer": "circularpad1d", "args": {"padding": [3, 1]}, "input": [1, 3]},
     {"output": [1, 3 + 3 + 1], "params": 0, "buffers": 0, "macs": 0}),
    # 1D adaptive pools take no null size; AvgPool1d has no divisor_override
    ({"layer": "adaptiveavgpool1d", "args": {"output_size": [None]}, "input": [1, 8]},
     {"error": "argument 'output_size' must be tuple of ints, but found element of type NoneType"}),
    ({"layer": "avgpool1d", "args": {"kernel_size": 2, "divisor_override": 2}, "input": [1, 8]},
     {"error": "__init__() got an unexpected keyword argument 'divisor_override'"}),
]


@pytest.mark.parametrize(("case", "torch"), REGRESSIONS)
def test_regressions_found_by_the_differential(case, torch, script):
    assert disagreement(script.single_spec(case), torch, rows=False) is None


def test_empty_pool_output_names_the_smallest_input_with_ceil_mode():
    # kernel 5, stride 2, ceil_mode: one window needs n - 5 > -2, so n >= 4
    ours = convcalc({"input": [1, 2], "layers": [{"maxpool1d": {"kernel_size": 5, "stride": 2,
                                                                 "ceil_mode": True}}]})
    assert ours["error"].endswith("the smallest input that works is 4")
    assert "error" not in convcalc({"input": [1, 4], "layers": [{"maxpool1d": {
        "kernel_size": 5, "stride": 2, "ceil_mode": True}}]})
