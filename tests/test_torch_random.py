"""Random specs drawn by hypothesis, built with `convcalc.torch.build` and exported with
`convcalc export --to pytorch`, checked against convcalc's own report.

The specs have branches (residual with add or concat, parallel, empty branches, shortcuts,
`after` layers), blocks with arguments used in expressions (vars too), `repeat` with `$i` in
names and arguments, `when`, and every layer type with arguments drawn from its own
declaration. The generator follows the shape with each layer type's `infer`, so most drawn
specs are valid. For each: parameter and buffer counts, output shape and every layer's output
shape (forward hooks) equal the report; the exported file imports, has the same state_dict
keys and the same output; the NumPy forward with the module's weights equals the module's
forward to 1e-6 (float64); and the receptive field is the support of a float64 gradient.
"""

from __future__ import annotations

import importlib.util
import os
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
        raise AssertionError(f"no strategy for {name} ({type(kind).__name__})")

    def layer(self, shape: tuple[int, ...], keep: str | None) -> tuple[Any, tuple[int, ...]]:
        """A layer of any type that fits `shape` (and keeps all of it, or its spatial sizes)."""
        rank = len(shape) - 1
        fitting = [n for n in LAYER_TYPES if REGISTRY[n].rank in (None, rank)]
        for _ in range(6):
            name = self.draw(st.sampled_from(fitting))
            lt = REGISTRY[name]
            raw = {a.name: self.arg(a.name, a.kind, shape, max(rank, 1)) for a in lt.args
                   if a.name not in INFERRED and (a.required or self.draw(st.booleans()))}
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
        for _ in range(count if count is not None else self.draw(st.integers(1, 3))):
            item, shape = self.item(shape, depth, keep)
            out.append(item)
        if keep == "all" and shape != start:  # back to the channels a residual add needs
            out.append({"conv2d" if len(shape) == 3 else f"conv{len(shape) - 1}d" if len(shape) > 1 else "linear":
                        {"out_channels": start[0], "kernel_size": 1} if len(shape) > 1
                        else {"out_features": start[0]}})
            shape = start
        return out, shape

    def item(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        kinds = ["layer"] * 4
        if depth < 3 and len(shape) > 1:
            kinds += ["residual", "parallel", "sequential", "block", "repeat", "when"]
        kind = self.draw(st.sampled_from(kinds))
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
            conv = {f"conv{len(shape) - 1}d": {"out_channels": "$(i + 1)", "kernel_size": 1}, "repeat": count}
            if self.draw(st.booleans()):
                conv["name"] = f"{self.unique('grow')}_$i"
            return conv, (count, *shape[1:])
        if kind == "repeat":
            layer, out = self.layer(shape, "all")
            if not isinstance(layer, dict):
                layer = {layer: None}
            (head, args), = layer.items()
            copy = {head: dict(args or {}), "repeat": self.draw(st.integers(0, 3))}
            if head == "leakyrelu":
                copy[head]["negative_slope"] = "$(0.1 * i)"
            naming = self.draw(st.sampled_from([None, "group", "copy$i", "r$(i + 1)"]))
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
        spec: dict[str, Any] = {"body": body}
        if concat:
            spec["merge"] = "concat"
            out = (shape[0] + out[0], *shape[1:])
        if self.draw(st.booleans()):
            spec["shortcut"] = [{f"conv{len(shape) - 1}d": {"out_channels": shape[0], "kernel_size": 1}}]
            spec["shortcut_name"] = self.draw(st.sampled_from(["shortcut", "downsample", "proj"]))
        if keep is None and self.draw(st.booleans()):
            spec["after"] = ["relu"]
        item: dict[str, Any] = {"residual": spec}
        if set(spec) == {"body"} and self.draw(st.booleans()):
            item = {"residual": body}  # the short form: a body and the identity
        if self.draw(st.booleans()):
            item["name"] = self.unique("res")
        return item, out

    def parallel(self, shape: tuple[int, ...], depth: int, keep: str | None) -> tuple[Any, tuple[int, ...]]:
        add = keep == "all" or self.draw(st.booleans())
        branches, channels = [], 0
        for b in range(self.draw(st.integers(2, 3))):
            if self.draw(st.integers(0, 3)) == 0:
                items, out = [], shape
            else:
                items, out = self.items(shape, depth + 1, "all" if add else "spatial")
            channels += out[0]
            branches.append({"name": f"branch{b + 1}", "layers": items} if self.draw(st.booleans()) else items)
        spec: dict[str, Any] = {"branches": branches, "merge": "add" if add else "concat"}
        if keep is None and self.draw(st.booleans()):
            spec["after"] = ["relu"]
        return {"parallel": spec}, (shape if add else (channels, *shape[1:]))

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
        tail, out = self.items((width, *shape[1:]), depth + 1, "spatial")
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
            self.blocks[name] = {"args": {"width": None, "k": 1, "act": True, "n": 1},
                                 "residual": {"body": [conv, flag, *tail, fix], "after": ["relu"]}}
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


def exported_network(network: Any, report: Any, tmp_path: Any) -> Any:
    source = export(network, report, "pytorch", "drawn.yaml")
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
    from convcalc.numeric.runner import input_array, run

    network, report = parsed(text)
    torch.manual_seed(seed)
    model = modules_of(network, report).double().eval()
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.dtype.is_floating_point:
                value.add_(torch.rand_like(value) * 0.1)
    params: dict[str, dict[str, np.ndarray]] = {}
    for key, value in model.state_dict().items():
        path, _, name = key.rpartition(".")
        if name != "num_batches_tracked":
            params.setdefault(path, {})[name] = value.numpy()
    x = input_array(network.input_shape, 2, seed=seed, dtype="float64")
    with np.errstate(all="ignore"):
        got = run(network, x, lambda step: None, params=params)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assume(np.isfinite(expected).all())
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(expected).max())))


@SETTINGS
@given(specs(), st.integers(0, 2**16))
def test_receptive_field_is_the_float64_gradients_support(text, seed):
    network, report = parsed(text)
    assume(any(r.field is not None and r.axes is not None and len(r.output_shape) > 1 for r in report.rows))
    torch.manual_seed(seed)
    check_fields(network, report, modules_of(network, report))
