"""`shapes --depth`, `--columns`, the % columns and the table fitted to a terminal's width."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, ROOT, environ
from convcalc.analysis import analyze, outline
from convcalc.cli import cli
from convcalc.load import load_network
from convcalc.render.env import Terminal
from convcalc.render.fit import abbreviate, abbreviate_bytes, wrap

TINY = """\
name: tiny
input: [3, 16, 16]
blocks:
  unit:
    args: {c: ~}
    residual:
      body:
        - conv2d: {name: conv, out_channels: $c, kernel_size: 3, padding: 1}
        - relu
layers:
  - conv2d: {name: stem, out_channels: 8, kernel_size: 3, padding: 1}
  - unit: {name: stage, c: 8, repeat: 2}
  - adaptiveavgpool2d: {name: pool, output_size: 1}
  - flatten: {name: flat}
  - linear: {name: head, out_features: 10}
ignore: [small-head-field]
"""

SUMMARY = """
Trainable params 1,482 (1.48K, 5.79 KiB)   Buffers 0 (running statistics, not trainable)
MACs 350,288 (350.29K; conv + linear only)   FLOPs 700,576 (= 2 x MACs)
Activations 56.10 KiB (every layer's output, batch 1)   Inference peak 24.00 KiB (live tensors, at stage.0.1)
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


def test_depth_1_rows_are_the_top_level_items_with_subtotals(run, tiny):
    result = run("shapes", tiny, "--depth", "1")
    assert result.exit_code == 0, result.stderr
    conv = 8 * 8 * 9 + 8  # each unit's conv
    assert conv == 584
    # a group's activation bytes: its six layers' outputs, each 8x16x16 float32 (8 KiB)
    assert result.stdout == """\
tiny: input 3x16x16, batch 1, float32
Layer  Type               Input    Output   Params  Buffers     MACs  Activations  RF  Jump
stem   conv2d             3x16x16  8x16x16     224        -   55,296     8.00 KiB   3     1
stage  unit x2            8x16x16  8x16x16   1,168        -  294,912    48.00 KiB   7     1
pool   adaptiveavgpool2d  8x16x16  8x1x1         -        -        -         32 B  22    16
flat   flatten            8x1x1    8             -        -        -         32 B   -     -
head   linear             8        10           90        -       80         40 B   -     -
Total                     3x16x16  10        1,482        0  350,288    56.10 KiB
""" + SUMMARY


def test_deeper_rows_indent_under_their_group(run, tiny):
    result = run("shapes", tiny, "--depth", "3", "--columns", "path,type,input,output,params,params%,macs,macs%,rf")
    assert result.exit_code == 0, result.stderr
    # shares: 224 / 1482 = 15.1 %, 584 / 1482 = 39.4 %; 147,456 / 350,288 = 42.1 %
    assert result.stdout == """\
tiny: input 3x16x16, batch 1, float32
Layer     Type               Input              Output   Params  Params%     MACs  MACs%  RF
stem      conv2d             3x16x16            8x16x16     224     15.1   55,296   15.8   3
stage     unit x2            8x16x16            8x16x16   1,168     78.8  294,912   84.2   7
  0       unit               8x16x16            8x16x16     584     39.4  147,456   42.1   5
    conv  conv2d             8x16x16            8x16x16     584     39.4  147,456   42.1   5
    1     relu               8x16x16            8x16x16       -        -        -      -   5
    add   add                8x16x16 + 8x16x16  8x16x16       -        -        -      -   5
  1       unit               8x16x16            8x16x16     584     39.4  147,456   42.1   7
    conv  conv2d             8x16x16            8x16x16     584     39.4  147,456   42.1   7
    1     relu               8x16x16            8x16x16       -        -        -      -   7
    add   add                8x16x16 + 8x16x16  8x16x16       -        -        -      -   7
pool      adaptiveavgpool2d  8x16x16            8x1x1         -        -        -      -  22
flat      flatten            8x1x1              8             -        -        -      -   -
head      linear             8                  10           90      6.1       80   <0.1   -
Total                        3x16x16            10        1,482           350,288
""" + SUMMARY


def test_columns_pick_and_order_the_table(run, tiny):
    result = run("shapes", tiny, "--columns", "path,output,params,macs")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:4] == [
        "Layer         Output   Params     MACs",
        "stem          8x16x16     224   55,296",
        "stage.0.conv  8x16x16     584  147,456",
    ]
    flops = run("shapes", tiny, "--columns", "macs,flops,activations,path")
    assert flops.stdout.splitlines()[2] == f"{55_296:>7,}  {2 * 55_296:>7,}  {'8.00 KiB':>11}  stem"  # 8x16x16x4 B


