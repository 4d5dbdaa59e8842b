"""Receptive fields of random branched networks against the float64 gradient, position by position.

`tests/test_receptive_gradient.py` checks the field of a few positions per layer. This
differential checks every output position of several layers of random *branched* networks on
short axes (1 to 12 pixels, where an output can be shorter than the field's period after a
transposed conv or an upsample), against the gradient of the linearised network
(`structural_gradient`: positive weights, float64, non-zero exactly where an output depends
on the input):

- every position's recurrence span (`AxisField.at`) is the gradient's extent wherever the
  walk says no tap fell outside a layer's input, and a position the field calls unreached
  has a zero gradient;
- `size` is the largest span over the positions the output has (not over the whole period),
  `size_min` the smallest, `unreached` counts the positions no input reaches, and `start` is
  the centre of position 0's field; when no position is clipped, `size` is the gradient's
  widest extent;
- `misaligned-branches` fires exactly when two merged branches' jumps differ or their field
  centres are shifted on average over the positions the output has;
- the inputs per output of a transposed conv (`rf`'s explanation and `uneven-overlap`) are
  the gradient's counts on the outputs whose taps all land inside the input.

Branches keep their shapes equal by construction: each branch applies one of several layer
stacks that change the size the same way (keep it, halve it, double it, triple it).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcalc.analysis import analyze
from convcalc.branches import mean_offset
from convcalc.fieldwalk import walk
from convcalc.geometry import conv_output, pool_output, transposed_output
from convcalc.lints import lint
from convcalc.numeric.backward import structural_gradient
from convcalc.receptive import Transposed, inputs_per_output
from convcalc.spec.parser import parse_text

MAX_POSITIONS = 24


def support(grad: np.ndarray) -> list[tuple[int, ...]]:
    nz = grad != 0
    return [tuple(np.nonzero(nz.any(axis=tuple(i for i in range(nz.ndim) if i != a + 1)))[0])
            for a in range(nz.ndim - 1)]


# --- random branched networks ---------------------------------------------------------------

def conv(rank: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> dict:
    return {f"conv{rank}d": {"out_channels": 2, "kernel_size": k, "stride": s, "padding": p, "dilation": d}}


def transposed(rank: int, k: int, s: int, p: int = 0, op: int = 0, d: int = 1) -> dict:
    return {f"convtranspose{rank}d": {"out_channels": 2, "kernel_size": k, "stride": s, "padding": p,
                                      "output_padding": op, "dilation": d}}


def upsample(rank: int, scale: int, mode: str) -> dict:
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear"}[rank]
    return {"upsample": {"scale_factor": scale, "mode": mode}}


def pool(rank: int, kind: str, k: int, s: int, p: int = 0, ceil: bool = False) -> dict:
    return {f"{kind}pool{rank}d": {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}}


def same_stacks(rank: int) -> list[list[dict]]:
    """Stacks that keep every size (on any input): windows centred or not, up-then-down."""
    return [[], [conv(rank, 3, p=1)], [conv(rank, 1)], [conv(rank, 5, p=2)], [conv(rank, 3, p=2, d=2)],
            [pool(rank, "max", 3, 1, 1)], [transposed(rank, 3, 1, p=1)], [conv(rank, 2, p=1), conv(rank, 2)],
            [transposed(rank, 2, 2), conv(rank, 2, s=2)], [upsample(rank, 2, "nearest"), pool(rank, "avg", 2, 2)],
            [upsample(rank, 3, "linear"), conv(rank, 3, s=3)]]


def down2_stacks(rank: int) -> list[list[dict]]:
    """Stacks that turn n into ceil(n / 2)."""
    return [[conv(rank, 3, s=2, p=1)], [conv(rank, 1, s=2)], [pool(rank, "max", 2, 2, ceil=True)],
            [pool(rank, "avg", 3, 2, 1)], [conv(rank, 5, s=2, p=2)], [pool(rank, "max", 1, 2)]]


def up2_stacks(rank: int) -> list[list[dict]]:
    """Stacks that turn n into 2n."""
    return [[transposed(rank, 2, 2)], [transposed(rank, 4, 2, p=1)], [transposed(rank, 3, 2, p=1, op=1)],
            [upsample(rank, 2, "nearest")], [upsample(rank, 2, "linear")], [transposed(rank, 1, 2, op=1)],
            [upsample(rank, 2, "nearest-exact")]]


def up3_stacks(rank: int) -> list[list[dict]]:
    """Stacks that turn n into 3n."""
    return [[transposed(rank, 3, 3)], [transposed(rank, 4, 3, p=1, op=1)], [transposed(rank, 5, 3, p=1)],
            [upsample(rank, 3, "nearest")], [transposed(rank, 2, 3, op=1)]]


FAMILIES = {"same": (same_stacks, lambda n: n), "down2": (down2_stacks, lambda n: -(-n // 2)),
            "up2": (up2_stacks, lambda n: 2 * n), "up3": (up3_stacks, lambda n: 3 * n)}


def single_layer(draw, rank: int, n: int) -> tuple[dict, int]:
    """One layer of any geometry, and its output size (a relu when the output would be empty)."""
    kind = draw(st.sampled_from(["conv", "transposed", "transposed", "pool", "upsample", "relu", "shrink"]))
    if kind == "shrink":  # a strided window that leaves fewer outputs than the field's period
        k, s = draw(st.integers(1, 3)), draw(st.integers(2, 4))
        size = conv_output(n, k, s, 1, (0, 0))
        return (conv(rank, k, s), size) if size >= 1 else ({"relu": None}, n)
    if kind == "conv":
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p = draw(st.integers(0, k - 1))
        size = conv_output(n, k, s, d, (p, p))
        return (conv(rank, k, s, p, d), size) if size >= 1 else ({"relu": None}, n)
    if kind == "transposed":
        k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        p, op = draw(st.integers(0, 2)), draw(st.integers(0, max(s, d) - 1))
        size = transposed_output(n, k, s, d, (p, p), op)
        return (transposed(rank, k, s, p, op, d), size) if size >= 1 else ({"relu": None}, n)
    if kind == "pool":
        k, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        p, ceil = draw(st.integers(0, k // 2)), draw(st.booleans())
        size = pool_output(n, k, s, 1, (p, p), ceil)
        return (pool(rank, "max", k, s, p, ceil), size) if size >= 1 else ({"relu": None}, n)
    if kind == "upsample":
        scale = draw(st.sampled_from([2, 3]))
        return upsample(rank, scale, draw(st.sampled_from(["nearest", "linear", "nearest-exact"]))), n * scale
    return {"relu": None}, n


@st.composite
def branched_networks(draw) -> str:
    rank = draw(st.sampled_from([1, 1, 1, 2]))
    n = draw(st.sampled_from([1, 1, 2, 2, 3, 4]) | st.integers(1, 12 if rank == 1 else 6))
    size, channels = n, 2
    items: list[dict] = [conv(rank, 1)]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["layer", "layer", "residual", "add", "concat"]))
        if kind == "layer":
            item, size = single_layer(draw, rank, size)
            items.append(item)
            continue
        family = "same" if kind == "residual" else draw(st.sampled_from(sorted(FAMILIES)))
        stacks, grow = FAMILIES[family]
        if grow(size) > 48:
            family, (stacks, grow) = "same", FAMILIES["same"]
        count = 2 if kind == "residual" else draw(st.integers(2, 3))
        branches = [draw(st.sampled_from(stacks(rank))) for _ in range(count)]
        if kind == "residual":
            items.append({"residual": {"body": branches[0], "shortcut": branches[1]}})
        else:
            # Every branch ends in a conv to 2 channels, so an add sees equal shapes.
            branches = [[*b, conv(rank, 1)] if kind == "add" else b for b in branches]
            items.append({"parallel": {"branches": branches, "merge": "add" if kind == "add" else "concat"}})
            channels = 2 * count if kind == "concat" else 2
        size = grow(size)
        items.append(conv(rank, 1))  # back to 2 channels
    del channels
    return json.dumps({"input": [2] + [n] * rank, "layers": items})


# --- the checks ----------------------------------------------------------------------------

def positions(shape: tuple[int, ...], rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every output position, or MAX_POSITIONS of them (the corners included) when there are more."""
    every = list(np.ndindex(*shape))
    if len(every) <= MAX_POSITIONS:
        return [tuple(p) for p in every]
    corners = [tuple(0 if c == 0 else n - 1 for c, n in zip(corner, shape))
               for corner in np.ndindex(*(2,) * len(shape))]
    picked = rng.choice(len(every), MAX_POSITIONS - len(corners), replace=False)
    return sorted({*corners, *(tuple(every[i]) for i in picked)})


