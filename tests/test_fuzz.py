"""Random specs, valid and not: never a traceback, never a hang, exit 0 or 2 only, and
for the ones convcalc accepts, `--verify` runs them in NumPy and confirms every shape."""

from __future__ import annotations

import json
import math
import os
import random
import time

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import TERMINAL_ENV
from convcalc.cli import cli
from convcalc.layers import REGISTRY

# CONVCALC_FUZZ_SCALE=50 runs fifty times as many examples (a long local fuzzing session).
SCALE = int(os.environ.get("CONVCALC_FUZZ_SCALE", "1"))
SETTINGS = settings(deadline=None, max_examples=150 * SCALE, suppress_health_check=list(HealthCheck))
SLOW = 5.0  # seconds one run may take; far above what any of these needs


def invoke(args: list[str], stdin: str | bytes) -> tuple[int, str, str]:
    """Run the CLI in-process; fail on a traceback, a hang or an unexpected exit status."""
    started = time.perf_counter()
    result = CliRunner(env=TERMINAL_ENV).invoke(cli, args, input=stdin, catch_exceptions=True)
    elapsed = time.perf_counter() - started
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crash on {stdin!r}") from result.exception
    assert "Traceback" not in result.stderr + result.stdout
    assert elapsed < SLOW, f"{elapsed:.1f} s on {stdin!r}"
    return result.exit_code, result.stdout, result.stderr


def check(stdin: str | bytes, *extra: str) -> tuple[int, str]:
    code, out, err = invoke(["shapes", "-", "-f", "json", *extra], stdin)
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.startswith("error: ") and out == "", err
    else:
        json.loads(out)
    return code, out


# --- any text, any YAML -------------------------------------------------------------------

@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_any_text(text):
    check(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes(data):
    check(data)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.integers(), st.floats(),
    st.sampled_from(["same", "valid", "relu", "conv2d", "$x", "$(1 +", "3x32x32", "", "~"]),
    st.text(max_size=10),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8) | st.sampled_from(
        ["input", "layers", "name", "repeat", "when", "residual", "parallel", "body",
         "branches", "kernel_size", "out_channels"]), inner, max_size=4)), max_leaves=20)


@SETTINGS
@given(values)
def test_any_yaml_structure(data):
    check(yaml.safe_dump(data))


@SETTINGS
@given(values, values)
def test_any_structure_under_input_and_layers(input_shape, layers):
    check(yaml.safe_dump({"input": input_shape, "layers": layers}))


# --- specs that look right, with random layer types and arguments ---------------------------

small = st.integers(1, 6)
arg_values = st.one_of(
    small, small, small, st.integers(-2, 12), st.integers(10**6, 10**30),
    st.lists(small, min_size=1, max_size=4),
    st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2), min_size=1, max_size=3),
    st.booleans(), st.none(), st.floats(-2, 4), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["same", "valid", "zeros", "reflect", "circular", "nearest", "bilinear",
                     "tanh", "bogus", "$(2 * 3)"]),
)
TYPES = REGISTRY.names()


def fits(kind: str, rank: int) -> bool:
    """Layer types that can take an input with `rank` spatial axes (or any)."""
    needed = REGISTRY[kind].rank
    return needed is None or needed == rank


@st.composite
def layer_items(draw, rank: int = 2):
    if draw(st.booleans()):  # plausible: a type for this rank, small ints where ints go
        kind = draw(st.sampled_from([k for k in TYPES if fits(k, rank)]))
        layer_type = REGISTRY[kind]
        ints = st.integers(1, 3) | st.integers(10**5, 10**12)  # huge but valid, now and then
        args = {a.name: draw(ints) for a in layer_type.args
                if (a.required or is_plain_int(a.default)) and draw(st.booleans())}
        for arg in layer_type.args:
            if arg.required and arg.name not in args:
                args[arg.name] = draw(st.integers(1, 3))
        return {kind: args or None}
    kind = draw(st.sampled_from(TYPES))
    layer_type = REGISTRY[kind]
    names = [a.name for a in layer_type.args]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names))) if names else []
    args = {name: draw(arg_values) for name in chosen}
    for arg in layer_type.args:  # required arguments usually present, so deeper checks run
        if arg.required and arg.name not in args and draw(st.integers(0, 9)):
            args[arg.name] = draw(small)
    if draw(st.integers(0, 19)) == 0:
        args[draw(st.text(min_size=1, max_size=6))] = draw(arg_values)
    return {kind: args or None}


def is_plain_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@st.composite
def items(draw, rank: int, depth: int = 0):
    pick = draw(st.integers(0, 9))
    if depth < 2 and pick == 0:
        return {"residual": {"body": draw(st.lists(items(rank, depth + 1), max_size=3))}}
    if depth < 2 and pick == 1:
        branches = draw(st.lists(st.lists(items(rank, depth + 1), max_size=2), min_size=1, max_size=3))
        return {"parallel": {"branches": branches, "merge": draw(st.sampled_from(["concat", "add"]))}}
    return draw(layer_items(rank))


@st.composite
def specs(draw):
    rank = draw(st.integers(0, 3))
    shape = [draw(small)] + [draw(st.integers(1, 12)) for _ in range(rank)]
    rank = max(rank, 1)  # [C] alone takes only rank-free layers; 1D types get refused
    if draw(st.integers(0, 19)) == 0:
        shape[-1] = draw(st.integers(10**6, 10**15))  # huge sizes: no hang, no crash
    if draw(st.integers(0, 19)) == 0:
        shape[0] = draw(st.integers(10**6, 10**18))  # and huge channel counts
    return {"input": shape, "layers": draw(st.lists(items(rank), min_size=1, max_size=5))}


