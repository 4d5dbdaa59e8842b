"""Design lints: each warning against arithmetic written out here, and against the gradient.

The gradient oracle (live, when torch is importable): with positive weights, an input pixel
affects an output iff d(output)/d(input) != 0, so unread, skipped and gridded pixels are
exactly the zero entries of the gradient.
"""

from __future__ import annotations

import re

import pytest

from conftest import EXAMPLES, ROOT
from convcalc.analysis import analyze
from convcalc.errors import ShapeError
from convcalc.lints import CODES, lint, silence
from convcalc.spec.parser import parse_text


def warnings_of(text: str):
    network = parse_text(text, "spec.yaml")
    return lint(network, analyze(network)).warnings


def one(text: str, code: str):
    found = [w for w in warnings_of(text) if w.code == code]
    assert len(found) == 1, [(w.code, w.message) for w in warnings_of(text)]
    return found[0]


def stack(shape, *layers: str) -> str:
    return f"input: {shape}\nlayers:\n" + "".join(f"  - {layer}\n" for layer in layers)


GRID = stack([1, 40, 40], *["conv2d: {out_channels: 1, kernel_size: 3, dilation: 2, padding: 2}"] * 3)


def test_gridding_counts_reached_positions():
    w = one(GRID, "gridding")
    span = 3 * 2 * (3 - 1) + 1  # three k=3 convs at rate 2
    reached = (span - 1) // 2 + 1  # only even offsets
    assert w.path == "2"
    assert w.message.startswith(
        f"stacked dilated convolutions (0, 1, 2): rates 2, 2, 2 along H and W share the factor 2,"
        f" so only {reached} of the {span} input positions in each output's field reach it (gridding)")


@pytest.mark.parametrize("rates", [(1, 2, 5), (1, 2, 4, 8), (2, 3)])
def test_no_gridding_without_a_common_factor(rates):
    text = stack([1, 40, 40], *[f"conv2d: {{out_channels: 1, kernel_size: 3, dilation: {r}, padding: {r}}}"
                                for r in rates])
    assert not [w for w in warnings_of(text) if w.code == "gridding"]


def test_gridding_broken_by_a_stride_or_a_single_dilated_conv():
    single = stack([1, 40, 40], "conv2d: {out_channels: 1, kernel_size: 3}",
                   "conv2d: {out_channels: 1, kernel_size: 3, dilation: 2}")
    assert not [w for w in warnings_of(single) if w.code == "gridding"]
    strided = stack([1, 40, 40], "conv2d: {out_channels: 1, kernel_size: 3, dilation: 2}",
                    "maxpool2d: {kernel_size: 2}", "conv2d: {out_channels: 1, kernel_size: 3, dilation: 2}")
    assert not [w for w in warnings_of(strided) if w.code == "gridding"]


def test_dilated_context_example_has_no_gridding():
    network = parse_text((EXAMPLES / "dilated_context.yaml").read_text(), "dilated_context.yaml")
    assert [w.code for w in lint(network, analyze(network)).warnings] == []


def test_unread_pixels_one_note_per_layer_and_padding_is_not_a_pixel():
    w = one(stack([3, 56, 56], "conv2d: {out_channels: 4, kernel_size: 3, stride: 2}"), "unread-pixels")
    left = (56 - 3) % 2
    assert w.message == (f"the last {left} of 56 input positions along H and W are never read"
                         f" ((n + padding - k_eff) % stride > right padding); inputs of {56 - left}"
                         f" or {56 - left + 2} would be exact")
    # (56 + 1 + 1 - 3) % 2 = 1, but the position left out is the right padding.
    padded = stack([3, 56, 56], "conv2d: {out_channels: 4, kernel_size: 3, stride: 2, padding: 1}")
    assert not [w for w in warnings_of(padded) if w.code == "unread-pixels"]


def test_axes_with_different_facts_share_one_note():
    w = one(stack([3, 58, 59], "conv2d: {out_channels: 4, kernel_size: 5, stride: 4}"), "unread-pixels")
    # H: (58 - 5) % 4 = 1, W: (59 - 5) % 4 = 2
    assert w.message.count("the last") == 2
    assert "the last 1 of 58 input positions along H" in w.message
    assert "the last 2 of 59 input positions along W" in w.message


