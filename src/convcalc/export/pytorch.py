"""`convcalc export --to pytorch`: a spec as a standalone, readable PyTorch file.

The file imports torch only. Each block of the spec becomes an nn.Module class whose
constructor takes the input channels and the block's arguments (keyword-only, with the
spec's defaults); a `layers:` block is an nn.Sequential, a `residual` or `parallel` block a
`Fork` (whose source, with the other helpers a network needs, is copied from
`convcalc/torch/modules.py`). The whole network is the class `Network`, which takes no
arguments. `vars` are module constants, `repeat` a loop, `when` an `if`, and names with `$i`
f-strings. Every layer is written by its type's `torch_call` (the same call `build` makes),
given expressions as `Code`, so built and exported modules have the same paths and compute
the same thing.

Channel counts are followed as Python expressions (`planes * 4`, `in_channels + growth`);
where `when` or `repeat` may change them, through a variable. A size that no block argument
gives (a linear layer's input after a flatten, inside a block) is written as the number
this network uses, and is an error when the block's uses disagree on it.

Imports `export.template`, `export.python`, `export.flow`, `graph`, `layers`, `network`,
`analysis` and `spec` only.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import keyword
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convcalc.analysis import Report
from convcalc.export.flow import Flow, Forward
from convcalc.export.python import (
    LINE_LIMIT,
    Group,
    Untranslatable,
    call,
    class_name,
    constant_name,
    flat,
    identifier,
    literal,
    name_source,
    names_in,
    substitute,
    translate,
    wrap,
)
from convcalc.export.template import (
    NAMELESS,
    REQUIRED,
    Block,
    ExportError,
    Item,
    Place,
    Template,
    Use,
    Uses,
    has_expression,
    merge_type,
    names_used,
    read_template,
)
from convcalc.layers import MERGE_TYPES, REGISTRY, Code, Hole, LayerType, TorchCall
from convcalc.network import Fork, Network, Sequence
from convcalc.spec.expressions import is_expression, references

SUFFIX = ".py"
MODULES = Path(__file__).resolve().parent.parent / "torch" / "modules.py"
INDENT = "        "  # inside __init__

# How each family of layer types changes the channel count (dim 0); others keep it.
KEEPS_CHANNELS = ("Pool", "MaxPool", "AvgPool", "AdaptivePool", "AdaptiveAvgPool", "BatchNorm", "InstanceNorm",
                  "LayerNorm", "GroupNorm", "LocalResponseNorm", "Elementwise", "PReLU", "Softmax", "Dropout",
                  "Upsample", "Pad", "ChannelShuffle", "LayerNorm2d", "LayerScale", "StochasticDepth", "CenterCrop")
# The families whose output has the shape of their input.
KEEPS_SHAPE = ("BatchNorm", "InstanceNorm", "LayerNorm", "GroupNorm", "LocalResponseNorm", "Elementwise", "PReLU",
               "Softmax", "Dropout", "ChannelShuffle", "LayerNorm2d", "LayerScale", "StochasticDepth")


def export(network: Network, report: Report, spec_label: str, version: str) -> str:
    """The PyTorch source of `network` (parsed from `spec_label`), analysed as `report`."""
    return _Writer(read_template(network), Uses(network, report), network, report, spec_label, version).source()


@dataclass
class _Class:
    name: str
    base: str
    signature: list[str]
    lines: list[str]
    doc: str
    params: dict[str, str]  # spec name -> Python parameter name
    defaults: dict[str, Any]  # spec name -> raw default (REQUIRED if none)
    out: str | None  # output channels in terms of in_channels and the parameters, if static
    dynamic: bool = False  # the output channels are in `self.out_channels`
    forward: Forward | None = None  # written when its layers read other outputs than the previous
    # the channels of outputs from outside that it reads by `from:`: parameter -> (item, input)
    reads: dict[str, tuple[Item, int]] = field(default_factory=dict)


@dataclass
class _Scope:
    names: dict[str, str]  # spec name -> Python source
    taken: set[str] = field(default_factory=set)  # identifiers in use in the function


class _Writer:
    def __init__(self, template: Template, uses: Uses, network: Network, report: Report, spec_label: str,
                 version: str) -> None:
        self.template = template
        self.uses = uses
        self.network = network
        self.report = report
        self.label = spec_label
        self.version = version
        self.helpers: set[str] = set()
        self.functions: set[str] = set()  # the helper functions expressions use (exact_div, ...)
        self.classes: dict[str, _Class] = {}
        self.order: list[str] = []
        self.building: set[str] = set()
        taken: set[str] = set()
        self.constants: dict[str, str] = {}
        for name, _ in template.vars:
            self.constants[name] = constant_name(name, taken | {"INPUT_SHAPE"})
            taken.add(self.constants[name])
        self.class_names: dict[str, str] = {}
        reserved = {"Network", "Fork", "Add", "Concat"} | set(taken)
        for block in template.blocks:
            self.class_names[block] = class_name(block, reserved)
            reserved.add(self.class_names[block])
        shadowed = {p for block in template.blocks.values() for p, _ in block.params} | _index_names(template)
        self.free: dict[str, list[str]] = {}
        self.shadowable = shadowed
        self.arg_types = _arg_types(network)
        self.at: dict[Any, Item] = {}  # template items by source position
        todo = [*template.layers, *(block.body for block in template.blocks.values())]
        while todo:
            item = todo.pop()
            self.at[item.where] = item
            todo += [*item.items, *item.shortcut, *item.after, *(i for _, items in item.branches for i in items)]
        calls = {path: block for path, (block, _) in network.block_calls.items()}
        self.flow = Flow(network, calls, self.naming)

    # --- names ---------------------------------------------------------------------------

    def resolver(self, scope: _Scope, where: Any) -> Callable[[str], str]:
        def resolve(name: str) -> str:
            if name in scope.names:
                return scope.names[name]
            if name in self.constants:
                return self.constants[name]
            raise ExportError(f"'{name}' is not defined here (a block argument, a var or $i)", where=where)

        return resolve

    def code(self, raw: Any, scope: _Scope, where: Any) -> str:
        try:
            return translate(raw, self.resolver(scope, where), self.functions)
        except Untranslatable as err:
            raise ExportError(str(err), where=where) from None

    def free_names(self, block: Block) -> list[str]:
        """The names a block's expressions take from where it is used (not its arguments):
        vars, or a caller's arguments (convcalc's blocks see their caller's names)."""
        if block.name in self.free:
            return self.free[block.name]
        if block.name in self.building:
            raise ExportError(f"block '{block.name}' uses itself", where=block.where)
        self.building.add(block.name)
        found = self._free(block.body, {p for p, _ in block.params}, top=True)
        self.building.discard(block.name)
        self.free[block.name] = sorted(found)
        return self.free[block.name]

    def _free(self, item: Item, bound: set[str], top: bool = False) -> set[str]:
        local = bound | {item.index} if item.repeat is not None and item.index else bound
        found = set()
        for raw in (item.when, item.repeat):
            found |= names_used(raw) - bound
        for raw in (item.name, item.merge, item.shortcut_name, *item.args.values()):
            found |= names_used(raw) - local
        for name, _ in item.branches:
            found |= names_used(name) - local
        children = [*item.items, *item.shortcut, *item.after, *(i for _, items in item.branches for i in items)]
        for child in children:
            found |= self._free(child, local)
        if item.head in self.template.blocks and not top:
            found |= set(self.free_names(self.template.blocks[item.head])) - local
        return found

    def read_as_value(self, item: Item, name: str) -> bool:
        """Whether `$name` is used in `item` other than as a path (`from:`, `size_of:`),
        by it or by a block it calls (which sees its caller's names)."""
        raws = [item.name, item.repeat, item.when, item.merge, item.shortcut_name, item.skip, item.split,
                *(v for k, v in item.args.items() if k != "size_of"), *(n for n, _ in item.branches)]
        if any(name in names_used(raw) for raw in raws if raw is not NAMELESS):
            return True
        if item.head in self.template.blocks and name in self.free_names(self.template.blocks[item.head]):
            return True
        children = [*item.items, *item.shortcut, *item.after, *(i for _, items in item.branches for i in items)]
        return any(self.read_as_value(child, name) for child in children)

    def source_value(self, place: Place, k: int) -> int:
        """The value input `k` of the item expanded at `place` reads (a merge's k-th)."""
        if k == 0:
            return place.entry
        return self.network.graph.nodes[self.network.graph.index[place.path]].inputs[k]

    def naming(self, node: int, k: int) -> str | None:
        """What the spec calls input `k` of graph node `node` (`from: $skip` -> skip), if it
        names it: the layer's own `from:` or `size_of:`, else a `from:` of a group it opens."""
        graph = self.network.graph
        at = graph.nodes[node]
        item = self.at.get(at.where)
        raws = []
        if item is not None and item.is_layer:
            sources = item.source if isinstance(item.source, list) else [item.source]
            raws = [*sources, item.args.get("size_of")] if item.source is not None else [None, item.args.get("size_of")]
        raw = raws[k] if k < len(raws) else None
        if raw is None and k == 0:  # the first layer of a group written with `from:`
            path = at.path
            while raw is None and "." in path:
                path = path.rpartition(".")[0]
                raw = next((self.at[w].source for w, places in self.uses.places.items()
                            if w in self.at and any(p.path == path for p in places)), None)
        if isinstance(raw, str):
            name = raw[1:] if raw.startswith("$") else raw
            if name.isidentifier():
                return name
        return None

    # --- classes -------------------------------------------------------------------------

    def block_class(self, block: Block) -> _Class:
        if block.name in self.classes:
            return self.classes[block.name]
        free = self.free_names(block)
        taken: set[str] = set(self.constants.values()) | set(self.class_names.values())
        params: dict[str, str] = {}
        signature = ["self", "in_channels: int", "*"]
        defaults: dict[str, Any] = {}
        kinds = self.arg_types.get(block.name, {})
        for name, default in block.params:
            if not self.read_as_value(block.body, name):
                continue  # a path only (`from: $skip`): the forward reads that output
            params[name] = identifier(name, taken)
            taken.add(params[name])
            defaults[name] = default
            seen = kinds.get(name, set()) | ({type(default).__name__} if default is not REQUIRED else set())
            hint = f": {seen.pop()}" if len(seen) == 1 and seen <= {"int", "float", "bool", "str"} else ""
            if default is REQUIRED:
                signature.append(params[name] + hint)
            else:
                signature.append(f"{params[name]}{hint} = {literal(default)}" if hint
                                 else f"{params[name]}={literal(default)}")
        for name in free:
            if name in self.constants and name not in self.shadowable:
                continue  # a var no caller can shadow: the module constant
            params[name] = identifier(name, taken)
            taken.add(params[name])
            defaults[name] = REQUIRED if name not in self.constants else None
            signature.append(params[name] if name not in self.constants
                             else f"{params[name]}={self.constants[name]}")
        if signature[-1] == "*":
            signature.pop()
        scope = _Scope(dict(params), taken | {"in_channels"})
        emitter = _Emitter(self, scope, "in_channels", in_block=True)
        if block.body.head == "sequential":
            base = "nn.Sequential"
            emitter.line("super().__init__()")
            emitter.items(block.body.items, "self")
        else:
            base = "Fork"
            self.helpers.add("Fork")
            args, kwargs = emitter.fork(block.body)
            emitter.statement(call("super().__init__", *args, **kwargs))
        out = emitter.channels
        static = out is not None and names_in(out) <= set(params.values()) | {"in_channels"} | set(
            self.constants.values()) | set(emitter.reads) | {"min", "max", "exact_div"}
        dynamic = out is not None and not static
        if dynamic:
            emitter.line(f"self.out_channels = {out}")
        kind = {"sequential": "layers", "residual": "a residual", "parallel": "parallel branches"}[block.body.head]
        doc = f"Block `{block.name}` of the spec ({kind})."
        if block.description:
            doc = f"{block.description.strip().rstrip('.')}. Block `{block.name}` ({kind})."
        if emitter.reads:  # the channels of outputs it reads from outside, keyword-only too
            signature += ([] if "*" in signature else ["*"]) + [f"{name}: int" for name in emitter.reads]
        forward = self.flow.forward(block.name)
        if forward is not None:
            doc = doc[:-1] + ": its layers read outputs by path, so `forward` says which."
        cls = _Class(self.class_names[block.name], base, signature, emitter.lines, doc, params, defaults,
                     out if static else None, dynamic, forward, emitter.reads)
        self.classes[block.name] = cls
        self.order.append(block.name)
        return cls

    def network_class(self) -> _Class:
        self.free_names(Block("", [], Item("sequential", None, items=self.template.layers), None, None))
        scope = _Scope({}, set(self.constants.values()) | set(self.class_names.values()))
        channels = str(self.template.input_shape[0])
        emitter = _Emitter(self, scope, channels)
        emitter.line("super().__init__()")
        emitter.items(self.template.layers, "self")
        emitter.hold_layer_scales()
        shape = "x".join(map(str, self.template.input_shape))
        doc = f"{self.template.name}: input {shape} (channels first, without the batch)."
        return _Class("Network", "nn.Sequential", ["self"], emitter.lines, doc, {}, {}, emitter.channels,
                      forward=self.flow.network_forward())

    # --- the file ------------------------------------------------------------------------

    def main(self) -> str:
        """Running the file prints the output shape (one line per output)."""
        if len(self.network.graph.outputs) == 1:
            return MAIN
        return MAIN.replace("output = model(", "outputs = model(").replace(
            "    print(tuple(output.shape))", "    for output in outputs:\n        print(tuple(output.shape))")

    def source(self) -> str:
        network = self.network_class()
        blocks = [self.classes[name] for name in self.order]
        constants = self.constants_source()
        classes = [self.class_source(c) for c in (*blocks, network)]
        helpers = self.helper_sources()
        parts = [self.header() + "\n\n" + self.imports("\n".join([constants, *helpers, *classes])) + "\n\n"
                 + constants, *helpers, *classes, self.main()]
        return "\n\n\n".join(p.rstrip("\n") for p in parts if p) + "\n"

    def header(self) -> str:
        return (f"# Exported by convcalc {self.version} (convcalc export SPEC --to pytorch) from\n"
                f"#   {self.label}\n"
                f"# network {literal(self.template.name)}. Module paths are convcalc's: state_dict keys\n"
                "# are the paths `convcalc shapes` shows.\n"
                f'"""{self.template.name} as PyTorch modules: build `Network()` and train it."""')

    def helper_sources(self) -> list[str]:
        chosen = _helper_closure(self.helpers)
        out = [_strip(src) for name, src in chosen]
        if "make_divisible" in self.functions:
            out.insert(0, MAKE_DIVISIBLE)
        if "exact_div" in self.functions:
            out.insert(0, EXACT_DIV)
        return out

    def imports(self, text: str) -> str:
        """The imports `text` (the rest of the file) needs."""
        # names used in annotations (a docstring may say "Any" too)
        used = set(re.findall(r"[:>\[,(|] *([A-Z][A-Za-z]*)\b", text))
        stdlib = []
        if re.search(r"\bmath\.", text):
            stdlib.append("import math")
        abc = [n for n in ("Mapping", "Sequence") if n in used]
        if abc:
            stdlib.append(f"from collections.abc import {', '.join(abc)}")
        if "Any" in used:
            stdlib.append("from typing import Any")
        third = ["import torch"]
        names = ["nn"] + (["Tensor"] if "Tensor" in used else [])
        third.append(f"from torch import {', '.join(sorted(names, key=lambda n: (n[0].islower(), n)))}")
        if re.search(r"\bF\.", text):
            third.append("from torch.nn import functional as F  # noqa: N812")
        return "\n".join(stdlib) + ("\n\n" if stdlib else "") + "\n".join(third)

    def constants_source(self) -> str:
        lines = [f"INPUT_SHAPE = {literal(tuple(self.template.input_shape))}  # without the batch"]
        overrides = dict(self.network.overrides)
        scope = _Scope({})
        for name, raw in self.template.vars:
            if name in overrides:
                value, note = literal(overrides[name]), "  # set when exported"
            else:
                value, note = self.code(raw, scope, None), ""
            lines.append(f"{self.constants[name]} = {value}{note}")
        return "\n".join(lines)

    def class_source(self, cls: _Class) -> str:
        lines = [f"class {cls.name}({cls.base}):", *_docstring(cls.doc), ""]
        head = f"    def __init__({', '.join(cls.signature)}) -> None:"
        inner = "        " + ", ".join(cls.signature)
        if len(head) <= 88:
            lines.append(head)
        elif len(inner) <= 88:
            lines += ["    def __init__(", inner, "    ) -> None:"]
        else:
            lines += ["    def __init__(", *(f"        {part}," for part in cls.signature), "    ) -> None:"]
        lines += cls.lines or [INDENT + "super().__init__()"]
        if cls.forward is not None:
            lines += ["", *self.forward_source(cls.forward)]
        return "\n".join(lines)

    def forward_source(self, forward: Forward) -> list[str]:
        returns = "Tensor" if forward.outputs == 1 else f"tuple[{', '.join(['Tensor'] * forward.outputs)}]"
        params = ["self", *(f"{name}: Tensor" for name in forward.params)]
        head = f"    def forward({', '.join(params)}) -> {returns}:"
        if len(head) <= LINE_LIMIT:
            lines = [head]
        elif len("        " + ", ".join(params)) <= LINE_LIMIT:
            lines = ["    def forward(", "        " + ", ".join(params), f"    ) -> {returns}:"]
        else:
            lines = ["    def forward(", *(f"        {p}," for p in params), f"    ) -> {returns}:"]
        return lines + list(forward.lines)


