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

Besides the hull (`reach`), every map lists the exact input indices an output reads
(`taps`, unclipped) and the indices it really reads from an input of size `n` (`reads`):
zero padding is dropped, reflect/replicate/circular padding and clamped interpolation
fold back onto interior pixels. The per-position walk (`fieldwalk`) is built on `reads`.

Imports only `geometry` (and `records`) from the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from convcalc.geometry import adaptive_window
from convcalc.records import record

if TYPE_CHECKING:  # fractions is imported where a field first needs one (not by most networks)
    from fractions import Fraction

Span = tuple[int, int] | None  # inclusive input indices, None when nothing is read
Reads = tuple[tuple[int, ...], bool]  # in-range indices read, and whether any tap fell outside

PAD_MODES = ("zeros", "reflect", "replicate", "circular")

MAX_PERIOD = 1 << 16


class AxisMap(Protocol):
    """How one layer maps one spatial axis: every `period` outputs, reads move `step` inputs on."""

    @property
    def period(self) -> int: ...

    @property
    def step(self) -> int: ...

    def reach(self, o: int) -> Span:
        """Inclusive span of input indices that output `o` reads (unclipped)."""
        ...

    def taps(self, o: int) -> tuple[int, ...]:
        """Every input index output `o` reads with a non-zero weight (unclipped)."""
        ...

    def reads(self, o: int, n: int) -> Reads:
        """The indices output `o` reads from an input of size `n`, padding resolved."""
        ...


def fold(index: int, n: int, mode: str) -> int | None:
    """Where a padded index reads from: None for zero padding (nothing is read)."""
    if 0 <= index < n:
        return index
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(index, 0), n - 1)
    if mode == "circular":
        return index % n
    # reflect (PyTorch requires pad < n; a longer reach bounces again)
    if n == 1:
        return 0
    period = 2 * (n - 1)
    index %= period
    return index if index < n else period - index


def resolve(taps: tuple[int, ...], n: int, mode: str = "zeros") -> Reads:
    """Taps resolved against an input of size `n` (sorted, unique) and whether any was outside."""
    inside = {f for f in (fold(t, n, mode) for t in taps) if f is not None}
    return tuple(sorted(inside)), any(not 0 <= t < n for t in taps)


@record
class Window:
    """Convolution and pooling: output `o` reads `[o*s - pl, o*s - pl + k_eff - 1]`.

    Also identity (k=1, s=1) and padding layers (k=1, s=1, pad=pl). `mode` is how the
    padding is filled ("zeros", "reflect", "replicate", "circular"); non-zero modes read
    interior pixels, which only the per-position walk (`reads`) sees.
    """

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: int = 0
    mode: str = "zeros"

    @property
    def period(self) -> int:
        return 1

    @property
    def step(self) -> int:
        return self.stride

    def reach(self, o: int) -> Span:
        first = o * self.stride - self.pad
        return first, first + self.dilation * (self.kernel - 1)

    def taps(self, o: int) -> tuple[int, ...]:
        first = o * self.stride - self.pad
        # a lazy range: kernels can be as large as the input
        return range(first, first + self.kernel * self.dilation, self.dilation)  # type: ignore[return-value]

    def reads(self, o: int, n: int) -> Reads:
        return resolve(self.taps(o), n, self.mode)


IDENTITY = Window()
# A size-1 axis stretched by a broadcasting merge: every output reads input 0.
BROADCAST = Window(stride=0)


