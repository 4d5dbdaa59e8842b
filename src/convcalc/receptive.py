"""Receptive fields per spatial axis (CONVENTIONS.md, "Receptive field").

A layer's effect on one spatial axis is an `AxisMap`: for every output index it says which
span of input indices is read (`reach`). Maps are periodic: shifting the output by
`period` shifts the span by `step` input indices.

An `AxisField` is the exact field of every output position, in input pixels. Plain
convolution stacks have one field shape that slides by the jump; after transposed
convolutions or upsampling the field depends on the position, so a field keeps one
(lo, hi) span per phase of its period. This is the textbook recurrence (size, jump,
start) made exact, and it merges correctly where branches meet (the union of the spans).
Spans are not clipped to the input: the theoretical field includes the padding.

Imports only `geometry` from the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from convcalc.geometry import adaptive_window

Span = tuple[int, int] | None  # inclusive input indices, None when nothing is read

MAX_PERIOD = 1 << 16


class AxisMap(Protocol):
    """How one layer maps one spatial axis."""

    period: int
    step: int

    def reach(self, o: int) -> Span:
        """Inclusive span of input indices that output `o` reads (unclipped)."""
        ...


@dataclass(frozen=True)
class Window:
    """Convolution and pooling: output `o` reads `[o*s - pl, o*s - pl + k_eff - 1]`.

    Also identity (k=1, s=1) and padding layers (k=1, s=1, pad=pl).
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: int = 0

    @property
    def period(self) -> int:
        return 1

    @property
    def step(self) -> int:
        return self.stride

    def reach(self, o: int) -> Span:
        first = o * self.stride - self.pad
        return first, first + self.dilation * (self.kernel - 1)


IDENTITY = Window()


@dataclass(frozen=True)
class Transposed:
    """Transposed convolution: input `i`, tap `t` writes output `i*s - pl + t*d`."""

    kernel: int
    stride: int
    dilation: int
    pad: int

    @property
    def period(self) -> int:
        return self.stride

    @property
    def step(self) -> int:
        return 1

    def reach(self, o: int) -> Span:
        inputs = [
            (o + self.pad - t * self.dilation) // self.stride
            for t in range(self.kernel)
            if (o + self.pad - t * self.dilation) % self.stride == 0
        ]
        return (min(inputs), max(inputs)) if inputs else None


@dataclass(frozen=True)
class Adaptive:
    """Adaptive pooling: window `o` is `[floor(o*n/out), ceil((o+1)*n/out))`."""

    n_in: int
    n_out: int

    @property
    def period(self) -> int:
        return self.n_out // math.gcd(self.n_in, self.n_out)

    @property
    def step(self) -> int:
        return self.n_in // math.gcd(self.n_in, self.n_out)

    def reach(self, o: int) -> Span:
        q, r = divmod(o, self.period)
        lo, hi = adaptive_window(r, self.n_in, self.n_out)
        return lo + q * self.step, hi - 1 + q * self.step


@dataclass(frozen=True)
class Dense:
    """Every output reads the whole axis (linear or softmax along it, global pooling)."""

    n_in: int

    @property
    def period(self) -> int:
        return 1

    @property
    def step(self) -> int:
        return 0

    def reach(self, o: int) -> Span:
        return 0, self.n_in - 1


@dataclass(frozen=True)
class Resample:
    """Upsampling with PyTorch's index rules; `scale` is input pixels per output pixel.

    nearest: `floor(o*scale)`; linear family (align_corners=False):
    `src = (o + 0.5)*scale - 0.5` reads `floor(src)` and the next index when its weight is
    non-zero; align_corners=True: `src = o*(n_in-1)/(n_out-1)`. PyTorch clamps a negative
    `src` to 0; here it is left unclamped, like padding, which clipping to the input
    (as the exact per-position walk does) turns back into PyTorch's reads.
    """

    n_in: int
    n_out: int
    scale: Fraction
    mode: str  # "nearest" or "linear"
    align_corners: bool = False

    @property
    def period(self) -> int:
        if self.align_corners:
            return self.n_out
        return self.scale.denominator

    @property
    def step(self) -> int:
        if self.align_corners:
            return self.n_in
        return self.scale.numerator

    def reach(self, o: int) -> Span:
        if self.mode == "nearest":
            i = math.floor(o * self.scale)
            return i, i
        if self.align_corners:
            src = Fraction(o * (self.n_in - 1), max(self.n_out - 1, 1))
        else:
            src = (o + Fraction(1, 2)) * self.scale - Fraction(1, 2)
        i = math.floor(src)
        return (i, i + 1) if src != i else (i, i)


