"""A spec as written, for exporters: its vars, blocks and layer lists with the expressions kept.

The parser evaluates every `$` expression while it expands blocks and repeats; an exported
network needs them unevaluated (a block becomes a class whose arguments are constructor
parameters). `read_template` reads the same YAML with the parser's own rules for items,
reserved keys and structures, into `Item`s that keep raw values (an expression stays a
string), and `Uses` links each template layer to the layers it became in the parsed
network (by source position), so an exporter can ask which values a layer takes and which
input shapes it sees.

Imports `errors`, `graph`, `layers`, `network`, `analysis` and `spec` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from convcalc.analysis import Report
from convcalc.errors import Location, SpecError
from convcalc.graph import INPUT
from convcalc.layers import MERGE_TYPES, REGISTRY, Args, Shape
from convcalc.network import Fork, Layer, Network, Sequence
from convcalc.records import record
from convcalc.spec.expressions import is_expression, references
from convcalc.spec.parser import PARALLEL_KEYS, RESIDUAL_KEYS, STRUCTURES, Limits, Parser
from convcalc.spec.source import Source, compose, mapping_items, scalar, to_python

REQUIRED = object()  # a block argument without a default
NAMELESS = "<nameless>"  # a branch written with `name: null`: its items sit at the fork's path
TreeNode = Layer | Sequence | Fork


class ExportError(SpecError):
    """A spec convcalc accepts that the exporter cannot write (said why, at the item)."""


@dataclass
class Item:
    """One item of a layer list as written: a layer, a block call or a structure."""

    head: str  # layer type, block name, or residual / parallel / sequential
    where: Location | None
    args: dict[str, Any] = field(default_factory=dict)  # raw: an expression stays a string
    name: Any = None  # raw, or None
    repeat: Any = None  # raw count, or None when not repeated
    index: str | None = None  # `repeat: {count, index: i}`: the name each copy's number has
    when: Any = None  # raw, or None
    source: Any = None  # raw `from:` (a path, a list of paths for a merge), or None
    # structures
    items: list[Item] = field(default_factory=list)  # sequential; a residual's body
    shortcut: list[Item] = field(default_factory=list)
    shortcut_name: Any = "shortcut"
    branches: list[tuple[Any, list[Item]]] = field(default_factory=list)  # (raw name, NAMELESS or None, items)
    merge: Any = None
    after: list[Item] = field(default_factory=list)
    skip: Any = True  # a residual's `skip`, raw
    split: Any = None  # a parallel's `split`, raw

    @property
    def is_layer(self) -> bool:
        return self.head in REGISTRY

    def expressions(self) -> Iterator[Any]:
        """Every raw value of this item and the items inside it (for the names they use)."""
        yield from (self.name, self.repeat, self.when, self.merge, self.shortcut_name, self.source, self.skip,
                    self.split, *self.args.values())
        for name, items in self.branches:
            yield None if name is NAMELESS else name
            for item in items:
                yield from item.expressions()
        for item in (*self.items, *self.shortcut, *self.after):
            yield from item.expressions()


@dataclass
class Block:
    name: str
    params: list[tuple[str, Any]]  # (name, default or REQUIRED), in the spec's order
    body: Item  # a `sequential` item for `layers:` bodies
    description: str | None
    where: Location | None


@dataclass
class Template:
    name: str
    file: str
    input_shape: tuple[int, ...]
    vars: list[tuple[str, Any]]  # (name, raw value), in order
    blocks: dict[str, Block]
    layers: list[Item]


def names_used(value: Any) -> set[str]:
    """The names the `$` expressions in a raw value use."""
    if isinstance(value, str):
        return references(value) if is_expression(value) else set()
    if isinstance(value, list):
        return set().union(*(names_used(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(names_used(v) for v in value.values())) if value else set()
    return set()


def has_expression(value: Any) -> bool:
    return bool(names_used(value)) or (isinstance(value, str) and is_expression(value))


class _Reader:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.parser = Parser(source, Limits())

    def where(self, node: yaml.Node | None) -> Location | None:
        return self.source.where(node)

    def raw(self, node: yaml.Node | None) -> Any:
        if node is None:
            return None
        return to_python(node, self.source)

    def items(self, node: yaml.Node | None) -> list[Item]:
        if node is None or (isinstance(node, yaml.ScalarNode) and scalar(node, self.source) is None):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise ExportError("a layer list must be a YAML list", where=self.where(node))
        return [self.item(child) for child in node.value]

    def item(self, node: yaml.Node) -> Item:
        head, head_node, args_node, reserved = self.parser.split_item(node, "", 0)
        item = Item(head, self.where(head_node), name=self.raw(reserved.get("name")),
                    when=self.raw(reserved.get("when")), source=self.raw(reserved.get("from")))
        repeat = reserved.get("repeat")
        if isinstance(repeat, yaml.MappingNode):  # repeat: {count: N, index: i}
            entries = {key: value for key, _, value in mapping_items(repeat, self.source)}
            item.repeat = self.raw(entries.get("count"))
            index = self.raw(entries.get("index"))
            item.index = index if isinstance(index, str) else None
        else:
            item.repeat = self.raw(repeat)
        self.body(item, head, args_node)
        return item

    def body(self, item: Item, head: str, node: yaml.Node | None) -> None:
        """Fill `item` from the value of its head key."""
        if head == "sequential":
            if isinstance(node, yaml.MappingNode):
                node = dict((k, v) for k, _, v in mapping_items(node, self.source)).get("layers")
            item.items = self.items(node)
        elif head == "residual":
            item.merge = "add"
            if isinstance(node, yaml.SequenceNode):  # residual: [...], a body and the identity
                item.items = self.items(node)
                return
            entries = self.parser.structure_keys("residual", node, RESIDUAL_KEYS, "")
            item.items = self.items(entries["body"][1]) if "body" in entries else []
            item.shortcut = self.items(entries["shortcut"][1]) if "shortcut" in entries else []
            if "shortcut_name" in entries:
                item.shortcut_name = self.raw(entries["shortcut_name"][1])
            item.merge = self.raw(entries["merge"][1]) if "merge" in entries else "add"
            item.after = self.items(entries["after"][1]) if "after" in entries else []
            item.skip = self.raw(entries["skip"][1]) if "skip" in entries else True
        elif head == "parallel":
            entries = self.parser.structure_keys("parallel", node, PARALLEL_KEYS, "")
            for branch in entries["branches"][1].value:
                name, layers = None, branch
                if isinstance(branch, yaml.MappingNode):
                    fields = dict((k, v) for k, _, v in mapping_items(branch, self.source))
                    name, layers = self.raw(fields.get("name")), fields.get("layers")
                    if "name" in fields and name is None:
                        name = NAMELESS
                item.branches.append((name, self.items(layers)))
            item.merge = self.raw(entries["merge"][1]) if "merge" in entries else "concat"
            item.after = self.items(entries["after"][1]) if "after" in entries else []
            item.split = self.raw(entries["split"][1]) if "split" in entries else None
        elif node is not None and not (isinstance(node, yaml.ScalarNode) and scalar(node, self.source) is None):
            item.args = {key: self.raw(value) for key, _, value in mapping_items(node, self.source)}

    def block(self, name: str, key_node: yaml.Node, node: yaml.Node) -> Block:
        entries = {k: (kn, v) for k, kn, v in mapping_items(node, self.source)}
        params: list[tuple[str, Any]] = []
        if "args" in entries:
            for arg, _, default in mapping_items(entries["args"][1], self.source):
                value = self.raw(default)
                params.append((arg, REQUIRED if value is None else value))
        kind = next(k for k in ("layers", *STRUCTURES) if k in entries)
        body = Item("sequential" if kind == "layers" else kind, self.where(key_node))
        self.body(body, body.head, entries[kind][1])
        description = self.raw(entries["description"][1]) if "description" in entries else None
        return Block(name, params, body, description if isinstance(description, str) else None,
                     self.where(key_node))


def read_template(network: Network) -> Template:
    """The spec `network` was parsed from, as written."""
    if network.origin is None:
        raise ExportError("this network was not parsed from a spec file or text, so it cannot be exported")
    file, text = network.origin
    source = Source(file, text)
    reader = _Reader(source)
    top = {key: value for key, _, value in mapping_items(compose(source), source)}
    blocks = {}
    if "blocks" in top:
        for name, key_node, body in mapping_items(top["blocks"], source):
            blocks[name] = reader.block(name, key_node, body)
    variables = [(k, reader.raw(v)) for k, _, v in mapping_items(top["vars"], source)] if "vars" in top else []
    return Template(network.name, file, network.input_shape, variables, blocks, reader.items(top["layers"]))


@record
class Use:
    """One layer a template layer became: its parsed arguments and input shape."""

    args: Args
    in_shape: Shape


@record
class Place:
    """One expansion of a template item: where its values come from and go, as graph ids.

    `natural` is what the item would read without `from:` (the previous item's output, or
    the input of the list it is in), `entry` what it reads (they differ with `from:`), `out`
    its output; `block` is the entry of the block call it sits in (INPUT outside blocks).
    """

    path: str
    natural: int
    entry: int
    out: int
    block: int


class Uses:
    """Template items (by source position) -> their expansions in the network: each layer's
    parsed arguments and input shape, and each item's `Place`s, read off the graph."""

    def __init__(self, network: Network, report: Report) -> None:
        graph = network.graph
        self.graph = graph
        self.shapes = {INPUT: network.input_shape, **{i: row.output_shape for i, row in enumerate(report.rows)}}
        self.by_place: dict[Location | None, list[Use]] = {}
        self.places: dict[Location, list[Place]] = {}
        index = graph.index

        def entry(node: TreeNode) -> int | None:
            """The value the first layer lowered from `node` reads (None: it has no layer)."""
            if isinstance(node, Layer):
                return graph.nodes[index[node.path]].inputs[0]
            if isinstance(node, Sequence):
                return next((e for e in map(entry, node.items) if e is not None), None)
            if node.split is not None:
                return graph.nodes[index[f"{node.path}.split.0"]].inputs[0]
            first = next((e for e in map(entry, node.branches) if e is not None), None)
            return first if first is not None else graph.nodes[index[node.merge_path]].inputs[0]

        def visit(node: TreeNode, natural: int, parent: Location | None, block: int) -> int:
            """The graph lowering's walk (`graph.lower`), by paths: the value a node leaves."""
            start = natural
            if isinstance(node, Layer):
                out = index[node.path]
                start = graph.nodes[out].inputs[0]
                row = report.rows[out]
                self.by_place.setdefault(node.where, []).append(Use(node.args, row.input_shapes[0]))
            elif isinstance(node, Sequence):
                if node.source is not None:
                    found = entry(node)
                    start = natural if found is None else found
                inner = start if node.block is not None else block
                out = start
                for child in node.items:
                    out = visit(child, out, node.where or parent, inner)
            else:
                for k, branch in enumerate(node.branches):
                    part = natural if node.split is None else index[f"{node.path}.split.{k}"]
                    visit(branch, part, node.where, block)
                out = index[node.merge_path]
            if node.where is not None and node.where != parent:  # a repeat's copies share its place
                self.places.setdefault(node.where, []).append(Place(node.path, natural, start, out, block))
            return out

        visit(network.body, INPUT, None, INPUT)

    def of(self, item: Item) -> list[Use]:
        return self.by_place.get(item.where, []) if item.where is not None else []

    def at(self, item: Item) -> list[Place]:
        return self.places.get(item.where, []) if item.where is not None else []

    def channels(self, item: Item, leaving: bool) -> int | None:
        """The channels entering (or leaving) `item`, when every place it was expanded agrees."""
        values = {self.shapes[p.out if leaving else p.entry][0] for p in self.at(item)}
        return values.pop() if len(values) == 1 else None


def merge_type(raw: Any) -> str | None:
    """A merge written as a literal word ('add', 'concat'), else None."""
    return raw if isinstance(raw, str) and raw in MERGE_TYPES else None