def check_network(text: str, seed: int = 0) -> int:
    """Every check above on every spatial layer after a merge and the last one; returns positions compared."""
    network = parse_text(text, "random.json")
    report = analyze(network)
    rows = report.rows
    spatial = [i for i, r in enumerate(rows) if r.field is not None and len(r.output_shape) > 1]
    merges = [i for i in spatial if rows[i].is_merge]
    targets = sorted({*merges[-2:], spatial[-1]})
    rng = np.random.default_rng(seed)
    compared = 0
    for target in targets:
        row = rows[target]
        field = row.field
        out = row.output_shape[1:]
        widest = [0] * len(out)
        clipped_any = [False] * len(out)
        for position in positions(out, rng):
            grad = structural_gradient(rows, target, position)
            reached = support(grad)
            region = walk(network, position, row.path, rows)
            where = f"{text}\n{row.path} at {position}"
            assert reached == [r.indices for r in region], where
            for axis, (f, o, r) in enumerate(zip(field, position, region)):
                if f.at(o) is None:
                    assert not any(reached), f"{where}: unreached by the field, but the gradient is not zero"
                if r.clipped or r.dropped:
                    clipped_any[axis] = True
                    continue
                assert r.span == f.at(o), f"{where}, axis {axis}: gradient {r.span}, field {f.at(o)}"
                widest[axis] = max(widest[axis], r.extent)
            compared += 1
        for axis, (f, n) in enumerate(zip(field, out)):
            spans = [f.at(o) for o in range(min(n, f.period))]
            sizes = [s[1] - s[0] + 1 for s in spans if s is not None]
            where = f"{text}\n{row.path}, axis {axis}"
            assert f.size == max(sizes, default=0), f"{where}: size {f.size}, positions {spans}"
            assert f.size_min == min(sizes, default=0), where
            assert f.unreached == sum(s is None for s in spans), where
            first = f.at(0)
            assert f.start == (None if first is None else Fraction(first[0] + first[1], 2)), where
            if not clipped_any[axis] and math.prod(out) <= MAX_POSITIONS:
                assert f.size == widest[axis], f"{where}: size {f.size}, widest gradient {widest[axis]}"
    check_alignment(network, report)
    return compared


