"""`--verify` through the real CLI: the column, JSON fields, exit statuses, messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from conftest import EXAMPLES
from convcalc.numeric import runner
from convcalc.numeric.base import Kernel, Output

SPEC = """input: [3, 20, 20]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, stride: 2}
  - relu
  - maxpool2d: {kernel_size: 2, ceil_mode: true}
"""


def write(tmp_path, text=SPEC):
    path = tmp_path / "net.yaml"
    path.write_text(text)
    return str(path)


def test_table_gains_a_verified_column(run, tmp_path):
    result = run("shapes", write(tmp_path), "--verify")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("Layer"))
    assert lines[top].split()[-1] == "Verified"
    rows = lines[top + 1 : top + 4]
    assert [row.split()[0] for row in rows] == ["0", "1", "2"]
    assert all(row.split()[-1] == "ok" for row in rows)
    assert "confirmed all 3 output shapes" in result.stdout


def test_json_reports_verification_per_layer_and_overall(run, tmp_path):
    result = run("shapes", write(tmp_path), "--verify", "-f", "json", "--seed", "4", "-b", "2")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verified"] is True
    assert data["verification"]["seed"] == 4 and data["verification"]["batch_size"] == 2
    assert data["verification"]["dtype"] == "float32" and data["verification"]["failure"] is None
    conv_out = (20 - 3) // 2 + 1
    pool_out = -(-(conv_out - 2) // 2) + 1  # ceil_mode
    assert [layer["actual_shape"] for layer in data["layers"]] == [
        [4, conv_out, conv_out], [4, conv_out, conv_out], [4, pool_out, pool_out]]
    assert [layer["verified"] for layer in data["layers"]] == [True, True, True]


def test_json_without_verify_is_unchanged(run, tmp_path):
    data = json.loads(run("shapes", write(tmp_path), "-f", "json").stdout)
    assert "verified" not in data and "verified" not in data["layers"][0]


def test_dtype_float64_verifies_in_float64_and_others_in_float32(run, tmp_path):
    spec = write(tmp_path)
    assert json.loads(run("shapes", spec, "--verify", "-f", "json", "--dtype", "float64").stdout)[
        "verification"]["dtype"] == "float64"
    assert json.loads(run("shapes", spec, "--verify", "-f", "json", "--dtype", "float16").stdout)[
        "verification"]["dtype"] == "float32"


def test_disagreement_names_the_layer_and_both_shapes_and_exits_1(run, tmp_path, monkeypatch):
    def off_by_one(lt, args, x, params, save=False):
        return Output(np.zeros((x.shape[0], x.shape[1], x.shape[2] + 1, x.shape[3]), dtype=x.dtype))

    import numpy as np

    monkeypatch.setitem(runner.KERNELS, "relu", Kernel(off_by_one))
    spec = write(tmp_path)
    result = run("shapes", spec, "--verify")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"error: {spec}:4:5: 1 (relu): verification failed: computed output 4x9x9 but the forward pass gave 4x10x9")
    assert "MISMATCH 4x10x9" in result.stdout
    data = json.loads(run("shapes", spec, "--verify", "-f", "json").stdout)
    assert data["verified"] is False
    assert [layer["verified"] for layer in data["layers"]] == [True, False, None]
    assert data["verification"]["failure"] == {"path": "1", "type": "relu", "expected": [4, 9, 9],
                                               "actual": [4, 10, 9], "error": None}


def test_memory_limit_is_exit_2_with_a_message(run, tmp_path):
    result = run("shapes", write(tmp_path), "--verify", "--max-memory", "1KiB")
    assert result.exit_code == 2
    assert "more than --max-memory 1.0 KiB" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_bad_max_memory_is_a_usage_error(run, tmp_path):
    result = run("shapes", write(tmp_path), "--verify", "--max-memory", "lots")
    assert result.exit_code == 2
    assert "'lots' is not a size" in result.stderr


def test_layer_command_verifies_too(run):
    result = run("layer", "convtranspose2d", "--input", "8x5x5", "--out-channels", "3", "--kernel-size", "3",
                 "--stride", "2", "--output-padding", "1", "--verify", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verified"] is True
    assert data["layers"][0]["actual_shape"] == [3, (5 - 1) * 2 + 3 + 1, (5 - 1) * 2 + 3 + 1]


def test_csv_gets_the_summary_on_stderr(run, tmp_path):
    result = run("shapes", write(tmp_path), "--verify", "-f", "csv")
    assert result.exit_code == 0
    assert "Verified: NumPy forward pass" in result.stderr


def test_numpy_is_not_imported_without_verify():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom convcalc.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['shapes', {str(EXAMPLES / 'resnet18.yaml')!r}])\n"
        "assert r.exit_code == 0, r.output\nprint('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch):
    from convcalc.analysis import analyze
    from convcalc.cli.verify import verify_report
    from convcalc.spec.parser import parse_text

    network = parse_text(SPEC, "net.yaml")
    report = analyze(network)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert verify_report(network, report, seed=0, max_memory=1 << 30).ok
    assert "verifying" in terminal.getvalue() and "3/3" in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert verify_report(network, report, seed=0, max_memory=1 << 30).ok
    assert piped.getvalue() == ""
