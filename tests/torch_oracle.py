"""The PyTorch side of the forward-pass tests: convcalc layers and networks as torch.nn.

Used by scripts/make_forward_fixtures.py (committed fixtures), by the live tests in
tests/test_numeric_*.py (only where torch is importable) and by benchmarks/verify_bench.py.
torch is a test oracle only, never a convcalc dependency. Layers are built from convcalc's
parsed (normalised) arguments, which are torch.nn's own names; parameters are copied in
by name, so both sides compute with the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from convcalc.analysis import Report
from convcalc.graph import INPUT, Graph
from convcalc.layers import Args, LayerType
from convcalc.layers.blocks import span
from convcalc.network import Network

CLASSES = {name.lower(): getattr(nn, name) for name in dir(nn) if isinstance(getattr(nn, name), type)}
TORCH_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class Pad(nn.Module):
    """F.pad with (before, after) pairs per spatial axis (convcalc's order)."""

    def __init__(self, pairs: Any, mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.flat = [w for pair in reversed(pairs) for w in pair]
        self.mode, self.value = mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.flat, value=self.value)
        return F.pad(x, self.flat, mode=self.mode)


class Permute(nn.Module):
    """torchvision.ops.Permute (torchvision may not import here)."""

    def __init__(self, dims: Any) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.permute(x, self.dims)


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: LayerNorm over C of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Narrow(nn.Module):
    """torch.narrow on dim 1: what one part of a channel split (torch.split / chunk) is."""

    def __init__(self, start: int, length: int) -> None:
        super().__init__()
        self.start, self.length = start, length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.narrow(x, 1, self.start, self.length)


class LayerScale(nn.Module):
    """timm's LayerScale2d: a learnable scale per channel of dim 1."""

    def __init__(self, channels: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(-1, *(1,) * (x.ndim - 2))


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth, written out as torchvision's stochastic_depth does it."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class Crop(nn.Module):
    """Removes (before, after) per spatial axis: asymmetric transposed-conv padding."""

    def __init__(self, pairs: Any) -> None:
        super().__init__()
        self.pairs = pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = tuple(slice(a, x.shape[2 + i] - b) for i, (a, b) in enumerate(self.pairs))
        return x[(Ellipsis, *index)]


class CenterCrop(nn.Module):
    """torchvision.transforms.CenterCrop on tensors (torchvision is not a dependency)."""

    def __init__(self, size: Any = None) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor, size: Any = None) -> torch.Tensor:
        ch, cw = size if size is not None else self.size
        h, w = x.shape[-2:]
        if ch > h or cw > w:
            left, top = (cw - w) // 2 if cw > w else 0, (ch - h) // 2 if ch > h else 0
            right, bottom = (cw - w + 1) // 2 if cw > w else 0, (ch - h + 1) // 2 if ch > h else 0
            x = F.pad(x, [left, right, top, bottom])
            h, w = x.shape[-2:]
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        return x[..., top:top + ch, left:left + cw]


def _symmetric(pairs: Any) -> bool:
    return all(a == b for a, b in pairs)


def _value(v: Any) -> Any:
    return tuple(v) if isinstance(v, (tuple, list)) else v


def torch_layer(lt: LayerType, args: Args, in_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(module to call, module that holds the parameters) for one convcalc layer."""
    name, c = lt.name, in_shape[0]
    kw = {k: _value(v) for k, v in args.items()}
    cls = CLASSES.get(name)
    if name.startswith("conv") and not name.startswith("convtranspose"):
        kw.pop("in_channels")
        pads = kw.pop("padding")
        if pads == "same" or _symmetric(pads):
            conv = cls(c, padding=pads if pads == "same" else tuple(a for a, _ in pads), **kw)
            return conv, conv
        mode = TORCH_PAD[kw["padding_mode"]]
        kw["padding_mode"] = "zeros"
        conv = cls(c, padding=0, **kw)
        return nn.Sequential(Pad(pads, mode), conv), conv
    if name.startswith("convtranspose"):
        kw.pop("in_channels")
        pads = kw.pop("padding")
        if _symmetric(pads):
            conv = cls(c, padding=tuple(a for a, _ in pads), **kw)
            return conv, conv
        conv = cls(c, padding=0, **kw)
        return nn.Sequential(conv, Crop(pads)), conv
    if name.startswith(("maxpool", "avgpool")):
        pads = kw.pop("padding")
        if not _symmetric(pads):
            raise NotImplementedError("PyTorch pools take symmetric padding only")
        if name == "avgpool1d":
            kw.pop("divisor_override")  # AvgPool1d has none
        module = cls(padding=tuple(a for a, _ in pads), **kw)
        return module, module
    if name.startswith("adaptive"):
        kw["output_size"] = tuple(args["output_size"])
        kw.pop("return_indices", None)
        module = cls(**kw)
        return module, module
    if name.startswith(("batchnorm", "instancenorm")):
        kw.pop("num_features")
        module = cls(c, **kw)
    elif name == "groupnorm":
        kw.pop("num_channels")
        module = cls(num_channels=c, **kw)
    elif name == "layernorm":
        kw["normalized_shape"] = tuple(args["normalized_shape"] or in_shape[-1:])
        module = cls(**kw)
    elif name == "layernorm2d":
        kw["normalized_shape"] = c
        module = LayerNorm2d(**kw)
    elif name == "linear":
        kw.pop("in_features")
        module = cls(in_shape[-1], **kw)
    elif name == "centercrop":
        size = args["size"]
        module = CenterCrop(None if size is None else (size * 2 if len(size) == 1 else size))
    elif name == "upsample" and args.get("size_of") is not None:
        module = nn.Identity()  # TorchGraph calls F.interpolate with the other input's size
    elif name in ("upsample", "upsamplingnearest2d", "upsamplingbilinear2d"):
        rank = len(in_shape) - 1
        for key in ("size", "scale_factor"):
            if kw.get(key) is not None:
                kw[key] = kw[key] * rank if len(kw[key]) == 1 else kw[key]
        kw.pop("size_of", None)
        if name != "upsample":
            kw = {k: kw[k] for k in ("size", "scale_factor")}
        module = cls(**kw)
    elif name == "permute":
        module = Permute(args["dims"])
    elif name == "narrow":
        module = Narrow(*span(args, c))
    elif name == "layerscale":
        module = LayerScale(c, args["init_values"])
    elif name == "stochasticdepth":
        module = StochasticDepth(args["p"], args["mode"])
    elif name == "channelshuffle":
        module = nn.ChannelShuffle(args["groups"])
    elif "pad" in name and name.endswith("d"):
        flat = tuple(w for pair in reversed(args["padding"]) for w in pair)
        module = cls(flat, args["value"]) if name.startswith("constant") else cls(flat)
    else:
        kw.pop("inplace", None)
        module = cls(**kw)
    return module, module


def load(holder: nn.Module, params: Mapping[str, np.ndarray]) -> None:
    """Copy convcalc's parameters (PyTorch names and layouts) into a module."""
    with torch.no_grad():
        for key, value in params.items():
            target = getattr(holder, key)
            assert tuple(target.shape) == value.shape, (key, tuple(target.shape), value.shape)
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


class TorchGraph(nn.Module):
    """convcalc's graph run node by node (one module per single-input node)."""

    def __init__(self, graph: Graph, modules: dict[int, nn.Module]) -> None:
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict({str(i): m for i, m in modules.items()})

    def forward(self, x: torch.Tensor) -> Any:
        """The output, or the tuple of outputs when the graph has several."""
        values = {INPUT: x}
        for i, node in enumerate(self.graph.nodes):
            xs = [values[j] for j in node.inputs]
            if node.type.name == "concat":
                values[i] = torch.cat(xs, dim=node.args.get("dim", 1))
            elif node.type.name in ("add", "mul"):
                total = xs[0]
                for other in xs[1:]:
                    total = total + other if node.type.name == "add" else total * other
                values[i] = total
            elif len(xs) > 1 and node.type.name == "upsample":  # size_of: F.interpolate(size=other)
                values[i] = F.interpolate(xs[0], size=tuple(xs[1].shape[2:]), mode=node.args["mode"],
                                          align_corners=node.args["align_corners"])
            elif len(xs) > 1:  # centercrop with size_of
                values[i] = self.layers[str(i)](xs[0], tuple(xs[1].shape[2:]))
            else:
                assert node.type.arity == 1, f"the oracle does not know the merge {node.type.name}"
                values[i] = self.layers[str(i)](xs[0])
        outs = tuple(values[o] for o in self.graph.outputs)
        return outs[0] if len(outs) == 1 else outs


def torch_network(network: Network, report: Report, params: Mapping[str, Mapping[str, np.ndarray]],
                  dtype: torch.dtype = torch.float32) -> nn.Module:
    """The network as torch modules in eval mode, with `params[path]` loaded per layer."""
    graph = network.graph
    modules = {}
    for i, (node, row) in enumerate(zip(graph.nodes, report.rows)):
        if node.type.arity == 1:
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
