"""The few modules a spec needs beyond torch.nn: merges, forks, asymmetric padding.

`convcalc.torch.build` assembles networks from these and torch.nn classes. `convcalc
export` copies the source of the ones a network uses into the exported file (reading
this file as text, without importing torch), so every class here reads on its own,
within 88 columns, and the module imports torch and nothing else.

Imports nothing from the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Add(nn.Module):
    """The element-wise sum of its inputs (where a residual's branches meet)."""

    def forward(self, *inputs: Tensor) -> Tensor:
        out = inputs[0]
        for other in inputs[1:]:
            out = out + other
        return out


class Mul(nn.Module):
    """The element-wise product of its inputs (a gate: x * sigmoid(g))."""

    def forward(self, *inputs: Tensor) -> Tensor:
        out = inputs[0]
        for other in inputs[1:]:
            out = out * other
        return out


class Concat(nn.Module):
    """Its inputs concatenated along `dim` (1: the channels)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: Tensor) -> Tensor:
        return torch.cat(inputs, dim=self.dim)


class Narrow(nn.Module):
    """Channels start .. start + length - 1 (torch.narrow on dim 1): one part of a
    channel split (torch.split, torch.chunk)."""

    def __init__(self, start: int, length: int) -> None:
        super().__init__()
        self.start, self.length = start, length

    def forward(self, x: Tensor) -> Tensor:
        return torch.narrow(x, 1, self.start, self.length)


class Permute(nn.Module):
    """torchvision.ops.Permute: the dims reordered (the batch counted as dim 0),
    copied into that order, as a layer after it may view its input (as
    LocalResponseNorm does)."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims).contiguous()


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d (ConvNeXt): LayerNorm over the channels of
    [N, C, ...]."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class LayerScale(nn.Module):
    """A learnable scale per channel (ConvNeXt's layer_scale), shaped [C, 1, ...].

    torchvision's CNBlock holds it as a bare parameter of the block
    (`features.1.0.layer_scale`); `bare_key` makes the block's state_dict keep it under
    that key rather than `layer_scale.gamma`, so those weights load as they are.
    """

    def __init__(self, channels: int, init_values: float, rank: int = 2) -> None:
        super().__init__()
        shape = (channels, *(1,) * rank)
        self.gamma = nn.Parameter(torch.full(shape, float(init_values)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class SaveBare:
    """A state_dict hook of the module holding child `name` (a `LayerScale`): the
    child's one parameter is saved under `<prefix><name>`, without `.gamma`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(
        self, module: nn.Module, state: Any, prefix: str, metadata: Any
    ) -> None:
        key = prefix + self.name
        state[key] = state.pop(key + ".gamma")


class LoadBare(SaveBare):
    """The load_state_dict pre-hook that reads what `SaveBare` saved."""

    def __call__(self, module: nn.Module, state: Any, prefix: str, *rest: Any) -> None:
        key = prefix + self.name
        if key in state:
            state[key + ".gamma"] = state.pop(key)


def bare_key(parent: nn.Module, name: str) -> None:
    """Key the parameter of `parent`'s child `name` by the child's own path."""
    parent.register_state_dict_post_hook(SaveBare(name))
    parent.register_load_state_dict_pre_hook(LoadBare(name))


def hold_layer_scales(module: nn.Module) -> None:
    """Key every LayerScale inside `module` by its own path (`bare_key` on its
    parent), as torchvision's ConvNeXt does: an exported Network calls it once."""
    for path, child in list(module.named_modules()):
        if isinstance(child, LayerScale):
            parent, _, name = path.rpartition(".")
            bare_key(module.get_submodule(parent), name)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth: in training, drops the input per sample ('row')
    or for the whole batch ('batch') with probability p, scaling what survives."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class CenterCrop(nn.Module):
    """torchvision's CenterCrop on tensors (zero-padding an axis that is smaller), to
    `size`, or to the spatial size of a second input (a U-Net's skip)."""

    def __init__(self, size: Sequence[int] | None = None) -> None:
        super().__init__()
        self.size = None if size is None else list(size)

    def forward(self, x: Tensor, like: Tensor | None = None) -> Tensor:
        size = list(like.shape[2:]) if like is not None else self.size
        assert size is not None, "CenterCrop needs a size or a second input"
        size = size * (x.ndim - 2) if len(size) == 1 else size
        sizes = list(zip(x.shape[2:], size, strict=True))
        grow = [((c - n) // 2, (c - n + 1) // 2) if c > n else (0, 0) for n, c in sizes]
        if any(a or b for a, b in grow):
            x = F.pad(x, [w for pair in reversed(grow) for w in pair])
        starts = [round((n - c) / 2.0) for n, c in zip(x.shape[2:], size, strict=True)]
        pairs = zip(starts, size, strict=True)
        kept: tuple[Any, ...] = (..., *(slice(s, s + c) for s, c in pairs))
        return x[kept]


class Resize(nn.Module):
    """F.interpolate to the spatial size of a second input (upsample with size_of)."""

    def __init__(
        self, mode: str = "nearest", align_corners: bool | None = None
    ) -> None:
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: Tensor, like: Tensor) -> Tensor:
        return F.interpolate(
            x, size=like.shape[2:], mode=self.mode, align_corners=self.align_corners
        )


class Steps(nn.Module):
    """Layers run in order, each on outputs of the ones before it: a whole network, or a
    block whose layers read only each other and the block's input.

    `steps` are (path, module, inputs): the module becomes a child at its path (dotted
    paths nest, as `layer1.0.conv1`), and step k is called with the outputs of the steps
    its inputs number (-1: this module's input). Modules are looked up by path when run,
    so a replaced child (`model.fc = nn.Linear(2048, 10)`) is the one that runs. The
    output is the outputs' value, or a tuple of them. A value is dropped once its last
    reader has run.
    """

    def __init__(
        self,
        steps: Sequence[tuple[str, nn.Module, Sequence[int]]],
        outputs: Sequence[int],
    ) -> None:
        super().__init__()
        for path, module, _ in steps:
            parent: nn.Module = self
            *groups, name = path.split(".")
            for group in groups:
                if group not in parent._modules:
                    parent.add_module(group, nn.Module())
                parent = getattr(parent, group)
            parent.add_module(name, module)
            if isinstance(module, LayerScale):
                bare_key(parent, name)
        self.steps_run = [path for path, _, _ in steps]
        self.steps_read = [tuple(inputs) for _, _, inputs in steps]
        self.steps_out = tuple(outputs)
        last = {j: k for k, inputs in enumerate(self.steps_read) for j in inputs}
        self.steps_drop = [
            [j for j, at in last.items() if at == k and j not in self.steps_out]
            for k in range(len(steps))
        ]

    def __getitem__(self, name: int | str) -> nn.Module:
        """The child called `name`: `model.features[1][0]`, as for an nn.Sequential."""
        return self._modules[str(name)]  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Any:
        values = {-1: x}
        for k, path in enumerate(self.steps_run):
            module = self.get_submodule(path)  # looked up: a replaced child runs
            values[k] = module(*(values[j] for j in self.steps_read[k]))
            for j in self.steps_drop[k]:
                del values[j]
        outputs = tuple(values[k] for k in self.steps_out)
        return outputs[0] if len(outputs) == 1 else outputs


class Fork(nn.Module):
    """Branches that all read the input, a merge of their outputs, then `after` layers.

    Every layer is a child named as in the spec. A branch lists the children it runs in
    order: a residual's body sits at the fork's own path, so it names several layers; a
    parallel branch or a shortcut is one child (an nn.Sequential); the identity, none.
    With `split` (Narrow modules, one per branch: a channel split), branch i reads
    part i of the input's channels. With `merge` None (a residual whose skip is off)
    there is one branch, and its output is the fork's.
    """

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        branches: Sequence[Sequence[str]],
        merge: str | None,
        after: Sequence[str] = (),
        split: Sequence[nn.Module] = (),
    ) -> None:
        super().__init__()
        self.fork_split = bool(split)
        if split:
            self.split = nn.ModuleList(split)
        self.fork_branches = [list(branch) for branch in branches]
        self.fork_merge = merge
        self.fork_after = list(after)
        names = [n for branch in self.fork_branches for n in branch]
        merges = [] if merge is None else [merge]
        for name in [*names, *merges, *self.fork_after]:
            if name in self._modules:
                raise ValueError(f"two layers of one fork are named {name!r}")
            self.add_module(name, layers[name])

    def forward(self, x: Tensor) -> Tensor:
        parts = [x] * len(self.fork_branches)
        if self.fork_split:  # each branch its part of the channels
            parts = [part(x) for part in self.split]
        outputs = []
        for part, branch in zip(parts, self.fork_branches, strict=True):
            out = part
            for name in branch:
                out = getattr(self, name)(out)
            outputs.append(out)
        out = outputs[0]
        if self.fork_merge is not None:
            out = getattr(self, self.fork_merge)(*outputs)
        for name in self.fork_after:
            out = getattr(self, name)(out)
        return out

    def __getitem__(self, index: int) -> nn.Module:
        """The child numbered `index` in the spec (`fork[0]`), as nn.Sequential's."""
        return self._modules[str(index)]  # type: ignore[return-value]


def padding_pairs(
    padding: Any, rank: int, kernel_size: Any, dilation: Any
) -> list[list[int]]:
    """Padding as [before, after] per axis, from any form a spec gives: an int, one per
    axis, [before, after] pairs, 'valid', or 'same' (PyTorch's: the odd pixel after)."""
    if padding == "valid":
        return [[0, 0] for _ in range(rank)]
    if padding == "same":
        sizes = zip(as_tuple(kernel_size, rank), as_tuple(dilation, rank), strict=True)
        return [[d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2] for k, d in sizes]
    if isinstance(padding, int):
        return [[padding, padding] for _ in range(rank)]
    return [[p, p] if isinstance(p, int) else [p[0], p[1]] for p in padding]


def pad_widths(pairs: Sequence[Sequence[int]]) -> list[int]:
    """(before, after) pairs, first axis first, as F.pad takes them: last axis first."""
    return [w for pair in reversed(pairs) for w in pair]


def as_tuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


class PaddedConv(nn.Module):
    """A convolution that pads its input first, by (before, after) per axis: asymmetric
    padding, which torch.nn.ConvNd does not take. The parameters are the conv's own."""

    rank = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias
        )
        pairs = padding_pairs(padding, self.rank, kernel_size, dilation)
        self.widths = pad_widths(pairs)
        self.fill = "constant" if padding_mode == "zeros" else padding_mode

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.widths, mode=self.fill))


