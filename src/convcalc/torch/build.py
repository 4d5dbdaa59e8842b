"""A spec's network as torch.nn modules whose paths are convcalc's.

The parsed tree says how paths nest: every path that holds layers is one container, an
nn.Sequential for a list of layers (a block, a `sequential`, a named repeat) or a `Fork`
for `residual` and `parallel` (its branches, merge and `after` layers are its children).
The analysis gives each layer's input shape, and the layer type its module
(`LayerType.torch_module`). `named_modules()` therefore lists every row of `convcalc
shapes` by its path, merges included, and `state_dict()` keys are `<path>.weight`, ...

Imports `analysis`, `errors`, `layers`, `load`, `network`, `spec` and `torch.modules` only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from convcalc.analysis import Report, analyze
from convcalc.errors import SpecError
from convcalc.layers import Shape
from convcalc.network import Fork, Layer, Network, Sequence
from convcalc.torch.modules import Fork as ForkModule

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
    """The modules of an analysed network (the top level: an nn.Sequential or a `Fork`)."""
    shapes = {row.path: row.input_shapes[0] for row in report.rows}
    return _Assembler(shapes).container(network.body)


def segment(path: str) -> str:
    return path.rpartition(".")[2]


def flat(node: Sequence) -> list[Layer | Sequence | Fork]:
    """A sequence's items, with the sequences at its own path (an unnamed repeat, the layers
    after a fork) opened: what remains are children, and at most one fork at this path."""
    out: list[Layer | Sequence | Fork] = []
    for item in node.items:
        if isinstance(item, Sequence) and item.path == node.path:
            out += flat(item)
        else:
            out.append(item)
    return out


class _Assembler:
    def __init__(self, shapes: dict[str, Shape]) -> None:
        self.shapes = shapes

    def module(self, node: Layer | Sequence | Fork) -> nn.Module:
        if isinstance(node, Layer):
            return node.type.torch_module(node.args, self.shapes[node.path])
        return self.container(node)

    def container(self, node: Sequence | Fork) -> nn.Module:
        if isinstance(node, Fork):
            return self.fork(node, [])
        items = flat(node)
        if items and isinstance(items[0], Fork) and items[0].path == node.path:
            return self.fork(items[0], items[1:])
        sequential = nn.Sequential()
        for item in items:
            self.add(sequential, item)
        return sequential

    def add(self, parent: nn.Module, item: Layer | Sequence | Fork) -> str:
        name = segment(item.path)
        if name in parent._modules:
            raise SpecError(f"two layers have the path {item.path}", where=item.where, path=item.path)
        parent.add_module(name, self.module(item))
        return name

    def fork(self, fork: Fork, after: list[Layer | Sequence | Fork]) -> nn.Module:
        layers = nn.Module()  # a namespace for the children until the fork takes them
        branches = []
        for branch in fork.branches:
            if branch.path == fork.path:  # a residual's body: its layers sit at the fork's path
                branches.append([self.add(layers, item) for item in flat(branch)])
            elif branch.items:
                branches.append([self.add(layers, branch)])
            else:
                branches.append([])
        merge = segment(fork.merge_path)
        if merge in layers._modules:
            raise SpecError(f"a layer has the path {fork.merge_path} of the merge", where=fork.where, path=fork.path)
        layers.add_module(merge, fork.merge.torch_module({}, ()))
        names = [self.add(layers, item) for item in after]
        children = {name: module for name, module in layers.named_children()}
        return ForkModule(children, branches, merge, names)
