"""A spec's network as torch.nn modules whose paths are convcalc's.

It walks the graph every analysis walks (`Network.graph`): each node becomes its layer
type's module (`LayerType.torch_module`, with the input shape from the analysis) at its
path, and a `Steps` module runs them in order, each on the outputs it reads. A block,
branch or group whose layers read only each other and one input, and whose last layer
alone is read from outside, is a `Steps` of its own at its path: `model.layer1[0]` style
access gives a module that runs that block. `named_modules()` lists every row of
`convcalc shapes` by its path, merges included, and `state_dict()` keys are `<path>.weight`, ...

Imports `analysis`, `errors`, `graph`, `layers`, `load`, `network`, `spec` and `torch.modules` only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from convcalc.analysis import Report, analyze
from convcalc.graph import INPUT, Graph, Group
from convcalc.network import Network
from convcalc.torch.modules import Steps

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec(spec: str | os.PathLike[str] | Network, overrides: Mapping[str, Any] | None = None) -> Network:
    """A spec given as a file path, spec text or a parsed `Network`; `overrides` set vars."""
    if isinstance(spec, Network):
        if overrides:
            raise TypeError("vars can only be set on a spec that is still text or a file; this one is parsed")
        return spec
    text = os.fspath(spec)
    if isinstance(spec, os.PathLike) or ("\n" not in text and (text.endswith(SPEC_SUFFIXES) or Path(text).is_file())):
        from convcalc.load import load_network

        return load_network(text, overrides=overrides)
    from convcalc.spec.parser import parse_text

    return parse_text(text, "<spec>", overrides=overrides)


def build(spec: str | os.PathLike[str] | Network, **overrides: Any) -> nn.Module:
    """The network of `spec` as a torch.nn.Module with freshly initialised weights.

    `spec` is a path, spec text or a parsed `Network`; keyword arguments override the spec's
    `vars` (as `--set NAME=VALUE` does). A spec convcalc refuses raises its `SpecError`.
    """
    network = load_spec(spec, overrides)
    return modules_of(network, analyze(network))


def modules_of(network: Network, report: Report) -> nn.Module:
    """The modules of an analysed network: a `Steps` that runs its graph."""
    graph = network.graph
    modules = [node.type.torch_module(node.args, row.input_shapes[0])
               for node, row in zip(graph.nodes, report.rows)]
    return _Assembler(graph, modules).steps(0, len(graph.nodes), "", graph.outputs, INPUT)


def relative(path: str, prefix: str) -> str:
    return path[len(prefix) + 1:] if prefix else path


class _Assembler:
    def __init__(self, graph: Graph, modules: list[nn.Module]) -> None:
        self.graph = graph
        self.modules = modules
        self.readers = graph.consumers
        self.outputs = set(graph.outputs)
        self.groups_at: dict[int, list[Group]] = {}
        for group in graph.groups:  # outer groups first
            self.groups_at.setdefault(group.start, []).append(group)

    def steps(self, start: int, stop: int, prefix: str, outputs: tuple[int, ...], source: int) -> Steps:
        """Nodes `start <= id < stop`, reading `source` from outside, as one `Steps`."""
        steps: list[tuple[str, nn.Module, tuple[int, ...]]] = []
        local = {source: -1}
        i = start
        while i < stop:
            group = self.closed_group(i, stop, prefix)
            if group is not None:
                source_of_group = self.source_of(group)
                inner = self.steps(group.start, group.stop, group.path, (group.stop - 1,), source_of_group)
                steps.append((relative(group.path, prefix), inner, (local[source_of_group],)))
                local[group.stop - 1] = len(steps) - 1
                i = group.stop
                continue
            node = self.graph.nodes[i]
            steps.append((relative(node.path, prefix), self.modules[i], tuple(local[j] for j in node.inputs)))
            local[i] = len(steps) - 1
            i += 1
        return Steps(steps, tuple(local[o] for o in outputs))

    def source_of(self, group: Group) -> int:
        return next(j for n in self.graph.nodes[group.start:group.stop] for j in n.inputs
                    if not group.start <= j < group.stop)

    def closed_group(self, i: int, stop: int, prefix: str) -> Group | None:
        """The outermost group starting at node i, inside this range and below `prefix`, that
        can run on its own: one input from outside, and only its last node read outside."""
        for group in self.groups_at.get(i, ()):
            if group.stop > stop or group.path == prefix or not group.path.startswith(prefix + "." if prefix else ""):
                continue
            if self.closed(group):
                return group
        return None

    def closed(self, group: Group) -> bool:
        inside = range(group.start, group.stop)
        nodes = self.graph.nodes[group.start:group.stop]
        if any(not n.path.startswith(group.path + ".") for n in nodes):
            return False
        sources = {j for n in nodes for j in n.inputs if j not in inside}
        if len(sources) != 1:
            return False
        return all(k not in self.outputs and all(r in inside for r in self.readers[k])
                   for k in range(group.start, group.stop - 1))