def check_alignment(network, report) -> None:
    """`misaligned-branches` on a merge iff some branch's jump differs from the first's, or its
    centres are shifted on average over the positions the output has."""
    rows = report.rows
    warned = {w.path for w in lint(network, report).warnings if w.code == "misaligned-branches"}
    for row in rows:
        if not row.is_merge or row.field is None:
            continue
        fields = [rows[j].field if j >= 0 else None for j in row.node.inputs]
        if any(f is None for f in fields):
            continue
        off = False
        for other in fields[1:]:
            for a, b, n in zip(fields[0], other, row.output_shape[1:]):
                if a.jump != b.jump:
                    off = True
                    continue
                centres = []
                for o in range(min(math.lcm(a.period, b.period), n)):
                    sa, sb = a.at(o), b.at(o)
                    if sa is not None and sb is not None:
                        centres.append(Fraction(sum(sb) - sum(sa), 2))
                off = off or (bool(centres) and sum(centres) != 0)
                assert mean_offset(a, b, n) == (sum(centres, Fraction(0)) / len(centres) if centres else 0)
        assert (row.path in warned) == off, row.path


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(branched_networks(), st.integers(0, 2**16))
def test_random_branched_network_fields_are_the_gradient(text, seed):
    check_network(text, seed)


# The repros: an output shorter than the field's period.
REPROS = [
    # one output of a stride-3 1x1 conv after a transposed conv: it reads input 0 only
    ({"input": [1, 1], "layers": [transposed(1, 3, 2, p=1, op=1), conv(1, 1, s=3)]}, 1),
    # k4 s3 p1 on one pixel: both outputs read it alone (the third phase does not exist)
    ({"input": [1, 1], "layers": [transposed(1, 4, 3, p=1)]}, 1),
]


def test_repros_of_short_outputs():
    for spec, size in REPROS:
        text = json.dumps(spec)
        assert check_network(text) > 0
        report = analyze(parse_text(text, "repro.json"))
        assert report.rows[-1].field[0].size == size
        assert not [w for w in report.warnings if w.code == "uneven-overlap"]


def test_the_differential_finds_a_size_over_the_whole_period():
    """The check fails on a field whose size is taken over phases the output does not have."""
    text = json.dumps(REPROS[1][0])
    network = parse_text(text, "repro.json")
    field = analyze(network).rows[-1].field[0]
    assert field.period == 3 and field.phases == 2
    whole = max(h - lo + 1 for lo, h in zip(field.lo, field.hi))
    assert whole == 2 != field.size


# --- inputs per output of a transposed conv --------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.integers(1, 9), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.integers(0, 3),
       st.integers(0, 3))
def test_inputs_per_output_are_the_gradient_counts(n, k, s, d, p, op):
    op = op % max(s, d)
    size = transposed_output(n, k, s, d, (p, p), op)
    if size < 1:
        return
    text = json.dumps({"input": [1, n], "layers": [transposed(1, k, s, p, op, d)]})
    report = analyze(parse_text(text, "t.json"))
    amap = Transposed(k, s, d, p)
    counts, interior = [], []
    for o in range(size):
        grad = structural_gradient(report.rows, 0, (o,))
        counts.append(len(support(grad)[0]))
        taps = amap.taps(o)
        if all(0 <= t < n for t in taps):
            interior.append(counts[-1])
    expected = (min(interior), max(interior)) if interior else (min(counts), max(counts))
    assert inputs_per_output(amap, n, size) == expected
    uneven = [w for w in report.warnings if w.code == "uneven-overlap"]
    assert bool(uneven) == (expected[0] != expected[1] and (d * (k - 1) + 1) % s != 0)
    if uneven:
        assert f"outputs receive {expected[0]} or {expected[1]} inputs" in uneven[0].message
