"""The network as one ordered graph: the structure every consumer walks.

The parser builds a tree (`network.Sequence`, `Fork`, `Layer`) that keeps what a person
wrote: blocks, branches, repeats, source positions. `lower` turns it, once, into a
`Graph`: a tuple of `Node`s in execution order, each naming the nodes whose outputs it
reads (`INPUT` is the network input). A merge is a node with several inputs, a value read
by several nodes is still one value, and the outputs are listed explicitly, as in
torch.fx and ONNX. A channel split (`parallel: {split: ...}`) becomes one `narrow` node per
branch, at `<parallel path>.split.<i>`, reading the fork's input. Analysis, lints, the field
walk, solvers, training memory and the NumPy passes iterate `Graph.nodes`; none of them walks
the tree. Lowering also checks that every node's path is unique.

Liveness (`last_use`) and dominance (`on_every_path`) are computed here once, so the
memory estimate, the NumPy runner and the lints agree on them.

The nesting a person wrote survives as `Graph.groups`: each block, branch, `sequential` group
and named repeat is a `Group` naming the run of nodes it holds (lowering keeps every group's
nodes contiguous), and `Graph.depths` gives each node's nesting depth. Consumers that show
blocks (`--depth` subtotals) read these and sum the rows of the nodes; none walks the tree.

Imports `errors`, `layers` and `network` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from functools import cached_property
from types import MappingProxyType

from convcalc.errors import Location, SpecError
from convcalc.layers import REGISTRY, Args, LayerType, Shape
from convcalc.network import Fork, Layer, Network, Ref, Sequence
from convcalc.records import record

INPUT = -1  # the id of the network input among a node's inputs

NO_ARGS: Args = MappingProxyType({})
NARROW = REGISTRY["narrow"]  # what a channel split lowers to, one node per part


@record
class Node:
    """One layer or merge: what it is, and whose outputs it reads."""

    path: str
    type: LayerType
    args: Args = field(compare=False)
    inputs: tuple[int, ...]  # node ids in execution order; INPUT is the network input
    # What each input is called in messages (a merge's branch paths); empty for one input.
    labels: tuple[str, ...] = field(default=(), compare=False)
    where: Location | None = field(default=None, compare=False)
    from_paths: bool = field(default=False, compare=False)  # a merge written with `from:`

    @property
    def value_inputs(self) -> tuple[int, ...]:
        """The inputs whose values reach the output: all of a merge's, else the first.

        A layer's second input (`size_of:`) gives only its shape, as `F.interpolate(x,
        size=other.shape[-2:])` does: no field and no gradient flow through it.
        """
        return self.inputs if self.type.arity is None else self.inputs[:1]


@record
class Group:
    """A block call, branch, `sequential` group or named repeat: the nodes `start <= id < stop`.

    Containers of the tree that share a path (a block whose body is a residual, an unnamed
    repeat numbered among its siblings) are one group, or none: a group is a path level.
    """

    path: str
    kind: str  # the block's name, or residual, parallel, sequential, branch
    depth: int  # 1 for an item of the top-level list, one more per enclosing group
    start: int
    stop: int
    repeat: int | None = None  # a named repeat: the number of copies (of `kind`)


@record
class Graph:
    """Nodes in execution order (every input comes before its reader) and the outputs."""

    input_shape: Shape
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]  # node ids (INPUT when the network has no layers)
    # The spec's nesting: non-empty groups in tree order (a group before the groups inside
    # it), and each node's depth (1 at the top level).
    groups: tuple[Group, ...] = field(default=(), compare=False)
    depths: tuple[int, ...] = field(default=(), compare=False)

    def __len__(self) -> int:
        return len(self.nodes)

    @cached_property
    def consumers(self) -> dict[int, tuple[int, ...]]:
        """Node id (or INPUT) -> the ids of the nodes that read its output, in order."""
        readers: dict[int, list[int]] = {INPUT: []}
        for i, node in enumerate(self.nodes):
            readers[i] = []
            for source in node.inputs:
                found = readers[source]
                if not found or found[-1] != i:  # readers come in order: a repeat is the last one
                    found.append(i)
        return {k: tuple(v) for k, v in readers.items()}

    @cached_property
    def last_use(self) -> dict[int, int]:
        """Node id (or INPUT) -> the last step at which its output is still needed.

        A value is freed after its last reader; an output of the network lives to the end
        (`len(nodes)`); a value nothing reads dies at the step that made it.
        """
        end = len(self.nodes)
        last = {i: readers[-1] if readers else i for i, readers in self.consumers.items()}  # readers are in order
        if self.consumers[INPUT] == ():
            last[INPUT] = INPUT
        for out in self.outputs:
            last[out] = end
        return last

    def live_peak(self, size: Mapping[int, int]) -> tuple[int, int]:
        """The largest sum of live values over a forward pass in execution order, and the step.

        `size` maps a node id (and INPUT) to the size of its output. At step i the values made
        earlier and still to be read (`last_use`) are live with i's output, a merge's inputs
        included; after the step, each value whose last use it was is freed, the input too.
        The step is INPUT when the input alone is the peak. The NumPy runner frees its arrays
        by the same rule (`numeric.runner.run`).
        """
        last = self.last_use
        live = peak = size[INPUT]
        at = INPUT
        for i, node in enumerate(self.nodes):
            live += size[i]
            if live > peak:
                peak, at = live, i
            inputs = node.inputs
            if len(inputs) == 1:  # most nodes: no set to build
                if last[inputs[0]] == i:
                    live -= size[inputs[0]]
                if last[i] == i:
                    live -= size[i]
                continue
            for j in {*inputs, i}:
                if last[j] == i:
                    live -= size[j]
        return peak, at

    @cached_property
    def on_every_path(self) -> tuple[bool, ...]:
        """Per node: does every path from the input to the outputs pass through it?

        In execution order, node i is on every path when no edge jumps over it (from a node
        before i to a node after i). Nodes inside a branch are not: the other branch jumps.
        """
        # The farthest reader of any value made before the current node (readers are in order).
        consumers = self.consumers
        farthest = consumers[INPUT][-1] if consumers[INPUT] else INPUT
        out = []
        for i in range(len(self.nodes)):
            out.append(farthest <= i)
            readers = consumers[i]
            if readers and readers[-1] > farthest:
                farthest = readers[-1]
        return tuple(out)

    def branches(self, merge: int) -> tuple[int, tuple[tuple[int, ...], ...]]:
        """Where the inputs of node `merge` fork, and each input's nodes since, in execution order.

        Each input is followed back along first inputs (a fork nested inside a branch is part
        of it) until all meet: the fork is the latest node (or INPUT) on every line. Costs the
        branches' length, not the network's.
        """
        heads = list(self.nodes[merge].inputs)
        walked: list[list[int]] = [[] for _ in heads]
        while len(set(heads)) > 1:
            latest = max(heads)  # > INPUT, since the heads differ
            for b, head in enumerate(heads):
                if head == latest:
                    walked[b].append(head)
                    heads[b] = self.nodes[head].inputs[0]
        return heads[0], tuple(tuple(reversed(w)) for w in walked)

    def ancestors(self, target: int) -> frozenset[int]:
        """The nodes whose values reach node `target` (itself included; not the input).

        Follows value inputs only: a `size_of:` reference gives a shape, not values.
        """
        seen = {target}
        todo = [target]
        while todo:
            for source in self.nodes[todo.pop()].value_inputs:
                if source != INPUT and source not in seen:
                    seen.add(source)
                    todo.append(source)
        return frozenset(seen)

    def find(self, path: str) -> int | None:
        """The id of the node at `path` (None if there is none)."""
        return self.index.get(path)

    @cached_property
    def index(self) -> dict[str, int]:
        return {node.path: i for i, node in enumerate(self.nodes)}


def branch_label(branch: Sequence) -> str:
    """How a branch is named in messages: its path, or `(identity)` when it is empty."""
    if not branch.items:
        return f"{branch.path} (identity)" if branch.path else "(identity)"
    return branch.path


def group_kind(item: Sequence | Fork, branch: bool) -> tuple[str, int | None]:
    """What a container is called in an outline, and its repeat count (named repeats)."""
    if isinstance(item, Fork):
        # a residual's body shares the fork's path; parallel branches add a segment
        residual = item.merge.name == "add" and item.branches[0].path == item.path
        return ("residual" if residual else "parallel"), None
    if item.block is not None:
        return item.block, None
    if item.repeat is not None:
        first = item.items[0] if item.items else None
        kind = "repeat"
        if isinstance(first, Layer):
            kind = first.type.name
        elif first is not None:
            kind = group_kind(first, False)[0]
        return kind, item.repeat
    if branch:
        return "branch", None
    if item.items and isinstance(item.items[0], Fork) and item.items[0].path == item.path:
        return group_kind(item.items[0], False)  # a residual or parallel with `after` layers
    return "sequential", None
def duplicate(first: Node, second: Node) -> SpecError:
    """Two nodes at one path (a branch with `name: null` puts its items at the parallel's path)."""
    at = f" at line {first.where.line}" if first.where is not None else ""
    return SpecError(f"the path '{second.path}' is taken twice: by this {second.type.name} and by the"
                     f" {first.type.name}{at}; paths must be unique, so name one of them",
                     where=second.where, path=second.path, layer_type=second.type.name)


def lower(network: Network) -> Graph:
    """The tree of `network` as a graph: the one place that walks the parsed tree.

    `from:` and `size_of:` references become node inputs here: a path names the output
    of the item at that path once that item is complete, looked up in the list where the
    reference was written, then outward; `input` is the network input.
    """
    nodes: list[Node] = []
    depths: list[int] = []
    groups: list[Group | None] = []
    done: dict[str, int] = {"input": INPUT}  # path -> the node id of its output, so far
    everything: set[str] | None = None  # every path of the tree, built on the first miss
    seen: dict[str, int] = {}

    def add(node: Node, depth: int) -> int:
        first = seen.setdefault(node.path, len(nodes))
        if first != len(nodes):
            raise duplicate(nodes[first], node)
        nodes.append(node)
        depths.append(depth)
        return first

    def resolve(ref: Ref, at: str | None) -> int:
        nonlocal everything
        scope = ref.scope
        candidates = []
        while True:
            candidates.append(f"{scope}.{ref.path}" if scope else ref.path)
            if not scope:
                break
            scope = scope.rpartition(".")[0]
        for path in candidates:
            if path in done:
                return done[path]
        if everything is None:
            everything = set()
            _paths(network.body, everything)
        later = next((path for path in candidates if path in everything), None)
        if later is not None:
            raise SpecError(f"'{ref.path}' refers to {later}, which comes later (or encloses this"
                            " item): a reference must name an earlier output, graphs cannot have"
                            " cycles", where=ref.where, path=at)
        raise SpecError(f"no layer or block has the path '{ref.path}'{_nearest(ref.path, done)}",
                        where=ref.where, path=at)

    def visit(item: Layer | Sequence | Fork, source: int, enclosing: str, depth: int,
              branch: bool = False) -> int:
        if isinstance(item, Layer):
            labels: tuple[str, ...] = ()
            if item.sources:
                inputs = tuple(resolve(ref, item.path) for ref in item.sources)
                if len(inputs) > 1:
                    labels = tuple(_label(nodes, i) for i in inputs)
            else:
                inputs = (source,)
            if item.shape_of is not None:
                inputs += (resolve(item.shape_of, item.path),)
            out = add(Node(item.path, item.type, item.args, inputs, labels, where=item.where,
                           from_paths=bool(labels)), depth)
            done[item.path] = out
            return out
        slot = None
        if item.path != enclosing:  # a new path level: a group, one deeper inside
            slot, start = len(groups), len(nodes)
            groups.append(None)
            enclosing, inner = item.path, depth + 1
        else:
            inner = depth
        if isinstance(item, Sequence):
            if item.source is not None:
                source = resolve(item.source, item.path or None)
            for child in item.items:
                if type(child) is Layer and not child.sources and child.shape_of is None:
                    # most items: a layer reading the one before, without the call
                    source = add(Node(child.path, child.type, child.args, (source,), (), child.where), inner)
                    done[child.path] = source
                else:
                    source = visit(child, source, enclosing, inner)
            end = source
        else:
            if item.split is None:
                ends = tuple(visit(b, source, enclosing, inner, branch=True) for b in item.branches)
            else:
                ends = tuple(visit(b, split_part(item, k, source, inner), enclosing, inner, branch=True)
                             for k, b in enumerate(item.branches))
            labels = tuple(branch_label(b) for b in item.branches)
            end = add(Node(item.merge_path, item.merge, NO_ARGS, ends, labels, item.where), inner)
            done[item.merge_path] = end
        if slot is not None:
            kind, repeat = group_kind(item, branch)
            groups[slot] = Group(item.path, kind, depth, start, len(nodes), repeat)
        if item.path:
            done[item.path] = end
        return end

    def split_part(fork: Fork, index: int, source: int, depth: int) -> int:
        """A `narrow` node taking part `index` of the fork input's channels, for branch `index`."""
        split = fork.split
        args = NARROW.parse_args({"split": list(split) if isinstance(split, tuple) else split, "index": index})
        return add(Node(f"{fork.path}.split.{index}", NARROW, args, (source,), where=fork.where), depth)

    output = visit(network.body, INPUT, network.body.path, 1)
    outputs = tuple(resolve(ref, None) for ref in network.outputs) or (output,)
    kept = tuple(g for g in groups if g is not None and g.stop > g.start)
    return Graph(network.input_shape, tuple(nodes), outputs, kept, tuple(depths))


def _nearest(path: str, known: dict[str, int]) -> str:
    """`; did you mean 'a', 'b' or 'c'?`: the closest existing paths, or nothing."""
    import difflib  # errors only

    close = difflib.get_close_matches(path, list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    quoted = [f"'{c}'" for c in close]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"; did you mean {listed}?"


def _label(nodes: list[Node], i: int) -> str:
    return "input" if i == INPUT else nodes[i].path


def _paths(item: Layer | Sequence | Fork, into: set[str]) -> None:
    """Every path of the tree (for telling a later reference from an unknown one)."""
    into.add(item.path)
    if isinstance(item, Sequence):
        for child in item.items:
            _paths(child, into)
    elif isinstance(item, Fork):
        into.add(item.merge_path)
        for branch in item.branches:
            _paths(branch, into)
