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

Imports `errors`, `layers` and `network` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from convcalc.errors import Location, SpecError
from convcalc.layers import REGISTRY, Args, LayerType, Shape
from convcalc.network import Fork, Layer, Network, Sequence

INPUT = -1  # the id of the network input among a node's inputs

NO_ARGS: Args = MappingProxyType({})
NARROW = REGISTRY["narrow"]  # what a channel split lowers to, one node per part


@dataclass(frozen=True)
class Node:
    """One layer or merge: what it is, and whose outputs it reads."""

    path: str
    type: LayerType
    args: Args = field(compare=False)
    inputs: tuple[int, ...]  # node ids in execution order; INPUT is the network input
    # What each input is called in messages (a merge's branch paths); empty for one input.
    labels: tuple[str, ...] = field(default=(), compare=False)
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Graph:
    """Nodes in execution order (every input comes before its reader) and the outputs."""

    input_shape: Shape
    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]  # node ids (INPUT when the network has no layers)

    def __len__(self) -> int:
        return len(self.nodes)

    @cached_property
    def consumers(self) -> dict[int, tuple[int, ...]]:
        """Node id (or INPUT) -> the ids of the nodes that read its output, in order."""
        readers: dict[int, list[int]] = {INPUT: []}
        for i, node in enumerate(self.nodes):
            readers[i] = []
            for source in node.inputs:
                if i not in readers[source]:
                    readers[source].append(i)
        return {k: tuple(v) for k, v in readers.items()}

    @cached_property
    def last_use(self) -> dict[int, int]:
        """Node id (or INPUT) -> the last step at which its output is still needed.

        A value is freed after its last reader; an output of the network lives to the end
        (`len(nodes)`); a value nothing reads dies at the step that made it.
        """
        end = len(self.nodes)
        last = {i: max(readers, default=i) for i, readers in self.consumers.items()}
        if self.consumers[INPUT] == ():
            last[INPUT] = INPUT
        for out in self.outputs:
            last[out] = end
        return last

    @cached_property
    def on_every_path(self) -> tuple[bool, ...]:
        """Per node: does every path from the input to the outputs pass through it?

        In execution order, node i is on every path when no edge jumps over it (from a node
        before i to a node after i). Nodes inside a branch are not: the other branch jumps.
        """
        # The farthest reader of any value made before the current node.
        farthest = max(self.consumers[INPUT], default=INPUT)
        out = []
        for i in range(len(self.nodes)):
            out.append(farthest <= i)
            farthest = max(farthest, max(self.consumers[i], default=i))
        return tuple(out)

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


def duplicate(first: Node, second: Node) -> SpecError:
    """Two nodes at one path (a branch with `name: null` puts its items at the parallel's path)."""
    at = f" at line {first.where.line}" if first.where is not None else ""
    return SpecError(f"the path '{second.path}' is taken twice: by this {second.type.name} and by the"
                     f" {first.type.name}{at}; paths must be unique, so name one of them",
                     where=second.where, path=second.path, layer_type=second.type.name)


def lower(network: Network) -> Graph:
    """The tree of `network` as a graph: the one place that walks the parsed tree."""
    nodes: list[Node] = []
    seen: dict[str, int] = {}

    def add(node: Node) -> int:
        first = seen.setdefault(node.path, len(nodes))
        if first != len(nodes):
            raise duplicate(nodes[first], node)
        nodes.append(node)
        return first

    def visit(item: Layer | Sequence | Fork, source: int) -> int:
        if isinstance(item, Layer):
            return add(Node(item.path, item.type, item.args, (source,), where=item.where))
        if isinstance(item, Sequence):
            for child in item.items:
                source = visit(child, source)
            return source
        if item.split is None:
            ends = tuple(visit(branch, source) for branch in item.branches)
        else:
            ends = tuple(visit(branch, split_part(item, i, source)) for i, branch in enumerate(item.branches))
        labels = tuple(branch_label(branch) for branch in item.branches)
        return add(Node(item.merge_path, item.merge, NO_ARGS, ends, labels, item.where))

    def split_part(fork: Fork, index: int, source: int) -> int:
        """A `narrow` node taking part `index` of the fork input's channels, for branch `index`."""
        split = fork.split
        args = NARROW.parse_args({"split": list(split) if isinstance(split, tuple) else split, "index": index})
        return add(Node(f"{fork.path}.split.{index}", NARROW, args, (source,), where=fork.where))

    output = visit(network.body, INPUT)
    return Graph(network.input_shape, tuple(nodes), (output,))
