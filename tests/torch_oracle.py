"""The PyTorch side of the forward-pass tests: convcalc layers and networks as torch.nn.

Used by scripts/make_forward_fixtures.py (committed fixtures), by the live tests in
tests/test_numeric_*.py (only where torch is importable) and by benchmarks/verify_bench.py.
torch is a test oracle only, never a convcalc dependency. Each layer is its type's
`torch_module` (the torch.nn class with the same arguments: `LayerType.torch_call`);
parameters are copied in by name, so both sides compute with the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from convcalc.analysis import Report
from convcalc.graph import INPUT, Graph
from convcalc.layers import Args, LayerType
from convcalc.network import Network


def torch_layer(lt: LayerType, args: Args, in_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(module to call, module that holds the parameters) for one convcalc layer: the layer
    type's own `torch_module` (the same module `convcalc.torch.build` uses), which holds its
    parameters itself (asymmetric padding included)."""
    module = lt.torch_module(args, in_shape)
    return module, module


def load(holder: nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copy convcalc's parameters (PyTorch names and layouts) into a module."""
    with torch.no_grad():
        for key, value in params.items():
            target = getattr(holder, key)
            assert target.numel() == value.size, (key, tuple(target.shape), value.shape)  # layer scale: [C, 1, 1]
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)).reshape(target.shape))


class TorchGraph(nn.Module):
    """convcalc's graph run node by node, one module per node (merges included)."""

    def __init__(self, graph: Graph, modules: dict[int, nn.Module]) -> None:
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict({str(i): m for i, m in modules.items()})

    def forward(self, x: torch.Tensor) -> Any:
        """The output, or the tuple of outputs when the graph has several."""
        values = {INPUT: x}
        for i, node in enumerate(self.graph.nodes):
            values[i] = self.layers[str(i)](*(values[j] for j in node.inputs))
        outs = tuple(values[o] for o in self.graph.outputs)
        return outs[0] if len(outs) == 1 else outs


def torch_network(network: Network, report: Report, params: Mapping[str, Mapping[str, np.ndarray]],
                  dtype: torch.dtype = torch.float32) -> nn.Module:
    """The network as torch modules in eval mode, with `params[path]` loaded per layer."""
    graph = network.graph
    modules = {}
    for i, (node, row) in enumerate(zip(graph.nodes, report.rows)):
        module, holder = torch_layer(node.type, node.args, row.input_shapes[0])
        load(holder, params.get(node.path, {}))
        modules[i] = module
    return TorchGraph(graph, modules).to(dtype).eval()


def convcalc_params(network: Network, report: Report, seed: int, dtype: Any = np.float32) -> dict[str, dict]:
    """The parameters convcalc's runner draws for every layer (same seed, same numbers)."""
    from convcalc.numeric.kernels import layer_params
    from convcalc.numeric.runner import param_rng

    shapes = {r.path: r.input_shape for r in report.rows}
    return {layer.path: layer_params(layer.type, layer.args, shapes[layer.path], param_rng(seed, layer.path), dtype)
            for layer in network.leaves()}
