"""The network as one ordered graph: the structure every consumer walks.

The parser builds a tree (`network.Sequence`, `Fork`, `Layer`) that keeps what a person
wrote: blocks, branches, repeats, source positions. `lower` turns it, once, into a
`Graph`: a tuple of `Node`s in execution order, each naming the nodes whose outputs it
reads (`INPUT` is the network input). A merge is a node with several inputs, a value read
by several nodes is still one value, and the outputs are listed explicitly, as in
torch.fx and ONNX. Analysis, lints, the field walk, solvers, training memory and the
NumPy passes iterate `Graph.nodes`; none of them walks the tree.

Liveness (`last_use`) and dominance (`on_every_path`) are computed here once, so the
memory estimate, the NumPy runner and the lints agree on them.

Imports `errors`, `layers` and `network` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from convcalc.errors import Location
from convcalc.layers import Args, LayerType, Shape
from convcalc.network import Fork, Layer, Network, Sequence

INPUT = -1  # the id of the network input among a node's inputs

NO_ARGS: Args = MappingProxyType({})


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
            for j in {*node.inputs, i}:
                if last[j] == i:
                    live -= size[j]
        return peak, at

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


def lower(network: Network) -> Graph:
    """The tree of `network` as a graph: the one place that walks the parsed tree."""
    nodes: list[Node] = []

    def visit(item: Layer | Sequence | Fork, source: int) -> int:
        if isinstance(item, Layer):
            nodes.append(Node(item.path, item.type, item.args, (source,), where=item.where))
            return len(nodes) - 1
        if isinstance(item, Sequence):
            for child in item.items:
                source = visit(child, source)
            return source
        ends = tuple(visit(branch, source) for branch in item.branches)
        labels = tuple(branch_label(branch) for branch in item.branches)
        nodes.append(Node(item.merge_path, item.merge, NO_ARGS, ends, labels, item.where))
        return len(nodes) - 1

    output = visit(network.body, INPUT)
    return Graph(network.input_shape, tuple(nodes), (output,))
