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


class Concat(nn.Module):
    """Its inputs concatenated along the channels."""

    def forward(self, *inputs: Tensor) -> Tensor:
        return torch.cat(inputs, dim=1)


class Fork(nn.Module):
    """Branches that all read the input, a merge of their outputs, then `after` layers.

    Every layer is a child named as in the spec. A branch lists the children it runs in
    order: a residual's body sits at the fork's own path, so it names several layers; a
    parallel branch or a shortcut is one child (an nn.Sequential); the identity, none.
    """

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        branches: Sequence[Sequence[str]],
        merge: str,
        after: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.fork_branches = [list(branch) for branch in branches]
        self.fork_merge = merge
        self.fork_after = list(after)
        names = [n for branch in self.fork_branches for n in branch]
        for name in [*names, merge, *self.fork_after]:
            if name in self._modules:
                raise ValueError(f"two layers of one fork are named {name!r}")
            self.add_module(name, layers[name])

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        for branch in self.fork_branches:
            out = x
            for name in branch:
                out = getattr(self, name)(out)
            outputs.append(out)
        out = getattr(self, self.fork_merge)(*outputs)
        for name in self.fork_after:
            out = getattr(self, name)(out)
        return out


def padding_pairs(
    padding: Any, rank: int, kernel_size: Any, dilation: Any
) -> list[list[int]]:
    """Padding as [before, after] per axis, from any form a spec gives: an int, one per
    axis, [before, after] pairs, 'valid', or 'same' (PyTorch's: the odd pixel after)."""
    if padding == "valid":
        return [[0, 0] for _ in range(rank)]
    if padding == "same":
        sizes = zip(as_tuple(kernel_size, rank), as_tuple(dilation, rank))
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
    for n, k, s, d, (left, right) in zip(x.shape[2:], kernel, stride, dilation, pairs):
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
            inside = [[a, min(b, f)] for (a, b), (_, f) in zip(self.pairs, fitted)]
            beyond = [[0, max(0, f - b)] for (_, b), (_, f) in zip(self.pairs, fitted)]
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