@dataclass(frozen=True)
class AxisField:
    """Exact field of every output position along one axis.

    Output `o` (with `q, r = divmod(o, period)`) sees input pixels
    `[lo[r] + q*shift, hi[r] + q*shift]`; a phase with `lo[r] is None` sees nothing.
    """

    lo: tuple[int | None, ...] = (0,)
    hi: tuple[int | None, ...] = (0,)
    shift: int = 1

    @property
    def period(self) -> int:
        return len(self.lo)

    @property
    def jump(self) -> Fraction:
        """Input pixels between neighbouring outputs (the effective stride)."""
        return Fraction(self.shift, self.period)

    def at(self, o: int) -> Span:
        q, r = divmod(o, self.period)
        lo, hi = self.lo[r], self.hi[r]
        if lo is None or hi is None:
            return None
        return lo + q * self.shift, hi + q * self.shift

    def sizes(self) -> list[int]:
        return [h - lo + 1 for lo, h in zip(self.lo, self.hi) if lo is not None and h is not None]

    @property
    def size(self) -> int:
        """The largest field over all output positions (0 if none is reached)."""
        return max(self.sizes(), default=0)

    @property
    def size_min(self) -> int:
        return min(self.sizes(), default=0)

    @property
    def start(self) -> Fraction | None:
        """Input coordinate of the centre of output 0's field."""
        span = self.at(0)
        return None if span is None else Fraction(span[0] + span[1], 2)

    @property
    def unreached(self) -> int:
        """Output phases per period that no input reaches."""
        return sum(lo is None for lo in self.lo)

    def through(self, amap: AxisMap) -> AxisField:
        """The field after a layer whose axis map is `amap`."""
        repeats = 1 if amap.step == 0 else self.period // math.gcd(self.period, amap.step)
        period = amap.period * repeats
        if period > MAX_PERIOD:
            raise FieldTooIrregular(period)
        lo: list[int | None] = []
        hi: list[int | None] = []
        for o in range(period):
            span = amap.reach(o)
            merged = self._hull(span) if span is not None else None
            lo.append(merged[0] if merged else None)
            hi.append(merged[1] if merged else None)
        shift = self.shift * repeats * amap.step // self.period
        return AxisField(tuple(lo), tuple(hi), shift)

    def _hull(self, span: tuple[int, int]) -> Span:
        """Union of the fields of input indices `span[0]..span[1]` (fields are monotone)."""
        first = next((self.at(i) for i in range(span[0], span[1] + 1) if self.at(i)), None)
        if first is None:
            return None
        last = next(self.at(i) for i in range(span[1], span[0] - 1, -1) if self.at(i))
        assert last is not None
        return first[0], last[1]

    def union(self, other: AxisField) -> AxisField:
        """The field of a merge: for each output, the hull of both branches' fields.

        If the jumps differ the merged field is not periodic; the first branch's jump is
        kept (the caller warns).
        """
        period = math.lcm(self.period, other.period)
        lo: list[int | None] = []
        hi: list[int | None] = []
        for o in range(period):
            spans = [s for s in (self.at(o), other.at(o)) if s is not None]
            lo.append(min(s[0] for s in spans) if spans else None)
            hi.append(max(s[1] for s in spans) if spans else None)
        return AxisField(tuple(lo), tuple(hi), self.shift * period // self.period)


class FieldTooIrregular(Exception):
    """The field's period grew past MAX_PERIOD (many incommensurate resamplings)."""

    def __init__(self, period: int) -> None:
        super().__init__(f"receptive field period {period} exceeds {MAX_PERIOD}")
