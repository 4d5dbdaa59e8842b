"""Memory for training: what the backward pass keeps, plus gradients and optimizer state.

Assumptions (docs/check.md, "Training memory"), matched against PyTorch's autograd (the
tensors `torch.autograd.graph.saved_tensors_hooks` sees, deduplicated by storage, for
torch 2.13 on CPU in training mode):

- each layer keeps what its backward needs (`SAVES` below): conv, transposed conv and linear
  keep their input; ReLU, sigmoid, tanh and softmax keep their output; most other
  activations keep their input; max pooling keeps its input and int64 indices of the output's
  size; batch norm keeps its input plus 2*C statistics; dropout keeps a mask; flatten,
  padding with zeros, upsampling, pixel and channel shuffle, add and concat keep nothing; mul of
  `a, b, c` is `(a * b) * c`: each product keeps a factor when the other factor needs a gradient
  (the partial product `a * b` is a new tensor); a centre crop is a view of its input, or of the
  zero-padded input when it pads an axis (torchvision pads, then slices); layer scale keeps its
  input (under mixed precision its output is float32: `x * gamma` promotes to the float32
  gamma); stochastic depth keeps its noise (one number per sample in `row` mode); narrow and
  permute are views;
- a tensor kept by two layers (a ReLU's output that the next conv keeps as its input) is
  counted once; flatten and identity are views, in-place activations reuse their input;
- a layer keeps nothing unless a gradient flows through it (it has parameters, or one
  before it has): activations applied to the raw input keep nothing; the network input
  itself counts when the first conv keeps it;
- gradients: one per trainable parameter; optimizer state per parameter: `sgd` none,
  `sgd-momentum` one buffer, `adam`/`adamw` two (Adam's per-tensor step counters are left
  out); parameters, buffers, gradients and state are at the chosen dtype;
- mixed precision (`amp`, as autocast + GradScaler do it): weights, gradients and optimizer
  state stay float32, plus GradScaler's scale and growth tracker (8 bytes). Tensors carry
  their dtype: conv, transposed conv, linear and PReLU (`AMP_LOWER`) run in the low precision,
  so they keep a low-precision cast of their input (a new tensor when the input was float32)
  and of their weight; 3D pooling and reflection/replication padding (`AMP_FLOAT32`) run in
  float32, keeping a float32 cast of a low-precision input; every other layer runs in its
  input's dtype (merges in the widest), and its statistics are float32 (batch, group and layer
  norm; instance norm's only with affine, else the input's dtype). This is torch 2.13's CPU
  autocast, the same for bfloat16 and float16, checked against it on every training fixture;
- not counted: activation gradients alive during backward, framework workspaces, the
  allocator's rounding, and anything held by a data loader. The total is a lower bound.

Pure: imports `analysis`, `errors`, `graph`, `layers` and `network` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from convcalc.analysis import DTYPE_BYTES, Report, Row
from convcalc.errors import SpecError
from convcalc.graph import INPUT as NETWORK_INPUT
from convcalc.graph import Graph, Node
from convcalc.layers.merge import broadcast
from convcalc.network import Network
from convcalc.records import record

OPTIMIZER_STATES = {"none": 0, "sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}
INDEX_BYTES = 8  # int64 indices of max pooling

# What one layer keeps: "input", "output", "copy" (a fresh tensor of the input's size, e.g.
# the input an in-place activation must save before overwriting it), and extra tensors:
# (elements per sample, elements per batch, element) each, the element being bytes, INPUT_DTYPE
# (the input's dtype) or STATS (statistics: float32 under mixed precision, else the dtype).
Extra = Callable[[Any, tuple[int, ...], tuple[int, ...]], tuple[tuple[int, int, int], ...]]
INPUT_DTYPE, STATS = -1, -2

# Mixed precision (torch 2.13's CPU autocast, bfloat16 or float16): the layers that run in the
# low precision, and those that run in float32 whatever their input.
AMP_LOWER = {*(f"conv{r}d" for r in (1, 2, 3)), *(f"convtranspose{r}d" for r in (1, 2, 3)), "linear", "prelu"}
AMP_FLOAT32 = {"avgpool3d", "maxpool3d", "adaptiveavgpool3d", "adaptivemaxpool3d", "reflectionpad1d",
               "reflectionpad2d", "replicationpad1d", "replicationpad2d", "replicationpad3d"}
AMP_DTYPES = ("float16", "bfloat16")
SCALER_BYTES = 8  # GradScaler: the float32 scale and the int32 growth tracker


@record
class Saves:
    keeps: str = ""  # "", "input", "output" or "copy"
    inplace_keeps: str | None = None  # what it keeps when inplace=true (default: same)
    extra: Extra | None = None
    view: bool = False  # the output shares the input's storage


Extras = tuple[tuple[int, int, int], ...]


def _nothing(*_: Any) -> Extras:
    return ()


def _indices(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((math.prod(out), 0, INDEX_BYTES),)


def _bn_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((0, 2 * shape[0], STATS),)  # save_mean, save_invstd: per channel, over the batch


def _instance_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    # mean and invstd per sample (and with affine the weight repeated per sample), computed with
    # the float32 weight when there is one: float32 then, else the input's dtype
    if args["affine"]:
        return ((shape[0] * 3, 0, STATS),)
    return ((shape[0] * 2, 0, INPUT_DTYPE),)


def _layer_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    normalized = args["normalized_shape"] or shape[-1:]
    return ((2 * math.prod(shape) // math.prod(normalized), 0, STATS),)  # mean, rstd per group


def _channel_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((2 * math.prod(shape[1:]), 0, STATS),)  # mean, rstd per position (LayerNorm2d)


def _group_stats(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((2 * args["num_groups"], 0, STATS),)


def _lrn(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    # torch composes it: a channel-padded square (C + size - 1 channels) and two full tensors,
    # float32 under autocast (its average pool is a 3D one).
    spatial = math.prod(shape[1:])
    return (((shape[0] + args["size"] - 1) * spatial + 2 * math.prod(shape), 0, STATS),)


def _mask(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((math.prod(shape), 0, INPUT_DTYPE),)


def _channel_mask(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    return ((shape[0], 0, INPUT_DTYPE),)


def _drop_noise(args: Any, shape: tuple[int, ...], out: tuple[int, ...]) -> Extras:
    # torchvision's stochastic_depth multiplies by a noise tensor: [N, 1, ...] or [1, 1, ...].
    if args["p"] == 0:
        return ()
    return ((1, 0, INPUT_DTYPE),) if args["mode"] == "row" else ((0, 1, INPUT_DTYPE),)


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
    # Left to right; each product keeps one factor when the other needs a gradient.
    "mul": Saves("product"),
    # A crop is a view of its input (a slice); one that pads slices a new, padded tensor.
    "centercrop": Saves(view=True),
    "narrow": Saves(view=True),
    "permute": Saves(view=True),
    "channelshuffle": NOTHING,
    "layerscale": INPUT,  # x * gamma keeps x for gamma's gradient
    "stochasticdepth": Saves(extra=_drop_noise),
    **{f"{mode}pad{r}d": NOTHING for mode in ("zero", "constant", "circular") for r in (1, 2, 3)},
    **{f"{mode}pad{r}d": INPUT for mode in ("reflection", "replication") for r in (1, 2, 3)},
}


@record
class LayerMemory:
    """What one row keeps for backward, in bytes for the whole batch."""

    path: str
    kept: tuple[str, ...]  # ids of the activation tensors it keeps (deduplicated in totals)
    extra_bytes: int


@record
class TrainingMemory:
    optimizer: str
    saved_bytes: int  # activations and extras kept for backward, each tensor once
    weight_bytes: int  # parameters and buffers
    gradient_bytes: int
    optimizer_bytes: int
    per_layer: tuple[int, ...]  # bytes each row adds (a shared tensor counts where first kept)
    amp: str | None = None  # the low precision of mixed-precision training, or None
    scaler_bytes: int = 0  # GradScaler's state under mixed precision

    @property
    def total_bytes(self) -> int:
        return (self.saved_bytes + self.weight_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.scaler_bytes)


class _Saved:
    """What each node keeps for backward, in graph order; tensors named by the row that made them.

    Every tensor has a size (elements per sample) and an element size in bytes: the report's
    dtype, or under mixed precision float32 or the low precision, as autocast gives it.
    """

    def __init__(self, report: Report, amp: str | None) -> None:
        self.element = DTYPE_BYTES[report.dtype] if amp is None else DTYPE_BYTES["float32"]
        self.half = DTYPE_BYTES[amp] if amp is not None else None
        self.sizes: dict[str, int] = {"<input>": math.prod(report.input_shape)}
        self.bytes: dict[str, int] = {"<input>": self.element}
        self.grad: dict[str, bool] = {"<input>": False}  # does the tensor need a gradient?
        self.batch = report.batch_size
        self.layers: list[LayerMemory] = []

    def run(self, graph: Graph, report: Report) -> None:
        tensor_of = {NETWORK_INPUT: "<input>"}
        for i, (node, row) in enumerate(zip(graph.nodes, report.rows)):
            tensor_of[i] = self.node(node, row, [tensor_of[j] for j in node.value_inputs])

    def new(self, name: str, elements: int, element: int) -> str:
        self.sizes[name], self.bytes[name] = elements, element
        return name

    def operand(self, row: Row, tensor: str) -> tuple[str, int, int]:
        """(the tensor the layer computes on, its element size, the output's element size).

        Under mixed precision a layer that autocast runs in another precision computes on a
        cast of its input: a new tensor, unless the input already has that precision.
        """
        name = row.node.type.name if row.node is not None else row.type
        have = self.bytes[tensor]
        want = self.half if name in AMP_LOWER else self.element if name in AMP_FLOAT32 else None
        if self.half is None or want is None:
            if self.half is not None and name == "localresponsenorm":
                return tensor, have, self.element  # composed from float32 ops: a float32 output
            if self.half is not None and name == "layerscale":
                return tensor, have, max(have, self.element)  # x * gamma: promoted to gamma's float32
            return tensor, have, have
        if want == have:
            return tensor, have, want
        # the cast is of what the layer reads: a view (a crop) casts only its own elements
        return self.new(f"{row.path}#cast", math.prod(row.input_shapes[0]), want), want, want

    def node(self, node: Node, row: Row, tensors: list[str]) -> str:
        """The name of the tensor `node` outputs, after noting what it keeps."""
        rule = SAVES.get(node.type.name)
        if rule is None:
            raise SpecError(f"training memory does not know what {node.type.name} keeps for"
                            " backward", path=node.path, layer_type=node.type.name)
        tensor = tensors[0]
        inplace = bool(node.args.get("inplace", False))
        padded = _padded(node, row)
        out = tensor if (rule.view and padded is None) or (inplace and rule.keeps) else row.path
        if len(tensors) == 1:
            operand, element, out_element = self.operand(row, tensor)
        else:  # a merge: the widest of its inputs (type promotion)
            operand, element = tensor, self.bytes[tensor]
            out_element = max(self.bytes[t] for t in tensors)
        if out == row.path:
            self.new(out, math.prod(padded or row.output_shape), out_element)
        self.grad[out] = any(self.grad[t] for t in tensors) or row.params > 0
        if not self.grad[out]:  # no gradient flows through it: autograd keeps nothing
            self.layers.append(LayerMemory(row.path, (), 0))
            return out
        keeps = rule.inplace_keeps if inplace and rule.inplace_keeps else rule.keeps
        shape = row.input_shapes[0]
        if keeps == "adaptive":
            keeps = _adaptive_avg(node.args, shape, row.output_shape)
        kept: tuple[str, ...] = ()
        if keeps == "input":
            kept = (operand,) if len(tensors) == 1 else tuple(tensors)
        elif keeps == "product":
            kept = self.product(row, tensors)
        elif keeps == "output":
            kept = (out,)
        elif keeps == "copy":
            kept = (self.new(f"{row.path}#copy", math.prod(shape), element),)
        extra = 0
        for per_sample, per_batch, size in (rule.extra or _nothing)(node.args, shape, row.output_shape):
            if size == INPUT_DTYPE:
                size = element
            elif size == STATS:
                size = self.element
            extra += (per_sample * self.batch + per_batch) * size
        if self.half is not None and node.type.name in AMP_LOWER:
            extra += weight_elements(node, row) * self.half  # the low-precision cast of the weight
        self.layers.append(LayerMemory(row.path, kept, extra))
        return out

    def product(self, row: Row, tensors: list[str]) -> tuple[str, ...]:
        """What `x0 * x1 * ...` keeps, multiplied left to right as Python does.

        Each step `acc * x` keeps `acc` when `x` needs a gradient and `x` when `acc` does;
        the partial products before the last are new tensors (broadcast shapes).
        """
        acc, shape = tensors[0], row.input_shapes[0]
        kept: list[str] = []
        for k in range(1, len(tensors)):
            factor = tensors[k]
            if self.grad[factor]:
                kept.append(acc)
            if self.grad[acc]:
                kept.append(factor)
            if k < len(tensors) - 1:
                shape = broadcast((shape, row.input_shapes[k]))[0]
                partial = self.new(f"{row.path}#product{k}", math.prod(shape),
                                   max(self.bytes[acc], self.bytes[factor]))
                self.grad[partial] = self.grad[acc] or self.grad[factor]
                acc = partial
        return tuple(dict.fromkeys(kept))


def _padded(node: Node, row: Row) -> tuple[int, ...] | None:
    """The padded tensor a centre crop slices when it pads an axis (None when it only crops).

    torchvision zero-pads the axes that are too small, then slices: the output is a view of
    a new tensor as large as the input on the axes it crops.
    """
    if node.type.name != "centercrop":
        return None
    shape = row.input_shapes[0]
    if all(o <= n for o, n in zip(row.output_shape[1:], shape[1:])):
        return None
    return (shape[0], *(max(o, n) for o, n in zip(row.output_shape[1:], shape[1:])))


def weight_elements(node: Node, row: Row) -> int:
    """The elements of a conv's, linear's or PReLU's weight: its parameters less the bias."""
    outputs = node.args.get("out_channels") or node.args.get("out_features") or 0
    return row.params - (outputs if node.args.get("bias") else 0)


def training_memory(network: Network, report: Report, optimizer: str = "none",
                    amp: str | None = None) -> TrainingMemory:
    """Bytes kept for one training step of `report`'s batch (see the module's assumptions).

    `amp` ("float16" or "bfloat16") is mixed precision: float32 weights, gradients and optimizer
    state, activations in the low precision where autocast casts them.
    """
    if optimizer not in OPTIMIZER_STATES:
        raise SpecError(f"unknown optimizer '{optimizer}' (expected one of {', '.join(OPTIMIZER_STATES)})")
    if amp is not None and amp not in AMP_DTYPES:
        raise SpecError(f"mixed precision runs in {' or '.join(AMP_DTYPES)}, not '{amp}'")
    walker = _Saved(report, amp)
    walker.run(network.graph, report)
    seen: set[str] = set()
    per_layer = []
    for mem in walker.layers:
        new = [t for t in mem.kept if t not in seen]
        seen.update(new)
        per_layer.append(sum(walker.sizes[t] * walker.bytes[t] for t in new) * walker.batch + mem.extra_bytes)
    element = walker.element
    t = report.totals
    return TrainingMemory(
        optimizer=optimizer,
        saved_bytes=sum(per_layer),
        weight_bytes=(t.params + t.buffers) * element,
        gradient_bytes=t.params * element,
        optimizer_bytes=OPTIMIZER_STATES[optimizer] * t.params * element,
        per_layer=tuple(per_layer),
        amp=amp,
        scaler_bytes=SCALER_BYTES if amp is not None else 0,
    )
