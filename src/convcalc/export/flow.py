"""Which exported modules compute their part of the graph, and a straight-line `forward`
for the classes whose layers read other outputs than the previous one.

An exported class builds its layers as the spec nests them (`export.pytorch`): a list is an
nn.Sequential (each item reads the previous item's output), a residual or parallel a
`Fork`. That is the *natural* data flow of the tree, the flow the graph would have without
`from:`, standalone merges and `size_of:` (lowering the tree with its references taken out
gives it). A group of the graph whose layers all read what the natural flow gives them, and
whose inside is read from nowhere else, is computed by its module as it is: it is *plain*.
Any other class writes its `forward` from the graph, in the way torch.fx writes code: one
statement per step, each a module called on named values (`lateral = self.lateral(stage)`),
where a step is a group that can be called as one module (plain, or a block class with a
forward of its own, given the values it reads from outside) or else each layer of it.

A block class is written once for all its calls, so its forward is the same text in every
call; when its calls differ, the class keeps the natural flow and the classes around it
call its layers one by one. The network itself is one call.

Imports `graph`, `network` and `export.python` only.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections import Counter
from collections.abc import Callable
from functools import cached_property

from convcalc.export.python import LINE_LIMIT, call, wrap
from convcalc.graph import INPUT, Graph, Group, lower
from convcalc.network import Fork, Layer, Network, Sequence
from convcalc.records import record

# (node id, which of its inputs) -> a name for that input, as the spec writes it (or None)
Naming = Callable[[int, int], "str | None"]
BODY = "        "  # a method's body
PYTHON_NAMES = frozenset(("self", "torch", "nn", "F", "Tensor", "super", "print", "range", "len", "str",
                          "int", "float", "list", "dict", "tuple", "min", "max", "sum", "abs", "round",
                          "input", "type", "id", "object", "math"))


@record
class Forward:
    """A class's forward: its parameters (the values it reads from outside, in order) and
    the lines of its body (indented for a method, within 88 columns)."""

    params: tuple[str, ...]
    lines: tuple[str, ...]
    outputs: int  # how many values it returns


@record
class _Step:
    path: str  # the module called (a node's or a group's path)
    inputs: tuple[int, ...]  # the values it reads
    out: int  # the value it gives (a node id)


class Flow:
    """The graph of `network`, read for exporting: plain groups and written forwards.

    `calls` maps the path of each block call to its block's name (the class that is built
    there); `naming` names a node's input as the spec writes it, for parameters.
    """

    def __init__(self, network: Network, calls: dict[str, str], naming: Naming) -> None:
        self.network = network
        self.graph: Graph = network.graph
        self.calls = calls
        self.naming = naming
        self.consumers = self.graph.consumers
        self.outputs = set(self.graph.outputs)
        self.groups_at: dict[int, list[Group]] = {}
        for group in self.graph.groups:  # outer groups first
            self.groups_at.setdefault(group.start, []).append(group)
        self.by_block: dict[str, list[Group]] = {}
        for group in self.graph.groups:
            if group.path in calls:
                self.by_block.setdefault(calls[group.path], []).append(group)
        self.forwards: dict[str, Forward | None] = {}
        self.units: dict[tuple[int, int], tuple[int, ...] | None] = {}
        self.plains: dict[tuple[int, int], bool] = {}
        # Without references every group computes itself: nothing to work out.
        self.references = bool(network.outputs) or _has_references(network.body)

    @cached_property
    def natural(self) -> Graph:
        """The graph without references: what each node would read in nested modules."""
        body = _without_references(self.network.body)
        assert isinstance(body, Sequence)
        return lower(dataclasses.replace(self.network, body=body, outputs=()))

    # --- groups ------------------------------------------------------------------------------

    def external(self, start: int, stop: int, graph: Graph | None = None) -> list[int]:
        """The values nodes `start <= id < stop` read from outside that range, in order."""
        nodes = (graph or self.graph).nodes
        out: list[int] = []
        for node in nodes[start:stop]:
            for j in node.inputs:
                if not start <= j < stop and j not in out:
                    out.append(j)
        return out

    def sealed(self, group: Group) -> bool:
        """Only the group's last node is read from outside it, and nothing else is an output."""
        inside = range(group.start, group.stop)
        return all(k not in self.outputs and all(r in inside for r in self.consumers[k])
                   for k in range(group.start, group.stop - 1))

    def children(self, start: int, stop: int, path: str) -> list[Group | int]:
        """The groups directly inside `path` (and the nodes in none of them) in `start..stop`."""
        out: list[Group | int] = []
        i = start
        while i < stop:
            group = next((g for g in self.groups_at.get(i, ()) if g.stop <= stop and g.path != path
                          and _below(g.path, path)), None)
            if group is None:
                out.append(i)
                i += 1
            else:
                out.append(group)
                i = group.stop
        return out

    def plain(self, group: Group) -> bool:
        """The group's module computes it from its one input: every layer in it reads what the
        nested modules give it (groups inside it are plain, or called as one module)."""
        key = (group.start, group.stop)
        if key not in self.plains:
            if not self.references:
                self.plains[key] = True
            else:
                entry = self.external(group.start, group.stop)
                natural = self.external(group.start, group.stop, self.natural)
                self.plains[key] = (len(entry) == 1 and len(natural) == 1
                                    and self.natural_inside(group, entry[0], natural[0]))
        return self.plains[key]

    def natural_inside(self, group: Group, entry: int, natural: int) -> bool:
        inside = range(group.start, group.stop)

        def expected(j: int) -> int:
            return j if j in inside else (entry if j == natural else -2)

        for child in self.children(group.start, group.stop, group.path):
            if isinstance(child, int):
                wanted = tuple(expected(j) for j in self.natural.nodes[child].inputs)
                if self.graph.nodes[child].inputs != wanted:
                    return False
                continue
            reads = self.unit(child)
            outer = self.external(child.start, child.stop, self.natural)
            if reads is None or len(reads) != 1 or len(outer) != 1 or reads[0] != expected(outer[0]):
                return False
        return True

    def unit(self, group: Group) -> tuple[int, ...] | None:
        """The values to call the group's module with, when that module computes the group
        (and nothing inside it but its output is needed outside); else None."""
        key = (group.start, group.stop)
        if key not in self.units:
            reads = tuple(self.external(group.start, group.stop))
            called = group.path in self.calls and self.forward(self.calls[group.path]) is not None
            self.units[key] = reads if self.sealed(group) and (called or self.plain(group)) else None
        return self.units[key]

    # --- forwards ----------------------------------------------------------------------------

    def forward(self, block: str) -> Forward | None:
        """The forward the class of `block` writes, when its calls need one and agree on it."""
        if block not in self.forwards:
            self.forwards[block] = None  # while it is worked out: no block calls itself
            uses = self.by_block.get(block, [])
            if uses and not all(self.plain(use) for use in uses):
                written = {self.write(use.start, use.stop, use.path, (use.stop - 1,)) for use in uses}
                self.forwards[block] = written.pop() if len(written) == 1 else None
        return self.forwards[block]

    def network_forward(self) -> Forward | None:
        """The forward of the network, when it is not the natural flow of its items."""
        if not self.references:
            return None
        whole = Group("", "network", 0, 0, len(self.graph.nodes))
        if self.graph.outputs == (len(self.graph.nodes) - 1,) and self.natural_inside(whole, INPUT, INPUT):
            return None
        return self.write(0, len(self.graph.nodes), "", self.graph.outputs)

    def steps(self, start: int, stop: int, path: str) -> list[_Step]:
        """Nodes `start..stop` inside `path` as calls: a group that is a unit in one step,
        others opened (their groups and layers each a step)."""
        out: list[_Step] = []
        for child in self.children(start, stop, path):
            if isinstance(child, int):
                out.append(_Step(self.graph.nodes[child].path, self.graph.nodes[child].inputs, child))
                continue
            reads = self.unit(child)
            if reads is not None:
                out.append(_Step(child.path, reads, child.stop - 1))
            else:
                out += self.steps(child.start, child.stop, child.path)
        return out

    def write(self, start: int, stop: int, path: str, outputs: tuple[int, ...]) -> Forward:
        """The forward of the class at `path` holding nodes `start..stop`."""
        steps = self.steps(start, stop, path)
        made = {step.out for step in steps}
        params: list[int] = []
        for step in steps:
            params += [j for j in step.inputs if j not in made and j not in params]
        for j in outputs:
            if j not in made and j not in params:
                params.append(j)
        names = _Names()
        natural = self.external(start, stop, self.natural)
        for k, value in enumerate(params):
            if natural == [value] or value == INPUT:
                names.fix(value, "x")
            else:
                names.fix(value, self.param_name(value, start, stop, k))
        # A value read once, by the next step, and not returned, is the running `x`
        # (or `out` while a parameter `x` is still to be read).
        readers: dict[int, list[int]] = {}
        for k, step in enumerate(steps):
            for j in step.inputs:
                readers.setdefault(j, []).append(k)
        chained = {step.out for k, step in enumerate(steps)
                   if readers.get(step.out) == [k + 1] and step.out not in outputs
                   and steps[k + 1].inputs.count(step.out) == 1}
        x_param = next((v for v in params if names.fixed.get(v) == "x"), None)
        last_x = max(readers.get(x_param, [-1])) if x_param is not None else -1
        first_chain = next((k for k, step in enumerate(steps) if step.out in chained), len(steps))
        taken = {names.fixed[v] for v in params}
        running = "x" if last_x <= first_chain else next(n for n in ("out", "y", "h", "z") if n not in taken)
        for step in steps:
            if step.out in chained:
                names.fix(step.out, running, shared=True)
            elif step.out not in names.fixed:
                names.want(step.out, _relative(step.path, path))
        names.settle()
        lines: list[str] = []
        for k, step in enumerate(steps):
            module = call(_accessor(_relative(step.path, path)), *(names.of(j) for j in step.inputs))
            if k == len(steps) - 1 and outputs == (step.out,):
                lines += wrap(module, BODY, "return ")
                return Forward(tuple(names.of(v) for v in params), tuple(lines), 1)
            if step.out in outputs or readers.get(step.out):
                lines += wrap(module, BODY, f"{names.of(step.out)} = ")
            else:  # read by nothing: run all the same (in training it updates running statistics)
                lines += wrap(module, BODY)
        returned = ", ".join(names.of(j) for j in outputs)
        if len(BODY + "return " + returned) <= LINE_LIMIT:
            lines.append(BODY + "return " + returned)
        else:
            lines += wrap(call("", *(names.of(j) for j in outputs)), BODY, "return ")
        return Forward(tuple(names.of(v) for v in params), tuple(lines), len(outputs))

    def param_name(self, value: int, start: int, stop: int, k: int) -> str:
        """A parameter's name, as the spec names what its first reader reads there."""
        for i in range(start, stop):
            inputs = self.graph.nodes[i].inputs
            if value in inputs:
                return self.naming(i, inputs.index(value)) or f"x{k}"
        return f"x{k}"