@pytest.mark.parametrize(("args", "message"), [
    (["--columns", "path,nope"], "Invalid value for '--columns': unknown column 'nope'; choose from path, type,"
     " input, output, params, params%, buffers, macs, macs%, flops, activations, rf, jump, start"),
    (["--columns", "path,path"], "Invalid value for '--columns': a column is named twice in 'path,path'"),
    (["--columns", "path", "-f", "json"], "Invalid value for '--columns': JSON always has every field; --columns"
     " picks the columns of table, csv and markdown output"),
    (["--depth", "-1"], "Invalid value for '-d' / '--depth': -1 is not in the range x>=0."),
])
def test_bad_view_options_are_usage_errors(run, tiny, args, message):
    result = run("shapes", tiny, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_json_gains_groups_only_with_depth(run, tiny):
    plain = json.loads(run("shapes", tiny, "-f", "json").stdout)
    deep = json.loads(run("shapes", tiny, "-f", "json", "--depth", "2").stdout)
    assert "groups" not in plain
    assert deep["layers"] == plain["layers"] and deep["totals"] == plain["totals"]
    assert [(g["path"], g["type"], g["depth"], g["repeat"], g["rows"]) for g in deep["groups"]] == [
        ("stage", "unit", 1, 2, [1, 7]), ("stage.0", "unit", 2, None, [1, 4]), ("stage.1", "unit", 2, None, [4, 7])]
    stage = deep["groups"][0]
    inside = plain["layers"][1:7]
    for key in ("params", "buffers", "macs", "flops", "activation_bytes"):
        assert stage[key] == sum(layer[key] for layer in inside)
    assert stage["input_shape"] == [8, 16, 16] and stage["output_shape"] == inside[-1]["output_shape"]
    assert stage["receptive_field"] == inside[-1]["receptive_field"]


def test_csv_keeps_every_layer_and_gains_group_rows_with_depth(run, tiny):
    plain = list(csv.reader(io.StringIO(run("shapes", tiny, "-f", "csv").stdout)))
    deep = list(csv.reader(io.StringIO(run("shapes", tiny, "-f", "csv", "--depth", "1").stdout)))
    assert deep[0] == [*plain[0], "depth", "row"]
    layers = [row[:-2] for row in deep[1:-1] if row[-1] == "layer"]
    assert layers == plain[1:-1]
    groups = [row for row in deep if row[-1] == "group"]
    assert [(g[0], g[1], g[4], g[-2]) for g in groups] == [("stage", "unit", "1168", "1")]
    assert deep[2][0] == "stage" and deep[3][0] == "stage.0.conv"  # a group comes before its layers
    assert deep[-1][0] == "(total)" and deep[-1][4] == plain[-1][4]


def test_csv_and_markdown_take_columns(run, tiny):
    text = run("shapes", tiny, "-f", "csv", "--columns", "path,params,macs%").stdout
    assert text.splitlines()[:3] == ["path,params,macs_percent", "stem,224,15.7859", "stage.0.conv,584,42.0956"]
    assert text.splitlines()[-1] == "(total),1482,100"
    md = run("shapes", tiny, "-f", "markdown", "--columns", "path,macs", "--depth", "1").stdout
    assert md.splitlines()[4:8] == ["| Layer | MACs |", "|---|---:|", "| `stem` | 55,296 |", "| **`stage`** | 294,912 |"]


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "googlenet", "mobilenet_v2"])
def test_the_shown_level_adds_up_to_the_totals(name):
    network = load_network(str(EXAMPLES / f"{name}.yaml"))
    report = analyze(network)
    t = report.totals
    for depth in range(1, 7):
        entries = outline(report, network.graph, depth)
        shown = [e for e in entries if (e.is_group and e.depth == depth) or (not e.is_group)]
        for key in ("params", "buffers", "macs", "activation_bytes"):
            assert sum(getattr(e, key) for e in shown) == getattr(t, key), (depth, key)
        assert all(e.depth <= depth for e in entries)
    full = outline(report, network.graph)
    assert [e.path for e in full if not e.is_group] == [r.path for r in report.rows]


