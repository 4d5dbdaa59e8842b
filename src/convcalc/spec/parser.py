"""Spec nodes into a `Network`: layer items, branches, blocks, `$` expressions, limits.

The format (README "Spec format"): a mapping with `input`, `layers` and optionally
`name`, `blocks`, `vars`, `budget`, `ignore`. Each item of a layer list is a layer type or block
name, bare or as a one-key mapping to its arguments; `residual`, `parallel` and
`sequential` build branches and groups. Reserved keys `name`, `repeat` and `when` may
sit beside the item's key or inside its arguments. Every error names the file, line,
column and the item's module path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import yaml

from convcalc.errors import ArgumentError, ConvcalcError, LimitError, Location, SpecError, suggest
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.layers.base import Args, describe
from convcalc.layers.blocks import Parts, parts
from convcalc.network import Fork, Layer, Network, Node, Ref, Sequence
from convcalc.records import record
from convcalc.spec.expressions import evaluate, interpolate, is_expression
from convcalc.spec.reserved import RESERVED_NAMES
from convcalc.spec.source import MERGE, STR, Source, compose, mapping_items, scalar, to_python

TOP_LEVEL_KEYS = ("name", "input", "layers", "outputs", "blocks", "vars", "budget", "ignore", "description")
RESERVED = ("name", "repeat", "when", "from")
STRUCTURES = ("residual", "parallel", "sequential")
RESIDUAL_KEYS = ("body", "shortcut", "shortcut_name", "skip", "merge", "after")
PARALLEL_KEYS = ("branches", "merge", "split", "after")
BLOCK_KEYS = ("args", "layers", *STRUCTURES, "description")
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
# A path segment (`name`, `shortcut_name`): also `-`, as in torchvision's `block1-0`.
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPEAT_KEYS = ("count", "index")
LITERALS = ("true", "false", "True", "False")  # names an expression reads as booleans

DEFAULT_MAX_LAYERS = 200_000
MAX_DEPTH = 100


@record
class Limits:
    max_layers: int = DEFAULT_MAX_LAYERS


@record
class Block:
    name: str
    params: tuple[tuple[str, Any], ...]  # name -> default (REQUIRED_ARG if none)
    body_key: str
    body: yaml.Node
    where: Location | None


REQUIRED_ARG = object()


class _Context:
    """What one parse shares (a plain class: mutable, and a dataclass costs start-up)."""

    def __init__(self, source: Source, blocks: dict[str, Block], limits: Limits) -> None:
        self.source = source
        self.blocks = blocks
        self.limits = limits
        self.leaves = 0
        self.stack: list[str] = []  # blocks being expanded
        self.references = 0  # `from:` / `size_of:` / `outputs:` paths, checked once lowered


class Parser:
    """One spec's reader; use `parse_spec` or `parse_text`.

    `overrides` replace the values of the spec's `vars` of the same names (`--set NAME=VALUE`,
    `convcalc.torch.build(spec, **set)`): later vars and every expression see the
    replacement, a string with `$` is evaluated as if written in the file, and a name the spec
    does not declare is an error listing the ones it does. `input_shape` replaces `input`.
    """

    def __init__(self, source: Source, limits: Limits, overrides: Mapping[str, Any] | None = None,
                 input_shape: tuple[int, ...] | None = None) -> None:
        self.source = source
        self.ctx = _Context(source, {}, limits)
        self.overrides = dict(overrides or {})
        self.input_override = input_shape
        # id(parsed args) -> (those args, kept alive so the id stays theirs; with broadcast)
        self.broadcast_args: dict[int, tuple[Args, Args]] = {}
        # (layer type, the text of its flow-style arguments) -> the parsed arguments, for
        # arguments whose text alone decides them (`literal_text`): big specs repeat a few layers.
        self.args_by_text: dict[tuple[str, str], Args] = {}

    def where(self, node: yaml.Node | None) -> Location | None:
        return self.source.where(node)

    def error(self, message: str, node: yaml.Node | None, path: str | None = None,
              layer_type: str | None = None, error_class: type[SpecError] = SpecError) -> SpecError:
        return error_class(message, where=self.where(node), path=path, layer_type=layer_type)

    # --- top level ------------------------------------------------------------------

    def network(self, root: yaml.Node) -> Network:
        if not isinstance(root, yaml.MappingNode):
            raise self.error("the top level of a spec must be a mapping with 'input' and 'layers',"
                             f" not {node_kind(root)}", root)
        top = {key: (key_node, value) for key, key_node, value in mapping_items(root, self.source)}
        for key, (key_node, _) in top.items():
            if key not in TOP_LEVEL_KEYS:
                raise self.error(
                    f"unknown top-level key '{key}' (expected one of {', '.join(TOP_LEVEL_KEYS)})"
                    + suggest(key, TOP_LEVEL_KEYS), key_node)
        for required in ("input", "layers"):
            if required not in top:
                raise self.error(f"the spec has no '{required}' ({REQUIRED_HINTS[required]})", root)
        scope: dict[str, Any] = {}
        if "vars" in top:
            scope = self.vars(top["vars"][1])
        unknown = [name for name in self.overrides if name not in scope]
        if unknown:
            have = f"its vars: {', '.join(scope)}" if scope else "it has no 'vars'"
            raise self.error(f"the spec has no var '{unknown[0]}' to set ({have})"
                             + suggest(unknown[0], scope), top["vars"][0] if "vars" in top else root)
        if "blocks" in top:
            self.blocks(top["blocks"][1])
        name = "network"
        if "name" in top:
            name_node = top["name"][1]
            value = self.value(name_node, scope)
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise self.error(f"'name' must be a string (got {describe(value)})", name_node)
            name = str(value)
        if self.input_override is not None:
            input_shape = checked_input(self.input_override, "--input")
        else:
            input_shape = self.input_shape(top["input"][1], scope)
        body = self.items(top["layers"][1], "", scope, depth=0)
        budget: tuple[tuple[str, Any, Location | None], ...] = ()
        if "budget" in top:
            budget = tuple(
                (key, self.value(value, scope), self.where(key_node))
                for key, key_node, value in mapping_items(top["budget"][1], self.source)
            )
        ignore = self.ignore(top["ignore"][1]) if "ignore" in top else ()
        outputs = self.outputs(top["outputs"][1]) if "outputs" in top else ()
        network = Network(name, input_shape, Sequence("", tuple(body)), self.where(root), budget, ignore, outputs,
                          origin=(self.source.name, self.source.text), overrides=tuple(self.overrides.items()))
        # Lowered now: unknown `from:` paths and a path used twice are spec errors here.
        network.graph  # noqa: B018
        check_paths(network.body)
        return network

    def outputs(self, node: yaml.Node) -> tuple[Ref, ...]:
        """`outputs: [path, ...]`: the network's outputs, in order."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        refs = [self.ref(item, {}, "", None, "outputs") for item in items]
        if not refs:
            raise self.error("'outputs' must list at least one path", node)
        seen: set[str] = set()
        for ref, item in zip(refs, items):
            if ref.path in seen:
                raise self.error(f"output '{ref.path}' is listed twice", item)
            seen.add(ref.path)
        return tuple(refs)

    def ref(self, node: yaml.Node, scope: Mapping[str, Any], prefix: str, path: str | None, what: str) -> Ref:
        """One path written in the spec (a name, a dotted path or a number)."""
        value = self.value(node, scope)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise self.error(f"'{what}' must be a path like backbone.stage3, input or 7"
                             f" (got {describe(value)})", node, path)
        self.ctx.references += 1
        return Ref(str(value), prefix, self.where(node))

    def sources(self, node: yaml.Node, scope: Mapping[str, Any], prefix: str, path: str,
                kind: str) -> tuple[Ref, ...]:
        """The paths of `from:`: one, or a merge's list of two or more."""
        if kind in MERGE_TYPES:
            if not isinstance(node, yaml.SequenceNode) or len(node.value) < 2:
                raise self.error(f"'from' of {kind} must be a list of two or more paths, like"
                                 " [lat3, up4]", node, path, kind)
            return tuple(self.ref(item, scope, prefix, path, "from") for item in node.value)
        if isinstance(node, yaml.SequenceNode):
            raise self.error(f"'from' of {kind} takes one path; only merges (concat, add, mul)"
                             " take a list", node, path, kind)
        return (self.ref(node, scope, prefix, path, "from"),)

    def ignore(self, node: yaml.Node) -> tuple[tuple[str, Location | None], ...]:
        """`ignore: [code, ...]`: warning codes to leave out (the CLI checks they exist)."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out = []
        for item in items:
            code = scalar(item, self.source) if isinstance(item, yaml.ScalarNode) else None
            if not isinstance(code, str):
                raise self.error("'ignore' must be a list of warning codes like [unread-pixels]", item)
            out.append((code, self.where(item)))
        return tuple(out)

    def vars(self, node: yaml.Node) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        for key, key_node, value in mapping_items(node, self.source):
            if not NAME_RE.match(key):
                raise self.error(f"variable name {key!r} must be letters, digits and _", key_node)
            if key in self.overrides:
                value = self.overrides[key]
                scope[key] = _substitute(value, scope) if is_expression(value) else value
            else:
                scope[key] = self.value(value, scope)
        return scope

    def input_shape(self, node: yaml.Node, scope: Mapping[str, Any]) -> tuple[int, ...]:
        """`input`: a list (whose sizes may be `$` expressions) or text like `3x224x224`."""
        raw = self.value(node, scope)
        try:
            return checked_input(raw, "'input'")
        except SpecError as err:
            raise err.located(where=self.where(node), path=None, layer_type=None) from None

    def blocks(self, node: yaml.Node) -> None:
        for name, key_node, body in mapping_items(node, self.source):
            if name in REGISTRY or name in STRUCTURES or name in MERGE_TYPES:
                raise self.error(f"block name '{name}' is already a layer type; choose another", key_node)
            if not NAME_RE.match(name):
                raise self.error(f"block name {name!r} must be letters, digits and _", key_node)
            items = {k: (kn, v) for k, kn, v in mapping_items(body, self.source)}
            for key, (kn, _) in items.items():
                if key not in BLOCK_KEYS:
                    raise self.error(
                        f"unknown key '{key}' in block '{name}' (expected args and one of"
                        f" layers, residual, parallel, sequential){suggest(key, BLOCK_KEYS)}", kn)
            bodies = [k for k in ("layers", *STRUCTURES) if k in items]
            if len(bodies) != 1:
                raise self.error(
                    f"block '{name}' needs exactly one of layers, residual, parallel or sequential"
                    f" (found {', '.join(bodies) or 'none'})", key_node)
            params: list[tuple[str, Any]] = []
            if "args" in items:
                for arg, arg_key, default in mapping_items(items["args"][1], self.source):
                    if not NAME_RE.match(arg):
                        raise self.error(f"block argument name {arg!r} must be letters, digits and _", arg_key)
                    value = to_python(default, self.source)
                    params.append((arg, REQUIRED_ARG if value is None else value))
            self.ctx.blocks[name] = Block(name, tuple(params), bodies[0], items[bodies[0]][1], self.where(key_node))

    # --- values ---------------------------------------------------------------------

    def value(self, node: yaml.Node, scope: Mapping[str, Any]) -> Any:
        """A node's plain value with `$` expressions evaluated in `scope`."""
        if isinstance(node, yaml.ScalarNode):  # most arguments: no list, no expression
            raw = scalar(node, self.source)
            if not isinstance(raw, str) or ("$" not in raw and "(" not in raw):
                return raw
            name = raw[1:]
            if raw[0] == "$" and name in scope and name.isidentifier() and name not in LITERALS:
                return scope[name]  # `$out`: a block argument, without the expression machinery
        else:
            raw = to_python(node, self.source)
        try:
            return _substitute(raw, scope)
        except ConvcalcError as err:
            raise err.located(where=self.where(node), path=None, layer_type=None) from None

    # --- layer lists ----------------------------------------------------------------

    def items(self, node: yaml.Node, prefix: str, scope: Mapping[str, Any], depth: int) -> list[Node]:
        if depth > MAX_DEPTH:
            raise self.error(f"branches and blocks nest deeper than {MAX_DEPTH} levels", node,
                             prefix or None, error_class=LimitError)
        if isinstance(node, yaml.ScalarNode) and scalar(node, self.source) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error("a layer list must be a YAML list (items starting with '- '),"
                             f" not {node_kind(node)}", node, prefix or None)
        out: list[Node] = []
        names: dict[str, yaml.Node] = {}
        index = 0
        types = REGISTRY.types
        for item in node.value:
            if (type(item) is yaml.ScalarNode and item.tag == STR and item.value in types
                    and item.value not in MERGE_TYPES):
                # `- relu`: a layer without arguments (what `item` would make of it, sooner)
                out.append(self.layer(item.value, item, None, _join(prefix, str(index)), scope))
                index += 1
                continue
            built = self.item(item, prefix, index, scope, depth, names)
            out.extend(built)
            index += _numbered(built, prefix)
        return out

    def item(self, node: yaml.Node, prefix: str, index: int, scope: Mapping[str, Any], depth: int,
             names: dict[str, yaml.Node]) -> list[Node]:
        head, head_node, args_node, reserved = self.split_item(node, prefix, index)
        if not reserved:  # most items: one layer or group at the next index
            return [self.build(head, head_node, args_node, prefix, str(index), scope, depth)]
        when = reserved.get("when")
        if when is not None and not self.truth(when, scope, _join(prefix, str(index))):
            return []
        repeat, counter = 1, None
        if "repeat" in reserved:
            repeat, counter = self.repeat(reserved["repeat"], scope, _join(prefix, str(index)))

        def copy_scope(i: int) -> Mapping[str, Any]:
            return scope if counter is None else {**scope, counter: i}

        name = None
        if "name" in reserved:
            if counter is not None and _mentions(reserved["name"], counter):
                # The name uses the copy's index: each copy is a sibling with its own name.
                copies = []
                for i in range(repeat):
                    inner = copy_scope(i)
                    segment = self.name(reserved["name"], inner, names)
                    copies.append(self.build(head, head_node, args_node, prefix, segment, inner, depth))
                return [Sequence(prefix, tuple(copies), repeat=repeat, where=self.where(head_node))]
            name = self.name(reserved["name"], scope, names)
        if head in MERGE_TYPES and "from" in reserved:
            segment = name if name is not None else str(index)
            path = _join(prefix, segment)
            if "repeat" in reserved:
                raise self.error(f"a standalone {head} cannot repeat", reserved["repeat"], path, head)
            sources = self.sources(reserved["from"], scope, prefix, path, head)
            merge = self.layer(head, head_node, args_node, path, scope)
            # Every add and mul broadcasts as torch does; the flag is kept for the standalone ones.
            return [Layer(merge.path, merge.type, self.broadcasting(merge.args), merge.where, sources)]
        if "from" in reserved:
            segment = name if name is not None else str(index)
            path = _join(prefix, segment)
            source = self.sources(reserved["from"], scope, prefix, path, head)[0]
            built = self.item_body(head, head_node, args_node, prefix, index, scope, depth, name, repeat,
                                   "repeat" in reserved, counter)
            first = built[0]
            if isinstance(first, Layer):
                return [replace(first, sources=(source,)), *built[1:]]
            if isinstance(first, Sequence) and len(built) == 1:
                return [replace(first, source=source)]
            return [Sequence(first.path, tuple(built), source=source, where=first.where)]
        return self.item_body(head, head_node, args_node, prefix, index, scope, depth, name, repeat,
                              "repeat" in reserved, counter)

    def broadcasting(self, args: Args) -> Args:
        """`args` with `broadcast: true`, shared by the merges that share `args` (parsed
        arguments are memoised by value), so the analysis infers each kind of merge once."""
        hit = self.broadcast_args.get(id(args))
        if hit is None:
            hit = self.broadcast_args[id(args)] = (args, MappingProxyType({**args, "broadcast": True}))
        return hit[1]

    def item_body(self, head: str, head_node: yaml.Node, args_node: yaml.Node | None, prefix: str, index: int,
                  scope: Mapping[str, Any], depth: int, name: str | None, repeat: int,
                  repeated: bool, counter: str | None = None) -> list[Node]:
        """One list item built, without its `from:` (which `item` attaches); `counter` is the
        variable of `repeat: {count, index}` that numbers the copies."""

        def copy_scope(i: int) -> Mapping[str, Any]:
            return scope if counter is None else {**scope, counter: i}

        if name is not None and repeat != 1:
            group = _join(prefix, name)
            children = [self.build(head, head_node, args_node, group, str(i), copy_scope(i), depth)
                        for i in range(repeat)]
            return [Sequence(group, tuple(children), repeat=repeat, where=self.where(head_node))]
        if name is not None:
            return [self.build(head, head_node, args_node, prefix, name, copy_scope(0), depth)]
        copies = [self.build(head, head_node, args_node, prefix, str(index + i), copy_scope(i), depth)
                  for i in range(repeat)]
        if not repeated:
            return copies
        # An unnamed repeat adds no path segment: its copies are numbered among their siblings.
        return [Sequence(prefix, tuple(copies), repeat=repeat, where=self.where(head_node))]

    def split_item(self, node: yaml.Node, prefix: str, index: int
                   ) -> tuple[str, yaml.Node, yaml.Node | None, dict[str, yaml.Node]]:
        """(head: the layer type, block or structure word; its key node; its value node; reserved
        keys) of one list item."""
        path = _join(prefix, str(index))
        if isinstance(node, yaml.ScalarNode):
            head = scalar(node, self.source)
            if not isinstance(head, str):
                raise self.error(f"a layer item must be a layer type or a mapping, got {describe(head)}", node, path)
            return head, node, None, {}
        if isinstance(node, yaml.SequenceNode):
            raise self.error("a layer item cannot be a list; to group layers write"
                             " 'sequential: [...]'", node, path)
        reserved: dict[str, yaml.Node] = {}
        heads = []
        for key, key_node, value in mapping_items(node, self.source):
            if key in RESERVED:
                reserved[key] = value
            else:
                heads.append((key, key_node, value))
        if len(heads) != 1:
            if not heads:
                raise self.error("this item has no layer type (only "
                                 f"{', '.join(reserved)})", node, path)
            dedented = self.dedented(heads, path)
            if dedented is not None:
                raise dedented
            raise self.error(
                f"one item has several layer keys ({', '.join(k for k, _, _ in heads)}); each list"
                " item is one layer, so put each on its own '- ' line", heads[1][1], path)
        head, key_node, value = heads[0]
        if not isinstance(value, yaml.MappingNode) or not any(
            k.value in RESERVED or k.tag == MERGE for k, _ in value.value
        ):
            return head, key_node, value, reserved
        if head not in ("residual", "parallel"):
            inner = []
            for key, inner_key, inner_value in mapping_items(value, self.source):
                if key in RESERVED:
                    if key in reserved:
                        raise self.error(f"'{key}' is given twice (beside and inside the item)", inner_key, path)
                    reserved[key] = inner_value
                else:
                    inner.append((inner_key, inner_value))
            value = yaml.MappingNode(value.tag, inner, value.start_mark, value.end_mark)
        else:
            for key in RESERVED:
                for inner_key, inner_value in value.value:
                    if inner_key.value == key and key in reserved:
                        raise self.error(f"'{key}' is given twice (beside and inside the item)", inner_key, path)
                    if inner_key.value == key:
                        reserved[key] = inner_value
            value = yaml.MappingNode(value.tag, [(k, v) for k, v in value.value if k.value not in RESERVED],
                                     value.start_mark, value.end_mark)
        return head, key_node, value, reserved

    def dedented(self, heads: list[tuple[str, yaml.Node, yaml.Node]], path: str) -> SpecError | None:
        """The error for arguments written beside their layer instead of under it, if that is it.

        `padding: 1` one indent too far left lands in the item's mapping next to `conv2d:`; when
        every extra key is an argument of the one layer type (or block) among the keys, say so.
        """
        for head, _, _ in heads:
            if head in REGISTRY:
                names: tuple[str, ...] = REGISTRY[head].arg_names
            elif head in self.ctx.blocks:
                names = tuple(arg for arg, _ in self.ctx.blocks[head].params)
            else:
                continue
            extra = [(key, node) for key, node, _ in heads if key != head]
            if not all(key in names for key, _ in extra):
                return None
            listed = ", ".join(f"'{key}'" for key, _ in extra[:-1])
            listed = f"{listed} and '{extra[-1][0]}'" if listed else f"'{extra[0][0]}'"
            many = len(extra) > 1
            value = next(v for k, _, v in heads if k == head)
            if isinstance(value, yaml.MappingNode) and value.flow_style:
                fix = f"move {'them' if many else 'it'} inside the braces of '{head}: {{...}}'"
            else:
                fix = f"indent {'them' if many else 'it'} under '{head}:' (two spaces more than '{head}')"
            return self.error(
                f"{listed} {'are arguments' if many else 'is an argument'} of {head} but"
                f" {'sit' if many else 'sits'} beside it, at the level of '{head}:'; {fix}",
                extra[0][1], path, head)
        return None

    def truth(self, node: yaml.Node, scope: Mapping[str, Any], path: str, key: str = "when") -> bool:
        value = self.value(node, scope)
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false (got {describe(value)})", node, path)
        return value

    def repeat(self, node: yaml.Node, scope: Mapping[str, Any], path: str) -> tuple[int, str | None]:
        """`repeat: N`, or `repeat: {count: N, index: i}`, which gives each copy `$i` (0 to N-1)."""
        if not isinstance(node, yaml.MappingNode):
            return self.count(node, scope, path), None
        entries = {k: (kn, v) for k, kn, v in mapping_items(node, self.source)}
        for key, (key_node, _) in entries.items():
            if key not in REPEAT_KEYS:
                raise self.error(f"unknown key '{key}' in repeat (expected count and index)"
                                 + suggest(key, REPEAT_KEYS), key_node, path)
        if "count" not in entries:
            raise self.error("'repeat' as a mapping needs 'count' (how many copies) and may name an"
                             " 'index' (each copy's number, from 0)", node, path)
        count = self.count(entries["count"][1], scope, path)
        if "index" not in entries:
            return count, None
        index_node = entries["index"][1]
        counter = scalar(index_node, self.source) if isinstance(index_node, yaml.ScalarNode) else None
        if not isinstance(counter, str) or not IDENTIFIER_RE.match(counter):
            raise self.error("'index' names the variable that holds each copy's number: a letter or _,"
                             f" then letters, digits or _ (got {describe(to_python(index_node, self.source))})",
                             index_node, path)
        return count, counter

    def count(self, node: yaml.Node, scope: Mapping[str, Any], path: str) -> int:
        value = self.value(node, scope)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.error(f"'repeat' must be a non-negative int (got {describe(value)})", node, path)
        if value > self.ctx.limits.max_layers:
            raise self.error(
                f"'repeat: {value}' exceeds the limit of {self.ctx.limits.max_layers:,} layers"
                " (raise it with --max-layers)", node, path, error_class=LimitError)
        return value

    def name(self, node: yaml.Node, scope: Mapping[str, Any], names: dict[str, yaml.Node]) -> str:
        """A path segment; `$x` and `$(...)` inside it are replaced by their values (`block$s-$i`)."""
        raw = scalar(node, self.source) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(raw, str) and "$" in raw:
            try:
                value: Any = interpolate(raw, scope)
            except ConvcalcError as err:
                raise err.located(where=self.where(node), path=None, layer_type=None) from None
        else:
            value = self.value(node, scope)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not SEGMENT_RE.match(str(value)):
            raise self.error(f"'name' must be letters, digits, _ and - (no dots), got {describe(value)}", node)
        text = str(value)
        if text in RESERVED_NAMES:
            raise self.error(f"name {text!r} cannot be used: PyTorch modules have an attribute {text!r}, so no"
                             " submodule can be called that; choose another", node)
        if text in names:
            first = self.where(names[text])
            at = f" at line {first.line}" if first else ""
            raise self.error(f"name '{text}' is used twice in this list (first{at});"
                             " paths must be unique", node)
        names[text] = node
        return text

    def build(self, head: str, head_node: yaml.Node, args_node: yaml.Node | None, prefix: str,
              segment: str, scope: Mapping[str, Any], depth: int) -> Node:
        path = _join(prefix, segment)
        if head in MERGE_TYPES:
            raise self.error(
                f"'{head}' is where branches meet; write it as 'residual:' or 'parallel:' with"
                f" merge: {head}, or give its inputs as from: [a, b]", head_node, path)
        if head in REGISTRY.types:
            return self.layer(head, head_node, args_node, path, scope)
        if head == "sequential":
            node = args_node
            if isinstance(node, yaml.MappingNode):
                entries = {k: (kn, v) for k, kn, v in mapping_items(node, self.source)}
                unknown = [k for k in entries if k != "layers"]
                if unknown or "layers" not in entries:
                    raise self.error("'sequential' takes a list of layers, or {layers: [...]}", node, path)
                node = entries["layers"][1]
            if node is None:
                raise self.error("'sequential' needs a list of layers", head_node, path)
            return Sequence(path, tuple(self.items(node, path, scope, depth + 1)), where=self.where(head_node))
        if head == "residual":
            return self.residual(head_node, args_node, path, scope, depth)
        if head == "parallel":
            return self.parallel(head_node, args_node, path, scope, depth)
        if head in self.ctx.blocks:
            return self.block(head, head_node, args_node, path, scope, depth)
        known = [n for n in REGISTRY.names() if n not in MERGE_TYPES] + list(self.ctx.blocks) + list(STRUCTURES)
        raise self.error(f"unknown layer type '{head}'{suggest(head.lower(), known)}"
                         " (see `convcalc layers` for the list)", head_node, path)

    def layer(self, type_name: str, head_node: yaml.Node, args_node: yaml.Node | None, path: str,
              scope: Mapping[str, Any]) -> Layer:
        text = literal_text(args_node, self.source)
        args = self.args_by_text.get((type_name, text)) if text is not None else None
        shape_of = None
        if args is None:
            args, shape_of = self.layer_args(type_name, head_node, args_node, path, scope)
            if text is not None:
                self.args_by_text[(type_name, text)] = args
        self.ctx.leaves += 1
        if self.ctx.leaves > self.ctx.limits.max_layers:
            raise self.error(f"the spec expands to more than {self.ctx.limits.max_layers:,} layers"
                             " (raise the limit with --max-layers)", head_node, path, type_name, LimitError)
        return Layer(path, REGISTRY.types[type_name], args, self.source.where(head_node), (), shape_of)

    def layer_args(self, type_name: str, head_node: yaml.Node, args_node: yaml.Node | None, path: str,
                   scope: Mapping[str, Any]) -> tuple[Args, Ref | None]:
        """A layer's arguments, checked and normalised, and its `size_of:` reference."""
        layer_type = REGISTRY[type_name]
        raw: dict[str, Any] = {}
        arg_nodes: dict[str, yaml.Node] = {}
        shape_of: Ref | None = None
        if args_node is not None and not (isinstance(args_node, yaml.ScalarNode)
                                           and scalar(args_node, self.source) is None):
            if not isinstance(args_node, yaml.MappingNode):
                raise self.error(
                    f"the arguments of {type_name} must be a mapping like {{kernel_size: 3}}, got"
                    f" {describe(to_python(args_node, self.source))}", args_node, path, type_name)
            for arg, arg_key, value in mapping_items(args_node, self.source):
                if arg not in layer_type.arg_names:
                    expected = ", ".join(layer_type.arg_names) or "none"
                    raise self.error(f"unknown argument '{arg}'{suggest(arg, layer_type.arg_names)}"
                                     f" ({type_name} takes: {expected})", arg_key, path, type_name, ArgumentError)
                if arg == "size_of":
                    shape_of = self.ref(value, scope, _split(path)[0], path, "size_of")
                    raw[arg] = shape_of.path
                    arg_nodes[arg] = value
                    continue
                try:
                    raw[arg] = self.value(value, scope)
                except ConvcalcError as err:
                    raise err.located(where=None, path=path, layer_type=type_name) from None
                arg_nodes[arg] = value
        try:
            args = layer_type.parse_args(raw)
        except ArgumentError as err:
            node = arg_nodes.get(err.arg or "", head_node)
            raise err.located(where=self.where(node), path=path, layer_type=type_name) from None
        return args, shape_of

    def structure_keys(self, structure: str, node: yaml.Node | None, allowed: tuple[str, ...], path: str
                       ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"'{structure}' takes a mapping with {', '.join(allowed)}", node, path)
        entries = {k: (kn, v) for k, kn, v in mapping_items(node, self.source)}
        for key, (kn, _) in entries.items():
            if key not in allowed:
                raise self.error(f"unknown key '{key}' in {structure} (expected {', '.join(allowed)})"
                                 + suggest(key, allowed), kn, path)
        return entries

    def residual(self, kind_node: yaml.Node, node: yaml.Node | None, path: str,
                 scope: Mapping[str, Any], depth: int) -> Node:
        if isinstance(node, yaml.SequenceNode):  # residual: [...] is body with identity shortcut
            body = self.items(node, path, scope, depth + 1)
            return Fork(path, (Sequence(path, tuple(body)), Sequence(path)), MERGE_TYPES["add"],
                        _join(path, "add"), self.where(kind_node))
        entries = self.structure_keys("residual", node, RESIDUAL_KEYS, path)
        if "body" not in entries:
            raise self.error("'residual' needs a 'body' (the layers whose output is added to the"
                             " shortcut)", node, path)
        body = self.items(entries["body"][1], path, scope, depth + 1)
        skip = True
        if "skip" in entries:
            skip = self.truth(entries["skip"][1], scope, path, "skip")
        shortcut_name = "shortcut"
        if "shortcut_name" in entries:
            shortcut_name = self.name(entries["shortcut_name"][1], scope, {})
        shortcut_path = _join(path, shortcut_name)
        shortcut: list[Node] = []
        if "shortcut" in entries:
            shortcut = self.items(entries["shortcut"][1], shortcut_path, scope, depth + 1)
        if not skip:
            # No skip connection: the body alone, at the same paths, without shortcut and merge.
            alone = Sequence(path, tuple(body))
            return self.with_after(alone, entries, path, _numbered(body, path), scope, depth)
        merge = "add"
        if "merge" in entries:
            merge = self.value(entries["merge"][1], scope)
            if merge not in ("add", "concat"):
                raise self.error(f"'merge' must be 'add' or 'concat' (got {describe(merge)})",
                                 entries["merge"][1], path)
        branches = (Sequence(path, tuple(body)), Sequence(shortcut_path, tuple(shortcut)))
        if merge == "concat":  # the shortcut's channels first, then the body's (DenseNet's order)
            branches = branches[::-1]
        fork = Fork(path, branches, MERGE_TYPES[merge], _join(path, merge), self.where(kind_node))
        return self.with_after(fork, entries, path, _numbered(body, path), scope, depth)

    def with_after(self, fork: Fork | Sequence, entries: dict[str, tuple[yaml.Node, yaml.Node]], path: str,
                   first_index: int, scope: Mapping[str, Any], depth: int) -> Node:
        """A fork (or a residual's body alone) followed by its `after` layers, numbered after the
        branch items."""
        if "after" not in entries:
            return fork
        after_node = entries["after"][1]
        if not isinstance(after_node, yaml.SequenceNode):
            raise self.error("'after' must be a list of layers", after_node, path)
        after: list[Node] = []
        names: dict[str, yaml.Node] = {}
        index = first_index
        for item in after_node.value:
            built = self.item(item, path, index, scope, depth + 1, names)
            after.extend(built)
            index += _numbered(built, path)
        return Sequence(path, (fork, *after))

    def parallel(self, kind_node: yaml.Node, node: yaml.Node | None, path: str,
                 scope: Mapping[str, Any], depth: int) -> Node:
        entries = self.structure_keys("parallel", node, PARALLEL_KEYS, path)
        if "branches" not in entries or not isinstance(entries["branches"][1], yaml.SequenceNode):
            raise self.error("'parallel' needs 'branches': a list of layer lists", node, path)
        merge = "concat"
        if "merge" in entries:
            merge = self.value(entries["merge"][1], scope)
            if merge not in MERGE_TYPES:
                raise self.error(f"'merge' must be one of {', '.join(repr(m) for m in MERGE_TYPES)}"
                                 f" (got {describe(merge)})",
                                 entries["merge"][1], path)
        branches: list[Sequence] = []
        names: dict[str, yaml.Node] = {}
        for i, branch in enumerate(entries["branches"][1].value):
            segment: str | None = str(i)
            layers = branch
            if isinstance(branch, yaml.MappingNode):
                fields = self.structure_keys("a branch", branch, ("name", "layers"), path)
                if "layers" not in fields:
                    raise self.error("a named branch needs 'layers'", branch, path)
                if "name" in fields:
                    name_node = fields["name"][1]
                    if isinstance(name_node, yaml.ScalarNode) and scalar(name_node, self.source) is None:
                        segment = None  # name: null: the branch's items sit at the parallel's path
                    else:
                        segment = self.name(name_node, scope, names)
                layers = fields["layers"][1]
            branch_path = path if segment is None else _join(path, segment)
            branches.append(Sequence(branch_path, tuple(self.items(layers, branch_path, scope, depth + 1))))
        if len(branches) < 2:
            raise self.error("'parallel' needs at least two branches", entries["branches"][1], path)
        split = self.split(entries["split"][1], scope, path, len(branches)) if "split" in entries else None
        fork = Fork(path, tuple(branches), MERGE_TYPES[merge], _join(path, merge), self.where(kind_node),
                    split)
        return self.with_after(fork, entries, path, len(branches), scope, depth)

    def split(self, node: yaml.Node, scope: Mapping[str, Any], path: str, branches: int) -> int | tuple[int, ...]:
        """`split: N` (N equal parts of the channels) or `split: [sizes]`, one part per branch."""
        value = self.value(node, scope)
        try:
            split = Parts().parse("split", value, 1)
        except ArgumentError as err:
            raise self.error(str(err), node, path) from None
        count = parts(split)
        if count != branches:
            raise self.error(f"'split: {describe(value)}' makes {count} part{'s' * (count != 1)} but the"
                             f" parallel has {branches} branches; give one branch per part", node, path)
        return split

    def block(self, block_name: str, head_node: yaml.Node, args_node: yaml.Node | None, path: str,
              scope: Mapping[str, Any], depth: int) -> Node:
        block = self.ctx.blocks[block_name]
        if block_name in self.ctx.stack:
            chain = " -> ".join([*self.ctx.stack[self.ctx.stack.index(block_name):], block_name])
            raise self.error(f"block '{block_name}' uses itself ({chain})", head_node, path)
        given: dict[str, Any] = {}
        if args_node is not None and not (isinstance(args_node, yaml.ScalarNode)
                                           and scalar(args_node, self.source) is None):
            if not isinstance(args_node, yaml.MappingNode):
                raise self.error(f"the arguments of block '{block_name}' must be a mapping", args_node, path,
                                 block_name)
            names = [n for n, _ in block.params]
            for arg, arg_key, value in mapping_items(args_node, self.source):
                if arg not in names:
                    raise self.error(f"block '{block_name}' has no argument '{arg}'{suggest(arg, names)}"
                                     f" (it takes: {', '.join(names) or 'none'})", arg_key, path, block_name)
                try:
                    given[arg] = self.value(value, scope)
                except ConvcalcError as err:
                    raise err.located(where=None, path=path, layer_type=block_name) from None
        inner = dict(scope)
        for arg, default in block.params:
            if arg in given:
                inner[arg] = given[arg]
            elif default is REQUIRED_ARG:
                raise self.error(f"block '{block_name}' needs argument '{arg}'", head_node, path, block_name)
            else:
                inner[arg] = default
        self.ctx.stack.append(block_name)
        try:
            if block.body_key == "layers":
                body: Node = Sequence(path, tuple(self.items(block.body, path, inner, depth + 1)))
            else:
                body = self.build(block.body_key, head_node, block.body, *_split(path), inner, depth + 1)
        finally:
            self.ctx.stack.pop()
        # The tree remembers the call (which block, with which arguments) for the
        # consumers that show blocks; the graph only sees its layers.
        called = tuple((arg, inner[arg]) for arg, _ in block.params)
        where = self.where(head_node)
        if isinstance(body, Sequence):
            return replace(body, block=block_name, block_args=called, where=where)
        return Sequence(path, (body,), block=block_name, block_args=called, where=where)


