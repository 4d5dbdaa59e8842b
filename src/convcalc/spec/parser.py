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
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from convcalc.errors import ArgumentError, ConvcalcError, LimitError, Location, SpecError, suggest
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.layers.base import describe
from convcalc.network import Fork, Layer, Network, Node, Sequence
from convcalc.spec.expressions import evaluate, interpolate, is_expression, references
from convcalc.spec.reserved import RESERVED_NAMES
from convcalc.spec.source import MERGE, Source, compose, mapping_items, scalar, to_python

TOP_LEVEL_KEYS = ("name", "input", "layers", "blocks", "vars", "budget", "ignore", "description")
RESERVED = ("name", "repeat", "when")
STRUCTURES = ("residual", "parallel", "sequential")
RESIDUAL_KEYS = ("body", "shortcut", "shortcut_name", "merge", "after")
PARALLEL_KEYS = ("branches", "merge", "after")
BLOCK_KEYS = ("args", "layers", *STRUCTURES, "description")
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
INDEX = "i"  # the name a repeated item's copy number (from 0) has in its expressions

DEFAULT_MAX_LAYERS = 200_000
MAX_DEPTH = 100


@dataclass(frozen=True)
class Limits:
    max_layers: int = DEFAULT_MAX_LAYERS


@dataclass(frozen=True)
class Block:
    name: str
    params: tuple[tuple[str, Any], ...]  # name -> default (REQUIRED_ARG if none)
    body_key: str
    body: yaml.Node
    where: Location | None


REQUIRED_ARG = object()


@dataclass
class _Context:
    source: Source
    blocks: dict[str, Block]
    limits: Limits
    leaves: int = 0
    stack: list[str] = field(default_factory=list)  # blocks being expanded


