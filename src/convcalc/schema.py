"""The JSON Schema (draft-07) of the spec format, built from the layer registry.

Every layer type contributes its arguments (type, default, description) from its `Arg`s, so a
new layer type is in the schema the moment it is registered. Anywhere a value may be written,
a `$` expression (a string mentioning `$name` or `$(...)`, as the parser defines it) is
accepted too. Block names are the user's, so in a spec with `blocks:` an item that is a one-key
mapping to a name that is not a layer type or structure is accepted as a block call; in a spec
without `blocks:` (JSON Schema `if`/`then`) every item must be a layer type or a structure. A
number may also be text like `1e-6`, which convcalc reads as a number and YAML 1.1 loaders
(PyYAML) as text.

Pure: imports `analysis`, `budget`, `layers`, `lints`, and `spec.parser` and `spec.source`
constants only.
"""

from __future__ import annotations

from typing import Any

from convcalc import __version__
from convcalc.analysis import DTYPE_BYTES
from convcalc.budget import LIMITS
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.layers.base import REQUIRED, Arg, LayerType
from convcalc.layers.blocks import Parts
from convcalc.lints import CODES
from convcalc.spec.parser import (
    BLOCK_KEYS,
    PARALLEL_KEYS,
    RESERVED,
    RESIDUAL_KEYS,
    STRUCTURES,
    TOP_LEVEL_KEYS,
)
from convcalc.spec.source import EXPONENT_FLOAT

SCHEMA_ID = "https://convcalc.invalid/spec.schema.json"
KNOWN = ".known"  # suffix of the definitions for specs without blocks: every item names a layer type
EXPRESSION_DEF = {"type": "string", "pattern": r"\$[A-Za-z_(]",
                  "description": "A $ expression, e.g. '$planes * 4' or '$(c + g) // 2'."}
EXPRESSION = {"$ref": "#/definitions/expression"}
NAME_DEF = {"anyOf": [{"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"},
                      {"type": "integer", "minimum": 0}, EXPRESSION],
            "description": "Path segment of this item: letters, digits, _ and -; `$x` and `$(...)` in it"
                           " are replaced by their values."}
NAME = {"$ref": "#/definitions/name"}
RESERVED_DEFS = {
    "name": NAME_DEF,
    "repeat": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION,
                         {"type": "object", "properties": {
                             "count": {"anyOf": [{"type": "integer", "minimum": 0}, EXPRESSION]},
                             "index": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                                       "description": "Variable holding each copy's number, from 0."}},
                          "required": ["count"], "additionalProperties": False}],
               "description": "Repeat the item this many times; {count: N, index: i} numbers the copies as $i."},
    "when": {"anyOf": [{"type": "boolean"}, EXPRESSION],
             "description": "Leave the item out when false."},
    "from": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}],
             "description": "The earlier output this item reads instead of the previous item's, by"
                            " path as `shapes` prints it (`input`: the network input; a number is a"
                            " path; in a block, looked up in the block first, then outward)."},
}
RESERVED_PROPS = {key: {"$ref": f"#/definitions/{key}"} for key in RESERVED_DEFS}
assert tuple(RESERVED_PROPS) == RESERVED
# A standalone merge (`- add: {from: [a, b]}`) takes two or more paths and does not repeat.
FROM_LIST_DEF = {"type": "array", "items": {"$ref": "#/definitions/from"}, "minItems": 2,
                 "description": "The outputs a standalone concat, add or mul merges, by path, in order."}
