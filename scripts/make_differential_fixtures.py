"""Generate the PyTorch differential fixtures: random layers and stacks, measured by torch.

    python3 scripts/make_differential_fixtures.py            # writes tests/fixtures/differential/
    python3 scripts/make_differential_fixtures.py --check    # draws fresh cases, prints them

Needs `pip install torch==2.13.0` (CPU). convcalc never imports torch; this script is the
oracle. Each case is a convcalc spec (torch.nn argument names) plus what torch says:

- output shapes come from running the module on a zero tensor (batch 1) and, for stacks,
  from forward hooks on every leaf and merge, keyed by the module path convcalc gives it;
- params = sum(p.numel()), buffers = sum(b.numel()) (BatchNorm's num_batches_tracked too);
- torch has no MAC counter, so MACs are computed here from each module's attributes and
  the *measured* shapes (CONVENTIONS.md): conv = out positions x C_out x C_in/g x prod(k),
  transposed conv = input positions x C_in x C_out/g x prod(k), linear = positions x in x out;
- when torch refuses the configuration (constructor or forward raises), the case records
  `error` with torch's message, and convcalc must refuse it too.

Conventions the oracle had to fix (documented in docs/errors.md):
- conv padding given as [before, after] pairs is run as ZeroPad + conv(padding=0), the
  TensorFlow-style asymmetric padding convcalc accepts and torch's conv does not;
- `add` requires equal shapes (no broadcasting), as CONVENTIONS.md says; torch would
  broadcast [C, 1, 1] + [C, H, W], the oracle refuses it like convcalc.

The generator functions are also imported by tests/test_differential.py for live draws.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "differential"
SINGLE_COUNT = 12_000
STACK_COUNT = 600
SEED = 20261123

# Spatial sizes per rank, small enough that the forward pass is instant.
MAX_SIZE = {1: 40, 2: 20, 3: 9}


# --- random draws (plain Python, no torch) ----------------------------------------------


def per_axis(rng: random.Random, rank: int, lo: int, hi: int) -> Any:
    """An int, or (sometimes) a list with one, possibly different, value per axis."""
    if rng.random() < 0.5:
        return rng.randint(lo, hi)
    return [rng.randint(lo, hi) for _ in range(rank)]


def draw_input(rng: random.Random, rank: int, channels: int) -> list[int]:
    top = MAX_SIZE[rank]
    return [channels, *(rng.randint(1, top) if rng.random() < 0.15 else rng.randint(3, top)
                        for _ in range(rank))]


def draw_conv(rng: random.Random, rank: int) -> tuple[dict[str, Any], int]:
    """Conv args (convcalc/torch names) and an input channel count."""
    style = rng.random()
    if style < 0.2:  # depthwise, with a channel multiplier
        c_in = rng.randint(1, 6)
        groups, c_out = c_in, c_in * rng.randint(1, 3)
    else:
        groups = rng.choice([1, 1, 1, 2, 3, 4])
        c_in = groups * rng.randint(1, 3)
        c_out = groups * rng.randint(1, 3)
        if rng.random() < 0.05:  # groups that do not divide: both must refuse
            c_in += 1
    args: dict[str, Any] = {"out_channels": c_out, "kernel_size": per_axis(rng, rank, 1, 5)}
    if groups != 1 or rng.random() < 0.3:
        args["groups"] = groups
    if rng.random() < 0.6:
        args["stride"] = per_axis(rng, rank, 1, 3)
    if rng.random() < 0.4:
        args["dilation"] = per_axis(rng, rank, 1, 3)
    pad = rng.random()
    if pad < 0.15:
        args["padding"] = "same"
    elif pad < 0.25:
        args["padding"] = "valid"
    elif pad < 0.4:
        args["padding"] = [[rng.randint(0, 3), rng.randint(0, 3)] for _ in range(rank)]
    elif pad < 0.85:
        args["padding"] = per_axis(rng, rank, 0, 3)
    if rng.random() < 0.3:
        args["bias"] = False
    if rng.random() < 0.1 and not isinstance(args.get("padding"), list):
        args["padding_mode"] = rng.choice(["reflect", "replicate", "circular"])
    return args, c_in


def draw_transposed(rng: random.Random, rank: int) -> tuple[dict[str, Any], int]:
    groups = rng.choice([1, 1, 1, 2, 3])
    c_in, c_out = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
    args: dict[str, Any] = {"out_channels": c_out, "kernel_size": per_axis(rng, rank, 1, 5)}
    if groups != 1:
        args["groups"] = groups
    if rng.random() < 0.8:
        args["stride"] = per_axis(rng, rank, 1, 3)
    if rng.random() < 0.3:
        args["dilation"] = per_axis(rng, rank, 1, 3)
    if rng.random() < 0.6:
        args["padding"] = per_axis(rng, rank, 0, 3)
    if rng.random() < 0.4:
        args["output_padding"] = per_axis(rng, rank, 0, 2)
    if rng.random() < 0.3:
        args["bias"] = False
    return args, c_in


def draw_pool(rng: random.Random, rank: int, kind: str) -> tuple[dict[str, Any], int]:
    args: dict[str, Any] = {"kernel_size": per_axis(rng, rank, 1, 5)}
    if rng.random() < 0.6:
        args["stride"] = per_axis(rng, rank, 1, 3)
    if rng.random() < 0.6:
        args["padding"] = per_axis(rng, rank, 0, 2)
    if rng.random() < 0.4:
        args["ceil_mode"] = True
    if kind == "max" and rng.random() < 0.4:
        args["dilation"] = per_axis(rng, rank, 1, 3)
    if kind == "avg" and rng.random() < 0.3:
        args["count_include_pad"] = False
    if kind == "avg" and rank > 1 and rng.random() < 0.1:
        args["divisor_override"] = rng.randint(1, 5)
    return args, rng.randint(1, 4)


def draw_adaptive(rng: random.Random, rank: int) -> tuple[dict[str, Any], int]:
    if rng.random() < 0.5:
        size: Any = rng.randint(1, 6)
    else:
        size = [None if rng.random() < 0.25 else rng.randint(1, 6) for _ in range(rank)]
    return {"output_size": size}, rng.randint(1, 4)


FAMILIES = ("conv", "convtranspose", "maxpool", "avgpool", "adaptiveavgpool", "adaptivemaxpool",
            "other")


def draw_other(rng: random.Random, rank: int) -> dict[str, Any]:
    """Normalisation, linear, reshaping, upsampling and padding layers."""
    c = rng.randint(1, 8)
    shape = draw_input(rng, rank, c)
    pick = rng.choice(["batchnorm", "instancenorm", "groupnorm", "layernorm", "linear", "flatten",
                       "upsample", "pixelshuffle", "pixelunshuffle", "pad", "prelu", "softmax",
                       "localresponsenorm"])
    args: dict[str, Any] = {}
    layer = pick
    if pick in ("batchnorm", "instancenorm"):
        layer = f"{pick}{rank}d"
        args = {k: rng.random() < 0.5 for k in ("affine", "track_running_stats") if rng.random() < 0.5}
    elif pick == "groupnorm":
        args = {"num_groups": rng.choice([g for g in range(1, c + 1) if c % g == 0] + [3])}
        if rng.random() < 0.3:
            args["affine"] = False
    elif pick == "layernorm":
        if rng.random() < 0.6:
            args["normalized_shape"] = shape[len(shape) - rng.randint(1, len(shape)):]
            if rng.random() < 0.1:
                args["normalized_shape"] = [rng.randint(1, 9)]
        if rng.random() < 0.3:
            args["elementwise_affine"] = False
        if rng.random() < 0.3:
            args["bias"] = False
    elif pick == "linear":
        args = {"out_features": rng.randint(1, 9)}
        if rng.random() < 0.3:
            args["bias"] = False
    elif pick == "flatten":
        args = {"start_dim": draw_dim(rng, shape), "end_dim": draw_dim(rng, shape)}
    elif pick == "upsample":
        modes = ["nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[rank]]
        if rank == 2:
            modes.append("bicubic")
        args = {"mode": rng.choice(modes)}
        if rng.random() < 0.5:
            args["scale_factor"] = rng.choice([2, 3, 0.5, 1.5, 2.5, 0.75]) if rng.random() < 0.6 else [
                rng.choice([1, 2, 1.5, 0.5]) for _ in range(rank)]
        else:
            args["size"] = per_axis(rng, rank, 1, 30)
        if args["mode"] not in ("nearest", "nearest-exact") and rng.random() < 0.5:
            args["align_corners"] = rng.random() < 0.5
    elif pick in ("pixelshuffle", "pixelunshuffle"):
        r = rng.randint(1, 3)
        shape = [c * (r * r if pick == "pixelshuffle" and rng.random() < 0.9 else 1),
                 *(rng.randint(1, 6) * (r if pick == "pixelunshuffle" and rng.random() < 0.9 else 1)
                   for _ in range(2))]
        args = {"upscale_factor" if pick == "pixelshuffle" else "downscale_factor": r}
    elif pick == "pad":
        mode = rng.choice(["zero", "constant", "reflection", "replication", "circular"])
        layer = f"{mode}pad{rank}d"
        args = {"padding": rng.randint(0, 3) if rng.random() < 0.4 else [
            rng.randint(0, 3) for _ in range(2 * rank)]}
        if mode == "constant":
            args["value"] = 0.5
    elif pick == "prelu":
        args = {"num_parameters": rng.choice([1, c, c + 1])}
    elif pick == "softmax":
        args = {"dim": draw_dim(rng, shape)}
    elif pick == "localresponsenorm":
        args = {"size": rng.randint(1, 5)}
    return {"layer": layer, "args": args, "input": shape}


def draw_dim(rng: random.Random, shape: list[int]) -> int:
    """A torch dim (batch = 0) that is not the batch: convcalc's shapes leave the batch out
    and it refuses dims that touch it, by design."""
    full = len(shape) + 1
    return rng.choice([d for d in range(-full + 1, full) if d not in (0, -full)])


def draw_single(rng: random.Random) -> dict[str, Any]:
    """One random layer: {"layer": type, "args": {...}, "input": [C, *spatial]}."""
    family = rng.choices(FAMILIES, weights=(35, 20, 18, 15, 6, 6, 16))[0]
    rank = rng.choice([1, 2, 2, 3])
    if family == "other":
        return draw_other(rng, rank)
    if family == "conv":
        args, c_in = draw_conv(rng, rank)
    elif family == "convtranspose":
        args, c_in = draw_transposed(rng, rank)
    elif family in ("maxpool", "avgpool"):
        args, c_in = draw_pool(rng, rank, family[:3])
    else:
        args, c_in = draw_adaptive(rng, rank)
    return {"layer": f"{family}{rank}d", "args": args, "input": draw_input(rng, rank, c_in)}


def single_spec(case: dict[str, Any]) -> dict[str, Any]:
    return {"input": case["input"], "layers": [{case["layer"]: case["args"]}]}


def draw_stack(rng: random.Random) -> dict[str, Any]:
    """A random spec with several layers, residual adds and concat branches."""
    rank = rng.choice([1, 2, 2, 2, 3])
    d = f"{rank}d"
    top = {1: 48, 2: 24, 3: 10}[rank]
    channels = rng.randint(1, 6)
    shape = [channels, *(rng.randint(max(4, top // 3), top) for _ in range(rank))]
    width = [channels]  # the channel count so far, so most residuals line up

    def conv(same: bool = False, c_out: int | None = None) -> dict[str, Any]:
        k = rng.choice([1, 3, 3, 5])
        args: dict[str, Any] = {"out_channels": c_out or rng.randint(1, 8), "kernel_size": k}
        width[0] = args["out_channels"]
        if same:
            args["padding"] = rng.choice(["same", k // 2])
        else:
            args["padding"] = rng.randint(0, 2)
            args["stride"] = rng.choice([1, 1, 2])
        if rng.random() < 0.4:
            args["bias"] = False
        return {f"conv{d}": args}

    def simple() -> dict[str, Any]:
        pick = rng.random()
        if pick < 0.35:
            return conv()
        if pick < 0.5:
            return {f"batchnorm{d}": None}
        if pick < 0.6:
            return {"relu": None}
        if pick < 0.7:
            return {f"maxpool{d}": {"kernel_size": 2, "stride": 2,
                                    "ceil_mode": rng.random() < 0.5}}
        if pick < 0.77:
            return {f"avgpool{d}": {"kernel_size": 3, "stride": 2, "padding": 1}}
        if pick < 0.87:
            width[0] = rng.randint(1, 6)
            return {f"convtranspose{d}": {"out_channels": width[0], "kernel_size": 2,
                                          "stride": 2}}
        return {"upsample": {"scale_factor": 2}}

    def residual() -> dict[str, Any]:
        wide = width[0] if rng.random() < 0.9 else rng.randint(1, 8)
        body = [conv(same=True, c_out=wide), {f"batchnorm{d}": None}, {"relu": None},
                conv(same=True, c_out=wide)]
        if rng.random() < 0.5:
            stride = rng.choice([1, 2])
            body[0][f"conv{d}"]["padding"] = 1
            body[0][f"conv{d}"]["kernel_size"] = 3
            body[0][f"conv{d}"]["stride"] = stride
            shortcut = [{f"conv{d}": {"out_channels": wide, "kernel_size": 1, "stride": stride,
                                      "bias": False}}, {f"batchnorm{d}": None}]
            out: dict[str, Any] = {"body": body, "shortcut": shortcut}
        else:
            out = {"body": body}  # identity shortcut: errors when the widths differ
        if rng.random() < 0.5:
            out["after"] = [{"relu": None}]
        return {"residual": out}

    def parallel() -> dict[str, Any]:
        branches, total = [], 0
        add = rng.random() < 0.2
        wide = rng.randint(1, 8)
        for _ in range(rng.randint(2, 3)):
            branch = [conv(same=rng.random() < 0.9, c_out=wide if add else None)]
            total += width[0]
            if rng.random() < 0.4:
                branch.append({"relu": None})
            branches.append(branch)
        out: dict[str, Any] = {"branches": branches}
        if add:
            out["merge"] = "add"
        width[0] = wide if add else total
        return {"parallel": out}

    layers: list[dict[str, Any]] = []
    for _ in range(rng.randint(2, 7)):
        pick = rng.random()
        layers.append(residual() if pick < 0.2 else parallel() if pick < 0.35 else simple())
    if rng.random() < 0.5:
        layers += [{f"adaptiveavgpool{d}": {"output_size": 1}}, {"flatten": None},
                   {"linear": {"out_features": rng.randint(1, 10)}}]
    return {"input": shape, "layers": layers}


# --- the torch oracle ----------------------------------------------------------------------


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _ntuple(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value,) * rank


def make_module(kind: str, args: dict[str, Any] | None, shape: list[int]) -> Any:
    """The torch.nn module for one convcalc layer on an input of `shape` (no batch)."""
    torch = _torch()
    nn = torch.nn
    args = dict(args or {})
    rank = int(kind[-2]) if kind.endswith("d") and kind[-2].isdigit() else None
    c = shape[0]
    if kind.startswith("conv") and not kind.startswith("convtranspose"):
        padding = args.pop("padding", 0)
        pre = None
        if isinstance(padding, list) and any(isinstance(p, list) for p in padding):
            pairs = [p if isinstance(p, list) else [p, p] for p in padding]
            pre = [w for pair in reversed(pairs) for w in pair]  # F.pad: last axis first
            padding = 0
        conv = getattr(nn, f"Conv{rank}d")(c, padding=padding, **args)
        if pre is None:
            return conv
        return nn.Sequential(getattr(nn, f"ZeroPad{rank}d")(tuple(pre)), conv)
    if kind.startswith("convtranspose"):
        return getattr(nn, f"ConvTranspose{rank}d")(c, **args)
    if kind.startswith("maxpool"):
        return getattr(nn, f"MaxPool{rank}d")(**args)
    if kind.startswith("avgpool"):
        return getattr(nn, f"AvgPool{rank}d")(**args)
    if kind.startswith("adaptiveavgpool"):
        return getattr(nn, f"AdaptiveAvgPool{rank}d")(_output_size(args["output_size"], rank))
    if kind.startswith("adaptivemaxpool"):
        return getattr(nn, f"AdaptiveMaxPool{rank}d")(_output_size(args["output_size"], rank))
    if kind.startswith("batchnorm"):
        return getattr(nn, f"BatchNorm{rank}d")(c, **args)
    if kind.startswith("instancenorm"):
        return getattr(nn, f"InstanceNorm{rank}d")(c, **args)
    if kind == "groupnorm":
        return nn.GroupNorm(num_channels=c, **args)
    if kind == "layernorm":
        normalized = args.pop("normalized_shape", shape[-1:])
        return nn.LayerNorm(normalized, **args)
    if kind == "pixelshuffle":
        return nn.PixelShuffle(**args)
    if kind == "pixelunshuffle":
        return nn.PixelUnshuffle(**args)
    if "pad" in kind and kind.endswith("d") and not kind.startswith(("conv", "maxpool", "avgpool")):
        mode = kind[: kind.index("pad")]
        padding = tuple(args.pop("padding")) if isinstance(args.get("padding"), list) else args.pop("padding")
        name = {"zero": "ZeroPad", "constant": "ConstantPad", "reflection": "ReflectionPad",
                "replication": "ReplicationPad", "circular": "CircularPad"}[mode]
        return getattr(nn, f"{name}{rank}d")(padding, **args)
    if kind == "prelu":
        return nn.PReLU(**args)
    if kind == "softmax":
        return nn.Softmax(**args)
    if kind == "localresponsenorm":
        return nn.LocalResponseNorm(**args)
    if kind == "relu":
        return nn.ReLU()
    if kind == "flatten":
        return nn.Flatten(**args)
    if kind == "linear":
        return nn.Linear(shape[-1], **args)
    if kind == "upsample":
        if isinstance(args.get("scale_factor"), list):
            args["scale_factor"] = tuple(args["scale_factor"])
        if isinstance(args.get("size"), list):
            args["size"] = tuple(args["size"])
        return nn.Upsample(**args)
    raise ValueError(f"no torch oracle for {kind}")


def _output_size(value: Any, rank: int) -> Any:
    return tuple(value) if isinstance(value, list) else value


def module_macs(module: Any, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int:
    """CONVENTIONS.md MACs from the module's attributes and the measured shapes (batch 1)."""
    nn = _torch().nn
    if isinstance(module, nn.Sequential):
        conv = module[-1]
        padded = module[0](_torch().zeros(x_shape)).shape
        return module_macs(conv, tuple(padded), y_shape)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return (math.prod(y_shape[2:]) * module.out_channels
                * (module.in_channels // module.groups) * math.prod(module.kernel_size))
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return (math.prod(x_shape[2:]) * module.in_channels
                * (module.out_channels // module.groups) * math.prod(module.kernel_size))
    if isinstance(module, nn.Linear):
        return math.prod(x_shape[1:-1]) * module.in_features * module.out_features
    return 0


def counts(module: Any) -> tuple[int, int]:
    return (sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers()))


def torch_single(case: dict[str, Any]) -> dict[str, Any]:
    """What torch says about one single-layer case."""
    torch = _torch()
    try:
        module = make_module(case["layer"], case["args"], case["input"]).eval()
        x = torch.zeros((1, *case["input"]))
        with torch.no_grad():
            y = module(x)
    except (RuntimeError, ValueError, TypeError) as err:
        return {"error": str(err).splitlines()[0][:200]}
    if y.numel() == 0:  # torch returns an empty tensor; CONVENTIONS.md makes it an error
        return {"error": f"empty output {list(y.shape[1:])}"}
    params, buffers = counts(module)
    return {"output": list(y.shape[1:]), "params": params, "buffers": buffers,
            "macs": module_macs(module, tuple(x.shape), tuple(y.shape))}


class Oracle:
    """Runs a spec's layer list through torch modules, recording each row as convcalc names it."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.params = self.buffers = 0

    def items(self, items: list[Any], prefix: str, x: Any) -> Any:
        for i, item in enumerate(items):
            x = self.item(item, join(prefix, str(i)), x)
        return x

    def item(self, item: Any, path: str, x: Any) -> Any:
        kind, args = (item, None) if isinstance(item, str) else next(iter(item.items()))
        if kind == "residual":
            body = self.items(args["body"], path, x)
            short = self.items(args.get("shortcut", []), join(path, "shortcut"), x)
            try:  # torch broadcasts (a size-1 axis stretches), as convcalc's add does
                x = body + short
            except RuntimeError:
                raise ValueError(f"add needs shapes that broadcast: {tuple(body.shape)} vs"
                                 f" {tuple(short.shape)}") from None
            self.record(join(path, "add"), x, 0, 0, 0)
            after = args.get("after", [])
            for j, a in enumerate(after):
                x = self.item(a, join(path, str(len(args["body"]) + j)), x)
            return x
        if kind == "parallel":
            outs = [self.items(b, join(path, str(j)), x) for j, b in enumerate(args["branches"])]
            merge = args.get("merge", "concat")
            if merge == "add":
                try:
                    x = sum(outs[1:], outs[0])
                except RuntimeError:
                    raise ValueError("add needs shapes that broadcast") from None
            else:
                x = _torch().cat(outs, dim=1)
            self.record(join(path, merge), x, 0, 0, 0)
            return x
        module = make_module(kind, args, list(x.shape[1:])).eval()
        y = module(x)
        if y.numel() == 0:
            raise ValueError(f"{path}: empty output {list(y.shape[1:])}")
        params, buffers = counts(module)
        self.record(path, y, params, buffers, module_macs(module, tuple(x.shape), tuple(y.shape)))
        return y

    def record(self, path: str, y: Any, params: int, buffers: int, macs: int) -> None:
        self.rows[path] = {"output": list(y.shape[1:]), "params": params, "buffers": buffers,
                           "macs": macs}
        self.params += params
        self.buffers += buffers


def join(prefix: str, segment: str) -> str:
    return f"{prefix}.{segment}" if prefix else segment


def torch_stack(spec: dict[str, Any]) -> dict[str, Any]:
    """What torch says about one stack: every row, and the totals."""
    torch = _torch()
    oracle = Oracle()
    try:
        with torch.no_grad():
            y = oracle.items(spec["layers"], "", torch.zeros((1, *spec["input"])))
    except (RuntimeError, ValueError, TypeError) as err:
        return {"error": str(err).splitlines()[0][:200]}
    return {"output": list(y.shape[1:]), "params": oracle.params, "buffers": oracle.buffers,
            "macs": sum(r["macs"] for r in oracle.rows.values()), "rows": oracle.rows}


# --- writing the fixtures ---------------------------------------------------------------


def generate(seed: int, singles: int, stacks: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    single_cases = []
    for _ in range(singles):
        case = draw_single(rng)
        single_cases.append({**case, "torch": torch_single(case)})
    stack_cases = []
    for _ in range(stacks):
        spec = draw_stack(rng)
        stack_cases.append({"spec": spec, "torch": torch_stack(spec)})
    return single_cases, stack_cases


def write(path: Path, cases: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(c, separators=(",", ":"), sort_keys=True) + "\n" for c in cases)
    # mtime=0 keeps the gzip bytes identical from run to run
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(text.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--singles", type=int, default=SINGLE_COUNT)
    parser.add_argument("--stacks", type=int, default=STACK_COUNT)
    parser.add_argument("--out", type=Path, default=FIXTURES)
    options = parser.parse_args(argv)
    torch = _torch()
    singles, stacks = generate(options.seed, options.singles, options.stacks)
    write(options.out / "single.jsonl.gz", singles)
    write(options.out / "stacks.jsonl.gz", stacks)
    errors = sum("error" in c["torch"] for c in singles), sum("error" in c["torch"] for c in stacks)
    print(f"torch {torch.__version__}: {len(singles)} single-layer cases ({errors[0]} refused),"
          f" {len(stacks)} stacks ({errors[1]} refused) -> {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
