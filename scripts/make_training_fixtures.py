"""Generate the training-memory fixtures: what PyTorch's autograd keeps for backward.

    python3 scripts/make_training_fixtures.py   # writes tests/fixtures/training/training.json

Needs `pip install torch==2.13.0` (CPU); convcalc never imports torch. For every case (small
sequential specs covering every layer type, in-place variants included; small graphs with
fan-out, standalone merges, several outputs and crops; and the example models of
scripts/make_torch_models.py) the model runs one forward pass in training mode, batch 2,
float32, under `torch.autograd.graph.saved_tensors_hooks`; the fixture records:

- saved_bytes: the bytes of every tensor autograd saved, each storage counted once, leaving
  out parameters and buffers (they are counted as weights, not activations);
- amp_saved_bytes: the same under `torch.autocast("cpu", dtype=torch.bfloat16)` (mixed
  precision: fp32 weights and input; the bfloat16 casts of inputs and weights that conv,
  linear and PReLU save count, being new storages);
- params: sum of numel over parameters (gradients are that many elements);
- sgd_momentum_state and adam_state: elements of the optimizer state after one step
  (momentum_buffer; exp_avg + exp_avg_sq, leaving out Adam's scalar step counters).

The sequential cases are built from torch.nn directly. The graph cases are built the way
tests/torch_oracle.py runs any graph (`torch_network`: convcalc's graph for the wiring, one
torch.nn module per layer, `a * b * c` and `torch.cat` for merges, torchvision's CenterCrop);
what autograd keeps is PyTorch's own either way. Run with convcalc importable
(`PYTHONPATH=src`).

tests/test_training.py compares convcalc's `training_memory` with these numbers, and with
this module live when torch is importable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "training" / "training.json"
BATCH = 2

# Small stacks that together use every layer type (names and arguments as in a spec).
CASES: dict[str, tuple[list[int], list[Any]]] = {
    "conv_bn_relu": ([3, 12, 12], [
        {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False}},
        "batchnorm2d", "relu",
        {"conv2d": {"out_channels": 8, "kernel_size": 3, "stride": 2}}, "relu",
        {"maxpool2d": {"kernel_size": 2}}, {"adaptiveavgpool2d": {"output_size": 1}},
        "flatten", {"linear": {"out_features": 5}}, "softmax"]),
    "inplace_activations": ([4, 8, 8], [
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"relu": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"relu6": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"leakyrelu": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"elu": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"silu": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"hardswish": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"hardsigmoid": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"hardtanh": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"mish": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"dropout": {"inplace": True}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}]),
    "activations": ([4, 6, 6], [
        "relu6", "leakyrelu", "prelu", "elu", "gelu", "silu", "mish", "softplus", "sigmoid",
        "tanh", "hardswish", "hardsigmoid", "hardtanh", "logsoftmax", "identity", "relu"]),
    "norms_and_dropout": ([4, 6, 6], [
        {"conv2d": {"out_channels": 6, "kernel_size": 3}}, "instancenorm2d",
        {"instancenorm2d": {"affine": True}}, {"groupnorm": {"num_groups": 3}},
        {"layernorm": {"normalized_shape": [4, 4]}}, "layernorm",
        {"localresponsenorm": {"size": 3}}, "dropout", "dropout2d", "alphadropout",
        "featurealphadropout", {"conv2d": {"out_channels": 2, "kernel_size": 1}}]),
    "pools_and_resampling": ([4, 8, 8], [
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"avgpool2d": {"kernel_size": 2}}, {"upsample": {"scale_factor": 2}},
        {"upsample": {"scale_factor": 2, "mode": "bilinear"}}, {"upsamplingnearest2d": {"size": 8}},
        {"upsamplingbilinear2d": {"size": 10}}, {"adaptivemaxpool2d": {"output_size": 4}},
        {"adaptiveavgpool2d": {"output_size": 3}}, {"pixelshuffle": {"upscale_factor": 2}},
        {"pixelunshuffle": {"downscale_factor": 2}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}]),
    "padding_layers": ([4, 6, 6], [
        {"zeropad2d": {"padding": 1}}, {"conv2d": {"out_channels": 4, "kernel_size": 1}},
        {"constantpad2d": {"padding": 1, "value": 0.5}}, {"reflectionpad2d": {"padding": 1}},
        {"replicationpad2d": {"padding": [1, 0, 2, 1]}}, {"circularpad2d": {"padding": 1}},
        {"conv2d": {"out_channels": 2, "kernel_size": 3}}]),
    "one_d_and_three_d": ([4, 16], [
        {"conv1d": {"out_channels": 4, "kernel_size": 3}}, "batchnorm1d", "instancenorm1d",
        {"maxpool1d": {"kernel_size": 2}}, {"avgpool1d": {"kernel_size": 2}}, "dropout1d",
        {"convtranspose1d": {"out_channels": 4, "kernel_size": 4, "stride": 2}},
        {"adaptivemaxpool1d": {"output_size": 3}}, {"adaptiveavgpool1d": {"output_size": 1}},
        "flatten", {"linear": {"out_features": 3}}, "batchnorm1d", "tanh"]),
    "three_d": ([2, 6, 6, 6], [
        {"conv3d": {"out_channels": 4, "kernel_size": 3}}, "batchnorm3d", "instancenorm3d",
        "dropout3d", {"maxpool3d": {"kernel_size": 2}},
        {"convtranspose3d": {"out_channels": 2, "kernel_size": 2, "stride": 2}},
        {"avgpool3d": {"kernel_size": 2}}, {"adaptivemaxpool3d": {"output_size": 1}},
        {"adaptiveavgpool3d": {"output_size": 1}}, {"zeropad3d": {"padding": 1}},
        {"constantpad3d": {"padding": 1, "value": 0}}, {"replicationpad3d": {"padding": 1}},
        {"reflectionpad3d": {"padding": 1}}, {"circularpad3d": {"padding": 1}},
        {"conv3d": {"out_channels": 2, "kernel_size": 1}}]),
    "one_d_pads": ([3, 10], [
        {"zeropad1d": {"padding": 1}}, {"constantpad1d": {"padding": [1, 2], "value": 1}},
        {"reflectionpad1d": {"padding": 2}}, {"replicationpad1d": {"padding": 1}},
        {"circularpad1d": {"padding": 1}}, {"convtranspose1d": {"out_channels": 2, "kernel_size": 3}},
        {"softmax": {"dim": 2}}]),
    "transposed_2d": ([8, 5, 5], [
        {"convtranspose2d": {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                             "output_padding": 1}}, "batchnorm2d", {"relu": {"inplace": True}},
        {"convtranspose2d": {"out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1}}, "tanh"]),
    "modern_blocks": ([6, 5, 5], [
        {"conv2d": {"out_channels": 6, "kernel_size": 1}}, {"channelshuffle": {"groups": 3}},
        {"narrow": {"start": 1, "length": 4}}, {"layerscale": {"init_values": 0.1}},
        {"stochasticdepth": {"p": 0.2, "mode": "row"}}, {"stochasticdepth": {"p": 0.2, "mode": "batch"}},
        {"permute": {"dims": [0, 2, 3, 1]}}, {"linear": {"out_features": 3}},
        {"permute": {"dims": [0, 3, 1, 2]}}, {"conv2d": {"out_channels": 2, "kernel_size": 1}}]),
    "raw_input_blocks": ([4, 5, 5], [
        {"layerscale": {"init_values": 0.5}}, {"permute": {"dims": [0, 2, 3, 1]}},
        {"permute": {"dims": [0, 3, 1, 2]}}, {"stochasticdepth": {"p": 0.0, "mode": "row"}}]),
    "channels_first_layernorm": ([4, 6, 6], [
        {"conv2d": {"out_channels": 6, "kernel_size": 2, "stride": 2}}, {"layernorm2d": {"eps": 1e-6}},
        {"conv2d": {"out_channels": 4, "kernel_size": 1}}, {"layernorm2d": {"bias": False}},
        {"narrow": {"split": 2, "index": 1}}, {"conv2d": {"out_channels": 2, "kernel_size": 1}}]),
}

# Graphs (written as specs; no in-place layers, which the graph runner does not model):
# the tensor a layer keeps is often read by several layers, and merges keep what torch keeps.
GRAPH_CASES: dict[str, str] = {
    # squeeze-and-excitation: a global gate (C x 1 x 1) multiplies the features it was pooled from
    "se_gate": """
