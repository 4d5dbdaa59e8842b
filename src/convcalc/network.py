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

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from convcalc.errors import Location
from convcalc.layers import Args, LayerType, Shape

if TYPE_CHECKING:
    from convcalc.graph import Graph


@dataclass(frozen=True)
class Layer:
    path: str
    type: LayerType
    args: Args = field(compare=False)
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Sequence:
    """Items run in order: a layer list, a branch, a block's body or a repeat's copies."""

    path: str
    items: tuple[Node, ...] = ()
    block: str | None = field(default=None, compare=False)  # the block it expands, if any
    block_args: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    repeat: int | None = field(default=None, compare=False)  # `items` are copies of one item
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Fork:
    """Branches that all take the fork's input, then `merge` combines their outputs."""

    path: str
    branches: tuple[Sequence, ...]
    merge: LayerType  # a merge (arity None): add or concat
    merge_path: str
    where: Location | None = field(default=None, compare=False)


Node = Layer | Sequence | Fork


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: Shape
    body: Sequence
    where: Location | None = field(default=None, compare=False)
    # Budgets written in the spec (`budget:`), name -> value, with where each was written.
    budget: tuple[tuple[str, object, Location | None], ...] = field(default=(), compare=False)
    # Warning codes silenced by the spec (`ignore:`), with where each was written.
    ignore: tuple[tuple[str, Location | None], ...] = field(default=(), compare=False)
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