class PaddedConv1d(PaddedConv, nn.Conv1d):
    rank = 1


class PaddedConv2d(PaddedConv, nn.Conv2d):
    rank = 2


class PaddedConv3d(PaddedConv, nn.Conv3d):
    rank = 3


class CroppedConvTranspose(nn.Module):
    """A transposed convolution whose padding is (before, after) per axis: it crops that
    much from each end of the output (torch.nn.ConvTransposeNd crops equal amounts)."""

    rank = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            0,
            output_padding,
            groups,
            bias,
            dilation,
        )
        self.crop = padding_pairs(padding, self.rank, kernel_size, dilation)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        y = super().forward(x, output_size)
        ends = [slice(a, y.shape[2 + i] - b) for i, (a, b) in enumerate(self.crop)]
        return y[(..., *ends)]


class CroppedConvTranspose1d(CroppedConvTranspose, nn.ConvTranspose1d):
    rank = 1


class CroppedConvTranspose2d(CroppedConvTranspose, nn.ConvTranspose2d):
    rank = 2


class CroppedConvTranspose3d(CroppedConvTranspose, nn.ConvTranspose3d):
    rank = 3


def pool_widths(
    x: Tensor,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pairs: Sequence[Sequence[int]],
    ceil_mode: bool,
) -> list[list[int]]:
    """Per axis, the padding after which the windows fit exactly: more on the right for
    ceil_mode's last window, less where trailing pixels are never read. A ceil_mode
    window that would start in the right padding is dropped, as PyTorch does."""
    out = []
    for n, k, s, d, (left, right) in zip(
        x.shape[2:], kernel, stride, dilation, pairs, strict=True
    ):
        span = n + left + right - d * (k - 1) - 1
        size = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (size - 1) * s >= n + left:
            size -= 1
        out.append([left, max(0, (size - 1) * s + d * (k - 1) + 1 - n - left)])
    return out