def test_skipped_pixels_and_no_double_unread():
    w = one(stack([8, 56, 56], "conv2d: {out_channels: 4, kernel_size: 1, stride: 2}"), "skipped-pixels")
    assert w.message.startswith("stride 2 is larger than the kernel span 1 along H and W, so 1 of every 2")
    assert "unread-pixels" not in [x.code for x in warnings_of(stack([8, 56, 56], "conv2d: {out_channels: 4, kernel_size: 1, stride: 2}"))]


def test_asymmetric_same_padding():
    w = one(stack([3, 16, 16], "conv2d: {out_channels: 4, kernel_size: 4, padding: same}"), "asymmetric-padding")
    total = 1 * (4 - 1)
    assert f"pads {total // 2} before and {total - total // 2} after along H and W" in w.message
    assert not warnings_of(stack([3, 16, 16], "conv2d: {out_channels: 4, kernel_size: 3, padding: same}"))
    # dilation 2 makes k_eff = 2*(4-1)+1 = 7: odd, symmetric.
    assert not warnings_of(stack([3, 16, 16], "conv2d: {out_channels: 4, kernel_size: 4, dilation: 2, padding: same}"))


def test_uneven_overlap_and_empty_field():
    text = stack([4, 8, 8], "convtranspose2d: {out_channels: 4, kernel_size: 1, stride: 2}",
                 "conv2d: {out_channels: 4, kernel_size: 3, padding: 1}")
    w = one(text, "empty-field")
    assert w.path == "0"
    assert w.message.startswith("1 of every 2 output positions along H and W have an empty receptive field")
    u = one(text, "uneven-overlap")
    assert "outputs receive 0 or 1 inputs" in u.message
    # k=4, s=2: every output receives 4 // 2 = 2 inputs.
    assert not warnings_of(stack([4, 8, 8], "convtranspose2d: {out_channels: 4, kernel_size: 4, stride: 2, padding: 1}"))


def test_small_head_field_only_for_global_pooling_heads():
    convs = ["conv2d: {out_channels: 4, kernel_size: 3, padding: 1}"] * 2
    pooled = stack([3, 32, 32], *convs, "adaptiveavgpool2d: {output_size: 1}", "flatten", "linear: {out_features: 2}")
    w = one(pooled, "small-head-field")
    rf = 1 + 2 * (3 - 1)
    assert w.path == "2"
    assert w.message.startswith(f"the features this head pools each see {rf}x{rf} input pixels of the 32x32 input")
    flat = stack([3, 32, 32], *convs, "flatten", "linear: {out_features: 2}")
    assert not [x for x in warnings_of(flat) if x.code == "small-head-field"]
    big = stack([3, 4, 4], *convs, "adaptiveavgpool2d: {output_size: 1}")
    assert not [x for x in warnings_of(big) if x.code == "small-head-field"]


def test_groups_not_dividing_channels_is_an_error():
    with pytest.raises(ShapeError, match="groups=3 does not divide in_channels=8"):
        warnings_of(stack([8, 8, 8], "conv2d: {out_channels: 6, kernel_size: 3, groups: 3}"))


def test_every_emitted_code_is_known():
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "convcalc").rglob("*.py"))
    emitted = set(re.findall(r'(?:Note|layer_note|self\.warn)\(\s*"([a-z-]+)"', source))
    assert emitted and emitted <= set(CODES), emitted - set(CODES)


def test_silence_and_warnings_in_execution_order():
    text = stack([4, 8, 8], "convtranspose2d: {out_channels: 4, kernel_size: 1, stride: 2}",
                 "conv2d: {out_channels: 4, kernel_size: 1, stride: 3}")
    network = parse_text(text)
    report = lint(network, analyze(network))
    assert [w.path for w in report.warnings] == sorted(w.path for w in report.warnings)
    assert {w.code for w in silence(report, ["uneven-overlap", "empty-field"]).warnings} == {"skipped-pixels"}


