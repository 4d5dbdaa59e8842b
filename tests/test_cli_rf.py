"""`convcalc rf` and `convcalc erf` through the real CLI, and the PNG writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convcalc.render.field import COLOURS, colour

STRIDED = ("input: [1, 16]\nlayers:\n"
           "  - conv1d: {name: a, out_channels: 2, kernel_size: 3, stride: 2, padding: 1}\n"
           "  - conv1d: {name: b, out_channels: 2, kernel_size: 3, stride: 2, padding: 1}\n")


def spec(tmp_path, text: str, name: str = "net.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_rf_json_arithmetic(run, tmp_path):
    result = run("rf", spec(tmp_path, STRIDED), "--at", "b", "--position", "0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    (axis,) = data["axes"]
    assert axis["size"] == 1 + (3 - 1) * 1 + (3 - 1) * 2
    assert axis["jump"] == 2 * 2
    assert axis["start"] == 0 + ((3 - 1) / 2 - 1) * 1 + ((3 - 1) / 2 - 1) * 2
    # output 0 of b reads a's -1..1, which read input -3..3: padding included, then clipped
    assert axis["field"] == [-1 * 2 - 1, 1 * 2 + 1]
    assert axis["reads"] == [0, 3] and axis["pixels_read"] == 4 and axis["clipped"] is True
    assert data["coverage"] == pytest.approx(4 / 16)


def test_rf_centre_is_the_default_and_unclipped(run, tmp_path):
    data = json.loads(run("rf", spec(tmp_path, STRIDED), "-f", "json").stdout)
    assert data["path"] == "b" and data["position"] == [(4 - 1) // 2]
    (axis,) = data["axes"]
    assert axis["field"] == [1 * 4 - 3, 1 * 4 + 3] == axis["reads"] and axis["clipped"] is False


@pytest.mark.parametrize("k, s, d, taps, unreached", [
    (3, 2, 1, [3 // 2, -(-3 // 2)], 0),  # floor(k_eff/s) .. ceil(k_eff/s)
    (3, 2, 2, [0, 3], 1),  # stride 2, dilation 2: odd outputs are written by nobody
    (4, 2, 1, [2, 2], 0),
])
def test_rf_transposed_inputs_per_output(run, tmp_path, k, s, d, taps, unreached):
    text = ("input: [1, 10]\nlayers:\n"
            f"  - convtranspose1d: {{out_channels: 1, kernel_size: {k}, stride: {s}, dilation: {d}}}\n")
    data = json.loads(run("rf", spec(tmp_path, text), "-f", "json").stdout)
    (axis,) = data["axes"]
    assert axis["layer_inputs_per_output"] == taps
    assert axis["unreached_phases"] == unreached
    assert axis["jump"] == 1 / s


def test_rf_table_names_what_it_shows(run, tmp_path):
    result = run("rf", spec(tmp_path, STRIDED), "--position", "0")
    assert result.exit_code == 0
    out = result.stdout
    assert "field size (max)" in out and "reads from input" in out
    assert "Position 0 reads 4 input pixels per channel; its box covers 25.0% of the input." in out


def test_rf_flags_misaligned_branches(run, tmp_path):
    text = ("input: [1, 20]\nlayers:\n  - parallel:\n      merge: add\n      branches:\n"
            "        - [{conv1d: {out_channels: 1, kernel_size: 3, padding: 1}}]\n"
            "        - [{conv1d: {out_channels: 1, kernel_size: 3}}, {zeropad1d: {padding: [2, 0]}}]\n")
    # centres of output 0's field: 0 for the first branch, (3-1)/2 - 2 = -1 for the second
    data = json.loads(run("rf", spec(tmp_path, text), "-f", "json").stdout)
    assert [w["code"] for w in data["warnings"]] == ["misaligned-branches"]


@pytest.mark.parametrize("args, message", [
    (("--at", "c"), "no layer is named 'c'"),
    (("--at", "b", "--position", "4"), "position 4 is outside the output 4 of b"),
    (("--position", "1,2"), "position 1,2 is outside the output 4"),
    (("--position", "x1"), "--position must be integers"),
])
def test_rf_bad_requests_exit_2(run, tmp_path, args, message):
    result = run("rf", spec(tmp_path, STRIDED), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_rf_after_flatten_is_refused(run, tmp_path):
    text = "input: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: {name: fc, out_features: 3}\n"
    result = run("rf", spec(tmp_path, text), "--at", "fc")
    assert result.exit_code == 2 and "fc (linear)" in result.stderr


ERF_NET = ("input: [2, 20, 20]\nlayers:\n"
           "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n"
           "  - batchnorm2d\n  - relu\n"
           "  - maxpool2d: {kernel_size: 2}\n"
           "  - conv2d: {out_channels: 4, kernel_size: 3}\n")


def test_erf_outputs_and_support(run, tmp_path):
    net = spec(tmp_path, ERF_NET)
    png, npy, csv = tmp_path / "e.png", tmp_path / "e.npy", tmp_path / "e.csv"
    result = run("erf", net, "--samples", "4", "--png", str(png), "--npy", str(npy), "--csv", str(csv),
                 "-f", "json", "--dtype", "float64")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    heat = np.load(npy)
    assert heat.shape == (20, 20)
    np.testing.assert_allclose(np.loadtxt(csv, delimiter=","), heat, rtol=1e-5)
    # 20 -> conv (pad 1) 20 -> pool 10 -> conv 8: the centre output 3 reads pooled 3..5,
    # i.e. conv outputs 6..11, i.e. inputs 5..12: the gradient lives there, nowhere else
    assert data["position"] == [(8 - 1) // 2] * 2
    inside = np.zeros_like(heat, dtype=bool)
    inside[5:13, 5:13] = True
    assert heat[~inside].max() == 0 and heat[inside].max() > 0
    assert data["theoretical_size"] == [1 + 2 + 1 * 1 + 2 * 2] * 2
    assert 0 < data["radius_50"] <= data["radius_95"] <= np.hypot(4.5, 4.5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_erf_table_reports_radii(run, tmp_path):
    result = run("erf", spec(tmp_path, ERF_NET), "--samples", "2", "--width", "10")
    assert result.exit_code == 0
    assert "50% of the gradient mass lies within radius" in result.stdout
    assert "the theoretical field is 8x8 px" in result.stdout


def test_mass_radius_arithmetic():
    from convcalc.numeric.backward import mass_radius

    heat = np.zeros((9, 9))
    heat[4, 4] = 1.0
    heat[4, 7] = 1.0  # distance 3 from the centre
    assert mass_radius(heat, (4, 4), 0.5) == 0
    assert mass_radius(heat, (4, 4), 0.95) == 3
    heat[0, 0] = 2.0  # distance sqrt(32): needed once more than half is asked
    assert mass_radius(heat, (4, 4), 0.95) == pytest.approx(32 ** 0.5)


def test_terminal_colours_follow_the_ramp():
    assert colour(0.0) == COLOURS[0][1] and colour(1.0) == COLOURS[-1][1]
    assert colour(-1.0) == COLOURS[0][1] and colour(2.0) == COLOURS[-1][1]
    assert colour(0.5) == COLOURS[2][1]


@pytest.mark.torch
def test_erf_matches_torch_autograd_live():
    torch = pytest.importorskip("torch")
    from convcalc.analysis import analyze
    from convcalc.fieldwalk import centre, find
    from convcalc.numeric.backward import effective_field
    from convcalc.numeric.runner import input_array, trace
    from convcalc.spec.parser import parse_text

    network = parse_text(ERF_NET, "erf.yaml")
    graph = analyze(network).rows
    target = find(graph, None)
    position = centre(graph[target].spatial_shape)
    ours = effective_field(graph, network, target, position, (9.5, 9.5), samples=3, dtype="float64")
    x = input_array(network.input_shape, 3, 0, "float64")
    params = [s.params for s in trace(network, x, save=False)]
    nn = torch.nn
    layers = [nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3)]
    for layer, p in zip(layers, params):
        layer.load_state_dict({k: torch.from_numpy(v) for k, v in p.items()}, strict=False)
    model = nn.Sequential(*layers).double().eval()
    xt = torch.from_numpy(x).requires_grad_(True)
    model(xt)[:, :, position[0], position[1]].sum().backward()
    np.testing.assert_allclose(ours.heat, xt.grad.abs().sum(1).mean(0).numpy(), rtol=1e-10, atol=1e-12)