def checked_input(raw: Any, what: str = "'input'") -> tuple[int, ...]:
    """An input shape from a list of sizes or text like `3x224x224`, or a SpecError naming `what`."""
    if isinstance(raw, str):
        parts = raw.lower().replace("×", "x").split("x")
        if all(p.strip().isdigit() for p in parts):
            raw = [int(p) for p in parts]
    elif isinstance(raw, tuple):
        raw = list(raw)
    ok = isinstance(raw, list) and 2 <= len(raw) <= 4
    ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw)
    if not ok:
        raise SpecError(f"{what} must be a shape without the batch, [C, L], [C, H, W] or [C, D, H, W]"
                        f" with positive sizes (got {describe(raw)})")
    if max(raw) >= 2**63:
        raise SpecError(f"{what} sizes must be below 2^63, the largest size a PyTorch tensor"
                        f" can have (got {describe(raw)})")
    return tuple(raw)


REQUIRED_HINTS = {
    "input": "the input shape without the batch, e.g. input: [3, 224, 224]",
    "layers": "the list of layers, e.g. layers: [conv2d: {out_channels: 64, kernel_size: 3}]",
}


def node_kind(node: yaml.Node) -> str:
    """What the user wrote instead, in YAML's words, for messages."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return f"the single value {node.value!r}"


def check_paths(root: Sequence) -> None:
    """No path is both a layer and a group of layers: each path is one PyTorch module (`body`
    named like the shortcut, say, is refused). Lowering has checked that no two layers share one."""
    groups: set[str] = set()
    leaves: dict[str, Location | None] = {}
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Layer):
            leaves[node.path] = node.where
        elif isinstance(node, Sequence):
            groups.add(node.path)
            stack.extend(node.items)
        else:
            groups.add(node.path)
            leaves[node.merge_path] = node.where
            stack.extend(node.branches)
    for path, where in leaves.items():
        if path in groups:
            raise SpecError("this path names a layer and also a group of layers (a branch, block or shortcut"
                            " of that name); rename one", where=where, path=path)


def _numbered(items: list[Node], prefix: str) -> int:
    """How many item numbers `items` of the list at `prefix` used.

    Each item uses one, except an unnamed repeat (a `Sequence` at the list's own path),
    whose copies are numbered among their siblings.
    """
    if len(items) == 1 and not isinstance(items[0], Sequence):  # most items: one layer
        return 1
    return sum(len(item.items) if isinstance(item, Sequence) and item.repeat is not None
               and item.path == prefix else 1 for item in items)


def literal_text(node: yaml.Node | None, source: Source) -> str | None:
    """The text of a flow mapping (`{out_channels: 64, kernel_size: 3}`) when that text alone
    decides its value: no `$` or call, alias, anchor, tag, merge key or `size_of:` path; "" for
    no arguments (`- relu`, or only reserved keys). Else None."""
    if node is None or isinstance(node, yaml.MappingNode) and not node.value:
        return ""
    if not isinstance(node, yaml.MappingNode) or not node.flow_style:
        return None
    text = source.text[node.start_mark.index:node.end_mark.index]
    return None if _NOT_LITERAL.search(text) else text


_NOT_LITERAL = re.compile(r"[$(*&!<]|size_of")  # expressions, calls, aliases, anchors, tags, merge keys, paths


def _mentions(node: yaml.Node, variable: str) -> bool:
    """Does the name written at `node` use `$variable` (directly or inside `$(...)`)?"""
    text = node.value if isinstance(node, yaml.ScalarNode) else ""
    return re.search(r"\$(\([^$]*)?\b" + re.escape(variable) + r"\b", str(text)) is not None


def _join(prefix: str, segment: str) -> str:
    return f"{prefix}.{segment}" if prefix else segment


def _split(path: str) -> tuple[str, str]:
    prefix, _, segment = path.rpartition(".")
    return prefix, segment


def _substitute(value: Any, scope: Mapping[str, Any]) -> Any:
    if is_expression(value):
        return evaluate(value, scope)
    if isinstance(value, list):
        return [_substitute(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, scope) for k, v in value.items()}
    return value


def declared_vars(root: yaml.Node, source: Source) -> tuple[str, ...]:
    """The names under the spec's top-level `vars`, in order (none when it has no vars)."""
    if not isinstance(root, yaml.MappingNode):
        return ()
    for key, _, value in mapping_items(root, source):
        if key == "vars" and isinstance(value, yaml.MappingNode):
            return tuple(name for name, _, _ in mapping_items(value, source))
    return ()


def parse_spec(source: Source, limits: Limits | None = None, overrides: Mapping[str, Any] | None = None,
               input_shape: tuple[int, ...] | str | None = None, *, root: yaml.Node | None = None) -> Network:
    """The library's entry point: parse a spec's text, with `vars` overridden by `overrides`
    (name -> value, as `--set NAME=VALUE`) and `input` replaced by `input_shape` (`3x256x256`
    or a tuple), both optional. Every problem is a located `SpecError`. `root` is the text
    already composed (`convcalc.spec.source.compose(source)`), for a caller that keeps it."""
    shape = None if input_shape is None else checked_input(input_shape, "--input")
    return Parser(source, limits or Limits(), overrides, shape).network(compose(source) if root is None else root)


def parse_text(text: str, name: str = "<spec>", limits: Limits | None = None,
               overrides: Mapping[str, Any] | None = None,
               input_shape: tuple[int, ...] | str | None = None) -> Network:
    """Parse spec text; errors carry `name` as the file (see `parse_spec`)."""
    return parse_spec(Source(name, text), limits, overrides, input_shape)