class _Emitter:
    """The body of one __init__: statements that add layers to containers, in order."""

    def __init__(self, writer: _Writer, scope: _Scope, channels: str | None, in_block: bool = False) -> None:
        self.w = writer
        self.scope = scope
        self.lines: list[str] = []
        self.depth = 0
        self.channels: str | None = channels
        self.entry = channels  # the channels entering the class
        self.in_block = in_block
        # Per list being written (innermost last): a named item's output channels, so that
        # `from: name` reads them as an expression.
        self.siblings: list[dict[str, str | None]] = []
        self.reads: dict[str, tuple[Item, int]] = {}  # channels of outside outputs: parameters
        # The last dim of the input, as an expression, when it is not the channels (after a
        # permute to channels-last: what a layernorm or linear there reads).
        self.tail: str | None = None
        self.counts: dict[str, int] = {}

    # --- output --------------------------------------------------------------------------

    @property
    def indent(self) -> str:
        return INDENT + "    " * self.depth

    def line(self, text: str) -> None:
        self.lines.append(self.indent + text)

    def statement(self, expr: Any, prefix: str = "") -> None:
        self.lines += wrap(expr, self.indent, prefix)

    def fresh(self, base: str) -> str:
        n = self.counts.get(base, 0) + 1
        while True:
            name = base if n == 1 else f"{base}{n}"
            if name not in self.scope.taken:
                break
            n += 1
        self.counts[base] = n
        self.scope.taken.add(name)
        return name

    def code(self, raw: Any, where: Any) -> str:
        return self.w.code(raw, self.scope, where)

    def hold_layer_scales(self) -> None:
        """The network keys its LayerScales' weights as torchvision does (see the helper)."""
        if "LayerScale" in self.w.helpers:
            self.w.helpers.add("hold_layer_scales")
            self.line("hold_layer_scales(self)")

    def add(self, target: str, name: str | None, module: Any) -> None:
        """Append `module` to the container `target`, as `name` (Python source) when named."""
        if name is None:
            self.statement(call(f"{target}.append", module))
        elif re.fullmatch(r'"[A-Za-z_][A-Za-z0-9_]*"', name) and not keyword.iskeyword(name[1:-1]):
            self.statement(module, f"{target}.{name[1:-1]} = ")  # registers it, in order
        else:
            self.statement(call(f"{target}.add_module", name, module))

    def mark(self) -> tuple[int, dict[str, int], set[str], str | None, int]:
        return len(self.lines), dict(self.counts), set(self.scope.taken), self.channels, self.depth

    def reset(self, mark: tuple[int, dict[str, int], set[str], str | None, int]) -> None:
        del self.lines[mark[0]:]
        self.counts, self.scope.taken, self.channels, self.depth = dict(mark[1]), set(mark[2]), mark[3], mark[4]

    def nested(self, header: str, body: Callable[[], None]) -> None:
        self.line(header)
        self.depth += 1
        body()
        self.depth -= 1

    def conditional(self, condition: str, body: Callable[[], None]) -> None:
        """`if condition:` over `body`; the channel count after it is a conditional expression."""
        start = self.channels
        self.nested(f"if {condition}:", body)
        self.channels = _either(self.channels, condition, start)
        self.tail = None

    def loop(self, count: str, index: str | None, body: Callable[[], None]) -> None:
        """`for <var> in range(count):` over `body`, with `$<index>` the copy's number inside.
        When each copy changes the channel count, the count is carried through a variable."""
        var = self.fresh_loop()
        first = len(self.lines)
        index = index or "<no index>"
        outer = self.scope.names.get(index)
        self.scope.names[index] = var
        start, mark = self.channels, self.mark()
        self.nested(f"for {var} in range({count}):", body)
        end, made = self.channels, self.scope.taken - mark[2]
        if end != start and end is not None and start is not None:
            self.reset(mark)  # again from another start: does the result depend on it?
            self.scope.taken.add(var)
            self.channels = "__start__"
            self.nested(f"for {var} in range({count}):", body)
            # independent of it, and not read by the copies (each copy reads the one before)
            independent = (self.channels == end and not names_in(end) & (made | {var})
                           and not any("__start__" in line for line in self.lines[mark[0]:]))
            self.reset(mark)
            self.scope.taken.add(var)
            if independent:
                self.nested(f"for {var} in range({count}):", body)
                self.channels = end if _positive(count) else _either(end, f"{count} > 0", start)
            else:
                carried = self.fresh("channels")
                self.line(f"{carried} = {start}")
                self.channels = carried
                self.line(f"for {var} in range({count}):")
                self.depth += 1
                body()
                if self.channels != carried and self.channels is not None:
                    self.line(f"{carried} = {self.channels}")
                self.depth -= 1
                self.channels = carried if self.channels is not None else None
        elif end != start:
            self.channels = None
        self.tail = None
        header = next(n for n in range(first, len(self.lines)) if self.lines[n].lstrip().startswith(f"for {var} "))
        depth = len(self.lines[header]) - len(self.lines[header].lstrip())
        inside = itertools.takewhile(lambda line: len(line) - len(line.lstrip()) > depth, self.lines[header + 1:])
        if not any(re.search(rf"\b{var}\b(?!\s*=[^=])", line) for line in inside):  # not a keyword argument
            self.lines[header] = self.lines[header].replace(f"for {var} ", "for _ ", 1)
        if outer is None:
            del self.scope.names[index]
        else:
            self.scope.names[index] = outer

    # --- items ---------------------------------------------------------------------------

    def items(self, items: list[Item], target: str) -> None:
        """The items in order; consecutive items with the same `when` share one `if`."""
        self.siblings.append({})
        index = 0
        while index < len(items):
            item = items[index]
            run = [item]
            while (item.when not in (None, True, False) and index + len(run) < len(items)
                   and items[index + len(run)].when == item.when):
                run.append(items[index + len(run)])
            if len(run) == 1:
                self.item(item, target)
            else:
                def together(run: list[Item] = run) -> None:
                    for one in run:
                        self.repeated(one, target)

                self.conditional(self.code(item.when, item.where), together)
            for one in run:
                if isinstance(one.name, (str, int)) and not _is_expr(str(one.name)) and one.repeat is None:
                    self.siblings[-1][str(one.name)] = self.channels if one.when in (None, True) else None
            index += len(run)
        self.siblings.pop()

    def item(self, item: Item, target: str) -> None:
        if item.source is not None and not (item.head in MERGE_TYPES and isinstance(item.source, list)):
            self.channels = self.source_channels(item, item.source, 0)
        if self.channels is None:  # not followed as an expression: the number, if it is one
            known = self.w.uses.channels(item, leaving=False)
            self.channels = None if known is None else str(known)
        if item.when is None or item.when is True:
            self.repeated(item, target)
            if not item.is_layer or item.repeat is not None:
                self.tail = None
        elif item.when is not False:
            condition = self.code(item.when, item.where)
            self.conditional(condition, lambda: self.repeated(item, target))
        if self.channels is None and item.when in (None, True):
            known = self.w.uses.channels(item, leaving=True)
            self.channels = None if known is None else str(known)

    def repeated(self, item: Item, target: str) -> None:
        if item.repeat is None:
            name = None if item.name is None else self.name(item)
            self.one(item, target, name)
            return
        count = self.code(item.repeat, item.where)
        per_copy = item.name is not None and item.index is not None and item.index in references(str(item.name))
        if item.name is not None and not per_copy:
            name = self.name(item)
            if isinstance(item.repeat, int) and item.repeat == 1:
                self.with_index(item.index, "0", lambda: self.one(item, target, name))
                return
            if not isinstance(item.repeat, int):
                self.conditional(f"{count} == 1",
                                 lambda: self.with_index(item.index, "0", lambda: self.one(item, target, name)))
                self.conditional(f"{count} != 1", lambda: self.group(item, target, name, count))
                return
            self.group(item, target, name, count)
            return
        self.loop(count, item.index, lambda: self.one(item, target, self.name(item) if per_copy else None))

    def group(self, item: Item, target: str, name: str, count: str) -> None:
        """A named repeat: the copies are numbered inside a group of that name."""
        group = self.fresh(_local(item.name))
        self.line(f"{group} = nn.Sequential()")
        self.loop(count, item.index, lambda: self.one(item, group, None))
        self.add(target, name, group)

    def with_index(self, index: str | None, value: str, body: Callable[[], None]) -> None:
        if index is None:
            body()
            return
        outer = self.scope.names.get(index)
        self.scope.names[index] = value
        body()
        if outer is None:
            del self.scope.names[index]
        else:
            self.scope.names[index] = outer

    def fresh_loop(self) -> str:
        for name in ("i", "j", "k", *(f"i{n}" for n in range(2, 100))):
            if name not in self.scope.taken:
                self.scope.taken.add(name)
                return name
        raise ExportError("repeats nest too deeply to export")

    def name(self, item: Item) -> str:
        try:
            return name_source(item.name, self.w.resolver(self.scope, item.where), self.w.functions)
        except Untranslatable as err:
            raise ExportError(str(err), where=item.where) from None

    def one(self, item: Item, target: str, name: str | None) -> None:
        self.add(target, name, self.module(item))

    def module(self, item: Item) -> Any:
        """The module of one item (statements for its parts come first); updates channels."""
        if item.head in MERGE_TYPES and isinstance(item.source, list):
            inputs = [self.source_channels(item, raw, k) for k, raw in enumerate(item.source)]
            self.channels = inputs[0]
            module = self.layer(item)
            dim = item.args.get("dim", 1)
            self.channels = (_merge_channels(item.head, inputs) if item.head != "concat" or dim == 1
                             else inputs[0])
            self.tail = None
            return module
        if item.is_layer:
            return self.layer(item)
        if item.head in self.w.template.blocks:
            return self.block(item)
        if item.head == "sequential":
            group = self.fresh(_local(item.name, "group"))
            self.line(f"{group} = nn.Sequential()")
            self.items(item.items, group)
            return group
        if item.head in ("residual", "parallel"):
            self.w.helpers.add("Fork")
            args, kwargs = self.fork(item)
            return call("Fork", *args, **kwargs)
        raise ExportError(f"unknown layer type or block '{item.head}'", where=item.where)

    def unknown(self, item: Item, what: str, why: str) -> ExportError:
        """The error for a size the exporter cannot write at `item` (`what` and `why`), or
        that the network never uses it (a block called only with `repeat: 0`, say)."""
        if not (self.w.uses.of(item) if item.is_layer else self.w.uses.at(item)):
            why = ": this network never uses it, so no size of its input is known (give it in the spec)"
        return ExportError(what + why, where=item.where)

    # --- references ----------------------------------------------------------------------

    def source_channels(self, item: Item, raw: Any, k: int) -> str | None:
        """The channels of what input `k` of `item` reads by `from:` (`raw`): those entering
        the class, a named item's before it in this list, the number every use agrees on, or
        (in a block) a parameter of the class."""
        places = self.w.uses.at(item)
        values = [self.w.source_value(place, k) for place in places]
        if values and all(v == place.block for v, place in zip(values, places)):
            return self.entry
        if isinstance(raw, (str, int)) and not _is_expr(str(raw)):
            for known in reversed(self.siblings):
                if str(raw) in known:
                    if known[str(raw)] is not None:
                        return known[str(raw)]
                    break
        numbers = {self.w.uses.shapes[v][0] for v in values}
        if len(numbers) == 1:
            return str(numbers.pop())
        if not self.in_block or not values:
            return None
        name = raw[1:] if isinstance(raw, str) and raw.startswith("$") and raw[1:].isidentifier() else "source"
        param = identifier(f"{name}_channels", self.scope.taken | set(self.reads))
        self.scope.taken.add(param)
        self.reads[param] = (item, k)
        return param

    # --- layers --------------------------------------------------------------------------

    def layer(self, item: Item) -> Any:
        lt = REGISTRY[item.head]
        uses = self.w.uses.of(item)
        args = self.layer_args(lt, item, uses)
        in_shape = self.in_shape(lt, item, uses)
        try:
            torch_call = self.narrow(args, in_shape[0]) if item.head == "narrow" else lt.torch_call(args, in_shape)
        except (TypeError, ArithmeticError):  # it computes with the input size: written as numbers
            shapes = {u.in_shape for u in uses}
            if len(shapes) != 1 or any(isinstance(v, Code) for v in args.values()):
                raise self.unknown(item, f"{item.head}: its module is computed from the size of its input",
                                   ", which differs between the uses of this layer; give the sizes in the spec"
                                   ) from None
            torch_call = lt.torch_call(args, shapes.pop())
        if item.head == "permute":
            self.channels, self.tail = self.permuted(args, len(in_shape))
            return self.render(torch_call, item)
        if item.head == "narrow":  # its length
            self.channels, self.tail = _source(torch_call.args[1]), None
            return self.render(torch_call, item)
        self.channels, self.tail = self.out_channels(lt, args, uses), self.out_tail(lt, args, len(in_shape))
        return self.render(torch_call, item)

    def narrow(self, args: dict[str, Any], channels: Any) -> TorchCall:
        """`Narrow(start, length)`: as given, or part `index` of `split` of the channels."""
        split, index = args["split"], args["index"]
        if split is None:
            return TorchCall("Narrow", (args["start"], args["length"]), helper=True)
        if isinstance(split, tuple):
            return TorchCall("Narrow", (sum(split[:index]), split[index]), helper=True)
        if isinstance(channels, Hole) or not isinstance(channels, Code):
            shape: tuple[Any, ...] = (channels,)  # a Hole raises: the numbers are tried instead
            return REGISTRY["narrow"].torch_call(args, shape)
        size = _fold(substitute("c // n", {"c": channels.text, "n": str(split)}))
        start = "0" if index == 0 else size if index == 1 else _fold(substitute("k * s", {"k": str(index), "s": size}))
        return TorchCall("Narrow", (Code(start), Code(size)), helper=True)

    def out_tail(self, lt: LayerType, args: dict[str, Any], rank: int) -> str | None:
        """The last dim of a layer's output as an expression, where it is followed (`tail`)."""
        families = {cls.__name__ for cls in type(lt).__mro__}
        if "Linear" in families:
            return _source(args["out_features"])
        if families & set(KEEPS_SHAPE) and rank > 1:
            return self.tail
        return None

    def permuted(self, args: dict[str, Any], rank: int) -> tuple[str | None, str | None]:
        """(channels, tail) after a permute, from the dims followed before it."""
        if isinstance(args["dims"], Code) or rank < 2:
            return None, None
        dims = [d % (rank + 1) - 1 for d in args["dims"]]
        known = {0: self.channels, rank - 1: self.tail}
        return known.get(dims[1]), known.get(dims[-1])

    def layer_args(self, lt: LayerType, item: Item, uses: list[Use]) -> dict[str, Any]:
        rank = lt.rank or 1
        args: dict[str, Any] = {}
        for arg in lt.args:
            if arg.name == "size_of":  # a path: the module is called with that output
                args[arg.name] = item.args.get(arg.name)
            elif arg.name in item.args:
                raw = item.args[arg.name]
                if has_expression(raw):
                    args[arg.name] = Code(self.code(raw, item.where), tuple(u.args[arg.name] for u in uses))
                elif uses:
                    args[arg.name] = uses[0].args[arg.name]
                else:
                    try:
                        args[arg.name] = arg.kind.parse(arg.name, raw, rank)
                    except Exception as err:
                        raise ExportError(f"{item.head}: {err}", where=item.where) from None
            else:
                values = {repr(u.args.get(arg.name)) for u in uses}
                if len(values) > 1:
                    if arg.name == "stride" and "kernel_size" in args:  # pools: stride follows the kernel
                        args[arg.name] = args["kernel_size"]
                        continue
                    raise ExportError(f"{item.head}: '{arg.name}' differs between the uses of this layer",
                                      where=item.where)
                args[arg.name] = uses[0].args[arg.name] if uses else lt.defaults.get(arg.name)
                if arg.name == "stride" and args[arg.name] is None:
                    args[arg.name] = args.get("kernel_size")
        return args

    def in_shape(self, lt: LayerType, item: Item, uses: list[Use]) -> tuple[Any, ...]:
        ranks = {len(u.in_shape) for u in uses}
        size = ranks.pop() if len(ranks) == 1 else (lt.rank + 1 if lt.rank else 1)
        where = f"{item.head} at line {item.where.line}" if item.where else item.head
        if not uses:
            where += " (a layer this network never uses, so no size of its input is known)"
        dims: list[Any] = []
        for d in range(size):
            values = {u.in_shape[d] for u in uses if len(u.in_shape) == size}
            if d == 0 and self.channels is not None:
                dims.append(Code(self.channels))
            elif d == size - 1 and self.tail is not None:
                dims.append(Code(self.tail))
            elif len(values) == 1:
                dims.append(values.pop())
            else:
                what = "channels" if d == 0 else f"dim {d} of the input"
                dims.append(Hole(f"the {what} of {where}"))
        return tuple(dims)

    def out_channels(self, lt: LayerType, args: dict[str, Any], uses: list[Use]) -> str | None:
        families = {cls.__name__ for cls in type(lt).__mro__}
        family = next((f for f in ("Conv", "ConvTranspose", "Linear", "Flatten", "PixelShuffle", "PixelUnshuffle")
                       if f in families), None)
        c = self.channels
        if family in ("Conv", "ConvTranspose"):
            return _source(args["out_channels"])
        if family == "Linear":
            rank1 = all(len(u.in_shape) == 1 for u in uses)
            return _source(args["out_features"]) if rank1 else c
        if family == "Flatten":  # the channels stay when flattening starts after them (or is a no-op)
            if not uses:
                start, end = args["start_dim"], args["end_dim"]
                same = isinstance(start, int) and start == end or start is end
                return c if same or (isinstance(start, int) and start >= 2) else None
            spans = [(u.args["start_dim"] % (len(u.in_shape) + 1), u.args["end_dim"] % (len(u.in_shape) + 1))
                     for u in uses]
            return c if all(start >= 2 or start == end for start, end in spans) else None
        if c is None:
            return None
        if family == "PixelShuffle":
            return substitute("c // r ** 2", {"c": c, "r": _source(args["upscale_factor"])})
        if family == "PixelUnshuffle":
            return substitute("c * r ** 2", {"c": c, "r": _source(args["downscale_factor"])})
        if families & set(KEEPS_CHANNELS):
            return c
        return None

    def render(self, torch_call: TorchCall, item: Item) -> Group:
        def value(v: Any) -> str:
            if isinstance(v, Hole):
                raise ExportError(f"{item.head}: cannot write {v.text}: it is not given by the block's arguments"
                                  " and differs between the block's uses (or there are none); give it in the"
                                  " spec", where=item.where)
            if isinstance(v, Code):
                return v.text
            if isinstance(v, tuple):
                inner = ", ".join(value(x) for x in v)
                return f"({inner},)" if len(v) == 1 else f"({inner})"
            return literal(v)

        if torch_call.helper:
            self.w.helpers.add(torch_call.name)
            func = torch_call.name
        else:
            func = f"nn.{torch_call.name}"
        return call(func, *(value(a) for a in torch_call.args), **{k: value(v) for k, v in torch_call.kwargs})

    # --- blocks --------------------------------------------------------------------------

    def block(self, item: Item) -> Any:
        block = self.w.template.blocks[item.head]
        cls = self.w.block_class(block)
        c = self.channels
        if c is None:
            known = self.w.uses.channels(item, leaving=False)
            if known is None:
                raise self.unknown(item, f"block '{block.name}': the channels of its input", " are not known here")
            c = str(known)
        kwargs: dict[str, str] = {}
        passed: dict[str, str] = {"in_channels": c}
        for name, py in cls.params.items():
            if name in item.args:
                kwargs[py] = self.code(item.args[name], item.where)
            elif name not in dict(block.params) and name in self.scope.names:
                kwargs[py] = self.scope.names[name]  # a name the block takes from its caller
            elif cls.defaults.get(name) is REQUIRED:
                raise ExportError(f"block '{block.name}' needs '{name}' here", where=item.where)
            if py in kwargs:
                passed[py] = kwargs[py]
            elif name in dict(block.params):
                passed[py] = literal(cls.defaults[name])
            else:
                passed[py] = self.w.constants.get(name, py)
        for param, (inner, k) in cls.reads.items():
            kwargs[param] = passed[param] = self.read_channels(item, inner, k, cls, param)
        module = call(cls.name, c, **kwargs)
        if cls.out is not None:
            self.channels = _fold(substitute(cls.out, passed))
            return module
        if cls.dynamic:
            ref = self.fresh(_local(item.name, "block"))
            self.statement(module, f"{ref} = ")
            self.channels = f"{ref}.out_channels"
            return ref
        self.channels = None
        return module

    def read_channels(self, call_item: Item, inner: Item, k: int, cls: _Class, param: str) -> str:
        """What a call passes for a block's parameter `param`: the channels of what `inner`
        (in the block) reads by `from:` in this call's uses."""
        numbers = set()
        for place in self.w.uses.at(call_item):
            for use in self.w.uses.at(inner):
                if use.path.startswith(place.path + "."):
                    numbers.add(self.w.uses.shapes[self.w.source_value(use, k)][0])
        if len(numbers) == 1:
            return str(numbers.pop())
        if self.in_block and numbers:  # still differing: the caller takes them as a parameter too
            name = identifier(param, self.scope.taken | set(self.reads))
            self.scope.taken.add(name)
            self.reads[name] = (inner, k)
            return name
        raise ExportError(f"block '{call_item.head}': the channels {param} of {cls.name} are not known here",
                          where=call_item.where)

    # --- forks ---------------------------------------------------------------------------

    def fork(self, item: Item) -> tuple[list[Any], dict[str, Any]]:
        """Statements building a fork's children; returns the arguments of its `Fork`."""
        merge = merge_type(item.merge)
        allowed = ("add", "concat") if item.head == "residual" else ("add", "mul", "concat")
        if merge is None or merge not in allowed:
            words = f"{', '.join(allowed[:-1])} or {allowed[-1]}"
            raise ExportError(f"{item.head}: export needs the merge written out as {words}, not an expression"
                              f" (got {item.merge!r})", where=item.where)
        layers = self.fresh("layers")
        self.line(f"{layers} = nn.Sequential()")
        start = self.channels
        self.tail = None
        if item.head == "residual":
            branches, merge_arg, on, after = self.residual(item, layers, merge)
            kwargs: dict[str, Any] = {}
        else:
            branches, kwargs, after = self.parallel(item, layers, merge, start)
            merge_arg, on = literal(merge), None
        if on != "False":
            module = f"{merge.capitalize()}()"
            self.w.helpers.add(merge.capitalize())
            if on is None:
                self.add(layers, literal(merge), module)
            else:
                self.conditional(on, lambda: self.add(layers, literal(merge), module))
        args = [f"dict({layers}.named_children())", branches, merge_arg]
        if not (isinstance(after, Group) and not after.items):
            args.append(after)
        return args, kwargs

    def residual(self, item: Item, layers: str, merge: str) -> tuple[Any, str, str | None, Any]:
        """A residual's children: (branches, merge, the condition of its skip, after)."""
        start = self.channels
        on: str | None = None  # skip: None always, "False" never, else the condition
        if item.skip is False:
            on = "False"
        elif item.skip is not True:
            on = self.fresh("skip")
            self.line(f"{on} = {self.code(item.skip, item.where)}")
        body_static = _static_names(item.items)
        self.items(item.items, layers)
        body_channels = self.channels
        body: Any = _list(body_static) if body_static is not None else None
        if body is None:
            body = self.fresh("body")
            self.line(f"{body} = [name for name, _ in {layers}.named_children()]")
        shortcut_channels = start
        shortcut_name: str | None = None
        shortcut = ""
        if item.shortcut and on != "False":
            def build_shortcut() -> None:
                nonlocal shortcut_channels
                self.line(f"{shortcut} = nn.Sequential()")
                self.channels = start
                self.items(item.shortcut, shortcut)
                shortcut_channels = self.channels

            named = _local(item.shortcut_name, "shortcut")
            shortcut = self.fresh(named if named not in self.scope.taken else "shortcut")
            shortcut_name = self.name(Item("", item.where, name=item.shortcut_name))
            if on is None:
                build_shortcut()
            else:
                self.nested(f"if {on}:", build_shortcut)
        both = [body, _list([]) if shortcut_name is None else Group("[", [shortcut_name], "]")]
        parts = [body_channels, shortcut_channels]
        if merge == "concat":
            both.reverse()
            parts.reverse()
        merged = _merge_channels(merge, parts)
        branches: Any = Group("[", both, "]")
        merge_arg = literal(merge)
        if on == "False":
            branches, merge_arg, merged = Group("[", [body], "]"), "None", body_channels
        elif on is not None:
            if isinstance(body, Group):  # named once, read twice
                var = self.fresh("body")
                self.statement(body, f"{var} = ")
                both = [var if b is body else b for b in both]
                body = var
            branches = f"{flat(Group('[', both, ']'))} if {on} else [{flat(body)}]"
            merge_arg = f"{literal(merge)} if {on} else None"
            merged = _either(merged, on, body_channels)
        self.channels = merged
        after = self.after(item, layers, body_static, body)
        if shortcut_name is not None:
            if on is None:
                self.add(layers, shortcut_name, shortcut)
            else:
                self.conditional(on, lambda: self.add(layers, shortcut_name, shortcut))
                self.channels = merged
        return branches, merge_arg, on, after

    def parallel(self, item: Item, layers: str, merge: str, start: str | None) -> tuple[Group, dict[str, Any], Any]:
        """A parallel's children: (branches, keyword arguments of Fork, after)."""
        kwargs: dict[str, Any] = {}
        lengths: list[str | None] = [start] * len(item.branches)
        if item.split is not None:
            parts, lengths = self.split_parts(item, start)
            kwargs["split"] = Group("[", parts, "]")
        channels = []
        names: list[Any] = []
        nameless = False
        for index, (raw_name, items) in enumerate(item.branches):
            self.channels = lengths[index]
            self.tail = None
            if not items:  # the identity: no module
                names.append(_list([]))
            elif raw_name is NAMELESS:  # its items sit at the fork's own path
                nameless = True
                static = _static_names(items)
                if static is not None and not any(n.isdigit() for n in static):
                    self.items(items, layers)
                    names.append(_list(static))
                else:
                    branch = self.fresh("branch")
                    self.line(f"{branch} = nn.Sequential()")
                    self.items(items, branch)
                    def move(line: str = f"{layers}.add_module(name, module)") -> None:
                        self.line(line)

                    self.nested(f"for name, module in {branch}.named_children():", move)
                    names.append(f"[name for name, _ in {branch}.named_children()]")
            else:
                branch = self.fresh(_local(raw_name, "branch"))
                self.line(f"{branch} = nn.Sequential()")
                self.items(items, branch)
                name = str(index) if raw_name is None else raw_name
                name_code = self.name(Item("", item.where, name=name))
                self.add(layers, name_code, branch)
                names.append(Group("[", [name_code], "]"))
            channels.append(self.channels)
        self.channels = _merge_channels(merge, channels)
        numbered = [str(i) for i in range(len(item.branches))]
        if nameless or any(not items for _, items in item.branches):
            # `layers` does not hold one child per branch, so appending would misnumber
            # the `after` layers (numbered after the branches): they are named instead.
            static = _static_names(item.after, len(item.branches))
            if static is None or any(a.repeat is not None and a.name is None for a in item.after):
                raise ExportError("parallel: cannot number its 'after' layers beside an empty or nameless"
                                  " branch when 'when' or 'repeat' there take expressions; name them",
                                  where=item.where)
            kept = [a for a in item.after if a.when is not False]
            renamed = [dataclasses.replace(a, name=n) for a, n in zip(kept, static, strict=True)]
            item = dataclasses.replace(item, after=renamed)
        after = self.after(item, layers, numbered, None)
        return Group("[", names, "]"), kwargs, after

    def split_parts(self, item: Item, start: str | None) -> tuple[list[Any], list[str | None]]:
        """The Narrow modules of a channel split, and each part's channels."""
        if start is None:
            raise self.unknown(item, "parallel: the channels of the input to split", " are not known here")
        self.w.helpers.add("Narrow")
        split = item.split
        if isinstance(split, list):
            lengths = [self.code(size, item.where) for size in split]
        else:
            count = self.code(split, item.where)
            size = _fold(substitute("c // n", {"c": start, "n": count}))
            n = len(item.branches)
            lengths = [size] * n
        starts, total = [], "0"
        for length in lengths:
            starts.append(total)
            total = _fold(_plus(total, length))
        return [call("Narrow", a, b) for a, b in zip(starts, lengths)], list(lengths)

    def after(self, item: Item, layers: str, before: list[str] | None, body_var: Any) -> Any:
        if not item.after:
            return _list([])
        names = _static_names(item.after, len(before)) if before is not None else None
        self.items(item.after, layers)
        if names is not None:
            return _list(names)
        var = self.fresh("after")
        count = f"len({body_var})" if isinstance(body_var, str) else str(len(before or []))
        self.line(f"{var} = [name for name, _ in {layers}.named_children()][{count}:]")
        return var


