"""`convcalc schema` against the registry, the parser and every bundled example."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from conftest import EXAMPLES
from convcalc.analysis import analyze
from convcalc.errors import ArgumentError, SpecError
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.schema import spec_schema
from convcalc.spec.parser import RESERVED, parse_text

SCHEMA = spec_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def valid(spec) -> bool:
    return not list(VALIDATOR.iter_errors(spec))


def test_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates(path):
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text()))]
    assert not errors


def test_schema_and_registry_agree():
    definitions = SCHEMA["definitions"]
    for name in REGISTRY.names():
        layer_type = REGISTRY[name]
        args = definitions[f"args.{name}"]
        # a standalone merge does not repeat (it names its inputs)
        reserved = set(RESERVED) - ({"repeat"} if name in MERGE_TYPES else set())
        assert set(args["properties"]) == {*layer_type.arg_names, *reserved}, name
        assert set(args.get("required", [])) == {a.name for a in layer_type.args if a.required}, name
        assert {"$ref": f"#/definitions/layer.{name}"} in definitions["item"]["anyOf"], name
        for arg in layer_type.args:
            prop = args["properties"][arg.name]
            assert prop.get("description") == (arg.doc or None), (name, arg.name)
    described = {key.split(".", 1)[1] for key in definitions if key.startswith("layer.")}
    assert described == set(REGISTRY.names())


def values_to_try():
    return [0, 1, 2, -1, 3.5, True, None, "same", "valid", "zeros", "nearest", "tanh", "x", [1, 2], [2],
            [1, 2, 3], [[1, 2], [0, 1]], [1, None], [0, 0, 0, 0], "$k", [1, "$s"]]


def test_schema_accepts_exactly_what_the_parser_accepts():
    """For every argument of every layer type: a value is valid for the schema iff it parses.

    `$` strings are left out of the parser side (they are valid for the schema by design).
    """
    disagreements = []
    for name in REGISTRY.names():
        layer_type = REGISTRY[name]
        rank = layer_type.rank or 1
        for arg in layer_type.args:
            prop = SCHEMA["definitions"][f"args.{name}"]["properties"][arg.name]
            validator = jsonschema.Draft7Validator({**prop, "definitions": SCHEMA["definitions"]})
            for value in values_to_try():
                if "$" in json.dumps(value):
                    continue
                try:
                    arg.kind.parse(arg.name, value, rank)
                    parses = True
                except ArgumentError:
                    parses = False
                if parses != validator.is_valid(value):
                    disagreements.append((name, arg.name, value, parses))
    assert not disagreements


def test_expressions_anywhere_a_value_goes():
    spec = {"input": [3, 8, 8], "vars": {"k": 3},
            "layers": [{"conv2d": {"out_channels": "$k * 2", "kernel_size": ["$k", 1],
                                   "when": "not $skip", "repeat": "$n"}}]}
    assert valid(spec)


@pytest.mark.parametrize("spec", [
    {"input": [3, 8, 8], "layers": [{"conv2d": {"kernel": 3, "out_channels": 4}}]},
    {"input": [3, 8, 8], "layers": [{"conv2d": {"kernel_size": 0, "out_channels": 4}}]},
    {"input": [3, 8, 8], "layers": ["conv2d"]},
    {"input": [3, 8, 8], "layers": [{"residual": {"bdy": []}}]},
    {"input": [3, 8, 8], "layers": [{"parallel": {"branches": [["relu"]]}}]},
    {"input": [3, 8, 8]},
    {"input": [3, 8, 8], "layers": [], "extra": 1},
])
def test_invalid_specs_fail_the_schema_and_the_parser(spec):
    assert not valid(spec)
    with pytest.raises(SpecError):
        parse_text(json.dumps(spec), "spec.json")


@pytest.mark.parametrize("extra", [{"budget": {"max_param": 3}}, {"ignore": ["unread-pixel"]},
                                   {"budget": {"max_macs": "lots"}}])
def test_budget_and_ignore_mistakes_fail_the_schema_and_check(extra, run, tmp_path):
    spec = {"input": [3, 8, 8], "layers": ["relu"], **extra}
    assert not valid(spec)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert run("check", str(path)).exit_code == 2


def test_cli_prints_the_schema(run):
    result = run("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == SCHEMA
    compact = run("schema", "--compact").stdout
    assert "\n" not in compact.strip() and json.loads(compact) == SCHEMA


def test_without_blocks_every_item_must_name_a_layer_type():
    """A typo is underlined in an editor when the spec defines no blocks (if/then in the schema)."""
    typo = {"input": [3, 8, 8], "layers": [{"convv2d": {"out_channels": 4, "kernel_size": 3}}]}
    assert not valid(typo)
    assert not valid({"input": [3, 8, 8], "layers": ["rleu"]})
    nested = {"input": [3, 8, 8], "layers": [{"residual": {"body": [{"convv2d": {"out_channels": 3}}]}}]}
    assert not valid(nested)
    assert not valid({"input": [3, 8, 8], "layers": [{"parallel": {"branches": [["relu"], ["rleu"]]}}]})
    assert valid({"input": [3, 8, 8], "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3}}, "relu",
                                                  {"residual": {"body": ["relu"]}}]})
    # with blocks, any other name may be a block call: the schema cannot know the parser's list
    with_blocks = {**typo, "blocks": {"stem": {"layers": ["relu"]}}}
    assert valid(with_blocks)
    error = next(VALIDATOR.iter_errors(typo))
    assert list(error.absolute_path)[:2] == ["layers", 0]


@pytest.mark.parametrize(("expect", "ok"), [([10], True), ("4x8x8", True), ([[4, 8, 8], "2x4x4", 10], True),
                                            ([[4, 0]], False), ([], False), ([[]], False)])
def test_expected_outputs_one_shape_or_one_per_output(expect, ok):
    spec = {"input": [3, 8, 8], "layers": ["relu"], "budget": {"expect_output": expect}}
    assert valid(spec) == ok



# --- graphs: from, standalone merges, outputs, size_of -------------------------------------

GRAPH_HEAD = {"input": [3, 16, 16]}
STEM = [{"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1, "name": "a"}},
        {"conv2d": {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "name": "b"}}]


@pytest.mark.parametrize("extra", [
    [{"upsample": {"from": "b", "size_of": "a", "mode": "nearest", "name": "up"}},
     {"add": {"from": ["a", "up"]}}],
    ["relu", {"mul": {"from": ["b", 2, "b"]}}],               # a number is a path
    [{"concat": None, "from": ["a", "input"], "name": "cat"}],                # from beside the key
    [{"concat": {"from": ["a", "a"], "dim": -1}}],
    [{"centercrop": {"from": "input", "size_of": "b"}}, {"relu": None, "from": 2}],
    [{"sequential": {"from": "a", "layers": ["relu"]}}],
])
def test_graph_items_validate_and_parse(extra):
    spec = {**GRAPH_HEAD, "layers": [*STEM, *extra], "outputs": ["a", "b"]}
    errors = [e.message for e in VALIDATOR.iter_errors(spec)]
    assert errors == []
    analyze(parse_text(json.dumps(spec), "spec.json"))


@pytest.mark.parametrize(("extra", "outputs"), [
    ([{"add": {"from": ["a"]}}], None),                    # a merge takes two or more
    ([{"add": {"from": "a"}}], None),
    (["add"], None),                                      # a merge names its inputs
    ([{"add": None}], None),
    ([{"relu": {"from": ["a", "b"]}}], None),             # one path for a layer
    ([{"add": {"from": ["a", "b"], "repeat": 2}}], None),  # a standalone merge does not repeat
    ([{"concat": {"from": ["a", "b"], "dim": 0}}], None),   # not the batch
    ([], []),
    ([], ["a", "a"]),
    ([{"relu": {"from": ""}}], None),
])
def test_graph_mistakes_fail_the_schema_and_the_parser(extra, outputs):
    spec = {**GRAPH_HEAD, "layers": [*STEM, *extra]}
    if outputs is not None:
        spec["outputs"] = outputs
    assert not valid(spec)
    with pytest.raises(SpecError):
        network = parse_text(json.dumps(spec), "spec.json")
        analyze(network)


def test_block_arguments_may_be_paths():
    spec = {**GRAPH_HEAD, "blocks": {"merge_with": {"args": {"skip": None}, "layers": [
        {"conv2d": {"out_channels": 4, "kernel_size": 1, "name": "lat"}}, {"add": {"from": ["lat", "$skip"]}}]}},
        "layers": [*STEM[:1], {"merge_with": {"skip": "a"}}]}
    assert valid(spec)
