"""The network runner: shape checks, failures, determinism and the memory limit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import EXAMPLES, report_of
from convcalc.analysis import analyze
from convcalc.errors import LimitError
from convcalc.numeric import runner
from convcalc.numeric.base import Kernel, Output
from convcalc.numeric.runner import estimate_memory, input_array, run, trace, verify
from convcalc.spec.parser import parse_text

SMALL = """
input: [3, 16, 16]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - relu
  - residual:
      body: [{conv2d: {out_channels: 8, kernel_size: 3, padding: 1}}, {batchnorm2d: {}}]
  - maxpool2d: {kernel_size: 2}
  - flatten
  - linear: {out_features: 5}
"""


def small():
    network = parse_text(SMALL, "spec.yaml")
    return network, analyze(network)


def test_resnet18_verifies():
    network = parse_text((EXAMPLES / "resnet18.yaml").read_text(), "resnet18.yaml")
    report = analyze(network)
    result = verify(network, report, seed=3)
    assert result.ok and result.failure is None
    assert [c.path for c in result.checks] == [r.path for r in report.rows]
    assert all(c.actual == c.expected for c in result.checks)
    assert result.checks[-1].actual == (1000,)


def test_a_wrong_computed_shape_is_named_and_stops_the_run():
    network, report = small()
    rows = list(report.rows)
    rows[2] = dataclasses.replace(rows[2], output_shape=(8, 9, 9))  # the residual's conv
    result = verify(network, dataclasses.replace(report, rows=tuple(rows)))
    assert not result.ok
    assert result.failure.path == rows[2].path
    assert result.failure.expected == (8, 9, 9) and result.failure.actual == (8, 8, 8)
    assert [c.status for c in result.checks] == ["ok", "ok", "mismatch"] + ["not-run"] * (len(rows) - 3)


def test_a_failing_kernel_is_a_failed_check_not_a_traceback(monkeypatch):
    def broken(lt, args, x, params, save=False):
        raise ValueError("operands could not be broadcast")

    monkeypatch.setitem(runner.KERNELS, "relu", Kernel(broken))
    network, report = small()
    result = verify(network, report)
    assert result.failure.path == "1" and result.failure.status == "error"
    assert "ValueError: operands could not be broadcast" in result.failure.error


def test_weights_and_input_are_seeded():
    network, report = small()
    x = input_array(network.input_shape, 2, seed=5)
    assert np.array_equal(x, input_array(network.input_shape, 2, seed=5))
    a = run(network, x, lambda s: None, seed=1)
    b = run(network, x, lambda s: None, seed=1)
    c = run(network, x, lambda s: None, seed=2)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_float64_runs_in_float64_and_agrees_with_float32():
    network, report = small()
    x64 = input_array(network.input_shape, 1, seed=0, dtype="float64")
    y64 = run(network, x64, lambda s: None)
    y32 = run(network, x64.astype(np.float32), lambda s: None)
    assert y64.dtype == np.float64 and y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)


def test_trace_keeps_what_backward_needs():
    network, _ = small()
    steps = trace(network, input_array(network.input_shape, 1, 0))
    pool = next(s for s in steps if s.type == "maxpool2d")
    x = pool.inputs[0]
    # the saved indices point at each window's maximum in the input plane
    picked = np.take_along_axis(x.reshape(*x.shape[:2], -1), pool.output.saved["indices"].reshape(*x.shape[:2], -1), 2)
    assert np.array_equal(picked.reshape(pool.output.y.shape), pool.output.y)
    conv = steps[0]
    assert conv.params["weight"].shape == (8, 3, 3, 3)


def test_memory_limit_refuses_before_allocating(monkeypatch):
    network, report = small()

    def no_run(*args, **kwargs):
        raise AssertionError("ran despite the limit")

    monkeypatch.setattr(runner, "run", no_run)
    estimate, _ = estimate_memory(network, report)
    with pytest.raises(LimitError, match="--max-memory"):
        verify(network, report, max_memory=estimate - 1)


def test_memory_estimate_grows_with_the_batch_and_covers_the_largest_activations():
    text = "input: [3, 64, 64]\nlayers:\n  - conv2d: {out_channels: 16, kernel_size: 3, padding: 1}\n"
    one, _ = estimate_memory(parse_text(text, "a.yaml"), report_of(text))
    eight, _ = estimate_memory(parse_text(text, "a.yaml"), report_of(text, batch_size=8))
    assert one >= (3 * 64 * 64 + 16 * 64 * 64) * 4  # input and output, float32
    assert eight > 7 * (one - (16 * 3 * 3 * 3 + 16) * 4)


def test_out_of_memory_becomes_a_limit_error(monkeypatch):
    def huge(lt, args, x, params, save=False):
        raise MemoryError

    monkeypatch.setitem(runner.KERNELS, "linear", Kernel(huge, runner.KERNELS["linear"].params))
    network, report = small()
    with pytest.raises(LimitError, match="ran out of memory"):
        verify(network, report)


def test_nonfinite_outputs_are_noted(monkeypatch):
    def inf(lt, args, x, params, save=False):
        return Output(np.full(x.shape, np.inf, dtype=x.dtype))

    monkeypatch.setitem(runner.KERNELS, "relu", Kernel(inf))
    network, report = small()
    result = verify(network, report)
    assert result.ok and result.nonfinite[0] == "1"


# --- several outputs ----------------------------------------------------------------------

TWO_OUTPUTS = """
input: [1, 8, 8]
outputs: [big, big2]
layers:
  - relu: {name: a}
  - upsample: {scale_factor: 4, name: big}
  - relu: {from: a, name: r1}
  - upsample: {scale_factor: 4, name: big2}
"""


def test_run_outputs_gives_every_output_in_order():
    network = parse_text(TWO_OUTPUTS, "two.yaml")
    x = input_array(network.input_shape, 2, seed=0)
    big, big2 = runner.run_outputs(network, x, lambda step: None)
    expected = np.maximum(x, 0).repeat(4, axis=2).repeat(4, axis=3)
    np.testing.assert_array_equal(big, expected)
    np.testing.assert_array_equal(big2, expected)
    np.testing.assert_array_equal(run(network, x, lambda step: None), big)  # run: the first


def test_memory_estimate_keeps_every_output_to_the_end():
    # Elements per step (input 64; a, r1 64; big, big2 1,024; an upsample's temporaries are
    # 4 x 1,024 + 1,024): the input dies after a, a after r1, but big, an output, lives on, so
    # the peak is at big2: big + r1 + big2 + temporaries.
    network = parse_text(TWO_OUTPUTS, "two.yaml")
    peak, where = estimate_memory(network, report_of(TWO_OUTPUTS))
    temporaries = 4 * 1024 + 1024
    assert (peak, where) == ((1024 + 64 + 1024 + temporaries) * 4, "big2")
    # big read by nothing and not an output is freed at once: big2's step holds r1 + big2 +
    # temporaries, as big's held a + big (the first such step is reported)
    alone = TWO_OUTPUTS.replace("outputs: [big, big2]", "outputs: [big2]")
    assert estimate_memory(parse_text(alone, "one.yaml"), report_of(alone)) == ((64 + 1024 + temporaries) * 4, "big")


def test_verify_checks_every_output_of_a_graph(run):
    from conftest import ROOT

    result = run("shapes", str(ROOT / "examples" / "yolo_neck.yaml"), "--verify", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verified"] is True
    rows = {r["path"]: r for r in data["layers"]}
    assert [rows[o["path"]]["actual_shape"] for o in data["outputs"]] == [[255, 80, 80], [255, 40, 40], [255, 20, 20]]