# --- helpers ---------------------------------------------------------------------------------


def _either(then: str | None, condition: str, otherwise: str | None) -> str | None:
    """`then if condition else otherwise`, or the one value when both are the same."""
    if then == otherwise:
        return then
    if then is None or otherwise is None:
        return None
    return ast.unparse(ast.parse(f"({then}) if ({condition}) else ({otherwise})", mode="eval"))


def _fold(code: str) -> str:
    """Arithmetic on numbers only (`64 * 4`) as its value; anything else as it is."""
    tree = ast.parse(code, mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.operator, ast.unaryop)
    if all(isinstance(node, allowed) for node in ast.walk(tree)):
        try:
            value = eval(compile(tree, "<channels>", "eval"), {"__builtins__": {}})  # numbers only
        except ArithmeticError:
            return code
        if isinstance(value, int):
            return str(value)
    return code


def _plus(a: str, b: str) -> str:
    if a == "0":
        return b
    if b == "0":
        return a
    return ast.unparse(ast.parse(f"({a}) + ({b})", mode="eval"))


def _positive(count: str) -> bool:
    return count.isdigit() and int(count) > 0


def _source(value: Any) -> str:
    if isinstance(value, Code):
        return value.text
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return literal(value[0])
    return literal(value)


def _is_expr(text: str) -> bool:
    return is_expression(text)