def test_shapes_strict_and_ignore(run, tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(GRID)
    assert run("shapes", str(spec)).exit_code == 0
    strict = run("shapes", str(spec), "--strict")
    assert strict.exit_code == 1
    assert strict.stderr.startswith("error: --strict: 1 design warning (gridding)")
    assert run("shapes", str(spec), "--strict", "--ignore", "gridding").exit_code == 0
    spec.write_text("ignore: [gridding]\n" + GRID)
    assert run("shapes", str(spec), "--strict").exit_code == 0


# --- the gradient oracle ------------------------------------------------------------------


def zero_gradient_rows(layers, shape, output_index):
    """Input rows (along H) whose gradient of output row `output_index` is zero, and the span."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.rand(1, *shape, requires_grad=True)
    y = x
    for layer in layers:
        with torch.no_grad():
            for p in layer.parameters():
                p.uniform_(0.5, 1.0)
        y = layer(y)
    y[0, :, output_index, :].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
    return rows


@pytest.mark.torch
def test_gridding_matches_the_gradient():
    torch = pytest.importorskip("torch")
    layers = [torch.nn.Conv2d(1, 1, 3, dilation=2, padding=2) for _ in range(3)]
    rows = zero_gradient_rows(layers, (1, 40, 40), 20)
    span = max(rows) - min(rows) + 1
    w = one(GRID, "gridding")
    assert f"only {len(rows)} of the {span} input positions" in w.message


@pytest.mark.torch
def test_unread_pixels_match_the_gradient():
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(3, 4, 3, stride=2)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 56, 56, requires_grad=True)
    conv(x).sum().backward()
    read = (x.grad[0].abs().sum(dim=(0, 2)) > 0).tolist()
    unread_tail = len(read) - 1 - max(i for i, r in enumerate(read) if r)
    w = one(stack([3, 56, 56], "conv2d: {out_channels: 4, kernel_size: 3, stride: 2}"), "unread-pixels")
    assert w.message.startswith(f"the last {unread_tail} of 56")


def test_codes_are_documented():
    doc = (ROOT / "docs" / "check.md").read_text()
    missing = [code for code in CODES if f"`{code}`" not in doc]
    assert not missing


# --- misaligned branches: decided over every phase, said once --------------------------------

UNET_SKIP = stack([8, 32, 32], "parallel: {branches: [[], [maxpool2d: {kernel_size: 2},"
                  " conv2d: {out_channels: 16, kernel_size: 3, padding: 1},"
                  " convtranspose2d: {out_channels: 8, kernel_size: 2, stride: 2}]]}")


def test_textbook_unet_skip_is_aligned():
    # The up-path's output o reads pooled pixel o // 2 (through a 3x3 conv), centred on input
    # 2 * (o // 2) + 0.5: +0.5 from the identity's centre o at even o, -0.5 at odd o, 0 on average.
    network = parse_text(UNET_SKIP, "spec.yaml")
    report = analyze(network)
    up = report.rows[2].field[0]
    assert [up.at(o) for o in range(4)] == [(-2, 3), (-2, 3), (0, 5), (0, 5)]
    assert [w.code for w in lint(network, report).warnings] == []


def test_a_real_shift_is_one_warning_for_both_axes_with_its_fix():
    text = stack([8, 32, 32], "residual: {body: [conv2d: {out_channels: 8, kernel_size: 4, stride: 2, padding: 1}],"
                 " shortcut: [conv2d: {out_channels: 8, kernel_size: 3, stride: 2, padding: 1}]}")
    w = one(text, "misaligned-branches")
    # body: output o reads 2o - 1 .. 2o + 2, centre 2o + 0.5; shortcut: 2o - 1 .. 2o + 1, centre 2o
    assert w.path == "0.add"
    assert w.message == (
        "branch 0.shortcut's field centres lie 0.5 input pixels before (along H and W) those of branch 0,"
        " on average over a period (off-centre windows: 0.0 (+0.5)), so the merged features are shifted;"
        " centre every window in both branches (odd kernels with padding (k_eff - 1) / 2) or shift both"
        " alike")


def test_different_jumps_are_one_warning():
    # 4 pixels: a stride-2 1x1 conv padded back to 4 has jump 2 beside the identity's 1.
    text = stack([2, 4, 4], "parallel: {merge: add, branches: [[], [conv2d: {out_channels: 2, kernel_size: 1,"
                 " stride: 2}, zeropad2d: {padding: 1}]]}")
    w = one(text, "misaligned-branches")
    assert w.message == ("branches 0.0 (identity) and 0.1 have different jumps along H and W (1 vs 2): their"
                         " outputs do not line up; give both branches the same total stride")


def test_small_head_field_only_below_half_the_input():
    convs = ["conv2d: {out_channels: 4, kernel_size: 3, padding: 1}"] * 3  # field 7
    head = ["adaptiveavgpool2d: {output_size: 1}", "flatten", "linear: {out_features: 2}"]
    assert not [w for w in warnings_of(stack([3, 14, 14], *convs, *head)) if w.code == "small-head-field"]
    w = one(stack([3, 15, 20], *convs, *head), "small-head-field")
    assert w.message == (
        "the features this head pools each see 7x7 input pixels of the 15x20 input, less than half (46% of it"
        " along H; 35% of it along W), so none combines distant parts of it; add downsampling or dilation"
        " before the head, or use a smaller input")


# --- graphs: the lints follow every path ------------------------------------------------

D2 = "out_channels: 1, kernel_size: 3, dilation: 2, padding: 2"


def gridding_paths(text: str) -> list[tuple[str, str]]:
    return [(w.path, w.message.split(":")[0]) for w in warnings_of(text) if w.code == "gridding"]


def test_gridding_continues_into_every_reader_of_a_tensor():
    # stem (rate 2) is read by two rate-2 convs: each path stem -> a, stem -> b stacks two rates.
    text = ("input: [1, 40, 40]\noutputs: [a, b]\nlayers:\n"
            f"  - conv2d: {{{D2}, name: stem}}\n"
            f"  - conv2d: {{{D2}, name: a}}\n"
            f"  - conv2d: {{from: stem, {D2}, name: b}}\n")
    assert gridding_paths(text) == [("a", "stacked dilated convolutions (stem, a)"),
                                    ("b", "stacked dilated convolutions (stem, b)")]


def test_gridding_follows_a_long_reference_and_ignores_size_of():
    # x is read 3 layers later through `from:`; the resize reads stem's size, not its values.
    text = ("input: [1, 40, 40]\nlayers:\n"
            f"  - conv2d: {{{D2}, name: stem}}\n"
            "  - relu: {name: x}\n"
            "  - maxpool2d: {kernel_size: 2}\n"
            "  - upsample: {size_of: stem, mode: nearest}\n"
            "  - concat: {from: [x, 3]}\n"
            f"  - conv2d: {{from: x, {D2}, name: late}}\n")
    assert gridding_paths(text) == [("late", "stacked dilated convolutions (stem, late)")]


def test_gridding_of_a_shared_prefix_is_reported_once():
    # stem -> mid (both rate 2) feeds a merge and a 1x1: the run ends at mid for the merge and
    # at the 1x1 (which adds no tap) for the other path: one warning, at mid.
    text = ("input: [1, 40, 40]\nlayers:\n"
            f"  - conv2d: {{{D2}, name: stem}}\n"
            f"  - conv2d: {{{D2}, name: mid}}\n"
            "  - conv2d: {out_channels: 1, kernel_size: 1, name: one}\n"
            "  - add: {from: [mid, one]}\n")
    assert gridding_paths(text) == [("mid", "stacked dilated convolutions (stem, mid)")]


def test_a_merge_ends_a_gridding_run():
    # after the add, another rate-2 conv: the identity input fills the gaps, so no run crosses it
    text = ("input: [1, 40, 40]\nlayers:\n"
            f"  - conv2d: {{{D2}, name: stem}}\n"
            "  - add: {from: [input, stem], name: sum}\n"
            f"  - conv2d: {{{D2}, name: after}}\n")
    assert gridding_paths(text) == []


def test_misaligned_branches_at_a_merge_of_references():
    # a is centred on its output (padding 1), b on output + 1 (no padding): b starts later and
    # is padded back to a's size; at the merge, two layers after, the centres differ by 1.
    text = ("input: [1, 12, 12]\nlayers:\n"
            "  - conv2d: {out_channels: 1, kernel_size: 3, padding: 1, name: a}\n"
            "  - conv2d: {from: input, out_channels: 1, kernel_size: 3, name: b}\n"
            "  - zeropad2d: {padding: [0, 2, 0, 2], name: c}\n"
            "  - relu: {from: a, name: r}\n"
            "  - mul: {from: [r, c], name: m}\n")
    found = [(w.path, w.message) for w in warnings_of(text) if w.code == "misaligned-branches"]
    assert found == [("m", "branch c's field centres lie 1 input pixel after (along H and W) those of branch r, on"
                           " average over a period (off-centre windows: b (+1)), so the merged features are shifted;"
                           " centre every window in both branches (odd kernels with padding (k_eff - 1) / 2) or"
                           " shift both alike")]


def test_misaligned_branches_not_reported_for_a_broadcast_gate():
    # squeeze-excite: the gate is one value per channel, nothing to line up
    text = ("input: [4, 12, 12]\nlayers:\n"
            "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: x}\n"
            "  - adaptiveavgpool2d: {output_size: 1}\n  - sigmoid: {name: gate}\n"
            "  - mul: {from: [x, gate]}\n")
    assert [w.code for w in warnings_of(text)] == []