input: [4, 8, 8]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - relu: {name: x}
  - adaptiveavgpool2d: {output_size: 1}
  - conv2d: {out_channels: 2, kernel_size: 1}
  - relu
  - conv2d: {out_channels: 8, kernel_size: 1}
  - sigmoid: {name: gate}
  - mul: {from: [x, gate]}
  - conv2d: {out_channels: 4, kernel_size: 1}
""",
    # standalone broadcasting products: three factors of different shapes (a * b is a new
    # tensor), a factor that needs no gradient (the input), a tensor times itself
    "broadcast_mul": """
input: [4, 6, 6]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1, name: a}
  - adaptiveavgpool2d: {output_size: [6, 1], name: rows}
  - conv2d: {from: a, out_channels: 1, kernel_size: 1, name: plane}
  - mul: {from: [a, rows, plane], name: abc}
  - mul: {from: [input, abc], name: masked}
  - mul: {from: [masked, masked], name: square}
  - tanh: {from: a, name: t}
  - mul: {from: [rows, t], name: gated}
  - concat: {from: [square, gated]}
  - conv2d: {out_channels: 2, kernel_size: 1}
""",
    # centre crops (a view of their input, of the padded input when they pad), to a size and
    # to another output's size; a tensor read by several layers; several outputs; F.pad crops
    "crops_and_fanout": """