def _local(raw: Any, default: str = "group") -> str:
    """A local variable's name after an item's name, when that is a plain word."""
    if isinstance(raw, str) and re.fullmatch(r"[a-z_][a-z0-9_]*", raw) and not _is_expr(raw):
        return raw
    return default


def _list(names: Iterable[str]) -> Group:
    return Group("[", [literal(n) for n in names], "]")


def _merge_channels(merge: str, channels: list[str | None]) -> str | None:
    """The channels out of a merge of inputs with `channels` (add and mul broadcast)."""
    if merge in ("add", "mul"):
        return next((c for c in channels if c != "1"), channels[0])
    if any(c is None for c in channels):
        return None
    return _fold(ast.unparse(ast.parse(" + ".join(f"({c})" for c in channels), mode="eval")))


def _static_names(items: list[Item], start: int = 0) -> list[str] | None:
    """The path segments a list's items take, when they do not depend on arguments."""
    names, index = [], start
    for item in items:
        if item.when is False:
            continue
        if item.when not in (None, True) or (item.repeat is not None and not isinstance(item.repeat, int)):
            return None
        if item.name is not None and _is_expr(str(item.name)):
            return None
        count = 1 if item.repeat is None else item.repeat
        if item.name is not None:
            names.append(str(item.name))
            index += 1
        else:
            names += [str(index + k) for k in range(count)]
            index += count
    return names