class _Names:
    """Python names for values: fixed ones, and the shortest unique path suffix for others."""

    def __init__(self) -> None:
        self.fixed: dict[int, str] = {}
        self.wanted: dict[int, list[str]] = {}

    def fix(self, value: int, name: str, shared: bool = False) -> None:
        """`value` is called `name` (a running name may be `shared` by several values)."""
        taken = set(self.fixed.values())
        base = _identifier(name) if not shared else name
        out, n = base, 2
        while out in taken and not shared:
            out, n = f"{base}{n}", n + 1
        self.fixed[value] = out

    def want(self, value: int, path: str) -> None:
        self.wanted[value] = path.split(".") if path else ["out"]

    def settle(self) -> None:
        taken = set(self.fixed.values())
        # a numbered layer of a named group is `m_0` (`x4` for an item of the class's own list)
        length = {v: 2 if len(p) > 2 and p[-1].isdigit() and not p[-2].isdigit() else 1
                  for v, p in self.wanted.items()}
        while True:
            names = {v: _identifier("_".join(segments[-length[v]:])) for v, segments in self.wanted.items()}
            counts = Counter(names.values())
            clash = {v for v, name in names.items() if name in taken or counts[name] > 1}
            grow = {v for v in clash if length[v] < len(self.wanted[v])}
            if not grow:
                break
            for v in grow:
                length[v] += 1
        used = set(taken)
        for v in self.wanted:
            name, n = names[v], 2
            while name in used:
                name, n = f"{names[v]}{n}", n + 1
            used.add(name)
            self.fixed[v] = name

    def of(self, value: int) -> str:
        return self.fixed[value]


