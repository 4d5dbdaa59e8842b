"""The parsed network: a tree of frozen records, each knowing its module path and source.

`Layer` is a leaf (one registered layer type with validated arguments), `Sequence` runs
its items in order, `Fork` runs every branch on the same input and merges them (a residual
is a fork whose second branch is the shortcut). Source locations are kept out of equality.

Imports `errors` and `layers` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convcalc.errors import Location
from convcalc.layers import Args, LayerType, MergeType, Shape


@dataclass(frozen=True)
class Layer:
    path: str
    type: LayerType
    args: Args = field(compare=False)
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Sequence:
    path: str
    items: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Fork:
    """Branches that all take the fork's input, then `merge` combines their outputs."""

    path: str
    branches: tuple[Sequence, ...]
    merge: MergeType
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

    def leaves(self) -> list[Layer]:
        out: list[Layer] = []

        def walk(node: Node) -> None:
            if isinstance(node, Layer):
                out.append(node)
            elif isinstance(node, Sequence):
                for item in node.items:
                    walk(item)
            else:
                for branch in node.branches:
                    walk(branch)

        walk(self.body)
        return out
