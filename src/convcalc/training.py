"""Memory for training: what the backward pass keeps, plus gradients and optimizer state.

Assumptions (docs/check.md, "Training memory"), matched against PyTorch's autograd (the
tensors `torch.autograd.graph.saved_tensors_hooks` sees, deduplicated by storage, for
torch 2.13 on CPU in training mode):

- each layer keeps what its backward needs (`SAVES` below): conv, transposed conv and linear
  keep their input; ReLU, sigmoid, tanh and softmax keep their output; most other
  activations keep their input; max pooling keeps its input and int64 indices of the output's
  size; batch norm keeps its input plus 2*C statistics; dropout keeps a mask; flatten,
  padding with zeros, upsampling, pixel and channel shuffle, add and concat keep nothing;
  mul keeps each input whose partner needs a gradient; layer scale keeps its input;
  stochastic depth keeps its noise (one number per sample in `row` mode); narrow and
  permute are views;
- a tensor kept by two layers (a ReLU's output that the next conv keeps as its input) is
  counted once; flatten and identity are views, in-place activations reuse their input;
- a layer keeps nothing unless a gradient flows through it (it has parameters, or one
  before it has): activations applied to the raw input keep nothing; the network input
  itself counts when the first conv keeps it;
- gradients: one per trainable parameter; optimizer state per parameter: `sgd` none,
  `sgd-momentum` one buffer, `adam`/`adamw` two (Adam's per-tensor step counters are left
  out); parameters, buffers, gradients and state are at the chosen dtype;
- not counted: activation gradients alive during backward, framework workspaces, the
  allocator's rounding, and anything held by a data loader. The total is a lower bound.

Pure: imports `analysis`, `errors`, `graph` and `network` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convcalc.analysis import DTYPE_BYTES, Report, Row
from convcalc.errors import SpecError
from convcalc.graph import INPUT as NETWORK_INPUT
from convcalc.graph import Graph, Node
from convcalc.network import Network

OPTIMIZER_STATES = {"none": 0, "sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}
INDEX_BYTES = 8  # int64 indices of max pooling

# What one layer keeps: "input", "output", "copy" (a fresh tensor of the input's size, e.g.
# the input an in-place activation must save before overwriting it), and extra tensors
# (elements per sample, elements per batch, bytes per element or None for the dtype).
Extra = Callable[[Any, tuple[int, ...], tuple[int, ...]], tuple[int, int, int | None]]


@dataclass(frozen=True)
class Saves:
    keeps: str = ""  # "", "input", "output" or "copy"
    inplace_keeps: str | None = None  # what it keeps when inplace=true (default: same)
    extra: Extra | None = None
    view: bool = False  # the output shares the input's storage


def _nothing(*_: Any) -> tuple[int, int, int | None]:
    return 0, 0, None


def _indices(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return math.prod(out), 0, INDEX_BYTES


def _bn_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return 0, 2 * shape[0], None  # save_mean, save_invstd: per channel, over the batch


def _instance_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return shape[0] * (3 if args["affine"] else 2), 0, None  # mean, invstd (+ weight per sample)


def _layer_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    normalized = args["normalized_shape"] or shape[-1:]
    return 2 * math.prod(shape) // math.prod(normalized), 0, None  # mean, rstd per group


def _channel_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return 2 * math.prod(shape[1:]), 0, None  # mean, rstd per position (LayerNorm2d)


def _group_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return 2 * args["num_groups"], 0, None


def _lrn(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    # torch composes it: a channel-padded square (C + size - 1 channels) and two full tensors.
    spatial = math.prod(shape[1:])
    return (shape[0] + args["size"] - 1) * spatial + 2 * math.prod(shape), 0, None


def _mask(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return math.prod(shape), 0, None


def _channel_mask(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    return shape[0], 0, None


def _drop_noise(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> tuple[int, int, int | None]:
    # torchvision's stochastic_depth multiplies by a noise tensor: [N, 1, ...] or [1, 1, ...].
    if args["p"] == 0:
        return 0, 0, None
    return (1, 0, None) if args["mode"] == "row" else (0, 1, None)


def _adaptive_avg(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> str:
    return "" if all(n == 1 for n in out[1:]) else "input"  # a global mean keeps nothing


INPUT = Saves("input")
OUTPUT = Saves("output")
NOTHING = Saves()

SAVES: dict[str, Saves] = {
    **{f"conv{r}d": INPUT for r in (1, 2, 3)},
    **{f"convtranspose{r}d": INPUT for r in (1, 2, 3)},
    "linear": INPUT,
    **{f"batchnorm{r}d": Saves("input", extra=_bn_stats) for r in (1, 2, 3)},
    **{f"instancenorm{r}d": Saves("input", extra=_instance_stats) for r in (1, 2, 3)},
    "layernorm": Saves("input", extra=_layer_stats),
    "layernorm2d": Saves("input", extra=_channel_stats),  # its permuted input is a view
    "groupnorm": Saves("input", extra=_group_stats),
    "localresponsenorm": Saves("input", extra=_lrn),
    "identity": Saves(view=True),
    "relu": OUTPUT,
    "sigmoid": OUTPUT,
    "tanh": OUTPUT,
    "softmax": OUTPUT,
    "logsoftmax": OUTPUT,
    # Activations whose backward needs the input; in place, torch saves a copy first (or,
    # for leaky ReLU and ELU, the result).
    **{name: Saves("input", inplace_keeps="copy")
       for name in ("relu6", "silu", "mish", "hardswish", "hardsigmoid", "hardtanh")},
    **{name: Saves("input", inplace_keeps="output") for name in ("leakyrelu", "elu")},
    **{name: INPUT for name in ("prelu", "gelu", "softplus")},
    "dropout": Saves(extra=_mask),
    "alphadropout": Saves(extra=_mask),
    **{name: Saves(extra=_channel_mask)
       for name in ("dropout1d", "dropout2d", "dropout3d", "featurealphadropout")},
    **{f"maxpool{r}d": Saves("input", extra=_indices) for r in (1, 2, 3)},
    **{f"adaptivemaxpool{r}d": Saves("input", extra=_indices) for r in (1, 2, 3)},
    **{f"avgpool{r}d": INPUT for r in (1, 2, 3)},
    **{f"adaptiveavgpool{r}d": Saves("adaptive") for r in (1, 2, 3)},
    "flatten": Saves(view=True),
    "upsample": NOTHING,
    "upsamplingnearest2d": NOTHING,
    "upsamplingbilinear2d": NOTHING,
    "pixelshuffle": NOTHING,
    "pixelunshuffle": NOTHING,
    "add": NOTHING,
    "concat": NOTHING,
    "mul": Saves("operands"),  # each input is the others' gradient factor
    "narrow": Saves(view=True),
    "permute": Saves(view=True),
    "channelshuffle": NOTHING,
    "layerscale": INPUT,  # x * gamma keeps x for gamma's gradient
    "stochasticdepth": Saves(extra=_drop_noise),
    **{f"{mode}pad{r}d": NOTHING for mode in ("zero", "constant", "circular") for r in (1, 2, 3)},
    **{f"{mode}pad{r}d": INPUT for mode in ("reflection", "replication") for r in (1, 2, 3)},
}


@dataclass(frozen=True)
class LayerMemory:
    """What one row keeps for backward, in bytes for the whole batch."""

    path: str
    kept: tuple[str, ...]  # ids of the activation tensors it keeps (deduplicated in totals)
    extra_bytes: int


@dataclass(frozen=True)
class TrainingMemory:
    optimizer: str
    saved_bytes: int  # activations and extras kept for backward, each tensor once
    weight_bytes: int  # parameters and buffers
    gradient_bytes: int
    optimizer_bytes: int
    per_layer: tuple[int, ...]  # bytes each row adds (a shared tensor counts where first kept)

    @property
    def total_bytes(self) -> int:
        return self.saved_bytes + self.weight_bytes + self.gradient_bytes + self.optimizer_bytes


class _Saved:
    """What each node keeps for backward, in graph order; tensors named by the row that made them."""

    def __init__(self, report: Report) -> None:
        self.sizes: dict[str, int] = {"<input>": math.prod(report.input_shape)}
        self.grad: dict[str, bool] = {"<input>": False}  # does the tensor need a gradient?
        self.element = DTYPE_BYTES[report.dtype]
        self.batch = report.batch_size
        self.layers: list[LayerMemory] = []

    def run(self, graph: Graph, report: Report) -> None:
        tensor_of = {NETWORK_INPUT: "<input>"}
        for i, (node, row) in enumerate(zip(graph.nodes, report.rows)):
            tensor_of[i] = self.node(node, row, [tensor_of[j] for j in node.inputs])

    def node(self, node: Node, row: Row, tensors: list[str]) -> str:
        """The name of the tensor `node` outputs, after noting what it keeps."""
        rule = SAVES.get(node.type.name)
        if rule is None:
            raise SpecError(f"training memory does not know what {node.type.name} keeps for"
                            " backward", path=node.path, layer_type=node.type.name)
        tensor = tensors[0]
        inplace = bool(node.args.get("inplace", False))
        out = tensor if rule.view or (inplace and rule.keeps) else row.path
        if out == row.path:
            self.sizes[out] = math.prod(row.output_shape)
        self.grad[out] = any(self.grad[t] for t in tensors) or row.params > 0
        if not self.grad[out]:  # no gradient flows through it: autograd keeps nothing
            self.layers.append(LayerMemory(row.path, (), 0))
            return out
        keeps = rule.inplace_keeps if inplace and rule.inplace_keeps else rule.keeps
        shape = row.input_shapes[0]
        if keeps == "adaptive":
            keeps = _adaptive_avg(node.args, shape, row.output_shape)
        kept: tuple[str, ...] = ()
        if keeps == "operands":  # an input is kept when another input needs its gradient
            kept = tuple(t for i, t in enumerate(tensors)
                         if any(self.grad[o] for j, o in enumerate(tensors) if j != i))
        elif keeps == "input":
            kept = tuple(tensors)
        elif keeps == "output":
            kept = (out,)
        elif keeps == "copy":
            kept = (f"{row.path}#copy",)
            self.sizes[kept[0]] = math.prod(shape)
        per_sample, per_batch, size = (rule.extra or _nothing)(node.args, shape, row.output_shape)
        extra = (per_sample * self.batch + per_batch) * (size or self.element)
        self.layers.append(LayerMemory(row.path, kept, extra))
        return out


def training_memory(network: Network, report: Report, optimizer: str = "none") -> TrainingMemory:
    """Bytes kept for one training step of `report`'s batch (see the module's assumptions)."""
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"unknown optimizer '{optimizer}' (expected one of {', '.join(OPTIMIZER_STATES)})")
    walker = _Saved(report)
    walker.run(network.graph, report)
    seen: set[str] = set()
    per_layer = []
    for mem in walker.layers:
        new = [t for t in mem.kept if t not in seen]
        seen.update(new)
        per_layer.append(sum(walker.sizes[t] for t in new) * walker.batch * walker.element + mem.extra_bytes)
    element = walker.element
    t = report.totals
    return TrainingMemory(
        optimizer=optimizer,
        saved_bytes=sum(per_layer),
        weight_bytes=(t.params + t.buffers) * element,
        gradient_bytes=t.params * element,
        optimizer_bytes=OPTIMIZER_STATES[optimizer] * t.params * element,
        per_layer=tuple(per_layer),
    )
