"""Random specs drawn by hypothesis, built with `convcalc.torch.build` and exported with
`convcalc export --to pytorch`, checked against convcalc's own report.

The specs have branches (residual with add or concat and `skip`, parallel with add, mul or
concat and channel splits, empty, named and nameless branches, shortcuts, `after` layers),
blocks with arguments used in expressions (vars too), `repeat` with an index (`$i` in names
and arguments), `when`, references (`from:` a named output of the list or the lists around
it, standalone add/mul/concat, upsample and centercrop with `size_of`), several `outputs`,
and every layer type with arguments drawn from its own declaration. The generator follows the shape with each layer type's `infer`, so most drawn
specs are valid. For each: parameter and buffer counts, output shape and every layer's output
shape (forward hooks) equal the report; the exported file is ruff-clean, imports, has the
same state_dict keys and the same output; the NumPy forward with the module's weights equals the module's
forward to 1e-6 (float64); and the receptive field is the support of a float64 gradient.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcalc.analysis import analyze
from convcalc.errors import SpecError
from convcalc.layers import MERGE_TYPES, REGISTRY
from convcalc.layers.base import Bool, Choice, Float, FloatPerAxis, Int, IntList, Optional, Padding, PerAxis

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from convcalc.export import ExportError, export  # noqa: E402
from convcalc.spec.parser import parse_text  # noqa: E402
from convcalc.torch import modules_of  # noqa: E402
from test_torch_build import check_against_report, check_fields  # noqa: E402

SCALE = int(os.environ.get("CONVCALC_FUZZ_SCALE", "1"))
SETTINGS = settings(max_examples=40 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
LAYER_TYPES = [name for name in REGISTRY.names() if name not in MERGE_TYPES]
INFERRED = ("in_channels", "in_features", "num_features", "num_channels")


class Gen:
    """Draws a spec while following its shape (each layer's `infer`)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.blocks: dict[str, Any] = {}
        self.vars: dict[str, Any] = {}
        self.names = 0
        self.scopes: list[dict[str, tuple[int, ...]]] = []  # named outputs, per list being drawn
        self.floor = 0  # the first scope a reference may read (a block's body sees its own only)
        self.last_scope: dict[str, tuple[int, ...]] = {}

    def unique(self, base: str) -> str:
        self.names += 1
        return f"{base}{self.names}"

    # --- layers --------------------------------------------------------------------------

    def arg(self, name: str, kind: Any, shape: tuple[int, ...], rank: int) -> Any:
        draw = self.draw
        if isinstance(kind, Optional):
            return None if draw(st.booleans()) else self.arg(name, kind.inner, shape, rank)
        if name == "groups":
            return draw(st.sampled_from([1, 1, shape[0]]))
        if name == "num_groups":
            return draw(st.sampled_from([d for d in range(1, shape[0] + 1) if shape[0] % d == 0]))
        if name in ("out_channels", "out_features"):
            return draw(st.integers(1, 6))
        if name in ("upscale_factor", "downscale_factor"):
            return draw(st.sampled_from([1, 2]))
        if name == "num_parameters":
            return draw(st.sampled_from([1, shape[0]]))
        if name in ("dim", "start_dim", "end_dim"):
            return draw(st.sampled_from([1, -1] if name != "start_dim" else [1, 2, -1]))
        if name == "output_size":
            return draw(st.integers(1, 3))
        if name == "size" and kind.__class__.__name__ == "Int":  # LocalResponseNorm
            return draw(st.integers(1, 4))
        if name == "normalized_shape":
            return list(shape[-1:])
        if name == "padding" and type(kind).__name__ == "PadWidths":
            return draw(st.integers(0, 2) | st.lists(st.integers(0, 2), min_size=2 * rank, max_size=2 * rank))
        if name in ("size", "scale_factor"):
            return None
        if isinstance(kind, Padding):
            one = st.integers(0, 2)
            options = [one, st.lists(one, min_size=rank, max_size=rank),
                       st.lists(st.lists(one, min_size=2, max_size=2), min_size=rank, max_size=rank)]
            if kind.allow_words:
                options.append(st.sampled_from(["same", "valid"]))
            return draw(st.one_of(options))
        if isinstance(kind, PerAxis):
            low = max(kind.minimum, 1 if name != "output_padding" else 0)
            high = {"kernel_size": 3, "stride": 2, "dilation": 2}.get(name, 1)
            one = st.integers(low, max(low, high))
            return draw(one | st.lists(one, min_size=rank, max_size=rank))
        if isinstance(kind, Int):
            return draw(st.integers(max(kind.minimum, 1), 4))
        if isinstance(kind, Bool):
            return draw(st.booleans())
        if isinstance(kind, Choice):
            return draw(st.sampled_from(kind.options))
        if isinstance(kind, FloatPerAxis):
            return draw(st.sampled_from([0.5, 1.0, 1.5, 2.0]))
        if isinstance(kind, Float):
            if name == "p":
                return draw(st.sampled_from([0.0, 0.2, 0.5]))
            return draw(st.sampled_from([0.1, 0.5, 1.0, 1.5, 3.0]))
        if isinstance(kind, IntList):
            return list(shape[-1:])
        if type(kind).__name__ == "Dims":  # permute: the batch stays first
            return [0, *draw(st.permutations(range(1, len(shape) + 1)))]
        if type(kind).__name__ == "NumbersOrList":  # centercrop's size: at most the input's
            return [draw(st.integers(1, n)) for n in shape[1:]]
        if type(kind).__name__ in ("PathText", "Parts"):
            return None  # size_of: drawn by `reference`; narrow's split: by `layer`
        raise AssertionError(f"no strategy for {name} ({type(kind).__name__})")

    def layer(self, shape: tuple[int, ...], keep: str | None) -> tuple[Any, tuple[int, ...]]:
        """A layer of any type that fits `shape` (and keeps all of it, or its spatial sizes)."""
        rank = len(shape) - 1
        fitting = [n for n in LAYER_TYPES if REGISTRY[n].rank in (None, rank)]
        if rank == 0:  # torch's ChannelShuffle needs a spatial axis, which convcalc does not ask for yet
            fitting.remove("channelshuffle")
        for _ in range(6):
            name = self.draw(st.sampled_from(fitting))
            lt = REGISTRY[name]
            raw = {a.name: self.arg(a.name, a.kind, shape, max(rank, 1)) for a in lt.args
                   if a.name not in INFERRED and (a.required or self.draw(st.booleans()))}
            if name == "narrow":  # a span of the channels, or one part of a split
                if self.draw(st.booleans()):
                    start = self.draw(st.integers(0, shape[0] - 1))
                    raw = {"start": start, "length": self.draw(st.integers(1, shape[0] - start))}
                else:
                    parts = self.draw(st.sampled_from([d for d in range(1, shape[0] + 1) if shape[0] % d == 0]))
                    raw = {"split": parts, "index": self.draw(st.integers(0, parts - 1))}
            if name == "layernorm2d" and "normalized_shape" in raw:
                raw["normalized_shape"] = shape[0]
            if name in ("upsample", "upsamplingnearest2d", "upsamplingbilinear2d"):
                raw["scale_factor" if self.draw(st.booleans()) else "size"] = self.draw(st.sampled_from([1, 2]))
                raw.pop("size" if "scale_factor" in raw else "scale_factor", None)
            raw = {k: v for k, v in raw.items() if v is not None or k in ("stride", "momentum")}
            try:
                args = lt.parse_args(raw)
                out = lt.infer(args, shape).output_shape
            except SpecError:
                continue
            if max(out) > 64 or min(out) < 1 or (keep == "all" and out != shape) or (
                    keep == "spatial" and (len(out) != len(shape) or out[1:] != shape[1:])):
                continue
            return ({name: raw} if raw else name), out
        return "relu", shape

    # --- items ---------------------------------------------------------------------------

    def items(self, shape: tuple[int, ...], depth: int, keep: str | None = None,
              count: int | None = None) -> tuple[list[Any], tuple[int, ...]]:
        start = shape
        out = []
        self.scopes.append({})
        for _ in range(count if count is not None else self.draw(st.integers(1, 3))):
            item, shape = self.item(shape, depth, keep)
            out.append(self.named(item, shape))
        self.last_scope = self.scopes.pop()
        if keep == "all" and shape != start:  # back to the channels a residual add needs
            out.append({"conv2d" if len(shape) == 3 else f"conv{len(shape) - 1}d" if len(shape) > 1 else "linear":
                        {"out_channels": start[0], "kernel_size": 1} if len(shape) > 1
                        else {"out_features": start[0]}})
            shape = start
        return out, shape

    def named(self, item: Any, shape: tuple[int, ...]) -> Any:
        """`item`, often named so that later items can read it by `from:` (its output `shape`)."""
        if isinstance(item, str):
            item = {item: None}
        plain = "repeat" not in item and "when" not in item
        inner = [v for v in item.values() if isinstance(v, dict)]
        if any("name" in v or "repeat" in v for v in inner):
            return item  # named (or repeated) inside its arguments
        if plain and "name" not in item and self.draw(st.integers(0, 2)) == 0:
            item = {**item, "name": self.unique("v")}
        if plain and isinstance(item.get("name"), str) and "$" not in item["name"]:
            self.scopes[-1][item["name"]] = shape
        return item

    def candidates(self, shape: tuple[int, ...], keep: str | None) -> list[tuple[str, tuple[int, ...]]]:
        """Named outputs a `from:` here may read: in this list or around it (a block's body sees
        its own lists only), with the spatial sizes `keep` needs."""
        found = [(name, s) for scope in self.scopes[self.floor:] for name, s in scope.items()]
        if keep is not None:
            found = [(name, s) for name, s in found if len(s) == len(shape) and s[1:] == shape[1:]]
        return found

    def reference(self, shape: tuple[int, ...], keep: str | None) -> tuple[Any, tuple[int, ...]] | None:
        """An item reading named outputs: a layer `from:` one, a standalone merge of two, or
        an upsample or centre crop to the size of one."""
        found = self.candidates(shape, keep)
        if not found:
            return None
        kind = self.draw(st.sampled_from(["from", "merge", "size_of"]))
        if kind == "from":
            name, source = self.draw(st.sampled_from(found))
            layer, out = self.layer(source, keep)
            if keep == "all" and out != shape:
                return None
            item = layer if isinstance(layer, dict) else {layer: None}
            return {**item, "from": name}, out
        if kind == "merge":
            a, first = self.draw(st.sampled_from(found))
            same = [(n, s) for n, s in found if s == first]
            along = [(n, s) for n, s in found if len(s) == len(first) and s[1:] == first[1:]]
            head = self.draw(st.sampled_from(["add", "mul", "concat"]))
            b, second = self.draw(st.sampled_from(along if head == "concat" else same))
            out = (first[0] + second[0], *first[1:]) if head == "concat" else first
            if (keep == "all" and out != shape) or max(out) > 64:
                return None
            return {head: {"from": [a, b]}}, out
        spatial = [(n, s) for n, s in found if len(s) == len(shape) and len(s) > 1]
        if not spatial or keep is not None:
            return None
        name, target = self.draw(st.sampled_from(spatial))
        if self.draw(st.booleans()):
            return {"upsample": {"size_of": name, "mode": "nearest"}}, (shape[0], *target[1:])
        if any(t > n for t, n in zip(target[1:], shape[1:])):
            return None
        return {"centercrop": {"size_of": name}}, (shape[0], *target[1:])

    def item(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        kinds = ["layer"] * 4 + ["reference"] * 2
        if depth < 3 and len(shape) > 1:
            kinds += ["residual", "parallel", "sequential", "block", "repeat", "when"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "reference":
            drawn = self.reference(shape, keep)
            kind = "layer" if drawn is None else kind
            if drawn is not None:
                return drawn
        if kind == "layer":
            return self.layer(shape, keep)
        if kind == "residual":
            return self.residual(shape, depth, keep)
        if kind == "parallel":
            return self.parallel(shape, depth, keep)
        if kind == "sequential":
            items, out = self.items(shape, depth + 1, keep)
            item: dict[str, Any] = {"sequential": items}
            if self.draw(st.booleans()):
                item["name"] = self.unique(self.draw(st.sampled_from(["group", "stage", "head"])))
            return item, out
        if kind == "block":
            return self.block(shape, depth, keep)
        if kind == "repeat" and keep != "all" and self.draw(st.booleans()):
            count = self.draw(st.integers(1, 3))  # copies that grow the channels with $i
            index = self.draw(st.sampled_from(["i", "k"]))
            width = self.draw(st.sampled_from([None, 2, 5]))  # grow with the index, or a width
            conv = {f"conv{len(shape) - 1}d": {"out_channels": f"$({index} + 1)" if width is None else width,
                                               "kernel_size": 1},
                    "repeat": {"count": count, "index": index}}
            if self.draw(st.booleans()):
                conv["name"] = f"{self.unique('grow')}_${index}"
            return conv, (count if width is None else width, *shape[1:])
        if kind == "repeat":
            layer, out = self.layer(shape, "all")
            if not isinstance(layer, dict):
                layer = {layer: None}
            (head, args), = layer.items()
            count = self.draw(st.integers(0, 3))
            copy = {head: dict(args or {}), "repeat": self.draw(st.sampled_from([count, {"count": count},
                                                                                   {"count": count, "index": "i"}]))}
            indexed = isinstance(copy["repeat"], dict) and "index" in copy["repeat"]
            if head == "leakyrelu" and indexed:
                copy[head]["negative_slope"] = "$(0.1 * i)"
            naming = self.draw(st.sampled_from([None, "group", "copy$i", "r$(i + 1)"] if indexed else [None, "group"]))
            if naming is not None:
                copy["name"] = self.unique(naming) if "$" not in naming else f"{self.unique('n')}_{naming}"
            if not copy[head]:
                copy[head] = None
            return copy, shape
        # when: a literal, kept or dropped
        layer, out = self.layer(shape, keep)
        keep_it = self.draw(st.booleans())
        item = layer if isinstance(layer, dict) else {layer: None}
        return {**item, "when": keep_it}, (out if keep_it else shape)

    def residual(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        concat = keep != "all" and self.draw(st.booleans())
        body, out = self.items(shape, depth + 1, "spatial" if concat else "all")
        body_out = out
        spec: dict[str, Any] = {"body": body}
        if concat:
            spec["merge"] = "concat"
            out = (shape[0] + out[0], *shape[1:])
        if self.draw(st.booleans()):
            spec["shortcut"] = [{f"conv{len(shape) - 1}d": {"out_channels": shape[0], "kernel_size": 1}}]
            spec["shortcut_name"] = self.draw(st.sampled_from(["shortcut", "downsample", "proj"]))
        if keep is None and self.draw(st.booleans()):
            spec["after"] = ["relu"]
        if self.draw(st.integers(0, 3)) == 0:
            spec["skip"] = self.draw(st.booleans())  # false: the body alone
            if not spec["skip"]:
                out = body_out
        item: dict[str, Any] = {"residual": spec}
        if set(spec) == {"body"} and self.draw(st.booleans()):
            item = {"residual": body}  # the short form: a body and the identity
        if self.draw(st.booleans()):
            item["name"] = self.unique("res")
        return item, out

    def parallel(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        """Branches on the same input (or each on its part of a channel split), merged by add,
        mul or concat; a branch may be empty, named, or nameless (`name: null`, its items named)."""
        count = self.draw(st.integers(2, 3))
        parts = [shape] * count
        split: Any = None
        if keep != "all" and shape[0] >= count and self.draw(st.integers(0, 2)) == 0:
            if shape[0] % count == 0 and self.draw(st.booleans()):
                split = count
                parts = [(shape[0] // count, *shape[1:])] * count
            else:
                cuts = sorted(self.draw(st.sets(st.integers(1, shape[0] - 1), min_size=count - 1,
                                                max_size=count - 1)))
                split = [b - a for a, b in zip([0, *cuts], [*cuts, shape[0]])]
                parts = [(n, *shape[1:]) for n in split]
        same = len(set(parts)) == 1
        add = same and (keep == "all" and split is None or self.draw(st.booleans()))
        branches, channels = [], 0
        for b, part in enumerate(parts):
            if self.draw(st.integers(0, 3)) == 0:
                items, out = [], part
            else:
                items, out = self.items(part, depth + 1, "all" if add else "spatial")
            channels += out[0]
            style = self.draw(st.sampled_from(["plain", "named", "nameless"]))
            if style == "nameless" and items and all(isinstance(i, dict) and "repeat" not in i for i in items):
                items = [i if "name" in i else {**i, "name": self.unique("n")} for i in items]
                branches.append({"name": None, "layers": items})
            elif style == "named":
                branches.append({"name": f"branch{b + 1}", "layers": items})
            else:
                branches.append(items)
        merge = self.draw(st.sampled_from(["add", "mul"])) if add else "concat"
        spec: dict[str, Any] = {"branches": branches, "merge": merge}
        if split is not None:
            spec["split"] = split
        if keep is None and self.draw(st.booleans()):
            spec["after"] = ["relu"]
        return {"parallel": spec}, (parts[0] if add else (channels, *shape[1:]))

    def block(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        """A block whose conv width is an argument (or a var), called once, or repeated when
        it keeps the shape."""
        name = f"block{len(self.blocks)}"
        self.blocks[name] = None  # taken, before its body (which may define blocks) is drawn
        width = self.draw(st.integers(1, 5))
        rank = len(shape) - 1
        conv = {f"conv{rank}d": {"name": "conv", "out_channels": "$width", "kernel_size": "$k",
                                 "padding": "$(k // 2)"}}
        use_var = self.draw(st.booleans())
        if use_var:
            self.vars[f"w{len(self.vars)}"] = width
        body_kind = self.draw(st.sampled_from(["layers", "residual"]))
        floor, self.floor = self.floor, len(self.scopes)
        tail, out = self.items((width, *shape[1:]), depth + 1, "spatial")
        self.floor = floor
        flag = {"relu": {"name": "act", "when": "$act"}}
        counted = {"identity": None, "repeat": "$n"}  # a count given by an argument
        if self.draw(st.booleans()):
            counted["name"] = "acts"  # one copy is the item itself, more are a group
        tail = [counted, *tail]
        if body_kind == "layers":
            self.blocks[name] = {"args": {"width": None, "k": 1, "act": True, "n": 1},
                                 "layers": [conv, flag, *tail]}
            after = out
        else:
            fix = {f"conv{rank}d": {"out_channels": shape[0], "kernel_size": 1}}
            body = {"body": [conv, flag, *tail, fix], "after": ["relu"]}
            if self.draw(st.booleans()):
                body["skip"] = "$act"  # without the activation, without the shortcut
            self.blocks[name] = {"args": {"width": None, "k": 1, "act": True, "n": 1}, "residual": body}
            after = shape
        call: dict[str, Any] = {"width": f"${list(self.vars)[-1]}" if use_var else width,
                                "k": self.draw(st.sampled_from([1, 3])), "act": self.draw(st.booleans()),
                                "n": self.draw(st.integers(0, 2))}
        if after == shape and keep != "all" or after == shape:
            repeat = self.draw(st.integers(0, 2))
            if repeat != 1 or self.draw(st.booleans()):
                call["repeat"] = repeat
                if self.draw(st.booleans()):
                    call["name"] = f"{self.unique('unit')}_$i"
                    call["repeat"] = {"count": repeat, "index": "i"}
        if keep == "all" and after != shape:
            return self.layer(shape, keep)
        return {name: call}, after


@st.composite
def specs(draw: Any) -> str:
    rank = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 4)), *(draw(st.integers(4, 9 if rank < 3 else 5)) for _ in range(rank)))
    gen = Gen(draw)
    layers, _ = gen.items(shape, 0, count=draw(st.integers(1, 5)))
    spec: dict[str, Any] = {"name": "drawn", "input": list(shape)}
    named = sorted(gen.last_scope)
    if named and draw(st.booleans()):  # several outputs, or one that is not the last item
        spec["outputs"] = draw(st.lists(st.sampled_from(named), min_size=1, max_size=3, unique=True))
    if gen.vars:
        spec["vars"] = gen.vars
    if gen.blocks:
        spec["blocks"] = gen.blocks
    spec["layers"] = layers
    return yaml.safe_dump(spec, sort_keys=False)


def parsed(text: str) -> Any:
    try:
        network = parse_text(text, "drawn.yaml")
        return network, analyze(network)
    except SpecError:
        assume(False)
        raise


RUFF = shutil.which("ruff")


def exported_network(network: Any, report: Any, tmp_path: Any) -> Any:
    source = export(network, report, "pytorch", "drawn.yaml")
    if RUFF is not None:  # readable: PEP 8 and ruff-clean, as every exported file
        lint = subprocess.run([RUFF, "check", "--isolated", "--select", "E,W,F,I,B,UP,SIM,N", "--output-format",
                               "concise", "-", "--stdin-filename", "drawn.py"], input=source, capture_output=True,
                              text=True)
        assert lint.returncode == 0, lint.stdout
    path = tmp_path / f"drawn_{abs(hash(source))}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[path.stem]
    return module.Network()


@SETTINGS
@given(specs(), st.integers(0, 2**16))
def test_built_and_exported_modules_are_what_convcalc_reports(tmp_path_factory, text, seed):
    network, report = parsed(text)
    torch.manual_seed(seed)
    built = modules_of(network, report).eval()
    check_against_report(built, network, report)
    try:
        exported = exported_network(network, report, tmp_path_factory.mktemp("export")).eval()
    except ExportError as err:  # documented: a size inside a block nothing in this network uses
        assert "never uses" in str(err), err
        assume(False)
    assert list(exported.state_dict()) == list(built.state_dict()), text
    exported.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *network.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), built(x), rtol=0, atol=0)


@SETTINGS
@given(specs(), st.integers(0, 2**16))
def test_numpy_forward_with_the_built_weights_equals_the_module(text, seed):
    from convcalc.numeric.runner import input_array, run_outputs

    network, report = parsed(text)
    torch.manual_seed(seed)
    model = modules_of(network, report).double().eval()
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.add_(torch.rand_like(value) * 0.1)
    params: dict[str, dict[str, np.ndarray]] = {}
    for key, value in [*model.named_parameters(), *model.named_buffers()]:  # a layer scale's `gamma` too
        path, _, name = key.rpartition(".")
        if name != "num_batches_tracked":
            params.setdefault(path, {})[name] = value.detach().numpy()
    x = input_array(network.input_shape, 2, seed=seed, dtype="float64")
    with np.errstate(all="ignore"):
        got = run_outputs(network, x, lambda step: None, params=params)
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    expected = [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]
    assume(all(np.isfinite(e).all() for e in expected))
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(e).max())))


@SETTINGS
@given(specs(), st.integers(0, 2**16))
def test_receptive_field_is_the_float64_gradients_support(text, seed):
    network, report = parsed(text)
    assume(any(r.field is not None and r.axes is not None and len(r.output_shape) > 1 for r in report.rows))
    torch.manual_seed(seed)
    check_fields(network, report, modules_of(network, report))