def _arg_types(network: Network) -> dict[str, dict[str, set[str]]]:
    """Block -> argument -> the Python types of the values it is given in the network."""
    out: dict[str, dict[str, set[str]]] = {}
    stack: list[Any] = [network.body]
    while stack:
        node = stack.pop()
        if isinstance(node, Sequence):
            stack.extend(node.items)
            if node.block is not None:
                for arg, value in node.block_args:
                    out.setdefault(node.block, {}).setdefault(arg, set()).add(type(value).__name__)
        elif isinstance(node, Fork):
            stack.extend(node.branches)
    return out


def _docstring(text: str) -> list[str]:
    """A class's docstring, wrapped within the line limit."""
    lines = textwrap.wrap(text, LINE_LIMIT - 4, initial_indent='"""', break_on_hyphens=False,
                          break_long_words=False)
    lines = ["    " + line for line in lines]
    if len(lines[-1]) + 3 <= LINE_LIMIT:
        lines[-1] += '"""'
    else:
        lines.append('    """')
    return lines


def _index_names(template: Template) -> set[str]:
    """The names `repeat: {count, index}` gives copies' numbers anywhere in the spec."""
    out: set[str] = set()
    todo = [*template.layers, *(block.body for block in template.blocks.values())]
    while todo:
        item = todo.pop()
        if item.index:
            out.add(item.index)
        todo += [*item.items, *item.shortcut, *item.after, *(i for _, items in item.branches for i in items)]
    return out


