"""`convcalc erf` as people see it: the map cropped to the field, a character ramp without
colour, a bar chart for 1D, and a matplotlib figure whose work follows the field."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from convcalc.analysis import analyze
from convcalc.cli import cli
from convcalc.fieldwalk import explain
from convcalc.numeric.backward import effective_field
from convcalc.render.env import Terminal
from convcalc.render.field import BAR_LINES, RAMP
from convcalc.render.figure import erf_figure, view
from convcalc.spec.parser import parse_text

NET_2D = ("input: [1, 40, 40]\nlayers:\n"
          "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n  - relu\n"
          "  - maxpool2d: {kernel_size: 2}\n"
          "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n")  # field 8x8 of each output
# A 1D audio net on one second at 16 kHz: the field is 1,772 samples of the 16,000.
NET_1D = ("name: audio\ninput: [1, $n]\nvars: {n: 16000}\nlayers:\n"
          "  - conv1d: {out_channels: 8, kernel_size: 80, stride: 4}\n  - relu\n"
          "  - maxpool1d: {kernel_size: 4}\n"
          "  - conv1d: {out_channels: 8, kernel_size: 3}\n  - relu\n  - maxpool1d: {kernel_size: 4}\n"
          "  - conv1d: {out_channels: 8, kernel_size: 3}\n  - relu\n  - maxpool1d: {kernel_size: 4}\n"
          "  - conv1d: {out_channels: 8, kernel_size: 3}\n  - relu\n  - maxpool1d: {kernel_size: 4}\n")


def write(tmp_path, text, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_without_colour_the_map_is_a_character_ramp(run, tmp_path):
    result = run("erf", write(tmp_path, NET_2D), "--samples", "2", "--position", "0,0")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "▀" not in result.stdout and "\x1b[" not in result.stdout
    # output (0, 0) of the 20x20 map reads input rows and columns -3..4: the view is the
    # field plus a margin of 2, inside the input: rows and columns 0..6, two characters each
    assert lines[-2] == ("Input rows 0..6, columns 0..6 of 40x40 (the theoretical field and a margin);"
                         " blank is zero, '.' to '@': up to the peak.")
    body = lines[1:8]
    assert all(len(line) <= 2 * 7 and set(line) <= set(RAMP) for line in body)
    assert "@@" in "".join(body)
    assert body[5:] == ["", ""]  # rows 5 and 6 are outside the field: zero


def test_with_colour_the_map_is_coloured_blocks(tmp_path):
    spec = write(tmp_path, NET_2D)
    out = CliRunner().invoke(cli, ["erf", spec, "--samples", "2"], obj=Terminal(stdout_tty=True, width=80)).stdout
    assert "\x1b[" in out and "██" in out
    assert "dark to bright: up to the peak" in out


def test_a_large_map_is_shrunk_to_the_width_keeping_the_aspect(run, tmp_path):
    spec = write(tmp_path, NET_2D.replace("[1, 40, 40]", "[1, 40, 40]\nvars: {}") + "  - conv2d: {out_channels: 2,"
                 " kernel_size: 31, padding: 15}\n")  # a field of 68: all of the 40x40 input
    lines = run("erf", spec, "--samples", "1", "--width", "10").stdout.splitlines()
    # 40 + 2 x 6 margin... clipped to the input: 40 columns at 4 per character, 8 rows per line
    assert lines[-2].startswith("Input rows 0..39, columns 0..39 of 40x40")
    body = lines[1:-2]
    assert len(body) == 40 // 8 and all(len(line) <= 10 for line in body)


def test_a_1d_field_is_a_bar_chart_over_its_crop(run, tmp_path):
    result = run("erf", write(tmp_path, NET_1D), "--samples", "1", "--width", "60")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    bars, axis, labels = lines[1:1 + BAR_LINES], lines[1 + BAR_LINES], lines[2 + BAR_LINES]
    assert all(set(line) <= set(" ▁▂▃▄▅▆▇█") for line in bars) and "█" in bars[0]
    assert set(axis) <= {"─", "┴"} and axis.count("┴") == 1
    first, last = re.fullmatch(r"Input position (\d+)\.\.(\d+) of 16000 .*", lines[3 + BAR_LINES]).groups()
    assert labels.split()[0] == first and labels.split()[-1] == last
    assert int(last) - int(first) + 1 < 2 * 1772  # the field and a margin, not the 16,000
    assert "the theoretical field is 1772 samples" in result.stdout


def test_the_view_is_the_field_and_a_margin():
    network = parse_text(NET_2D.replace("[1, 40, 40]", "[1, 256, 256]"))
    e = explain(network, None, (0, 0))
    assert [a.theory for a in e.axes] == [(-3, 4), (-3, 4)]
    rows, cols = view(e, (256, 256))
    margin, pad = max(2, -(-8 * 8 // 100)), -(-15 * 256 // 100)
    assert (rows.low, rows.high, rows.first, rows.last) == (max(-3 - margin, -pad), 4 + margin, 0, 4 + margin)
    assert cols == rows


def field_of(text, position=None, samples=1):
    network = parse_text(text)
    e = explain(network, None, position)
    rows = analyze(network).rows
    target = next(i for i, r in enumerate(rows) if r.path == e.path)
    centre = tuple((a.theory[0] + a.theory[1]) / 2 for a in e.axes)
    return e, effective_field(rows, network, target, e.position, centre, samples, 0, "float32")


def test_the_1d_figure_plots_the_view_only():
    e, field = field_of(NET_1D)
    fig = erf_figure(e, field, 1, 0, "float32")
    (axis,) = view(e, field.heat.shape)
    ax = fig.axes[0]
    curve = next(line for line in ax.lines if line.get_label().startswith("mean"))
    assert len(curve.get_xdata()) == axis.last - axis.first + 1 < 2500
    assert ax.get_xlim() == (axis.low - 0.5, axis.high + 0.5)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "theoretical field 1772 samples"
    assert any(t.startswith("50 % of the mass") for t in labels) and any(t.startswith("95 %") for t in labels)


def test_the_2d_figure_has_axes_in_input_pixels_a_colour_bar_the_box_and_the_radii():
    e, field = field_of(NET_2D.replace("[1, 40, 40]", "[1, 256, 256]"), (0, 0))
    fig = erf_figure(e, field, 1, 0, "float32")
    ax, bar = fig.axes
    assert ax.get_xlabel() == "input column (pixels)" and ax.get_ylabel() == "input row (pixels)"
    assert bar.get_ylabel() == "mean |d output / d input|, share of the peak"
    (image,) = ax.get_images()
    assert image.get_array().shape == (4 + 2 + 1, 4 + 2 + 1)  # rows 0..6 of the input: the field's part
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["the input's border (grey: padding)", "theoretical field 8x8 px"]
    assert [p.get_label()[:4] for p in ax.patches][-2:] == ["50 %", "95 %"]


def test_erf_png_writes_a_figure_not_the_input(run, tmp_path):
    png = tmp_path / "audio.png"
    result = run("erf", write(tmp_path, NET_1D), "--samples", "1", "--png", str(png), "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert png_size(png.read_bytes()) == (800, 480)
    assert json.loads(result.stdout)["theoretical_size"] == [1772]


@pytest.mark.parametrize("shape", ["[1, 24, 24]", "[1, 8, 24, 24]"])
def test_png_of_2d_and_3d_maps(run, tmp_path, shape):
    rank = shape.count(",")
    spec = (f"input: {shape}\nlayers:\n  - conv{rank}d: {{out_channels: 2, kernel_size: 3, padding: 1}}\n"
            f"  - maxpool{rank}d: {{kernel_size: 2}}\n")
    png = tmp_path / "map.png"
    assert run("erf", write(tmp_path, spec), "--samples", "1", "--png", str(png)).exit_code == 0
    assert png_size(png.read_bytes()) == (720, 640)


def test_erf_png_is_proportional_to_the_field_not_the_input():
    small, large = (field_of(NET_1D.replace("16000", str(n))) for n in (16000, 160000))
    for e, field in (small, large):
        (axis,) = view(e, field.heat.shape)
        assert axis.last - axis.first + 1 == 1772 + 2 * 142  # the same crop at 10x the input
    assert np.count_nonzero(large[1].heat) <= 1772
