"""The receptive field against its ground truth: the gradient of one output.

The oracle is `structural_gradient`: the network linearised (activations as identity,
average in place of max pooling) with all-positive weights in float64, differentiated from
a one-hot at one output position. It is non-zero exactly on the input pixels that output
depends on. Two things are compared with it:

- the per-position walk (`fieldwalk.walk`), index set by index set, on every axis;
- the theoretical recurrence (`AxisField.at`, what `shapes` reports), wherever the walk
  says no tap fell outside any layer's input (otherwise the recurrence, which counts
  padding, is larger by construction).

Every bundled example is covered (whatever is in examples/), and random stacks drawn by
hypothesis: convolutions with dilation, groups and padding modes, transposed convolutions,
pooling, upsampling, padding layers, residual and concat branches, channels-last sandwiches
(permute, a layer on the last dim, permute back).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES
from convcalc.analysis import analyze
from convcalc.errors import ShapeError, SpecError
from convcalc.fieldwalk import centre, walk
from convcalc.numeric.backward import structural_gradient
from convcalc.spec.parser import parse_text


def support(grad: np.ndarray) -> list[tuple[int, ...]]:
    """Per spatial axis, the indices where the gradient is non-zero (any channel, any other index)."""
    nz = grad != 0
    rank = nz.ndim - 1
    return [tuple(np.nonzero(nz.any(axis=tuple(i for i in range(nz.ndim) if i != a + 1)))[0])
            for a in range(rank)]


def check(text: str, name: str, targets: int = 4, extra_positions: int = 1, seed: int = 0) -> int:
    """Compare walk and recurrence with the gradient at several layers; returns comparisons made.

    The layers are `targets` rows spread over the network (at the centre and at
    `extra_positions` random positions), and every output of a network with several (each
    output's own field, at its centre).
    """
    network = parse_text(text, name)
    graph = analyze(network).rows
    report = analyze(network)
    rows = {row.path: row for row in report.rows}
    spatial = [i for i, s in enumerate(graph) if s.maps is not None and s.spatial_shape]
    chosen = sorted({spatial[round(k * (len(spatial) - 1) / max(1, targets - 1))]
                     for k in range(targets)}) if spatial else []
    outputs = network.graph.outputs
    spread = set(chosen)
    if len(outputs) > 1:
        chosen = sorted({*chosen, *(i for i in outputs if i in spatial)})
    rng = np.random.default_rng(seed)
    compared = 0
    for target in chosen:
        step = graph[target]
        positions = [centre(step.spatial_shape)]
        positions += [tuple(int(rng.integers(0, n)) for n in step.spatial_shape)
                      for _ in range(extra_positions if target in spread else 0)]
        for position in positions:
            grad = structural_gradient(graph, target, position)
            region = walk(network, position, step.path, graph)
            where = f"{name}: {step.path} at {position}"
            assert support(grad) == [r.indices for r in region], where
            field = rows[step.path].field
            assert field is not None, where
            # The recurrence counts padding, and sees each axis alone: it is exact where
            # nothing was clipped and no path was emptied by another axis.
            if not any(r.dropped for r in region):
                for axis, (r, f, o) in enumerate(zip(region, field, position)):
                    if not r.clipped:
                        assert r.span == f.at(o), f"{where}, axis {axis}"
            compared += 1
    return compared


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("*.json"))

# The float64 gradient of the largest examples takes minutes at their own size; their layers'
# fields do not depend on it, so they are checked on a smaller input that keeps every layer's
# arithmetic: the U-Net on the smallest tile whose crops are the same (4, 16, 40 and 88 pixels
# a side, as from 572), the FPN (resized to its laterals, any size works) on 128x128 (P6 2x2),
# the YOLO network (any multiple of 32) on 320x320.
SMALLER = {"unet": "[1, 188, 188]", "fpn_resnet50": "[3, 128, 128]", "yolo_neck": "[3, 320, 320]"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_example_field_is_the_gradient_support(path):
    text = path.read_text()
    if path.stem in SMALLER:
        text = re.sub(r"(?m)^input: .*$", f"input: {SMALLER[path.stem]}", text, count=1)
    assert check(text, path.name, targets=4, extra_positions=1) > 0


def test_the_smaller_unet_crops_as_the_original():
    texts = [(EXAMPLES / "unet.yaml").read_text()]
    texts.append(re.sub(r"(?m)^input: .*$", f"input: {SMALLER['unet']}", texts[0], count=1))
    crops = []
    for text in texts:
        rows = analyze(parse_text(text, "unet.yaml")).rows
        crops.append([(r.input_shapes[0][1] - r.output_shape[1]) // 2 for r in rows if r.type == "centercrop"])
    assert crops == [[4, 16, 40, 88]] * 2


# Every spatial layer of an example, at its centre: one float64 backward pass per layer, minutes
# for the larger networks (about 15 for the six modern ones on 2 cores), so on request only.
EVERY_LAYER = os.environ.get("CONVCALC_EVERY_LAYER", "")


@pytest.mark.skipif(not EVERY_LAYER, reason="set CONVCALC_EVERY_LAYER=1 (or to example names) to check every layer")
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_every_layer_of_an_example(path):
    if EVERY_LAYER != "1" and path.stem not in EVERY_LAYER.split(","):
        pytest.skip("not among CONVCALC_EVERY_LAYER's examples")
    rows = analyze(parse_text(path.read_text(), path.name)).rows
    spatial = sum(1 for r in rows if r.maps is not None and r.spatial_shape)
    assert check(path.read_text(), path.name, targets=len(rows), extra_positions=0) == spatial


# --- hand-written cases with the arithmetic spelled out ------------------------------------


def single(text_layers: str, input_shape: str = "[1, 32]"):
    return parse_text(f"input: {input_shape}\nlayers:\n{text_layers}", "spec.yaml")


def test_two_convs_then_stride_field_arithmetic():
    network = single("  - conv1d: {out_channels: 2, kernel_size: 3}\n"
                     "  - conv1d: {out_channels: 2, kernel_size: 3, stride: 2}\n"
                     "  - conv1d: {out_channels: 2, kernel_size: 3}\n")
    grad = structural_gradient(analyze(network).rows, 2, (3,))
    # output 3 reads outputs 3..5 of the stride-2 conv, which read 2*3..2*5+2 of the first,
    # which read 6..12+2 of the input: r = 1 + 2*1 + 2*1 + 2*2 = 9 pixels.
    assert support(grad) == [tuple(range(2 * 3, 2 * 5 + 2 + 2 + 1))]
    assert len(support(grad)[0]) == 1 + 2 * 1 + 2 * 1 + 2 * 2


def test_dilated_conv_reads_a_sparse_set():
    network = single("  - conv1d: {out_channels: 1, kernel_size: 3, dilation: 4}\n")
    grad = structural_gradient(analyze(network).rows, 0, (5,))
    assert support(grad) == [(5, 9, 13)]
    assert walk(network, (5,))[0].indices == (5, 9, 13)


def test_stride2_dilation2_transposed_conv_leaves_outputs_unreached():
    # input i, tap t writes output 2*i + 2*t: odd outputs are written by nobody.
    network = single("  - convtranspose1d: {out_channels: 1, kernel_size: 3, stride: 2, dilation: 2}\n",
                     "[1, 8]")
    graph = analyze(network).rows
    for o in (5, 6):
        grad = structural_gradient(graph, 0, (o,))
        expected = () if o % 2 else tuple(i for i in range(8) if o - 2 * i in (0, 2, 4))
        assert support(grad) == [expected]
        assert walk(network, (o,), graph=graph)[0].indices == expected
    field = analyze(network).rows[0].field[0]
    assert field.unreached == 1 and field.period == 2


def test_reflection_padding_reads_interior_pixels():
    # reflect pad 3 on inputs 0..9: padded 0 copies input 3, padded 1 copies input 2.
    network = single("  - reflectionpad1d: {padding: 3}\n"
                     "  - conv1d: {out_channels: 1, kernel_size: 2}\n", "[1, 10]")
    graph = analyze(network).rows
    grad = structural_gradient(graph, 1, (0,))
    assert support(grad) == [(2, 3)]
    region = walk(network, (0,), graph=graph)[0]
    assert region.indices == (2, 3) and region.clipped


def test_circular_padding_wraps_to_the_far_end():
    network = single("  - conv1d: {out_channels: 1, kernel_size: 3, padding: 1, padding_mode: circular}\n",
                     "[1, 10]")
    grad = structural_gradient(analyze(network).rows, 0, (0,))
    assert support(grad) == [(0, 1, 9)]
    assert walk(network, (0,))[0].indices == (0, 1, 9)


# --- random stacks --------------------------------------------------------------------------


def conv_item(draw, rank: int, channels: int, same: bool) -> tuple[dict, int]:
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3))
    out = draw(st.sampled_from([2, 4, 6]))
    groups = draw(st.sampled_from([g for g in (1, 2) if channels % g == 0 and out % g == 0]))
    args = {"out_channels": out, "kernel_size": k, "dilation": d, "groups": groups}
    if same:
        args["padding"] = "same"
    else:
        args["stride"] = draw(st.integers(1, 3))
        args["padding"] = draw(st.integers(0, 3))
    args["padding_mode"] = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    return {f"conv{rank}d": args}, out


@st.composite
def stacks(draw) -> str:
    rank = draw(st.integers(1, 2))
    size = draw(st.integers(12, 28 if rank == 2 else 48))
    channels = 2
    items: list[dict] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "transposed", "maxpool", "avgpool", "relu",
                                     "residual", "concat", "upsample", "pad", "channels_last"]))
        if kind == "conv":
            item, channels = conv_item(draw, rank, channels, same=False)
        elif kind == "transposed":
            s, d = draw(st.integers(1, 3)), draw(st.integers(1, 2))
            args = {"out_channels": 2, "kernel_size": draw(st.integers(1, 4)), "stride": s,
                    "dilation": d, "padding": draw(st.integers(0, 2)),
                    "output_padding": draw(st.integers(0, max(s, d) - 1))}
            item, channels = {f"convtranspose{rank}d": args}, 2
        elif kind in ("maxpool", "avgpool"):
            k = draw(st.integers(1, 4))
            args = {"kernel_size": k, "stride": draw(st.integers(1, 3)),
                    "padding": draw(st.integers(0, k // 2)), "ceil_mode": draw(st.booleans())}
            if kind == "maxpool":
                args["dilation"] = draw(st.integers(1, 2))
            else:
                args["count_include_pad"] = draw(st.booleans())
            item = {f"{kind}{rank}d": args}
        elif kind == "relu":
            item = {"relu": None}
        elif kind == "residual":
            body, c = conv_item(draw, rank, channels, same=True)
            body[f"conv{rank}d"]["out_channels"] = channels
            body[f"conv{rank}d"]["groups"] = 1
            item = {"residual": {"body": [body, {"relu": None}]}}
        elif kind == "concat":
            a, ca = conv_item(draw, rank, channels, same=True)
            b, cb = conv_item(draw, rank, channels, same=True)
            pool = {f"maxpool{rank}d": {"kernel_size": 3, "stride": 1, "padding": 1}}
            item = {"parallel": {"branches": [[a], [pool, b], []], "merge": "concat"}}
            channels = ca + cb + channels
        elif kind == "upsample":
            item = {"upsample": {"scale_factor": draw(st.sampled_from([2, 3])),
                                 "mode": draw(st.sampled_from(
                                     ["nearest", "nearest-exact", "linear" if rank == 1 else "bilinear"]))}}
        elif kind == "channels_last":  # ConvNeXt's sandwich: per-position layers on the last dim
            to_last = [0, *range(2, rank + 2), 1]
            back = [0, rank + 1, *range(1, rank + 1)]
            inner = draw(st.sampled_from([{"linear": {"out_features": 3}}, {"layernorm": None}, {"gelu": None}]))
            item = {"sequential": [{"permute": {"dims": to_last}}, inner, {"permute": {"dims": back}}]}
            channels = 3 if "linear" in inner else channels
        else:
            mode = draw(st.sampled_from(["zero", "reflection", "replication", "circular"]))
            item = {f"{mode}pad{rank}d": {"padding": draw(st.integers(1, 3))}}
        items.append(item)
    return json.dumps({"input": [2] + [size] * rank, "layers": items})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks(), st.integers(0, 2**16))
def test_random_stack_field_is_the_gradient_support(text, seed):
    try:
        network = parse_text(text, "random.json")
        analyze(network)
    except (ShapeError, SpecError):
        assume(False)
    check(text, "random.json", targets=3, extra_positions=2, seed=seed)


# --- random graphs ------------------------------------------------------------------------
# Fan-out, long skips and every way inputs meet: add and mul that broadcast (a gate pooled to
# 1 along some axes, a one-channel map), concat along channels and along a spatial axis, a
# resize and a centre crop to another output's size.


@st.composite
def graphs(draw):
    """A random DAG on a 2D input (YAML), each node named n<i>, with its shapes tracked."""
    size = draw(st.integers(6, 11))
    shapes: dict[str, tuple[int, int, int]] = {"input": (2, size, size + draw(st.integers(0, 2)))}
    lines = []
    for i in range(draw(st.integers(2, 9))):
        name, names = f"n{i}", list(shapes)
        kind = draw(st.sampled_from(["conv", "conv", "gate", "resize", "crop", "add", "mul", "concat", "relu"]))
        a = draw(st.sampled_from(names))
        c, h, w = shapes[a]
        if kind == "conv":
            k, s, d = draw(st.sampled_from([1, 3])), draw(st.integers(1, 2)), draw(st.integers(1, 2))
            p = draw(st.integers(0, d * (k - 1) // 2))
            out = (draw(st.integers(1, 3)), (h + 2 * p - d * (k - 1) - 1) // s + 1, (w + 2 * p - d * (k - 1) - 1) // s + 1)
            if min(out[1:]) < 1:
                continue
            lines.append(f"  - conv2d: {{from: {a}, out_channels: {out[0]}, kernel_size: {k}, stride: {s},"
                         f" dilation: {d}, padding: {p}, name: {name}}}")
        elif kind == "gate":
            size_h, size_w = draw(st.sampled_from([(1, 1), (1, None), (None, 1)]))
            out = (c, size_h or h, size_w or w)
            lines.append(f"  - adaptiveavgpool2d: {{from: {a}, output_size: [{size_h or 'null'}, {size_w or 'null'}],"
                         f" name: {name}}}")
        elif kind in ("resize", "crop"):
            b = draw(st.sampled_from(names))
            out = (c, *shapes[b][1:])
            layer = (f"upsample: {{mode: {draw(st.sampled_from(['nearest', 'bilinear']))},"
                     if kind == "resize" else "centercrop: {")
            lines.append(f"  - {layer} from: {a}, size_of: {b}, name: {name}}}")
        elif kind in ("add", "mul"):
            fits = [b for b in names if b != a and all(x == y or 1 in (x, y) for x, y in zip(shapes[a], shapes[b]))]
            if not fits:
                continue
            b = draw(st.sampled_from(fits))
            out = tuple(max(x, y) for x, y in zip(shapes[a], shapes[b]))
            lines.append(f"  - {kind}: {{from: [{a}, {b}], name: {name}}}")
        elif kind == "concat":
            dim = draw(st.sampled_from([1, 2, 3]))
            fits = [b for b in names if all(x == y for j, (x, y) in enumerate(zip(shapes[a], shapes[b])) if j != dim - 1)]
            b = draw(st.sampled_from(fits))
            out = tuple(x + y if j == dim - 1 else x for j, (x, y) in enumerate(zip(shapes[a], shapes[b])))
            lines.append(f"  - concat: {{from: [{a}, {b}], dim: {dim}, name: {name}}}")
        else:
            out = shapes[a]
            lines.append(f"  - relu: {{from: {a}, name: {name}}}")
        shapes[name] = out
    if not lines:
        lines.append("  - relu: {name: n0}")
    return f"input: [{', '.join(map(str, shapes['input']))}]\nlayers:\n" + "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(0, 2**16))
def test_random_graph_field_is_the_gradient_support(text, seed):
    """Every node of a random DAG (dead ones too): walk == gradient, recurrence where exact."""
    network = parse_text(text, "graph.yaml")
    rows = analyze(network).rows
    check(text, "graph.yaml", targets=len(rows), extra_positions=2, seed=seed)


def test_a_gate_broadcast_over_the_axis_gives_every_output_its_field():
    # squeeze-excite: x (field 3, jump 1, at o: [o - 1, o + 1]) times a gate pooled over all of
    # x (the hull of x's fields, [-1, 12]): every output of the product sees [-1, 12].
    text = ("input: [2, 12, 12]\nlayers:\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: x}\n"
            "  - adaptiveavgpool2d: {output_size: 1}\n  - conv2d: {out_channels: 4, kernel_size: 1, name: gate}\n"
            "  - mul: {from: [x, gate], name: y}\n  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n")
    network = parse_text(text, "se.yaml")
    rows = {row.path: row for row in analyze(network).rows}
    y = rows["y"].field
    assert y is not None
    assert all(y[0].at(o) == (-1, 12) for o in range(12))
    # the gate's field holds x's at every position: the product's field is the gate's, stretched
    # over the axis (jump 0), the whole input (issue #10: "all" in the RF column)
    assert (y[0].size, y[0].jump) == (14, 0) and y[0].covers_whole(12)
    assert not [w for w in analyze(network).warnings if w.code == "misaligned-branches"]
    assert check(text, "se.yaml", targets=5, extra_positions=3) > 0


def test_concat_along_a_spatial_axis_puts_the_parts_side_by_side():
    # [a; b] along H: outputs 0..9 are a's (at i: [i - 1, i + 1]), outputs 10..13 are b's, a
    # 3x1 stride-2 conv on a (at j: a's 2j..2j + 2, so [2j - 1, 2j + 3]).
    text = ("input: [2, 10, 9]\nlayers:\n  - conv2d: {out_channels: 3, kernel_size: 3, padding: 1, name: a}\n"
            "  - conv2d: {out_channels: 3, kernel_size: [3, 1], stride: [2, 1], name: b}\n"
            "  - concat: {from: [a, b], dim: 2, name: tall}\n")
    network = parse_text(text, "tall.yaml")
    field = analyze(network).rows[-1].field
    assert field is not None
    assert [field[0].at(o) for o in (0, 9, 10, 13)] == [(-1, 1), (8, 10), (-1, 3), (5, 9)]
    assert check(text, "tall.yaml", targets=3, extra_positions=5) > 0
# --- through a permute: the spatial axes move, the field follows them ----------------------------

CHANNELS_LAST = """
input: [4, 20, 18]
layers:
  - conv2d: {out_channels: 8, kernel_size: [4, 2], stride: [2, 1]}
  - residual:
      body:
        - conv2d: {out_channels: 8, kernel_size: 7, padding: 3, groups: 8}
        - permute: {dims: [0, 2, 3, 1]}
        - layernorm: {normalized_shape: 8}
        - linear: {out_features: 16}
        - gelu
        - softmax: {dim: -1}
        - linear: {out_features: 8}
        - permute: {dims: [0, 3, 1, 2]}
  - permute: {dims: [0, 1, 3, 2]}
  - conv2d: {out_channels: 2, kernel_size: [1, 3], stride: [1, 2]}
  - permute: {dims: [0, 3, 2, 1]}
  - softmax: {dim: 1}
  - linear: {out_features: 5}
"""


def test_fields_survive_a_permute_pair_and_follow_swapped_axes():
    report = analyze(parse_text(CHANNELS_LAST, "spec.yaml"))
    rows = {r.path: r for r in report.rows}
    assert rows["1.1"].output_shape == (9, 17, 8) and rows["1.1"].dims == (0, 1)
    assert rows["1.3"].field == rows["1.0"].field  # linear on the channels acts per position
    assert rows["1.add"].dims == (1, 2) and not report.warnings
    # [C, H, W] -> [C, W, H]: the conv's kernel 3 and stride 2 act along H now.
    swapped = rows["3"].field
    assert rows["3"].dims == (2, 1) and rows["3"].spatial_shape == (4, 17)
    assert (swapped[0].size, swapped[0].jump) == (rows["2"].field[0].size + 2 * 2, 4)
    assert (swapped[1].size, swapped[1].jump) == (rows["2"].field[1].size, 1)
    # [C, W, H] -> [H, W, C]; softmax over dim 1 (H there): every output sees the whole of H
    assert rows["5"].dims == (0, 1) and rows["5"].field[0].size > rows["4"].field[0].size
    assert check(CHANNELS_LAST, "channels_last.yaml", targets=14, extra_positions=3) > 14


def test_a_layer_mixing_a_permuted_spatial_axis_ends_the_field_with_a_warning():
    report = analyze(parse_text("input: [3, 8, 8]\nlayers:\n  - permute: {dims: [0, 2, 3, 1]}\n"
                                "  - conv2d: {out_channels: 4, kernel_size: 1}\n", "spec.yaml"))
    assert report.rows[0].field is not None and report.rows[1].field is None
    assert [(w.path, w.code, w.message) for w in report.warnings] == [
        ("1", "field-untracked", "receptive field no longer tracked: conv2d mixes or moves dim 1, which"
         " holds H after a permute; permute the channels back to dim 1 first")]