input: [3, 12, 11]
outputs: [head, side, tail]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, name: c1}
  - relu: {name: r1}
  - conv2d: {out_channels: 4, kernel_size: 3, name: c2}
  - conv2d: {from: r1, out_channels: 4, kernel_size: 3, name: c3}
  - centercrop: {from: r1, size_of: c2, name: crop}
  - concat: {from: [crop, c2, c3], name: cat}
  - add: {from: [crop, c2, c3], name: sum}
  - conv2d: {from: sum, out_channels: 2, kernel_size: 1, name: head}
  - centercrop: {from: c3, size: [12, 6], name: grow}
  - conv2d: {out_channels: 2, kernel_size: 1, name: side}
  - centercrop: {from: input, size: 5}
  - conv2d: {out_channels: 2, kernel_size: 3, padding: 1}
  - zeropad2d: {padding: [-1, 0, 0, -1]}
  - upsample: {size_of: cat, mode: bilinear}
  - concat: {from: [cat, 13]}
  - conv2d: {out_channels: 2, kernel_size: 1, name: tail}
""",
    # SE gates written as parallel: {merge: mul} (issue #10): [C, 1, 1] times [C, H, W]
    "se_gate_parallel": json.dumps({"input": [4, 6, 6], "layers": [
        {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
        {"parallel": {"merge": "mul", "branches": [[], [
            {"adaptiveavgpool2d": {"output_size": 1}}, {"conv2d": {"out_channels": 2, "kernel_size": 1}},
            "relu", {"conv2d": {"out_channels": 8, "kernel_size": 1}}, "sigmoid"]]}},
        {"parallel": {"merge": "mul", "branches": [
            [{"conv2d": {"out_channels": 8, "kernel_size": 1}}], [{"adaptiveavgpool2d": {"output_size": 1}}]]}},
        {"conv2d": {"out_channels": 2, "kernel_size": 1}}]}),
    "gate_on_raw_input": json.dumps({"input": [4, 6, 6], "layers": [
        {"parallel": {"merge": "mul", "branches": [[], [
            {"adaptiveavgpool2d": {"output_size": 1}}, {"conv2d": {"out_channels": 4, "kernel_size": 1}},
            "sigmoid"]]}}]}),
}


ORACLE_ONLY = ("channelshuffle", "permute", "narrow", "layerscale", "stochasticdepth", "layernorm2d")


def torch_module(kind: str, args: dict[str, Any], shape: list[int]) -> Any:
    """The torch.nn module for one spec item on an input of `shape` (no batch)."""
    from torch import nn

    if kind in ORACLE_ONLY:  # torchvision's and timm's modules, as tests/torch_oracle.py writes them
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from convcalc.layers import REGISTRY
        from torch_oracle import torch_layer

        lt = REGISTRY[kind]
        return torch_layer(lt, lt.parse_args(args), tuple(shape))[0]

    classes = {name.lower(): cls for name, cls in vars(nn).items() if isinstance(cls, type)}
    args = {k: v for k, v in args.items() if v is not None}
    for key in ("kernel_size", "stride", "padding", "dilation", "output_padding", "output_size",
                "normalized_shape"):
        if isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    c = shape[0]
    if kind.startswith(("conv", "convtranspose")) and kind[-2].isdigit():
        return classes[kind](c, **args)
    if kind.startswith(("batchnorm", "instancenorm")):
        return classes[kind](c, **args)
    if kind == "linear":
        return nn.Linear(shape[-1], **args)
    if kind == "layernorm":
        return nn.LayerNorm(args.pop("normalized_shape", shape[-1]), **args)
    if kind in ("softmax", "logsoftmax"):
        args.setdefault("dim", 1)  # convcalc's default; torch's implicit choice is deprecated
    if kind == "groupnorm":
        return nn.GroupNorm(args.pop("num_groups"), c, **args)
    return classes[kind](**args)


def sequential(shape: list[int], items: list[Any]) -> Any:
    import torch
    from torch import nn

    modules, x = [], torch.zeros(1, *shape)
    for item in items:
        kind, args = (item, {}) if isinstance(item, str) else next(iter(item.items()))
        module = torch_module(kind, dict(args), list(x.shape[1:]))
        with torch.no_grad():
            x = module.eval()(x)
        modules.append(module)
    return nn.Sequential(*modules)


def graph(text: str) -> Any:
    """A spec's graph as torch.nn modules (tests/torch_oracle.py's TorchGraph)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from convcalc.analysis import analyze
    from convcalc.spec.parser import parse_text
    from torch_oracle import convcalc_params, torch_network  # type: ignore[import-not-found]  # tests/ on sys.path

    network = parse_text(text, "case.yaml")
    if any(node.args.get("inplace") for node in network.graph.nodes):
        raise SystemExit("the graph runner does not run layers in place: leave out inplace")
    report = analyze(network, batch_size=BATCH)
    return torch_network(network, report, convcalc_params(network, report, seed=0))