class Parser:
    """One spec's reader; use `parse_spec` or `parse_text`."""

    def __init__(self, source: Source, limits: Limits, overrides: Mapping[str, Any] | None = None) -> None:
        self.source = source
        self.ctx = _Context(source, {}, limits)
        self.overrides = dict(overrides or {})

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
        unknown = [key for key in self.overrides if key not in scope]
        if unknown:
            known = ", ".join(scope) if scope else "none: the spec has no 'vars'"
            raise self.error(f"cannot set {unknown[0]!r}: it is not a var of this spec (its vars: {known})",
                             top["vars"][0] if "vars" in top else root)
        if "blocks" in top:
            self.blocks(top["blocks"][1])
        name = "network"
        if "name" in top:
            name_node = top["name"][1]
            value = scalar(name_node, self.source)
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise self.error(f"'name' must be a string (got {describe(value)})", name_node)
            name = str(value)
        input_shape = self.input_shape(top["input"][1])
        body = self.items(top["layers"][1], "", scope, depth=0)
        budget: tuple[tuple[str, Any, Location | None], ...] = ()
        if "budget" in top:
            budget = tuple(
                (key, to_python(value, self.source), self.where(key_node))
                for key, key_node, value in mapping_items(top["budget"][1], self.source)
            )
        ignore = self.ignore(top["ignore"][1]) if "ignore" in top else ()
        root_sequence = Sequence("", tuple(body))
        check_paths(root_sequence)
        return Network(name, input_shape, root_sequence, self.where(root), budget, ignore,
                       origin=(self.source.name, self.source.text), overrides=tuple(self.overrides.items()))

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
            scope[key] = self.overrides[key] if key in self.overrides else self.value(value, scope)
        return scope

    def input_shape(self, node: yaml.Node) -> tuple[int, ...]:
        raw = to_python(node, self.source)
        if isinstance(raw, str):
            parts = raw.lower().replace("×", "x").split("x")
            if all(p.strip().isdigit() for p in parts):
                raw = [int(p) for p in parts]
        ok = isinstance(raw, list) and 2 <= len(raw) <= 4
        ok = ok and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in raw)
        if not ok:
            raise self.error(
                f"'input' must be a shape without the batch, [C, L], [C, H, W] or [C, D, H, W]"
                f" with positive sizes (got {describe(raw)})", node)
        if max(raw) >= 2**63:
            raise self.error(f"'input' sizes must be below 2^63, the largest size a PyTorch tensor"
                             f" can have (got {describe(raw)})", node)
        return tuple(raw)

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
            if not isinstance(raw, str) or "$" not in raw:
                return raw
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
        for item in node.value:
            built = self.item(item, prefix, index, scope, depth, names)
            out.extend(built)
            index += _numbered(built, prefix)
        return out

    def item(self, node: yaml.Node, prefix: str, index: int, scope: Mapping[str, Any], depth: int,
             names: dict[str, yaml.Node]) -> list[Node]:
        head, head_node, args_node, reserved = self.split_item(node, prefix, index)
        when = reserved.get("when")
        if when is not None and not self.truth(when, scope, _join(prefix, str(index))):
            return []
        if "repeat" not in reserved:
            name = self.name(reserved["name"], scope, names) if "name" in reserved else str(index)
            return [self.build(head, head_node, args_node, prefix, name, scope, depth)]
        repeat = self.count(reserved["repeat"], scope, _join(prefix, str(index)))
        # Each copy sees its number as $i (from 0), in its arguments and in its name.
        scopes = [{**scope, INDEX: i} for i in range(repeat)]
        where = self.where(head_node)
        name_node = reserved.get("name")
        if name_node is not None and INDEX in name_references(name_node, self.source):
            # A name that uses $i names every copy: they are siblings, as if written n times.
            copies = [self.build(head, head_node, args_node, prefix, self.name(name_node, s, names), s, depth)
                      for s in scopes]
            return [Sequence(prefix, tuple(copies), repeat=repeat, where=where)]
        if name_node is not None:
            name = self.name(name_node, scope, names)
            if repeat == 1:
                return [self.build(head, head_node, args_node, prefix, name, scopes[0], depth)]
            group = _join(prefix, name)
            children = [self.build(head, head_node, args_node, group, str(i), s, depth) for i, s in enumerate(scopes)]
            return [Sequence(group, tuple(children), repeat=repeat, where=where)]
        copies = [self.build(head, head_node, args_node, prefix, str(index + i), s, depth)
                  for i, s in enumerate(scopes)]
        # An unnamed repeat adds no path segment: its copies are numbered among their siblings.
        return [Sequence(prefix, tuple(copies), repeat=repeat, where=where)]

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

    def truth(self, node: yaml.Node, scope: Mapping[str, Any], path: str) -> bool:
        value = self.value(node, scope)
        if not isinstance(value, bool):
            raise self.error(f"'when' must be true or false (got {describe(value)})", node, path)
        return value

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
        raw = scalar(node, self.source) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(raw, str) and is_expression(raw) and not raw.lstrip().startswith("$"):
            try:  # text with expressions in it: denselayer$(i + 1)
                value: Any = interpolate(raw, scope)
            except ConvcalcError as err:
                raise err.located(where=self.where(node), path=None, layer_type=None) from None
        else:
            value = self.value(node, scope)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not NAME_RE.match(str(value)):
            raise self.error(f"'name' must be letters, digits and _ (no dots), got {describe(value)}", node)
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
                f" merge: {head}", head_node, path)
        if head in REGISTRY:
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
        layer_type = REGISTRY[type_name]
        raw: dict[str, Any] = {}
        arg_nodes: dict[str, yaml.Node] = {}
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
        self.ctx.leaves += 1
        if self.ctx.leaves > self.ctx.limits.max_layers:
            raise self.error(f"the spec expands to more than {self.ctx.limits.max_layers:,} layers"
                             " (raise the limit with --max-layers)", head_node, path, type_name, LimitError)
        return Layer(path, layer_type, args, self.where(head_node))

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
        shortcut_name = "shortcut"
        if "shortcut_name" in entries:
            shortcut_name = self.name(entries["shortcut_name"][1], scope, {})
        shortcut_path = _join(path, shortcut_name)
        shortcut: list[Node] = []
        if "shortcut" in entries:
            shortcut = self.items(entries["shortcut"][1], shortcut_path, scope, depth + 1)
        merge = "add"
        if "merge" in entries:
            merge = self.value(entries["merge"][1], scope)
            if merge not in MERGE_TYPES:
                raise self.error(f"'merge' must be 'add' or 'concat' (got {describe(merge)})",
                                 entries["merge"][1], path)
        branches = (Sequence(path, tuple(body)), Sequence(shortcut_path, tuple(shortcut)))
        if merge == "concat":  # the shortcut's channels first, then the body's (DenseNet's order)
            branches = branches[::-1]
        fork = Fork(path, branches, MERGE_TYPES[merge], _join(path, merge), self.where(kind_node))
        return self.with_after(fork, entries, path, _numbered(body, path), scope, depth)

    def with_after(self, fork: Fork, entries: dict[str, tuple[yaml.Node, yaml.Node]], path: str,
                   first_index: int, scope: Mapping[str, Any], depth: int) -> Node:
        """A fork followed by its `after` layers, numbered after the branch items."""
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
                raise self.error(f"'merge' must be 'concat' or 'add' (got {describe(merge)})",
                                 entries["merge"][1], path)
        branches: list[Sequence] = []
        names: dict[str, yaml.Node] = {}
        for i, branch in enumerate(entries["branches"][1].value):
            segment, layers = str(i), branch
            if isinstance(branch, yaml.MappingNode):
                fields = self.structure_keys("a branch", branch, ("name", "layers"), path)
                if "layers" not in fields:
                    raise self.error("a named branch needs 'layers'", branch, path)
                if "name" in fields:
                    segment = self.name(fields["name"][1], scope, names)
                layers = fields["layers"][1]
            branch_path = _join(path, segment)
            branches.append(Sequence(branch_path, tuple(self.items(layers, branch_path, scope, depth + 1))))
        if len(branches) < 2:
            raise self.error("'parallel' needs at least two branches", entries["branches"][1], path)
        fork = Fork(path, tuple(branches), MERGE_TYPES[merge], _join(path, merge), self.where(kind_node))
        return self.with_after(fork, entries, path, len(branches), scope, depth)

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


