"""What a layer type is: its arguments, and one method that does all of its arithmetic.

A layer type declares its torch.nn constructor arguments as `Arg`s (validated and
normalised here, and exported as JSON Schema) and implements `infer`, which turns an input
shape into an `Inference`: output shape, parameters, buffers, MACs, and how each spatial
axis maps for the receptive field. Nothing else in the package knows a formula.

It also says which PyTorch module it is: `torch_call` gives the class and its constructor
arguments as plain data (a `TorchCall`), which `torch_module` instantiates (`convcalc.torch`)
and the exporter writes out as Python source without importing torch. Values the exporter
knows only as source code (a block argument's expression) arrive as `Code`.

Imports `errors`, `geometry` and `receptive` only (and, inside `torch_module`, `torch.modules`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from convcalc.errors import ArgumentError, ShapeError
from convcalc.receptive import AxisMap
from convcalc.records import record

Shape = tuple[int, ...]

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def describe(value: Any) -> str:
    """A value as the user wrote it, for messages (`true`, not `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
    return str(value)


def shape_str(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- argument kinds ---------------------------------------------------------------------


class Kind:
    """How one argument is checked, normalised and described.

    Kinds are plain classes rather than dataclasses: they are configuration, created once
    at import, and every dataclass costs about a millisecond of start-up.
    """

    def parse(self, name: str, value: Any, rank: int) -> Any:
        raise NotImplementedError

    def schema(self, rank: int) -> dict[str, Any]:
        raise NotImplementedError

    def fail(self, name: str, expected: str, value: Any) -> ArgumentError:
        return ArgumentError(f"'{name}' must be {expected} (got {describe(value)})", arg=name)


class Int(Kind):
    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def what(self) -> str:
        return {1: "a positive int", 0: "a non-negative int"}.get(
            self.minimum, f"an int >= {self.minimum}"
        )

    def parse(self, name: str, value: Any, rank: int) -> int:
        if not is_int(value) or value < self.minimum:
            raise self.fail(name, self.what(), value)
        return int(value)

    def schema(self, rank: int) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum}


class PerAxis(Kind):
    """An int for every spatial axis, or a list of `rank` ints (as in PyTorch)."""

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def what(self, rank: int) -> str:
        single = Int(self.minimum).what()
        return f"{single} or a list of {rank} of them"

    def parse(self, name: str, value: Any, rank: int) -> tuple[int, ...]:
        if is_int(value) and value >= self.minimum:
            return (int(value),) * rank
        if (
            isinstance(value, (list, tuple))
            and len(value) == rank
            and all(is_int(v) and v >= self.minimum for v in value)
        ):
            return tuple(int(v) for v in value)
        raise self.fail(name, self.what(rank), value)

    def schema(self, rank: int) -> dict[str, Any]:
        one = Int(self.minimum).schema(rank)
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": rank, "maxItems": rank}]}


class Padding(Kind):
    """PyTorch's padding: int, per-axis ints, 'same' or 'valid'.

    Also per-axis `[before, after]` pairs, for asymmetric padding (TensorFlow-style);
    normalised to a tuple of (before, after) pairs, or the string 'same'.
    """

    def __init__(self, allow_words: bool = True) -> None:
        self.allow_words = allow_words

    def what(self, rank: int) -> str:
        words = ", 'same' or 'valid'" if self.allow_words else ""
        return (
            f"a non-negative int, a list of {rank} of them, "
            f"a list of {rank} [before, after] pairs{words}"
        )

    def parse(self, name: str, value: Any, rank: int) -> Any:
        if isinstance(value, str):
            if self.allow_words and value in ("same", "valid"):
                return ((0, 0),) * rank if value == "valid" else "same"
            raise self.fail(name, self.what(rank), value)
        if is_int(value) and value >= 0:
            return ((int(value), int(value)),) * rank
        if isinstance(value, (list, tuple)) and len(value) == rank:
            pairs = []
            for item in value:
                if is_int(item) and item >= 0:
                    pairs.append((int(item), int(item)))
                elif (
                    isinstance(item, (list, tuple))
                    and len(item) == 2
                    and all(is_int(v) and v >= 0 for v in item)
                ):
                    pairs.append((int(item[0]), int(item[1])))
                else:
                    raise self.fail(name, self.what(rank), value)
            return tuple(pairs)
        raise self.fail(name, self.what(rank), value)

    def schema(self, rank: int) -> dict[str, Any]:
        nonneg = {"type": "integer", "minimum": 0}
        pair = {"type": "array", "items": nonneg, "minItems": 2, "maxItems": 2}
        options: list[dict[str, Any]] = [
            nonneg,
            {"type": "array", "items": {"oneOf": [nonneg, pair]}, "minItems": rank,
             "maxItems": rank},
        ]
        if self.allow_words:
            options.append({"enum": ["same", "valid"]})
        return {"oneOf": options}


class Bool(Kind):
    def parse(self, name: str, value: Any, rank: int) -> bool:
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def schema(self, rank: int) -> dict[str, Any]:
        return {"type": "boolean"}


class Float(Kind):
    def __init__(self, minimum: float | None = None, exclusive: bool = False) -> None:
        self.minimum = minimum
        self.exclusive = exclusive

    def what(self) -> str:
        if self.minimum is None:
            return "a number"
        return f"a number {'>' if self.exclusive else '>='} {self.minimum:g}"

    def parse(self, name: str, value: Any, rank: int) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.exclusive else value >= self.minimum
        if not ok:
            raise self.fail(name, self.what(), value)
        return float(value)

    def schema(self, rank: int) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive else "minimum"] = self.minimum
        return out


class FloatPerAxis(Kind):
    """A positive number for every spatial axis, or a list of `rank` of them."""

    def parse(self, name: str, value: Any, rank: int) -> tuple[float, ...]:
        one = Float(0.0, exclusive=True)
        try:
            if isinstance(value, (list, tuple)) and len(value) == rank:
                return tuple(one.parse(name, v, rank) for v in value)
            return (one.parse(name, value, rank),) * rank
        except ArgumentError:
            raise self.fail(name, f"a positive number or a list of {rank} of them", value) from None

    def schema(self, rank: int) -> dict[str, Any]:
        one = {"type": "number", "exclusiveMinimum": 0}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": rank, "maxItems": rank}]}


class Choice(Kind):
    def __init__(self, options: tuple[str, ...]) -> None:
        self.options = options

    def parse(self, name: str, value: Any, rank: int) -> str:
        if value not in self.options or not isinstance(value, str):
            listed = ", ".join(repr(o) for o in self.options)
            raise self.fail(name, f"one of {listed}", value)
        return str(value)

    def schema(self, rank: int) -> dict[str, Any]:
        return {"enum": list(self.options)}


class IntList(Kind):
    """A positive int or a list of them, of any length (LayerNorm's normalized_shape)."""

    def parse(self, name: str, value: Any, rank: int) -> tuple[int, ...]:
        if is_int(value) and value >= 1:
            return (int(value),)
        if (
            isinstance(value, (list, tuple))
            and value
            and all(is_int(v) and v >= 1 for v in value)
        ):
            return tuple(int(v) for v in value)
        raise self.fail(name, "a positive int or a list of them", value)

    def schema(self, rank: int) -> dict[str, Any]:
        one = {"type": "integer", "minimum": 1}
        return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1}]}


class PathText(Kind):
    """A path of the spec (`size_of:`), a name, dotted path or number: resolved when lowering."""

    def parse(self, name: str, value: Any, rank: int) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise self.fail(name, "a path like backbone.stage3", value)
        return str(value)

    def schema(self, rank: int) -> dict[str, Any]:
        return {"type": ["string", "integer"]}


class Optional(Kind):
    """`null` or the inner kind."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def parse(self, name: str, value: Any, rank: int) -> Any:
        return None if value is None else self.inner.parse(name, value, rank)

    def schema(self, rank: int) -> dict[str, Any]:
        return {"oneOf": [{"type": "null"}, self.inner.schema(rank)]}


REQUIRED: Any = object()


def _frozen(value: Any) -> Any:
    """A hashable, type-exact key for a raw argument (`true` and `1` stay distinct)."""
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((_frozen(k), _frozen(v)) for k, v in value.items()))
    return (type(value).__name__, value)


@record
class Arg:
    """One constructor argument, named as in torch.nn."""

    name: str
    kind: Kind
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


# --- what a layer computes --------------------------------------------------------------


@record
class Note:
    """A design warning about one layer; `code` names it so it can be silenced."""

    code: str
    message: str


@record
class Inference:
    """Everything one layer does to one input shape."""

    output_shape: Shape
    params: int = 0
    buffers: int = 0
    macs: int = 0
    # One map per dim after the first (dims 1.. of the shape without the batch: the spatial
    # axes when channels come first), or None when the output has none (after flatten, or a
    # linear layer on a vector).
    axes: tuple[AxisMap, ...] | None = None
    notes: tuple[Note, ...] = ()
    # The map of the first dim (the channels when they come first), for when a permute has put
    # a spatial axis there: IDENTITY for layers that act on each index of it alone (element-wise
    # layers, norms, linear on the last dim), None for those that mix or move it (convolution,
    # concat, channel shuffle).
    lead: AxisMap | None = None
    # A pure reordering of the dims (permute): output dim j is input dim order[j], both counted
    # without the batch. The receptive field moves with the spatial axes.
    order: tuple[int, ...] | None = None


Args = Mapping[str, Any]


# --- the PyTorch module of a layer --------------------------------------------------------


@record
class TorchCall:
    """`torch.nn.<name>(*args, **kwargs)`, or with `helper` the class `name` of
    `convcalc.torch.modules` (asymmetric padding, merges): a layer's module as data."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    helper: bool = False

    @property
    def keywords(self) -> dict[str, Any]:
        return dict(self.kwargs)


class Code:
    """A value known as Python source, not as a number: the exporter passes a block argument's
    expression (`planes * 4`) this way. `values` are the values it takes in the network at
    hand, for the decisions that depend on them (is every padding symmetric?)."""

    __slots__ = ("text", "values")

    def __init__(self, text: str, values: tuple[Any, ...] = ()) -> None:
        self.text = text
        self.values = values

    def __repr__(self) -> str:
        return self.text


class Hole(Code):
    """A value the exporter cannot write (a size of the input no block argument gives);
    using one in a `TorchCall` is an error the exporter reports."""


def axes_value(value: Any) -> Any:
    """A per-axis tuple as PyTorch is usually given it: one int when all axes agree."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return value[0]
    return value


def symmetric(pads: Any) -> bool:
    """Whether (before, after) padding pairs are equal on every axis ('same' counts as PyTorch's
    own, so it is symmetric here); for `Code`, whether they are in every use of it."""
    if isinstance(pads, Code):
        return all(symmetric(v) for v in pads.values)
    return pads == "same" or all(a == b for a, b in pads)


def torch_padding(pads: Any) -> Any:
    """Symmetric padding pairs as PyTorch's `padding` argument (one int, or one per axis)."""
    if isinstance(pads, Code) or pads == "same":
        return pads
    return axes_value(tuple(a for a, _ in pads))


class LayerType:
    """Base of all layer types. Subclasses set `name`, `args` and implement `infer`.

    `rank` is the number of spatial axes the layer requires (conv2d: 2), or None when
    it takes any input (activations, linear, ...). `arity` is the number of inputs: 1, or
    None for merges, which take two or more (`layers.merge`). `keyed_by_path`: the layer's
    one parameter is kept in a PyTorch state_dict under the layer's own path, not
    `<path>.<name>` (ConvNeXt's layer_scale, as torchvision's CNBlock holds it).
    """

    name: str
    args: tuple[Arg, ...] = ()
    rank: int | None = None
    arity: ClassVar[int | None] = 1
    keyed_by_path: ClassVar[bool] = False
    summary: str = ""

    def __init__(self, name: str, rank: int | None = None) -> None:
        self.name = name
        self.rank = rank

    def __repr__(self) -> str:
        return f"<layer type {self.name}>"

    @functools.cached_property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    def parse_args(self, raw: Mapping[str, Any]) -> Args:
        """Validate and normalise raw arguments (unknown names are caught by the caller).

        Results are memoised by value: big specs repeat the same few layers.
        """
        key = tuple((k, _frozen(v)) for k, v in sorted(raw.items()))
        cache = self.__dict__.setdefault("_parsed", {})
        args = cache.get(key)
        if args is None:
            args = self._parse_args(raw)
            if len(cache) < 4096:
                cache[key] = args
        return args

    def _parse_args(self, raw: Mapping[str, Any]) -> Args:
        rank = self.rank or 1
        out: dict[str, Any] = {}
        for arg in self.args:
            if arg.name in raw:
                out[arg.name] = arg.kind.parse(arg.name, raw[arg.name], rank)
            elif arg.required:
                raise ArgumentError(f"missing required argument '{arg.name}'")
            else:
                out[arg.name] = arg.kind.parse(arg.name, arg.default, rank)
        self.check_args(out)
        return MappingProxyType(out)

    def check_args(self, args: dict[str, Any]) -> None:
        """Checks that involve several arguments; raise ArgumentError."""

    def infer(self, args: Args, shape: Shape) -> Inference:
        raise NotImplementedError

    def infer_inputs(self, args: Args, shapes: Sequence[Shape]) -> Inference:
        """`infer` for a node of the graph, which has one shape per input.

        A second input is a `size_of:` reference: only its shape is read (`with_shape_of`).
        """
        return self.infer(self.bind(args, shapes), shapes[0])

    def bind(self, args: Args, shapes: Sequence[Shape]) -> Args:
        """`args` with a `size_of:` input's shape filled in (the node's input shapes)."""
        return self.with_shape_of(args, shapes[1]) if len(shapes) > 1 else args

    def with_shape_of(self, args: Args, other: Shape) -> Args:
        """`args` completed by the shape of the `size_of:` input; only layers taking one override it."""
        raise ShapeError(f"{self.name} does not take size_of")

    def torch_call(self, args: Args, in_shape: Shape) -> TorchCall:
        """The PyTorch module of this layer for an input of `in_shape` (no batch), as data.

        Every layer type implements it (tests/test_torch_modules.py fails for one that does
        not). Write it with `self.changed`, `axes_value` and `torch_padding`, which also accept
        `Code`, so the exporter can call it with a block argument's expression in place of a
        value; `in_shape` may hold `Code` (the exporter's channel count) too.
        """
        raise NotImplementedError(f"layer type {self.name} does not say which PyTorch module it is")

    def torch_module(self, args: Args, in_shape: Shape) -> Any:
        """A `torch.nn.Module` computing this layer (needs torch; `convcalc.torch`)."""
        from convcalc.torch.modules import instantiate

        return instantiate(self.torch_call(args, in_shape))

    @functools.cached_property
    def defaults(self) -> dict[str, Any]:
        """Each optional argument's default, normalised as `parse_args` would."""
        rank = self.rank or 1
        out = {}
        for arg in self.args:
            if not arg.required:
                try:
                    out[arg.name] = arg.kind.parse(arg.name, arg.default, rank)
                except ArgumentError:  # a default only valid with other arguments
                    out[arg.name] = arg.default
        return out

    def changed(self, args: Args, *names: str) -> list[tuple[str, Any]]:
        """`(name, value)` for the arguments among `names` that differ from their default
        (every `Code` does), per-axis values collapsed: the keywords worth writing."""
        out = []
        for name in names:
            value = args[name]
            if isinstance(value, Code) or name not in self.defaults or value != self.defaults[name]:
                out.append((name, axes_value(value)))
        return out

    # helpers for subclasses

    def expect_rank(self, shape: Shape) -> None:
        """Require `[C, *spatial]` with exactly `self.rank` spatial axes."""
        if self.rank is not None and len(shape) != self.rank + 1:
            dims = ", ".join(("C",) + SPATIAL_NAMES[self.rank])
            hint = " (a spatial layer after flatten?)" if len(shape) == 1 else ""
            raise ShapeError(
                f"expects an input of shape [{dims}], got {shape_str(shape)}{hint}"
            )


class Registry:
    """All layer types by name; a new type is one `add` call."""

    def __init__(self) -> None:
        self.types: dict[str, LayerType] = {}

    def add(self, *layer_types: LayerType) -> None:
        for lt in layer_types:
            if lt.name in self.types:
                raise ValueError(f"layer type {lt.name} registered twice")
            self.types[lt.name] = lt

    def __getitem__(self, name: str) -> LayerType:
        return self.types[name]

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def names(self) -> list[str]:
        return sorted(self.types)
