"""The inference peak (CONVENTIONS.md, "Memory") against the arrays the NumPy pass really holds.

`Totals.peak_activation_bytes` is computed from the graph's liveness (`Graph.last_use`): at each
step the values still to be read and the step's output are live, a merge's inputs with its
output, and a value is freed after its last reader, the network input too. `--verify`'s NumPy
runner frees its arrays by the same rule; `runner.LiveBytes` counts the bytes it holds as it
makes and frees them. Here the two agree to the byte on every example, and the arithmetic is
written out for small branched networks.
"""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES, report_of
from convcalc.analysis import analyze
from convcalc.numeric.runner import verify
from convcalc.spec.parser import parse_text

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_peak_is_what_the_numpy_pass_holds(path):
    network = parse_text(path.read_text(), path.name)
    report = analyze(network, batch_size=2)
    verification = verify(network, report, seed=0)
    assert verification.ok
    assert report.totals.peak_activation_bytes == verification.live_peak_bytes
    assert report.totals.peak_activation_bytes < report.totals.activation_bytes


def test_chain_peak_is_two_neighbours():
    # input 3x8x8 (192), conv -> 4x8x8 (256), relu (256), conv -> 2x8x8 (128); 4 bytes each:
    # step 0 holds input + conv0, step 1 conv0 + relu, step 2 relu + conv2.
    report = report_of("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                       "  - relu\n  - conv2d: {out_channels: 2, kernel_size: 1}\n")
    assert report.totals.peak_activation_bytes == max(192 + 256, 256 + 256, 256 + 128) * 4
    assert report.totals.peak_activation_at == "1"


def test_fork_input_lives_until_its_last_branch_and_concat_holds_every_input():
    # input 2x4x4 (32 elements) feeds three branches, each a 1x1 conv to 2 channels (32), then
    # concat (96). At the concat: the three branch outputs and the concat output are live (the
    # input was freed after the last branch read it): 3*32 + 96 = 192 > 32 + 3*32 = 128.
    report = report_of("input: [2, 4, 4]\nlayers:\n  - parallel:\n      branches:\n"
                       + "".join("        - [conv2d: {out_channels: 2, kernel_size: 1}]\n" for _ in range(3)),
                       batch_size=3, dtype="float16")
    assert report.totals.peak_activation_bytes == (3 * 32 + 96) * 3 * 2
    assert report.totals.peak_activation_at == "0.concat"


def test_residual_input_lives_across_the_body():
    # input 4x8x8 (256) is read by the add: it is live through the body's two convs.
    report = report_of("input: [4, 8, 8]\nlayers:\n  - residual:\n      - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                       "      - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n")
    # step 1 (second conv): input + conv0 + conv1 = 3 * 256; step 2 (add): input + conv1 + add = 3 * 256
    assert report.totals.peak_activation_bytes == 3 * 256 * 4


def test_peak_in_json_table_and_budget(run, tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("input: [3, 8, 8]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
                    "  - relu\n  - conv2d: {out_channels: 2, kernel_size: 1}\n")
    data = json.loads(run("shapes", str(spec), "--format", "json").stdout)
    assert data["totals"]["peak_activation_bytes"] == 2048
    table = run("shapes", str(spec)).stdout
    assert "Activations 2.50 KiB (every layer's output, batch 1)   Inference peak 2.00 KiB (live tensors, at 1)" in table
    over = run("check", str(spec), "--max-peak-bytes", "2000")
    assert over.exit_code == 1
    assert over.stdout.splitlines() == [f"FAIL {spec} (1 check failed)",
                                        "  failed: peak bytes 2,048 > limit 2,000 (--max-peak-bytes)"]
    assert run("check", str(spec), "--max-peak-bytes", "2KiB").stdout == f"PASS {spec} (1 check holds)\n"
    spec.write_text("budget: {max_peak_bytes: 1KiB}\n" + spec.read_text())
    assert run("check", str(spec)).exit_code == 1
    verified = json.loads(run("shapes", str(spec), "--verify", "--format", "json").stdout)
    assert verified["verification"]["live_peak_bytes"] == verified["totals"]["peak_activation_bytes"] == 2048