def _helper_closure(names: set[str]) -> list[tuple[str, str]]:
    """The helper classes and functions `names` need from convcalc/torch/modules.py, in file order."""
    text = MODULES.read_text()
    tree = ast.parse(text)
    defs = {node.name: node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    needed: set[str] = set()
    todo = [n for n in names if n in defs]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for ref in ast.walk(defs[name]):
            if isinstance(ref, ast.Name) and ref.id in defs and ref.id not in needed:
                todo.append(ref.id)
    return [(name, ast.get_source_segment(text, node) or "") for name, node in defs.items() if name in needed]


def _strip(source: str) -> str:
    return re.sub(r"  # type: ignore\[[^\]]*\]", "", source)


EXACT_DIV = '''def exact_div(a, b):
    """The spec's `/`: an int when it divides exactly."""
    return a // b if a % b == 0 else a / b'''

MAKE_DIVISIBLE = '''def make_divisible(v, divisor, min_value=None):
    """torchvision's _make_divisible: the nearest multiple of `divisor`, at least
    `min_value` (default `divisor`), never more than 10 % below `v`."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)'''

MAIN = '''if __name__ == "__main__":
    model = Network().eval()
    with torch.no_grad():
        output = model(torch.randn(1, *INPUT_SHAPE))
    print(tuple(output.shape))'''