class PaddedMaxPool(nn.Module):
    """Max pooling with padding as (before, after) per axis (torch.nn.MaxPoolNd pads
    equally)."""

    rank = 0

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, 0, dilation)
        self.windows = (
            as_tuple(kernel_size, self.rank),
            as_tuple(stride or kernel_size, self.rank),
            as_tuple(dilation, self.rank),
        )
        self.pairs = padding_pairs(padding, self.rank, kernel_size, dilation)
        self.round_up = ceil_mode

    def forward(self, x: Tensor) -> Tensor:
        fitted = pool_widths(x, *self.windows, self.pairs, self.round_up)
        return super().forward(F.pad(x, pad_widths(fitted), value=-math.inf))


class PaddedMaxPool1d(PaddedMaxPool, nn.MaxPool1d):
    rank = 1


class PaddedMaxPool2d(PaddedMaxPool, nn.MaxPool2d):
    rank = 2


class PaddedMaxPool3d(PaddedMaxPool, nn.MaxPool3d):
    rank = 3


class PaddedAvgPool(nn.Module):
    """Average pooling with padding as (before, after) per axis. The divisor is
    PyTorch's: the window within the input and its padding (count_include_pad), or
    within the input only."""

    rank = 0

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride)
        self.windows = (
            as_tuple(kernel_size, self.rank),
            as_tuple(stride or kernel_size, self.rank),
            (1,) * self.rank,
        )
        self.pairs = padding_pairs(padding, self.rank, kernel_size, 1)
        self.round_up = ceil_mode
        self.counted_pad = count_include_pad
        self.divisor = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        fitted = pool_widths(x, *self.windows, self.pairs, self.round_up)
        size = math.prod(self.windows[0])
        total = super().forward(F.pad(x, pad_widths(fitted))) * size
        if self.divisor:
            return total / self.divisor
        ones = x.new_ones((1, 1, *x.shape[2:]))
        if self.counted_pad:  # the input and its padding count, not what fitting adds
            pairs = list(zip(self.pairs, fitted, strict=True))
            inside = [[a, min(b, f)] for (a, b), (_, f) in pairs]
            beyond = [[0, max(0, f - b)] for (_, b), (_, f) in pairs]
            ones = F.pad(F.pad(ones, pad_widths(inside), value=1.0), pad_widths(beyond))
        else:
            ones = F.pad(ones, pad_widths(fitted))
        count = torch.round(super().forward(ones) * size)
        return total / count


class PaddedAvgPool1d(PaddedAvgPool, nn.AvgPool1d):
    rank = 1


class PaddedAvgPool2d(PaddedAvgPool, nn.AvgPool2d):
    rank = 2


class PaddedAvgPool3d(PaddedAvgPool, nn.AvgPool3d):
    rank = 3


def instantiate(call: Any) -> nn.Module:
    """The module a `convcalc.layers.TorchCall` describes."""
    cls = globals()[call.name] if call.helper else getattr(nn, call.name)
    module: nn.Module = cls(*call.args, **call.keywords)
    return module