@settings(deadline=None, max_examples=500 * SCALE, suppress_health_check=list(HealthCheck))
@given(specs())
def test_random_layer_specs(spec):
    code, out = check(json.dumps(spec))
    # --verify runs the network: only small ones (input and every activation), so it is quick
    if code == 0 and math.prod(spec["input"]) <= 4096 and json.loads(out)["totals"]["activation_bytes"] <= 2**20:
        verify(json.dumps(spec), out)


def verify(stdin: str, plain_json: str) -> None:
    """`--verify` runs the network in NumPy: every shape convcalc printed must hold."""
    code, out, err = invoke(["shapes", "-", "-f", "json", "--verify", "--max-memory", "64MiB"], stdin)
    if code == 2:  # refused before running (memory bound): not a disagreement
        assert "memory" in err, err
        return
    assert code == 0, err
    report = json.loads(out)
    assert report["verified"] is True
    shapes = [layer["output_shape"] for layer in report["layers"]]
    assert shapes == [layer["output_shape"] for layer in json.loads(plain_json)["layers"]]


# --- valid specs from the differential's generator: --verify confirms every shape -----------

def _generator():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "make_differential_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_differential_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


@settings(deadline=None, max_examples=200 * SCALE, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_valid_stacks_verify(seed):
    spec = GENERATOR.draw_stack(random.Random(seed))
    code, out = check(json.dumps(spec))
    assume(code == 0)
    verify(json.dumps(spec), out)


@settings(deadline=None, max_examples=200 * SCALE, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32 - 1))
def test_valid_single_layers_verify(seed):
    spec = GENERATOR.single_spec(GENERATOR.draw_single(random.Random(seed)))
    code, out = check(json.dumps(spec))
    assume(code == 0)
    verify(json.dumps(spec), out)


# --- regressions the fuzzer found ---------------------------------------------------------

def test_huge_adaptive_pool_and_linear_finish_with_the_exact_field():
    n, out = 10**12, 7
    spec = {"input": [3, n], "layers": [{"adaptiveavgpool1d": {"output_size": out}},
                                        {"linear": {"out_features": 3}}]}
    code, text = check(json.dumps(spec))
    assert code == 0
    pool, linear = json.loads(text)["layers"]
    widest = max(-(-((i + 1) * n) // out) - (i * n) // out for i in range(out))
    assert pool["receptive_field"]["size"] == [widest]
    assert linear["receptive_field"]["size"] == [n]  # every output reads the whole axis


def test_huge_kernels_after_a_strided_field_finish_quickly():
    """A 10^8-tap transposed conv (or 10^12-tap pool) behind a strided layer took minutes:
    every tap of every phase was listed to find the field's ends."""
    spec = {"input": [1, 10**8], "layers": [
        {"conv1d": {"out_channels": 1, "kernel_size": 3, "stride": 2}},
        {"convtranspose1d": {"out_channels": 1, "kernel_size": 10**8 - 1, "stride": 3}}]}
    code, text = check(json.dumps(spec))
    assert code == 0
    conv, transposed = json.loads(text)["layers"]
    n = (10**8 - 3) // 2 + 1
    assert transposed["output_shape"] == [1, (n - 1) * 3 + 10**8 - 1]
    # an output reads ceil(k / s) or floor(k / s) inputs, each with a field of 3 and jump 2
    assert transposed["receptive_field"]["size"] == [(-(-(10**8 - 1) // 3) - 1) * 2 + 3]


def test_transposed_taps_are_the_brute_force_taps():
    from convcalc.receptive import Transposed

    for k, s, d, pad in [(k, s, d, p) for k in range(1, 7) for s in range(1, 5)
                         for d in range(1, 5) for p in range(3)]:
        amap = Transposed(k, s, d, pad)
        for o in range(-4, 20):
            brute = sorted((o + pad - t * d) // s for t in range(k) if (o + pad - t * d) % s == 0)
            assert list(amap.taps(o)) == brute, (k, s, d, pad, o)


def test_empty_pool_with_a_huge_dilation_is_refused_at_once():
    # k_eff = 100000000 * (3 - 1) + 1; the smallest input was once found by counting up to it
    spec = {"input": [1, 8, 8], "layers": [{"maxpool2d": {"kernel_size": 3, "dilation": 10**8,
                                                          "ceil_mode": True, "stride": 2}}]}
    started = time.perf_counter()
    code, _, err = invoke(["shapes", "-"], json.dumps(spec))
    assert code == 2
    assert err.splitlines()[0].endswith(f"the smallest input that works is {10**8 * 2 + 1 - (2 - 1)}")
    assert time.perf_counter() - started < 1.0


def test_groups_not_dividing_a_huge_channel_count_is_refused_at_once():
    # the message lists divisors of in_channels; for 10^18 + 1 that took sqrt(n) = 10^9 steps
    spec = {"input": [10**18 + 1, 8, 8],
            "layers": [{"conv2d": {"out_channels": 7, "kernel_size": 1, "groups": 7}}]}
    started = time.perf_counter()
    code, _, err = invoke(["shapes", "-"], json.dumps(spec))
    assert code == 2 and f"groups=7 does not divide in_channels={10**18 + 1}" in err
    assert time.perf_counter() - started < 1.0
