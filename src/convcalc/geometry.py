"""Per-axis output-size arithmetic (CONVENTIONS.md, "Output sizes").

Pure integer functions shared by the layer types, the solvers and the forward pass, so
each formula is written exactly once. Imports nothing from the package.
"""

from __future__ import annotations


def effective_kernel(kernel: int, dilation: int) -> int:
    """`k_eff = d*(k-1) + 1`: the span of input one kernel application reads."""
    return dilation * (kernel - 1) + 1


def conv_output(n: int, kernel: int, stride: int, dilation: int, pad: tuple[int, int]) -> int:
    """`floor((n + pl + pr - k_eff) / s) + 1`; below 1 means the output is empty."""
    span = n + pad[0] + pad[1] - effective_kernel(kernel, dilation)
    if span < 0:
        return 0
    return span // stride + 1


def unread(n: int, kernel: int, stride: int, dilation: int, pad: tuple[int, int]) -> int:
    """How many trailing rows/cols of the padded input no window reads."""
    span = n + pad[0] + pad[1] - effective_kernel(kernel, dilation)
    return span % stride if span >= 0 else 0


def pool_output(
    n: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad: tuple[int, int],
    ceil_mode: bool,
) -> int:
    """Convolution arithmetic, with PyTorch's ceil_mode rule for the last window.

    With ceil_mode the last window may hang over the end, but it is dropped if it would
    start inside the right padding: `if (out - 1)*s >= n + pl: out -= 1`.
    """
    span = n + pad[0] + pad[1] - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1 if span >= 0 else 0
    # PyTorch: div_rtn(span + s - 1, s) + 1, so with ceil_mode a window longer than the
    # padded input still gives one output when it starts inside the input (span > -s).
    out = -(-span // stride) + 1
    if out >= 1 and (out - 1) * stride >= n + pad[0]:
        out -= 1
    return max(out, 0)


def transposed_output(
    n: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad: tuple[int, int],
    output_padding: int,
) -> int:
    """`(n - 1)*s - pl - pr + k_eff + op`."""
    return (
        (n - 1) * stride - pad[0] - pad[1] + effective_kernel(kernel, dilation) + output_padding
    )


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's `padding='same'` (stride 1): `total = d*(k-1)`, the odd pixel after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def smallest_input(kernel: int, dilation: int, pad: tuple[int, int]) -> int:
    """The smallest n for which a window fits (conv_output >= 1)."""
    return max(1, effective_kernel(kernel, dilation) - pad[0] - pad[1])


def adaptive_window(i: int, n: int, out: int) -> tuple[int, int]:
    """Adaptive pooling's window `i`: `[floor(i*n/out), ceil((i+1)*n/out))`."""
    return (i * n) // out, -(-((i + 1) * n) // out)
