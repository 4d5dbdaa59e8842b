"""A spec cannot run code, exhaust memory or time, or crash convcalc: every bound has a
clear message, and the bounds users may need to raise have an option."""

from __future__ import annotations

import re
import time
import tracemalloc

import pytest
import yaml

from convcalc.errors import LimitError, SpecError
from convcalc.spec import source
from convcalc.spec.parser import parse_text
from convcalc.spec.source import MAX_NODES, Source, compose

HEAD = "input: [3, 8, 8]\nlayers:\n"


def laughs(levels: int, fan: int = 10) -> str:
    """The billion-laughs file: each level is `fan` aliases of the previous one."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n" + HEAD + "  - relu\n"


def test_billion_laughs_is_refused_fast_and_small():
    text = laughs(9)  # 10**9 strings once expanded; the file is under 1 KB
    assert len(text) < 1000
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"expands to more than 5,000,000 YAML values"):
        parse_text(text, "lol.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_alias_expansion_just_under_the_bound_is_allowed():
    # 10 ** 6 expanded values (plus the containers) are under MAX_NODES = 5,000,000
    assert MAX_NODES == 5_000_000
    source = Source("ok.yaml", laughs(6))
    assert compose(source) is not None


def test_merge_key_bombs_are_bounded_too():
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for i in range(1, 25):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}], x{i}: [*m{i - 1}, *m{i - 1}]}}")
    started = time.perf_counter()
    with pytest.raises(LimitError):
        parse_text("\n".join(lines) + "\n" + HEAD + "  - relu\n", "merge.yaml")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:os.system ['touch {marker}']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!binary aGVsbG8=",
    "!!set {{a: null}}",
    "!custom 3",
])
def test_no_tag_constructs_anything(tag, tmp_path):
    marker = tmp_path / "pwned"
    text = HEAD + f"  - conv2d:\n      out_channels: {tag.format(marker=marker)}\n      kernel_size: 3\n"
    with pytest.raises(SpecError, match="tag .* is not allowed in a spec"):
        parse_text(text, "tag.yaml")
    assert not marker.exists()


def test_tags_are_refused_even_where_nothing_reads_them():
    text = "description: !!python/object/apply:os.getcwd []\n" + HEAD + "  - relu\n"
    with pytest.raises(SpecError, match=r"'!!python/object/apply:os.getcwd' is not allowed"):
        parse_text(text, "tag.yaml")


def test_plain_tags_and_date_like_values_are_fine():
    text = ("name: 2024-01-01\n" + HEAD
            + "  - conv2d: {out_channels: !!int '4', kernel_size: 3}\n")
    network = parse_text(text, "ok.yaml")
    assert network.name == "2024-01-01"
    assert network.leaves()[0].args["out_channels"] == 4


def test_recursive_alias_is_refused():
    # libyaml composes `&a [*a]` into a node that contains itself; walking it would not end
    with pytest.raises(SpecError, match="recursive alias"):
        parse_text("a: &a [*a]\n" + HEAD + "  - relu\n", "rec.yaml")


class PurePythonLoader(yaml.SafeLoader):
    """PyYAML built without libyaml: its parser recurses once per nesting level."""


class BoundedLoader(yaml.SafeLoader):
    """A parser with its own nesting bound, refusing as libyaml does from PyYAML 6.0.4 on
    (there at 1,000 levels; lower here so that Python's recursion limit is not reached first)."""

    def fetch_flow_collection_start(self, token_class: type) -> None:
        if self.flow_level >= 200:
            mark = self.get_mark()
            raise yaml.scanner.ScannerError("while increasing flow level", mark, "exceeded maximum nesting depth", mark)
        super().fetch_flow_collection_start(token_class)


NESTING_REFUSED = (r"(0 \(conv2d\): lists and mappings nest deeper than 50 levels in this value"
                   r"|lists and mappings nest too deeply for the YAML parser \(at most 50 levels are useful\))")


@pytest.mark.parametrize("loader", [None, PurePythonLoader, BoundedLoader], ids=["installed", "pure-python", "bounded"])
@pytest.mark.parametrize("depth", [60, 999, 5000])
@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_deeply_nested_values_are_refused_not_a_recursion_error(suffix, depth, loader, run, tmp_path, monkeypatch):
    # convcalc refuses past 50 levels; libyaml refuses past 1,000 itself from PyYAML 6.0.4 on, and
    # the pure-Python parser runs out of Python's recursion first. Whichever notices, the user sees
    # a convcalc limit with its place and exit status 2, never a syntax error or a traceback.
    if loader is not None:
        monkeypatch.setattr(source, "_Loader", loader)
    nested = "[" * depth + "]" * depth
    text = (HEAD + f"  - conv2d: {{out_channels: 3, kernel_size: {nested}}}\n" if suffix == "yaml" else
            f'{{"input": [3, 8, 8], "layers": [{{"conv2d": {{"out_channels": 3, "kernel_size": {nested}}}}}]}}\n')
    line = 3 if suffix == "yaml" else 1
    with pytest.raises(LimitError):
        parse_text(text, f"deep.{suffix}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"deep.{suffix}").write_text(text)
    result = run("shapes", f"deep.{suffix}")
    assert result.exit_code == 2
    headline = result.stderr.splitlines()[0]
    assert re.fullmatch(rf"error: deep\.{suffix}:{line}:\d+: {NESTING_REFUSED}", headline), headline


def test_deeply_nested_structures_are_refused():
    text = HEAD + "  - " + "{sequential: [" * 300 + "relu" + "]}" * 300 + "\n"
    with pytest.raises(LimitError, match="nest (deeper than 100 levels|too deeply)"):
        parse_text(text, "deep.yaml")


def test_numbers_too_long_to_read_are_refused():
    # Python refuses int('9' * 5000); convcalc says why instead of crashing
    with pytest.raises(SpecError, match="has more than 100 characters"):
        parse_text(HEAD + "  - conv2d: {out_channels: 3, kernel_size: " + "9" * 5000 + "}\n", "big.yaml")


def test_sizes_beyond_int64_are_refused():
    with pytest.raises(SpecError, match="beyond 2\\^63 - 1"):
        from convcalc.analysis import analyze

        analyze(parse_text(HEAD + "  - convtranspose2d: {out_channels: 3, kernel_size: 1,"
                           " stride: 100000000000000000000000}\n", "big.yaml"))
    with pytest.raises(SpecError, match="sizes must be below 2\\^63"):
        parse_text(f"input: [3, {2**63}, 8]\nlayers: [relu]\n", "big.yaml")


@pytest.mark.parametrize(("expression", "message"), [
    ("$(" + "+".join(["1"] * 2000) + ")", "longer than 1000 characters"),
    ("$(" + "-" * 990 + "1)", None),  # a legal but deep chain: evaluated or refused, never a crash
    ("$(0 ** -1)", "cannot evaluate"),
    ("$(max(1, 'a'))", "cannot evaluate"),
])
def test_expressions_never_crash(expression, message):
    text = HEAD + f"  - conv2d: {{out_channels: \"{expression}\", kernel_size: 3}}\n"
    try:
        parse_text(text, "expr.yaml")
    except SpecError as err:
        assert message is None or message in str(err)
    else:
        assert message is None


def test_squaring_chains_in_vars_stop_quickly():
    lines = ["vars:", "  a: 1152921504606846976"]
    lines += [f"  v{i}: ${'a' if i == 0 else f'v{i - 1}'} * ${'a' if i == 0 else f'v{i - 1}'}"
              for i in range(40)]
    started = time.perf_counter()
    with pytest.raises(SpecError, match="too large"):
        parse_text("\n".join(lines) + "\n" + HEAD + "  - relu\n", "square.yaml")
    assert time.perf_counter() - started < 1.0


def test_repeat_and_expansion_bounds_have_an_option(run, tmp_path):
    spec = tmp_path / "many.yaml"
    spec.write_text(HEAD + "  - relu: {repeat: 40}\n")
    refused = run("shapes", str(spec), "--max-layers", "30", "-f", "json")
    assert refused.exit_code == 2
    assert "'repeat: 40' exceeds the limit of 30 layers (raise it with --max-layers)" in refused.stderr
    assert run("shapes", str(spec), "--max-layers", "40", "-f", "json").exit_code == 0
    spec.write_text(HEAD + "  - relu: {repeat: 20}\n  - relu: {repeat: 20}\n")
    refused = run("shapes", str(spec), "--max-layers", "30", "-f", "json")
    assert refused.exit_code == 2
    assert "more than 30 layers (raise the limit with --max-layers)" in refused.stderr
    assert run("shapes", str(spec), "--max-layers", "40", "-f", "json").exit_code == 0


def test_nested_repeats_are_refused_quickly():
    """repeat inside repeat multiplies; the total is bounded while expanding."""
    text = ("input: [3, 8, 8]\nblocks:\n  wide:\n    layers:\n      - relu: {repeat: 1000}\n"
            "layers:\n  - wide: {repeat: 1000}\n")
    started = time.perf_counter()
    with pytest.raises(LimitError, match="more than 200,000 layers"):
        parse_text(text, "nested.yaml")
    assert time.perf_counter() - started < 10.0