def test_abbreviations_keep_three_significant_digits():
    cases = {0: "0", 999: "999", 1000: "1.00K", 9_996: "10.0K", 99_960: "100K", 999_600: "1.00M",
             23_512_345: "23.5M", 1_498_376_192: "1.50G", 4_089_184_256: "4.09G"}
    assert {n: abbreviate(n) for n in cases} == cases
    assert [abbreviate_bytes(n) for n in (100, 1024, 802_816, 3_211_264)] == ["100B", "1.00KiB", "784KiB", "3.06MiB"]


def test_wrap_breaks_between_words_and_folds_only_what_cannot_fit():
    line = [("  ", None), ("layer1.0.conv1", "cyan"), (" (conv2d) a message of several words", None)]
    lines = wrap(line, 20, indent=4)
    texts = ["".join(t for t, _ in x) for x in lines]
    assert texts == ["  layer1.0.conv1", "    (conv2d) a", "    message of", "    several words"]
    assert lines[0][1] == ("layer1.0.conv1", "cyan")
    # a word longer than the width (a deep path) is cut, after a dot where there is one
    assert wrap([("averyveryverylongword and", None)], 10) == [[("averyveryv", None)], [("erylongwor", None)],
                                                                [("d", None), (" ", None), ("and", None)]]
    folded = wrap([("at ", None), ("features.denseblock1.denselayer6.relu1", "cyan")], 24, indent=2)
    assert ["".join(t for t, _ in x) for x in folded] == ["at features.denseblock1.", "  denselayer6.relu1"]
    assert all(style == "cyan" for x in folded for t, style in x if t.strip() and t != "at")


def terminal_run(args, width, no_color=False):
    result = CliRunner().invoke(cli, args, obj=Terminal(stdout_tty=True, no_color=no_color, width=width))
    assert result.exit_code in (0, 1), result.output
    return result.stdout


ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("width", [80, 60, 40])
def test_densenet_fits_the_terminal_and_shows_the_nesting(width):
    out = terminal_run(["shapes", str(EXAMPLES / "densenet121.yaml")], width)
    lines = ANSI.sub("", out).splitlines()
    assert max(len(line) for line in lines) <= width
    assert "\x1b[" in out  # coloured: a terminal without NO_COLOR
    header = next(i for i, line in enumerate(lines) if line.startswith("Layer "))
    assert [line[:7] for line in lines[header + 1:header + 4]] == ["feature", "  conv0", "  norm0"]
    assert any(line.startswith("      norm1") for line in lines)  # features.denseblock1.denselayer1.norm1
    total = next(x for x in lines if x.startswith("Total "))
    assert re.fullmatch(r"Total +1000 .*2\.83G.*", total)  # abbreviated MACs, kept at every width
    summary = " ".join(line.strip() for line in lines[lines.index(total):])
    assert "Trainable params 7,978,856 (7.98M, 30.44 MiB)" in summary  # exact in the summary


def test_a_terminal_at_80_columns_abbreviates_and_leaves_out_columns():
    out = terminal_run(["shapes", str(EXAMPLES / "googlenet.yaml")], 80, no_color=True)
    lines = out.splitlines()
    assert "\x1b[" not in out
    assert lines[1].split() == ["Layer", "Type", "Output", "Params", "Params%", "MACs", "MACs%", "RF"]
    assert lines[2].split() == ["conv1", "basic_conv", "64x112x112", "9.54K", "0.1", "118M", "7.9", "7"]
    assert "Left out to fit 80 columns: Buffers, Jump; pick columns with --columns." in lines
    assert max(map(len, lines)) <= 80
    wide = terminal_run(["shapes", str(EXAMPLES / "googlenet.yaml")], 200, no_color=True).splitlines()
    assert wide[2].split() == ["conv1", "basic_conv", "64x112x112", "9,536", "0.1", "129", "118,013,952", "7.9", "7",
                               "2"]