MERGE_PROPS = {**{k: v for k, v in RESERVED_PROPS.items() if k != "repeat"},
               "from": {"$ref": "#/definitions/from_list"}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/definitions/{name}"}


# `1e-6` written plainly is a number to convcalc, text to a YAML 1.1 loader such as PyYAML's.
EXPONENT_TEXT = {"type": "string", "pattern": EXPONENT_FLOAT, "description": "A number like 1e-6."}


def with_expressions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` where every value, also inside lists, may be a `$` expression instead."""
    if schema.get("type") == "number":
        return {"anyOf": [schema, EXPONENT_TEXT, EXPRESSION]}
    out = dict(schema)
    for key in ("oneOf", "anyOf"):
        if key in out:
            out[key] = [_inner(s) for s in out[key]]
    if "items" in out:
        out["items"] = _inner(out["items"])
    return {"anyOf": [out, EXPRESSION]}


def _inner(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") in ("array", "number") or "oneOf" in schema or "anyOf" in schema:
        return with_expressions(schema)
    return {"anyOf": [schema, EXPRESSION]}


def json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    return value


def arg_schema(arg: Arg, rank: int) -> dict[str, Any]:
    schema = with_expressions(arg.kind.schema(rank))
    if arg.doc:
        schema["description"] = arg.doc
    if arg.default is not REQUIRED:
        schema["default"] = json_value(arg.default)
    return schema


def layer_definitions(layer_type: LayerType) -> dict[str, Any]:
    """`args.<type>` (the argument mapping) and `layer.<type>` (the list item)."""
    rank = layer_type.rank or 1
    required = [a.name for a in layer_type.args if a.required]
    merge = layer_type.name in MERGE_TYPES
    reserved = MERGE_PROPS if merge else RESERVED_PROPS
    args: dict[str, Any] = {
        "type": "object",
        "description": layer_type.summary,
        "properties": {**{a.name: arg_schema(a, rank) for a in layer_type.args}, **reserved},
        "additionalProperties": False,
    }
    if required:
        args["required"] = required
    value: dict[str, Any] = ref(f"args.{layer_type.name}")
    if not required:
        value = {"anyOf": [value, {"type": "null"}]}
    item: dict[str, Any] = {
        "type": "object",
        "description": layer_type.summary,
        "properties": {layer_type.name: value, **reserved},
        "required": [layer_type.name],
        "additionalProperties": False,
    }
    if merge:  # its inputs are written: `from` inside the arguments or beside the key
        item["anyOf"] = [{"required": ["from"]},
                         {"properties": {layer_type.name: {"type": "object", "required": ["from"]}}}]
    return {f"args.{layer_type.name}": args, f"layer.{layer_type.name}": item}


def structure_definitions(suffix: str = "") -> dict[str, Any]:
    """`structure.<s><suffix>` for residual, parallel and sequential, their lists `layers<suffix>`."""
    listed = ref(f"layers{suffix}")
    residual: dict[str, Any] = {
        "type": "object",
        "properties": {"body": listed, "shortcut": listed, "shortcut_name": NAME,
                       "skip": {"anyOf": [{"type": "boolean"}, EXPRESSION], "default": True,
                                "description": "false: the body alone (same paths), no shortcut and no add."},
                       "merge": {"anyOf": [{"enum": ["add", "concat"]}, EXPRESSION], "default": "add",
                                 "description": "add, or concat: the shortcut's channels, then the body's"},
                       "after": listed, **RESERVED_PROPS},
        "required": ["body"],
        "additionalProperties": False,
    }
    nameless = {"type": "null", "description": "The branch adds no path segment: its items sit at the parallel's path."}
    branch = {"anyOf": [listed, {"type": "object", "properties": {"name": {"anyOf": [NAME, nameless]},
                                                                  "layers": listed},
                                 "required": ["layers"], "additionalProperties": False}]}
    parallel: dict[str, Any] = {
        "type": "object",
        "properties": {"branches": {"type": "array", "items": branch, "minItems": 2},
                       "merge": {"anyOf": [{"enum": list(MERGE_TYPES)}, EXPRESSION], "default": "concat"},
                       "split": {**with_expressions(Parts().schema(1)),
                                 "description": "Branch i takes part i of the channels: N equal parts"
                                                " (torch.chunk) or a list of sizes (torch.split)."},
                       "after": listed, **RESERVED_PROPS},
        "required": ["branches"],
        "additionalProperties": False,
    }
    sequential = {"anyOf": [listed, {"type": "object", "properties": {"layers": listed, **RESERVED_PROPS},
                                     "required": ["layers"], "additionalProperties": False}]}
    assert _own_keys(residual) == set(RESIDUAL_KEYS)
    assert _own_keys(parallel) == set(PARALLEL_KEYS)
    bodies = {"residual": {"anyOf": [listed, residual]}, "parallel": parallel, "sequential": sequential}
    out = {}
    for structure, body in bodies.items():
        out[f"structure.{structure}{suffix}"] = {
            "type": "object",
            "description": {"residual": "Body added to a shortcut (identity when left out).",
                            "parallel": "Branches on the same input (or on parts of its channels, with"
                                        " split), merged by concat, add or mul.",
                            "sequential": "A group of layers with its own path segment."}[structure],
            "properties": {structure: body, **RESERVED_PROPS},
            "required": [structure],
            "additionalProperties": False,
        }
    return out



def _own_keys(structure: dict[str, Any]) -> set[str]:
    """The keys of a structure's schema, less the reserved ones (name, repeat, when)."""
    properties: dict[str, Any] = structure["properties"]
    return set(properties) - set(RESERVED)

def spec_schema() -> dict[str, Any]:
    """The whole schema, as a JSON-ready dict."""
    definitions: dict[str, Any] = {"expression": EXPRESSION_DEF, **RESERVED_DEFS, "from_list": FROM_LIST_DEF}
    names = REGISTRY.names()
    for name in names:
        definitions.update(layer_definitions(REGISTRY[name]))
    definitions.update(structure_definitions())
    definitions.update(structure_definitions(KNOWN))
    taken = [*names, *STRUCTURES]
    bare = [n for n in names if not any(a.required for a in REGISTRY[n].args) and n not in MERGE_TYPES]
    layer_items = [ref(f"layer.{n}") for n in names]
    definitions["block_call"] = {
        "type": "object",
        "description": "A block defined under `blocks:`, with its arguments.",
        "minProperties": 1,
        "propertyNames": {"not": {"enum": taken}},
        "properties": RESERVED_PROPS,
        "additionalProperties": {"type": ["object", "null"]},
    }
    bare_item = {"enum": bare, "description": "A layer type without required arguments."}
    definitions["item"] = {"anyOf": [
        bare_item,
        {"type": "string", "pattern": r"^[A-Za-z0-9_]+$", "not": {"enum": taken},
         "description": "A block without arguments."},
        *layer_items,
        *(ref(f"structure.{s}") for s in STRUCTURES),
        ref("block_call"),
    ]}
    # `items` applies to arrays only, so a bad item is reported (and underlined) where it is.
    definitions["layers"] = {"type": ["array", "null"], "items": ref("item")}
    # Without `blocks:` no name can be a block, so an item must be a layer type or a structure:
    # a typo such as `convv2d` is then flagged where it is written.
    definitions[f"item{KNOWN}"] = {"anyOf": [bare_item, *layer_items,
                                             *(ref(f"structure.{s}{KNOWN}") for s in STRUCTURES)]}
    definitions[f"layers{KNOWN}"] = {"type": ["array", "null"], "items": ref(f"item{KNOWN}")}
    block_props = {"args": {"type": ["object", "null"], "description": "Arguments and their defaults"
                            " (null: required)."},
                   "description": {"type": "string"},
                   "layers": ref("layers"),
                   "residual": {"anyOf": [ref("layers"), definitions["structure.residual"]["properties"]
                                          ["residual"]["anyOf"][1]]},
                   "parallel": definitions["structure.parallel"]["properties"]["parallel"],
                   "sequential": definitions["structure.sequential"]["properties"]["sequential"]}
    assert set(block_props) == set(BLOCK_KEYS)
    number = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number", "minimum": 0},
                        {"type": "string", "pattern": r"^\s*[0-9][0-9_,]*(\.[0-9]+)?\s*[A-Za-z]*\s*$"}]}
    shape = {"anyOf": [{"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                       {"type": "integer", "minimum": 1}, {"type": "string"}]}
    budget = {
        **{key: {**number, "description": limit.doc} for key, limit in LIMITS.items()},
        "expect_output": {"anyOf": [*shape["anyOf"], {"type": "array", "items": shape, "minItems": 1}],
                          "description": "Output shape without the batch; with several outputs, a list"
                                         " of shapes, one per output in the order of `outputs`."},
        "batch_size": {"type": "integer", "minimum": 1},
        "dtype": {"enum": list(DTYPE_BYTES)},
    }
    properties = {
        "name": {"type": ["string", "integer"], "description": "The network's name."},
        "description": {"type": "string"},
        "input": {"anyOf": [
            {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 4},
            {"type": "string", "pattern": r"^\s*\d+(\s*[xX×]\s*\d+){1,3}\s*$"}],
            "description": "Input shape without the batch: [C, L], [C, H, W] or [C, D, H, W], or 3x224x224."},
        "layers": ref("layers"),
        "blocks": {"type": "object", "description": "Reusable groups of layers with arguments.",
                   "additionalProperties": {"type": "object", "properties": block_props,
                                            "additionalProperties": False}},
        "vars": {"type": "object", "description": "Values that `$name` expressions can use."},
        "budget": {"type": "object", "properties": budget, "additionalProperties": False,
                   "description": "Limits for `convcalc check`."},
        "ignore": {"type": "array", "items": {"enum": list(CODES)},
                   "description": "Warning codes to leave out."},
        "outputs": {"anyOf": [ref("from"), {"type": "array", "items": ref("from"), "minItems": 1,
                                            "uniqueItems": True}],
                    "description": "The paths of the network's outputs, in order (default: the last"
                                   " item)."},
    }
    assert set(properties) == set(TOP_LEVEL_KEYS)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": f"convcalc network spec (convcalc {__version__})",
        "type": "object",
        "properties": properties,
        "required": ["input", "layers"],
        "additionalProperties": False,
        "if": {"not": {"required": ["blocks"]}},
        "then": {"properties": {"layers": ref(f"layers{KNOWN}")}},
        "definitions": definitions,
    }