@record
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
        inputs = self.taps(o)
        return (inputs[0], inputs[-1]) if inputs else None

    def taps(self, o: int) -> tuple[int, ...]:
        """Inputs `i` with `i*s - pad + t*d = o` for a tap `t < kernel`, ascending.

        The taps that land on `o` are `t0, t0 + s/g, ...` (g = gcd(s, d)), so the inputs step
        by d/g: a lazy range, computed in constant time however large the kernel.
        """
        s, d, base = self.stride, self.dilation, o + self.pad
        g = math.gcd(s, d)
        if base % g:
            return range(0)  # type: ignore[return-value]
        m = s // g
        t0 = (base // g) * pow(d // g, -1, m) % m if m > 1 else 0
        if t0 >= self.kernel:
            return range(0)  # type: ignore[return-value]
        t_last = t0 + (self.kernel - 1 - t0) // m * m
        return range((base - t_last * d) // s, (base - t0 * d) // s + 1, d // g)  # type: ignore[return-value]

    def reads(self, o: int, n: int) -> Reads:
        return resolve(self.taps(o), n)


@record
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

    def taps(self, o: int) -> tuple[int, ...]:
        lo, hi = self.reach(o)  # type: ignore[misc]
        return range(lo, hi + 1)  # type: ignore[return-value]  # lazy: windows can be huge

    def reads(self, o: int, n: int) -> Reads:
        return resolve(self.taps(o), n)


@record
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

    def taps(self, o: int) -> tuple[int, ...]:
        return range(self.n_in)  # type: ignore[return-value]  # lazy: the axis can be huge

    def reads(self, o: int, n: int) -> Reads:
        return resolve(self.taps(o), n)


@record
class Resample:
    """Upsampling with PyTorch's index rules; `scale` is input pixels per output pixel.

    nearest: `floor(o*scale)`; nearest-exact: `floor((o + 0.5)*scale)`; linear family
    (align_corners=False): `src = (o + 0.5)*scale - 0.5` reads `floor(src)` and the next
    index when its weight is non-zero; cubic reads `floor(src) - 1 .. floor(src) + 2` (only
    `src` when it is whole); align_corners=True: `src = o*(n_in-1)/(n_out-1)`. PyTorch
    clamps a negative linear `src` to 0 and clamps every index into the input; here the
    reach is left unclamped, like padding, and `reads` clamps as PyTorch does.
    """

    n_in: int
    n_out: int
    scale: Fraction
    mode: str  # "nearest", "nearest-exact", "linear" or "cubic"
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
        taps = self.taps(o)
        return taps[0], taps[-1]

    def taps(self, o: int) -> tuple[int, ...]:
        if self.mode == "nearest":
            return (math.floor(o * self.scale),)
        from fractions import Fraction

        if self.mode == "nearest-exact":
            return (math.floor((o + Fraction(1, 2)) * self.scale),)
        if self.align_corners:
            src = Fraction(o * (self.n_in - 1), max(self.n_out - 1, 1))
        else:
            src = (o + Fraction(1, 2)) * self.scale - Fraction(1, 2)
        i = math.floor(src)
        if src == i:
            return (i,)
        return (i - 1, i, i + 1, i + 2) if self.mode == "cubic" else (i, i + 1)

    def reads(self, o: int, n: int) -> Reads:
        taps = self.taps(o)
        if self.mode == "linear" and not self.align_corners and taps[0] < 0:
            # PyTorch clamps src to 0: index 0 with weight 1, index 1 with weight 0.
            return (0,), True
        return resolve(taps, n, "replicate")


def inputs_per_output(amap: AxisMap, n_in: int, n_out: int, limit: int = 4096) -> tuple[int, int]:
    """The fewest and most inputs one output of a layer reads, over the outputs it has.

    Counted phase by phase (the pattern that repeats) on interior outputs, whose taps all
    land inside the input; a phase the output does not have, or whose outputs all reach past
    the border, does not count. When no output is interior (an input shorter than the kernel),
    the inputs each output really reads are counted instead.
    """
    counts = []
    for r in range(min(amap.period, n_out, limit)):
        taps = amap.taps(r)
        if not taps:
            counts.append(0)
            continue
        lo, hi, step = taps[0], taps[-1], amap.step
        last = (n_out - 1 - r) // amap.period  # outputs r + q*period for q = 0..last
        if step == 0:
            interior = lo >= 0 and hi <= n_in - 1
        else:
            interior = max(0, -(lo // step)) <= min(last, (n_in - 1 - hi) // step)
        if interior:
            counts.append(len(taps))
    if not counts:
        counts = [len(amap.reads(o, n_in)[0]) for o in range(min(n_out, limit))]
    return min(counts), max(counts)


@record
class AxisField:
    """Exact field of every output position along one axis.

    Output `o` (with `q, r = divmod(o, period)`) sees input pixels
    `[lo[r] + q*shift, hi[r] + q*shift]`; a phase with `lo[r] is None` sees nothing.
    """

    lo: tuple[int | None, ...] = (0,)
    hi: tuple[int | None, ...] = (0,)
    shift: int = 1
    # The output's length along the axis when it is shorter than the period (only phases
    # 0..count-1 exist); None when every phase occurs. Set by `bounded`.
    count: int | None = None

    @property
    def period(self) -> int:
        return len(self.lo)

    @property
    def phases(self) -> int:
        """The phases the output has: the period, or fewer on an axis shorter than it."""
        return len(self.lo) if self.count is None else min(self.count, len(self.lo))

    def bounded(self, n: int) -> AxisField:
        """This field on an output axis of `n` positions (a phase at or past `n` does not exist)."""
        count = n if n < len(self.lo) else None
        return self if count == self.count else AxisField(self.lo, self.hi, self.shift, count)

    @property
    def jump(self) -> Fraction | int:
        """Input pixels between neighbouring outputs (the effective stride)."""
        period = len(self.lo)
        if period == 1:
            return self.shift
        from fractions import Fraction

        return Fraction(self.shift, period)

    def at(self, o: int) -> Span:
        q, r = divmod(o, self.period)
        lo, hi = self.lo[r], self.hi[r]
        if lo is None or hi is None:
            return None
        return lo + q * self.shift, hi + q * self.shift

    def sizes(self) -> list[int]:
        """The field size of every phase the output has (unreached phases left out)."""
        n = self.phases
        return [h - lo + 1 for lo, h in zip(self.lo[:n], self.hi[:n]) if lo is not None and h is not None]

    @property
    def size(self) -> int:
        """The largest field over the output positions there are (0 if none is reached)."""
        if len(self.lo) == 1 and self.lo[0] is not None and self.hi[0] is not None:
            return self.hi[0] - self.lo[0] + 1
        return max(self.sizes(), default=0)

    @property
    def size_min(self) -> int:
        return min(self.sizes(), default=0)

    @property
    def start(self) -> Fraction | int | None:
        """Input coordinate of the centre of output 0's field."""
        if len(self.lo) == 1 and self.lo[0] is not None and self.hi[0] is not None:
            total = self.lo[0] + self.hi[0]
        else:
            span = self.at(0)
            if span is None:
                return None
            total = span[0] + span[1]
        if total % 2 == 0:
            return total // 2
        from fractions import Fraction

        return Fraction(total, 2)

    @property
    def centre(self) -> Fraction | int | None:
        """Where the line through the fields' centres crosses output 0 (for alignment).

        The mean over one period of (centre of output o's field) - o * jump: `start` for a
        sliding field. After a 2x up-convolution outputs 0 and 1 share input 0's field, so
        their centres sit half a jump either side of the line, and the line is what lines up
        with a branch that was not resampled (a U-Net's cropped skip).
        """
        if len(self.lo) == 1:
            return self.start
        from fractions import Fraction

        jump = Fraction(self.jump)
        offsets = [Fraction(lo + hi, 2) - r * jump for r, (lo, hi) in enumerate(zip(self.lo, self.hi))
                   if lo is not None and hi is not None]
        if not offsets:
            return None
        mean = sum(offsets, Fraction(0)) / len(offsets)
        return int(mean) if mean.denominator == 1 else mean

    @property
    def unreached(self) -> int:
        """Output phases (of those the output has) that no input reaches."""
        if len(self.lo) == 1:  # a sliding field (an axis has at least one position)
            return int(self.lo[0] is None)
        return sum(lo is None for lo in self.lo[: self.phases])

    def through(self, amap: AxisMap) -> AxisField:
        """The field after a layer whose axis map is `amap`."""
        if amap is IDENTITY:
            return self
        window = type(amap) is Window  # period 1 and step = stride, without asking
        if len(self.lo) == 1 and (window or amap.period == 1) and self.lo[0] is not None:
            # The common case (a sliding field through a sliding window) in closed form.
            span = amap.reach(0)
            assert span is not None and self.hi[0] is not None
            return AxisField(
                (self.lo[0] + span[0] * self.shift,),
                (self.hi[0] + span[1] * self.shift,),
                self.shift * (cast(Window, amap).stride if window else amap.step),
            )
        repeats = 1 if amap.step == 0 else self.period // math.gcd(self.period, amap.step)
        period = amap.period * repeats
        if period > MAX_PERIOD:
            raise FieldTooIrregular(period)
        lo: list[int | None] = []
        hi: list[int | None] = []
        for o in range(period):
            merged = self._hull(amap.taps(o))
            lo.append(merged[0] if merged else None)
            hi.append(merged[1] if merged else None)
        shift = self.shift * repeats * amap.step // self.period
        return AxisField(tuple(lo), tuple(hi), shift)

    def _hull(self, taps: tuple[int, ...]) -> Span:
        """Union of the fields of the input indices `taps`.

        Only the taps count, not the indices between them (a dilated window whose taps
        all land on outputs no input reaches sees nothing), and every tap counts: after a
        merge of branches with different phases the field ends are not monotone.
        """
        if isinstance(taps, range) and taps.step > 0 and len(taps) > 2 * self.period:
            # Each phase's field moves right with its index (shift >= 0), and the first and
            # last `period` taps of an ascending run hold every phase's first and last
            # index, so only they can hold the ends.
            taps = (*taps[: self.period], *taps[-self.period :])
        spans = [span for span in map(self.at, taps) if span is not None]
        if not spans:
            return None
        return min(s[0] for s in spans), max(s[1] for s in spans)

    @property
    def stretched(self) -> bool:
        """Every output sees the same span (after a broadcast size-1 axis)."""
        return self.shift == 0 and len(self.lo) == 1

    def covers(self, other: AxisField, n: int) -> bool:
        """Does this field contain `other`'s at each of the first `n` output positions?"""
        if len(self.lo) == 1 and len(other.lo) == 1 and n > 0:
            # One phase each: both ends move linearly with the position, so the first and the
            # last position decide (a global-pool gate against its branch, in closed form).
            if other.lo[0] is None:
                return True
            if self.lo[0] is None:
                return False
            ends = [(self.at(o), other.at(o)) for o in (0, n - 1)]
            return all(mine[0] <= theirs[0] and mine[1] >= theirs[1] for mine, theirs in ends)  # type: ignore[index]
        for o in range(n):
            mine, theirs = self.at(o), other.at(o)
            if theirs is not None and (mine is None or mine[0] > theirs[0] or mine[1] < theirs[1]):
                return False
        return True

    def covers_whole(self, n: int) -> bool:
        """Is every output's field the whole input of size `n` (a global-pool gate)?"""
        return self.stretched and self.lo[0] is not None and self.hi[0] is not None \
            and self.lo[0] <= 0 and self.hi[0] >= n - 1

    def union(self, other: AxisField) -> AxisField:
        """The field of a merge: for each output, the hull of both branches' fields.

        If the jumps differ the merged field is not periodic; the first branch's jump is
        kept (the caller warns).
        """
        if len(self.lo) == len(other.lo) == 1 and self.shift == other.shift:  # two sliding fields
            a, b, c, d = self.lo[0], self.hi[0], other.lo[0], other.hi[0]
            if a is not None and b is not None and c is not None and d is not None:
                if a <= c and d <= b:
                    return self  # the same object: renderers memoise per field
                return AxisField((min(a, c),), (max(b, d),), self.shift)
        period = math.lcm(self.period, other.period)
        lo: list[int | None] = []
        hi: list[int | None] = []
        for o in range(period):
            spans = [s for s in (self.at(o), other.at(o)) if s is not None]
            lo.append(min(s[0] for s in spans) if spans else None)
            hi.append(max(s[1] for s in spans) if spans else None)
        return AxisField(tuple(lo), tuple(hi), self.shift * period // self.period)


def positional(spans: Callable[[int], list[Span]], n: int, like: AxisField) -> AxisField:
    """The field of an axis of `n` outputs given position by position (`spans(o)`: the
    spans whose hull output `o` sees).

    For merges whose inputs do not slide together: jumps that differ, an input broadcast
    along the axis (size 1: every output sees its one field), inputs concatenated along the
    axis. The period is the whole axis (a multiple of `like`'s period); positions past `n`,
    which do not exist, follow `like`, so the field keeps `like`'s jump.
    """
    period = math.lcm(n, like.period)
    if period > MAX_PERIOD:
        raise FieldTooIrregular(period)
    lo: list[int | None] = []
    hi: list[int | None] = []
    for o in range(period):
        found = [s for s in (spans(o) if o < n else [like.at(o)]) if s is not None]
        lo.append(min(s[0] for s in found) if found else None)
        hi.append(max(s[1] for s in found) if found else None)
    return AxisField(tuple(lo), tuple(hi), like.shift * period // like.period)


class FieldTooIrregular(Exception):
    """The field's period grew past MAX_PERIOD (many incommensurate resamplings)."""

    def __init__(self, period: int) -> None:
        super().__init__(f"receptive field period {period} exceeds {MAX_PERIOD}")
