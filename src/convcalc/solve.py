"""Solvers for the questions asked while sketching a network.

- `solve_padding`: the padding that gives a target output size (symmetric when possible);
- `solve_output_padding`: the transposed conv that exactly inverts a conv's size change;
- `scan_inputs`: for a spec, the smallest valid input size and the sizes for which no layer
  leaves input pixels unread.

Pure: imports `errors`, `geometry`, `graph`, `layers` and `network` only; the formulas are
geometry's, and the spec scan runs each layer type's own `infer`.
"""

from __future__ import annotations

from convcalc.errors import ConvcalcError, SpecError
from convcalc.geometry import conv_output, effective_kernel, transposed_output, unread
from convcalc.graph import INPUT
from convcalc.layers import Shape
from convcalc.network import Network
from convcalc.records import record


@record
class PaddingSolution:
    n: int
    kernel: int
    stride: int
    dilation: int
    target: int
    before: int
    after: int
    unread: int  # trailing padded positions no window reads with this padding

    @property
    def symmetric(self) -> bool:
        return self.before == self.after


def solve_padding(n: int, kernel: int, stride: int, dilation: int, target: int) -> PaddingSolution:
    """The smallest padding giving `target` outputs: symmetric if any works, else one more after.

    `floor((n + P - k_eff) / s) + 1 = target` holds for total padding P in
    `[(target - 1)*s + k_eff - n, target*s + k_eff - n - 1]`.
    """
    k_eff = effective_kernel(kernel, dilation)
    low = (target - 1) * stride + k_eff - n
    high = target * stride + k_eff - n - 1
    if high < 0:
        smallest = conv_output(n, kernel, stride, dilation, (0, 0))
        raise SpecError(
            f"no padding gives {target} outputs: without padding there are already {smallest}"
            f" (input {n}, kernel span {k_eff}, stride {stride}); use a larger stride or kernel")
    totals = range(max(low, 0), high + 1)
    total = next((p for p in totals if p % 2 == 0), totals[0])
    before, after = total // 2, total - total // 2
    assert conv_output(n, kernel, stride, dilation, (before, after)) == target
    return PaddingSolution(n, kernel, stride, dilation, target, before, after,
                           unread(n, kernel, stride, dilation, (before, after)))


@record
class InverseSolution:
    n: int
    kernel: int
    stride: int
    dilation: int
    padding: tuple[int, int]
    conv_output: int
    output_padding: int


def solve_output_padding(n: int, kernel: int, stride: int, dilation: int,
                         padding: tuple[int, int]) -> InverseSolution:
    """The output_padding with which ConvTranspose(k, s, d, padding) maps the conv's output back to n.

    `(m - 1)*s - pl - pr + k_eff + op = n` gives `op = (n + pl + pr - k_eff) % s`, which is
    always below `s`, so PyTorch accepts it.
    """
    m = conv_output(n, kernel, stride, dilation, padding)
    if m < 1:
        raise SpecError(f"the conv has no output for input {n} (kernel span"
                        f" {effective_kernel(kernel, dilation)}, padding {padding[0]}+{padding[1]})")
    op = n - transposed_output(m, kernel, stride, dilation, padding, 0)
    assert 0 <= op < max(stride, dilation)
    return InverseSolution(n, kernel, stride, dilation, padding, m, op)


@record
class InputScan:
    axis: int | None  # the spatial axis varied (0-based), or None for all of them together
    low: int
    high: int
    smallest_valid: int | None  # smallest size in [1, high] for which every layer works
    valid: tuple[int, ...]  # sizes in [low, high] for which every layer works
    exact: tuple[int, ...]  # valid sizes for which no layer leaves input pixels unread


def try_size(network: Network, size: int, axis: int | None) -> tuple[bool, bool]:
    """(valid, exact) for the network's input with its spatial size(s) set to `size`.

    Shapes only (no fields): the fast path for trying many input sizes.
    """
    shape = list(network.input_shape)
    for i in range(1, len(shape)):
        if axis is None or i - 1 == axis:
            shape[i] = size
    shapes: dict[int, Shape] = {INPUT: tuple(shape)}
    exact = True
    try:
        for i, node in enumerate(network.graph.nodes):
            result = node.type.infer_inputs(node.args, tuple(shapes[j] for j in node.inputs))
            if any(note.code == "unread-pixels" for note in result.notes):
                exact = False
            shapes[i] = result.output_shape
    except ConvcalcError:
        return False, False
    return True, exact


def scan_inputs(network: Network, low: int, high: int, axis: int | None = None) -> InputScan:
    """Valid and exact input sizes in [low, high], and the smallest valid size overall."""
    spatial = len(network.input_shape) - 1
    if spatial < 1:
        raise SpecError("the input has no spatial axes to vary")
    if axis is not None and not 0 <= axis < spatial:
        raise SpecError(f"axis {axis + 1} does not exist: the input has {spatial} spatial axes")
    if not 1 <= low <= high:
        raise SpecError(f"the range must satisfy 1 <= min <= max (got {low}..{high})")
    results = {size: try_size(network, size, axis) for size in range(low, high + 1)}
    smallest = next((s for s in range(1, high + 1)
                     if (results[s] if s in results else try_size(network, s, axis))[0]), None)
    return InputScan(
        axis, low, high, smallest,
        tuple(s for s, (ok, _) in results.items() if ok),
        tuple(s for s, (ok, exact) in results.items() if ok and exact),
    )


def progressions(values: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Sorted values as (first, last, step) runs: 32, 64, 96, 128 -> [(32, 128, 32)]."""
    runs: list[tuple[int, int, int]] = []
    i = 0
    while i < len(values):
        if i + 2 < len(values) and values[i + 1] - values[i] == values[i + 2] - values[i + 1]:
            step = values[i + 1] - values[i]
            j = i + 1
            while j + 1 < len(values) and values[j + 1] - values[j] == step:
                j += 1
            runs.append((values[i], values[j], step))
            i = j + 1
        else:
            runs.append((values[i], values[i], 0))
            i += 1
    return runs


def progression_text(values: tuple[int, ...]) -> str:
    """`32..128 step 32, 200` (or `none`)."""
    if not values:
        return "none"
    parts = []
    for first, last, step in progressions(values):
        parts.append(str(first) if step == 0 else f"{first}..{last}" + (f" step {step}" if step > 1 else ""))
    return ", ".join(parts)
