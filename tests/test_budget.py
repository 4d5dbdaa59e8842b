"""Number parsing with suffixes, the spec's budget: mapping, and budget evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import report_of
from convcalc.budget import evaluate, from_spec, override, parse_number, parse_shape, parse_shapes
from convcalc.errors import Location, SpecError
from convcalc.spec.parser import parse_text


@pytest.mark.parametrize(("text", "value"), [
    ("25.6M", 25_600_000), ("4.1G", 4_100_000_000), ("64MiB", 64 * 2**20), ("64mib", 64 * 2**20),
    ("2GB", 2 * 10**9), ("1.5GiB", 3 * 2**29), ("0.5K", 500), ("12", 12), ("1,000", 1000),
    ("1_000", 1000), ("1e9", 10**9), ("3T", 3 * 10**12), (7, 7), (2.5e6, 2_500_000), ("0", 0),
])
def test_numbers_with_suffixes(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("1.5", "must be a whole number"), ("2Q", "must be a number like 25.6M"), ("-1", "must not be negative"),
    ("nan", "finite"), (True, "must be a number"), ("", "must be a number"), ([1], "must be a number"),
])
def test_bad_numbers(text, message):
    with pytest.raises(ValueError, match=message):
        parse_number(text)


def test_binary_suffixes_are_refused_where_bytes_make_no_sense():
    with pytest.raises(ValueError, match="suffixes: K, M, G, T = 1000s"):
        parse_number("2KiB", allow_bytes=False)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["", "K", "M", "G", "KiB", "MiB", "GiB"]))
def test_integer_times_suffix(n, suffix):
    factor = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[suffix]
    assert parse_number(f"{n}{suffix}") == n * factor


def test_shapes():
    assert parse_shape(1000) == (1000,)
    assert parse_shape("64x56x56") == (64, 56, 56)
    assert parse_shape([3, 4]) == (3, 4)
    with pytest.raises(ValueError, match="must be a shape"):
        parse_shape("64xx")


def test_spec_budget_is_validated_with_its_position():
    where = Location("net.yaml", 4, 3)
    with pytest.raises(SpecError, match="unknown budget key 'max_param' .*; did you mean 'max_params'") as err:
        from_spec([("max_param", 10, where)])
    assert err.value.where == where
    with pytest.raises(SpecError, match="budget 'max_macs' must be a number"):
        from_spec([("max_macs", "lots", where)])


NET = """
name: tiny
input: [3, 8, 8]
budget: {max_params: 100, max_macs: 10K, expect_output: [4, 8, 8], batch_size: 2}
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
"""


def test_evaluate_against_arithmetic():
    network = parse_text(NET, "net.yaml")
    budget = from_spec(network.budget)
    assert budget.batch_size == 2
    report = report_of(NET, batch_size=2)
    params, macs = 4 * 3 * 3 * 3 + 4, 2 * 8 * 8 * 4 * 3 * 3 * 3
    outcomes = {o.name: o for o in evaluate(report, budget)}
    assert (outcomes["max_params"].measured, outcomes["max_params"].ok) == (params, False)
    assert (outcomes["max_macs"].measured, outcomes["max_macs"].ok) == (macs, False)
    assert outcomes["expect_output"].ok
    assert outcomes["max_params"].origin == "spec line 4"
    assert outcomes["max_params"].describe() == f"params {params} > limit 100 (spec line 4)"


def test_limits_are_inclusive_and_flags_override_the_spec():
    network = parse_text(NET, "net.yaml")
    report = report_of(NET)
    params = 4 * 3 * 3 * 3 + 4
    budget = override(from_spec(network.budget), {"max_params": params, "max_macs": None}, ((5,),))
    outcomes = {o.name: o for o in evaluate(report, budget)}
    assert outcomes["max_params"].ok and outcomes["max_params"].origin == "--max-params"
    assert outcomes["max_macs"].origin == "spec line 4"
    assert not outcomes["expect_output"].ok
    assert outcomes["expect_output"].describe() == "output 4x8x8 != expected 5 (--expect-output)"


def test_expected_outputs_parse_as_one_shape_or_one_per_output():
    assert parse_shapes([1000]) == ((1000,),)
    assert parse_shapes("64x56x56") == ((64, 56, 56),)
    assert parse_shapes(7) == ((7,),)
    assert parse_shapes([[256, 64, 64], "256x32x32", 10]) == ((256, 64, 64), (256, 32, 32), (10,))
    assert parse_shapes(["10"]) == ((10,),)
    with pytest.raises(ValueError, match=r"^budget 'expect_output' must be a shape without the batch like 1000 or"
                       r" 64x56x56, or a list of them, one per output \(got \[\[4, 0\], 3\]\)$"):
        parse_shapes([[4, 0], 3], "budget 'expect_output'")


TWO = """
input: [3, 8, 8]
outputs: [a, b]
budget: {expect_output: [[4, 8, 8], 2x4x4]}
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: a}
  - conv2d: {out_channels: 2, kernel_size: 2, stride: 2, name: b}
"""


def test_each_output_against_its_expected_shape():
    network = parse_text(TWO, "net.yaml")
    report = report_of(TWO)
    outcomes = evaluate(report, from_spec(network.budget))
    assert [(o.output, o.measured, o.limit, o.ok) for o in outcomes] == [
        ("a", (4, 8, 8), (4, 8, 8), True), ("b", (2, 4, 4), (2, 4, 4), True)]
    assert [o.describe() for o in outcomes] == ["output a 4x8x8 == expected 4x8x8 (spec line 4)",
                                                "output b 2x4x4 == expected 2x4x4 (spec line 4)"]
    wrong = evaluate(report, override(from_spec(network.budget), {}, ((4, 8, 8), (2, 3, 3))))
    assert [o.describe() for o in wrong] == ["output a 4x8x8 == expected 4x8x8 (--expect-output)",
                                             "output b 2x4x4 != expected 2x3x3 (--expect-output)"]
    short = evaluate(report, override(from_spec(network.budget), {}, ((4, 8, 8),)))
    assert [(o.ok, o.describe()) for o in short] == [
        (True, "output a 4x8x8 == expected 4x8x8 (--expect-output)"),
        (False, "output b 2x4x4 has no expected shape: the network has 2 outputs, give one shape per"
                " output (--expect-output)")]
    extra = evaluate(report, override(from_spec(network.budget), {}, ((4, 8, 8), (2, 4, 4), (9,))))
    assert (extra[-1].ok, extra[-1].describe()) == (
        False, "expected 9 for output 3, but the network has 2 outputs (--expect-output)")