def name_references(node: yaml.Node, source: Source) -> set[str]:
    """The names a `name:` value's expressions use ($i, block arguments, vars)."""
    raw = scalar(node, source) if isinstance(node, yaml.ScalarNode) else None
    return references(raw) if isinstance(raw, str) else set()


def check_paths(root: Sequence) -> None:
    """Every layer and merge has its own path, and no path is both a layer and a group of
    layers: each path is one PyTorch module (`body` named like the shortcut, say, is refused)."""
    groups: set[str] = set()
    leaves: dict[str, Location | None] = {}

    def leaf(path: str, where: Location | None) -> None:
        if path in leaves:
            raise SpecError("another layer has this path too; rename one", where=where, path=path)
        leaves[path] = where

    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Layer):
            leaf(node.path, node.where)
        elif isinstance(node, Sequence):
            groups.add(node.path)
            stack.extend(node.items)
        else:
            groups.add(node.path)
            leaf(node.merge_path, node.where)
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
    return sum(len(item.items) if isinstance(item, Sequence) and item.repeat is not None
               and item.path == prefix else 1 for item in items)


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


def parse_text(text: str, name: str = "<spec>", limits: Limits | None = None,
               overrides: Mapping[str, Any] | None = None) -> Network:
    """Parse spec text; errors carry `name` as the file; `overrides` replace `vars` by name."""
    source = Source(name, text)
    return Parser(source, limits or Limits(), overrides).network(compose(source))