def warned_resnet18(tmp_path):
    """ResNet-18 without its `ignore:`, so that its three long warnings are shown."""
    text = (EXAMPLES / "resnet18.yaml").read_text().replace("ignore: [skipped-pixels]\n", "")
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_terminal_prose_wraps_at_words(tmp_path):
    spec = warned_resnet18(tmp_path)
    out = terminal_run(["shapes", str(spec)], 80, no_color=True)
    lines = out.splitlines()
    start = lines.index("3 warnings:")
    place = f"  {spec}:22: "
    assert all(len(line) <= 80 for line in lines[start:start + 5])
    assert " ".join(line.strip() for line in lines[start + 1:start + 5]) == (
        f"{place.strip()} layer2.0.downsample.0 (conv2d) [skipped-pixels] stride 2 is larger than the kernel"
        " span 1 along H and W, so 1 of every 2 input positions are skipped; use kernel_size >= stride (or"
        " average-pool before a strided 1x1 conv)")
    assert all(line.startswith("    ") for line in lines[start + 2:start + 5])  # continuation lines indented
    assert "Trainable params 11,689,512 (11.69M, 44.59 MiB)" in lines
    assert "Buffers 9,620 (running statistics, not trainable)" in lines


def test_depth_and_training_columns_on_a_terminal(tmp_path):
    out = terminal_run(["shapes", str(EXAMPLES / "resnet18.yaml"), "--depth", "1", "--training"], 80, no_color=True)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[1].split()[-1] == "Kept"  # "Kept for backward", abbreviated with its cells
    assert lines[2].split()[-1] == "588KiB"  # conv1 keeps its 3x224x224 float32 input
    assert lines[6].split()[:2] == ["layer1", "stage"]


def test_a_real_pseudo_terminal_at_80_columns():
    """The command in a pty of 80 columns (no COLUMNS): the width comes from the terminal."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    env = environ(TERM="xterm-256color", PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "convcalc", "shapes", "examples/densenet121.yaml"], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")
    lines = text.splitlines()
    assert len(lines) > 400
    assert max(len(line) for line in lines) <= 80
    assert lines[2].startswith("features")


def test_check_wraps_its_lines_on_a_terminal_only(run, tmp_path):
    spec = str(warned_resnet18(tmp_path))
    lines = terminal_run(["check", spec, "--max-params", "1M"], 80, no_color=True).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  warning:"))
    block = [lines[first]] + [line for line in lines[first + 1:first + 6] if line.startswith("    ")][:4]
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(line.strip() for line in block).startswith(
        f"warning: {spec}:22: layer2.0.downsample.0 (conv2d) [skipped-pixels]: stride 2 is larger than the kernel"
        " span 1 along H and W, so 1 of every 2 input positions are skipped; use kernel_size >= stride (or"
        " average-pool before a strided 1x1 conv)")
    piped = run("check", spec, "--max-params", "1M").stdout.splitlines()
    assert len(piped) == 2 + 3 and piped[2].endswith("(or average-pool before a strided 1x1 conv)")


def rich_lines(lines, width, color_system):
    """What rich writes for styled lines, one console.print(Text.assemble(...)) each: the
    reference `echo_lines` must match byte for byte."""
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, force_terminal=True, width=width, color_system=color_system)
    for line in lines:
        console.print(Text.assemble(*line), soft_wrap=True)
    return buffer.getvalue()


@pytest.mark.parametrize("color_system", ["truecolor", "256", "standard"])
@pytest.mark.parametrize("name", ["resnet18", "densenet121", "efficientnet_b0", "unet"])
def test_styled_lines_are_what_rich_would_print(name, color_system, monkeypatch):
    """`echo_lines` writes each piece in its style's escape codes itself (rich's layout took a
    third of the command's time): the bytes must be rich's, in every colour system."""
    import click

    from conftest import TERMINAL_ENV
    from convcalc.cli.common import echo_lines
    from convcalc.render.report import render_report
    from convcalc.render.table import View

    network = load_network(str(EXAMPLES / f"{name}.yaml"))
    lines = render_report(analyze(network), "table", view=View(None, 1, 80), graph=network.graph).stdout
    lines = [*lines, [("a\x07bell ", "bold"), ("and a\rreturn", "red"), ("", "dim")]]  # rich drops such codes
    for variable in TERMINAL_ENV:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COLORTERM", "truecolor" if color_system == "truecolor" else "")
    monkeypatch.setenv("TERM", "xterm" if color_system == "standard" else "xterm-256color")
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    with click.Context(cli, obj=Terminal(stdout_tty=True, width=80)):
        echo_lines(lines)
    assert "\x1b[" in buffer.getvalue()
    assert buffer.getvalue() == rich_lines(lines, 80, color_system)