def outputs(value: Any) -> list[Any]:
    """A model's outputs as a list (one tensor, a tuple or list, or a dict of them)."""
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (tuple, list)) else [value]


def saved_bytes(model: Any, shape: list[int], amp: str | None = None) -> tuple[int, Any]:
    """Bytes autograd saves in one forward pass (each storage once, weights left out), and the output.

    `amp` ("bfloat16" or "float16") runs the pass under CPU autocast, as mixed precision does:
    fp32 weights and input, low-precision casts where autocast makes them. The casts of the
    weights that conv, linear and PReLU save are new storages, so they count.
    """
    import contextlib

    import torch

    torch.manual_seed(0)
    model.train()
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    autocast = torch.autocast("cpu", dtype=getattr(torch, amp)) if amp else contextlib.nullcontext()
    with autocast, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output = model(torch.randn(BATCH, *shape))
    return sum(saved.values()), output


def measure(model: Any, shape: list[int]) -> dict[str, int]:
    import torch

    amp_saved, _ = saved_bytes(model, shape, "bfloat16")
    model.zero_grad(set_to_none=True)
    fp32_saved, output = saved_bytes(model, shape)
    sum(out.float().sum() for out in outputs(output)).backward()
    states = {}
    for name, make in (("sgd_momentum_state", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
                       ("adam_state", lambda p: torch.optim.Adam(p))):
        optimizer = make(model.parameters())
        optimizer.step()
        states[name] = sum(v.numel() for s in optimizer.state.values() for k, v in s.items()
                           if k != "step")
    return {"saved_bytes": fp32_saved, "amp_saved_bytes": amp_saved,
            "params": sum(p.numel() for p in model.parameters()), **states}


def main() -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_torch_models import MODELS

    torch.set_num_threads(1)
    cases = []
    for name, (shape, items) in CASES.items():
        cases.append({"name": name, "spec": {"input": shape, "layers": items}, "batch_size": BATCH,
                      **measure(sequential(shape, items), shape)})
    for name, text in GRAPH_CASES.items():
        spec = yaml.safe_load(text)
        cases.append({"name": name, "spec": spec, "batch_size": BATCH,
                      **measure(graph(text), spec["input"])})
    for name, (build, shape) in MODELS.items():
        if not (ROOT / "examples" / f"{name}.yaml").exists():
            continue  # a torch model whose example spec is not written yet
        torch.manual_seed(0)
        cases.append({"name": name, "example": f"examples/{name}.yaml", "batch_size": BATCH,
                      **measure(build(), list(shape))})
        print(name, cases[-1]["saved_bytes"], file=sys.stderr)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n ".join(json.dumps(c) for c in cases)
    FIXTURE.write_text(json.dumps({"generated_by": f"scripts/make_training_fixtures.py with torch"
                                   f" {torch.__version__.split('+')[0]}", "dtype": "float32"})[:-1]
                       + ',\n "cases": [\n ' + lines + "\n ]\n}\n")
    print(FIXTURE)


if __name__ == "__main__":
    main()