def _identifier(name: str) -> str:
    """A local variable's name for a value (lower case, as PEP 8 has them)."""
    out = re.sub(r"\W", "_", name.lower())
    if not out or out[0].isdigit():
        out = "x" + out
    if keyword.iskeyword(out) or out in PYTHON_NAMES:
        out += "_"
    return out


def _accessor(path: str) -> str:
    """`self.fpn.p4.lateral`, `self.model[11]`, `getattr(self.trunk, "block2-1")`."""
    out = "self"
    for segment in path.split(".") if path else []:
        if segment.isdigit():
            out += f"[{segment}]"
        elif segment.isidentifier() and not keyword.iskeyword(segment):
            out += f".{segment}"
        else:
            out = f'getattr({out}, "{segment}")'
    return out


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1:] if prefix else path


def _below(path: str, prefix: str) -> bool:
    return not prefix or path.startswith(prefix + ".")


def _has_references(node: Layer | Sequence | Fork) -> bool:
    """Whether the tree has a `from:` or a `size_of:` anywhere."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Layer):
            if item.sources or item.shape_of is not None:
                return True
        elif isinstance(item, Sequence):
            if item.source is not None:
                return True
            stack.extend(item.items)
        else:
            stack.extend(item.branches)
    return False


def _without_references(node: Layer | Sequence | Fork) -> Layer | Sequence | Fork:
    """The tree with `from:` and `size_of:` taken out: the nested modules' own flow."""
    if isinstance(node, Layer):
        return dataclasses.replace(node, sources=(), shape_of=None) if node.sources or node.shape_of else node
    if isinstance(node, Sequence):
        items = tuple(_without_references(item) for item in node.items)
        return dataclasses.replace(node, items=items, source=None)
    branches = tuple(_without_references(branch) for branch in node.branches)
    return dataclasses.replace(node, branches=branches)  # type: ignore[arg-type]
