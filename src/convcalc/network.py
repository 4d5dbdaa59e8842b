"""The parsed network: a tree of frozen records, each knowing its module path and source.

`Layer` is a leaf (one registered layer type with validated arguments), `Sequence` runs
its items in order, `Fork` runs every branch on the same input and merges them (a residual
is a fork whose second branch is the shortcut). Source locations are kept out of equality.

The tree keeps what a person wrote (which block a sequence expands, with which arguments,
how many times an item repeats), for the consumers that show blocks: it is not walked for
numbers. `Network.graph` is the tree lowered once (`convcalc.graph`), which every
analysis iterates.

Imports `errors` and `layers` only (and `graph`, lazily, to lower itself).
"""

from __future__ import annotations

from dataclasses import field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from convcalc.errors import Location
from convcalc.layers import Args, LayerType, Shape
from convcalc.records import record

if TYPE_CHECKING:
    from convcalc.graph import Graph


@record
class Ref:
    """A path written in the spec (`from:`, `size_of:`, `outputs:`), resolved when lowering.

    `scope` is the path of the list it was written in: the path is looked up there first,
    then in each enclosing list outward (`input` is the network input).
    """

    path: str
    scope: str = ""
    where: Location | None = field(default=None, compare=False)


@record
class Layer:
    path: str
    type: LayerType
    args: Args = field(compare=False)
    where: Location | None = field(default=None, compare=False)
    # `from:` (one path, or a merge's several) instead of the previous item's output.
    sources: tuple[Ref, ...] = ()
    # `size_of:`: a second input whose shape (not its values) the layer reads.
    shape_of: Ref | None = None


@record
class Sequence:
    """Items run in order: a layer list, a branch, a block's body or a repeat's copies."""

    path: str
    items: tuple[Node, ...] = ()
    block: str | None = field(default=None, compare=False)  # the block it expands, if any
    block_args: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    repeat: int | None = field(default=None, compare=False)  # `items` are copies of one item
    where: Location | None = field(default=None, compare=False)
    source: Ref | None = None  # `from:` on a block, branch structure or group


@record
class Fork:
    """Branches that all take the fork's input, then `merge` combines their outputs.

    With `split`, branch i takes part i of the input's channels instead: `split` is the
    number of equal parts (torch.chunk) or the part sizes (torch.split), one per branch.
    """

    path: str
    branches: tuple[Sequence, ...]
    merge: LayerType  # a merge (arity None): add, mul or concat
    merge_path: str
    where: Location | None = field(default=None, compare=False)
    split: tuple[int, ...] | int | None = None


Node = Layer | Sequence | Fork


@record
class Network:
    name: str
    input_shape: Shape
    body: Sequence
    where: Location | None = field(default=None, compare=False)
    # Budgets written in the spec (`budget:`), name -> value, with where each was written.
    budget: tuple[tuple[str, object, Location | None], ...] = field(default=(), compare=False)
    # Warning codes silenced by the spec (`ignore:`), with where each was written.
    ignore: tuple[tuple[str, Location | None], ...] = field(default=(), compare=False)
    # `outputs:` (default: the last item's output).
    outputs: tuple[Ref, ...] = ()
    # (file name, text) the network was parsed from: the exporter reads the blocks' expressions.
    origin: tuple[str, str] | None = field(default=None, compare=False, repr=False)
    # The vars set from outside the spec (`--set`, `build(spec, **set)`), by name.
    overrides: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @cached_property
    def graph(self) -> Graph:
        """The tree lowered to the ordered graph every analysis walks (built once)."""
        from convcalc.graph import lower

        return lower(self)

    def leaves(self) -> list[Any]:
        """Every layer of the graph (merges included), in execution order."""
        return list(self.graph.nodes)

    @cached_property
    def block_calls(self) -> dict[str, tuple[str, tuple[tuple[str, Any], ...]]]:
        """Path -> (block name, its arguments) of each block call, for consumers that show
        blocks (the outermost call where two share a path)."""
        calls: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {}
        for item in _walk(self.body):
            if isinstance(item, Sequence) and item.block is not None and item.path not in calls:
                calls[item.path] = (item.block, item.block_args)
        return calls

    @cached_property
    def repeats(self) -> tuple[tuple[str, ...], ...]:
        """The paths of the copies of every `repeat` of two or more, in order."""
        return tuple(tuple(copy.path for copy in item.items) for item in _walk(self.body)
                     if isinstance(item, Sequence) and item.repeat is not None and item.repeat >= 2)


def _walk(node: Node) -> list[Node]:
    """The tree's nodes in pre-order (iteratively: nesting may be deep)."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        out.append(item)
        if isinstance(item, Sequence):
            stack.extend(reversed(item.items))
        elif isinstance(item, Fork):
            stack.extend(reversed(item.branches))
    return out
