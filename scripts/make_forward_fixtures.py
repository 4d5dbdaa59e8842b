"""PyTorch outputs for convcalc's NumPy forward kernels: writes tests/fixtures/forward/.

Generated with torch==2.13.0 (CPU; `pip install torch==2.13.0`); torch is a test oracle
only. For every case below (each registered layer type at least once, in 1D/2D/3D and
the tricky settings: groups, dilation, output_padding, ceil_mode, count_include_pad,
align_corners, ...), a random input and convcalc-shaped random parameters are fed to the
torch.nn module built by tests/torch_oracle.py; input, parameters and torch's output (and
max-pool indices from torch.nn.functional) go into `cases.npz`, the case list into
`cases.json`. A few small networks (forks, residuals, concatenations, and a graph with
several outputs) are stored whole in `networks.npz` / `networks.json` (every output). tests/test_numeric_fixtures.py replays them without torch.

Run: python3 scripts/make_forward_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from convcalc.analysis import analyze  # noqa: E402
from convcalc.layers import REGISTRY  # noqa: E402
from convcalc.numeric.kernels import layer_params  # noqa: E402
from convcalc.spec.parser import parse_text  # noqa: E402
from torch_oracle import convcalc_params, load, torch_layer, torch_network  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "forward"
SEED = 20261123

# (layer type, raw args, batchless input shape); batch 2 for all.
CASES: list[tuple[str, dict[str, Any], list[int]]] = [
    # convolution
    ("conv1d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}, [3, 11]),
    ("conv1d",
     {"out_channels": 6, "kernel_size": 3, "groups": 3, "dilation": 2, "padding_mode": "circular", "padding": 2},
     [3, 9]),
    ("conv2d", {"out_channels": 5, "kernel_size": 3}, [3, 8, 9]),
    ("conv2d",
     {"out_channels": 6, "kernel_size": [3, 5], "stride": [2, 1], "padding": [1, 2], "bias": False},
     [4, 9, 10]),
    ("conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 2, "dilation": 2, "padding": 2}, [4, 10, 10]),
    ("conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 4, "stride": 2, "padding": 1}, [4, 9, 9]),
    ("conv2d", {"out_channels": 4, "kernel_size": 3, "groups": 4, "padding": 1}, [4, 7, 8]),
    ("conv2d", {"out_channels": 6, "kernel_size": 4, "padding": "same", "dilation": 2}, [2, 9, 9]),
    ("conv2d", {"out_channels": 3, "kernel_size": 3, "padding": [[1, 0], [0, 2]]}, [2, 7, 7]),
    ("conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}, [2, 6, 7]),
    ("conv2d", {"out_channels": 3, "kernel_size": 3, "padding": 1, "padding_mode": "replicate"}, [2, 6, 7]),
    ("conv2d", {"out_channels": 5, "kernel_size": 1, "stride": 2}, [3, 7, 8]),
    ("conv3d", {"out_channels": 4, "kernel_size": 3, "stride": [1, 2, 2], "padding": 1}, [2, 5, 6, 7]),
    ("conv3d", {"out_channels": 4, "kernel_size": [1, 3, 3], "groups": 2, "dilation": [1, 2, 1]}, [2, 4, 7, 6]),
    # transposed convolution
    ("convtranspose1d", {"out_channels": 3, "kernel_size": 4, "stride": 2, "padding": 1}, [4, 6]),
    ("convtranspose2d",
     {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
     [3, 5, 6]),
    ("convtranspose2d",
     {"out_channels": 6, "kernel_size": 3, "stride": 3, "groups": 2, "dilation": 2, "output_padding": 1},
     [4, 4, 5]),
    ("convtranspose2d",
     {"out_channels": 4, "kernel_size": [2, 3], "stride": [1, 2], "padding": [[0, 1], [1, 0]], "bias": False},
     [2, 5, 5]),
    ("convtranspose3d", {"out_channels": 2, "kernel_size": 2, "stride": 2}, [3, 3, 4, 3]),
    # pooling
    ("maxpool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [3, 10]),
    ("maxpool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, [3, 9, 10]),
    ("maxpool2d", {"kernel_size": 2, "stride": 2, "ceil_mode": True}, [2, 7, 9]),
    ("maxpool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}, [2, 10, 11]),
    ("maxpool2d", {"kernel_size": 3, "stride": 3, "padding": 1, "ceil_mode": True}, [2, 8, 10]),
    ("maxpool3d", {"kernel_size": 2, "stride": 2, "ceil_mode": True}, [2, 5, 4, 5]),
    ("avgpool1d",
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
     [3, 10]),
    ("avgpool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, [3, 9, 10]),
    ("avgpool2d",
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
     [2, 8, 10]),
    ("avgpool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, [2, 8, 10]),
    ("avgpool2d", {"kernel_size": 2, "divisor_override": 3}, [2, 6, 6]),
    ("avgpool3d",
     {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
     [2, 5, 4, 5]),
    ("adaptiveavgpool1d", {"output_size": 4}, [3, 10]),
    ("adaptiveavgpool2d", {"output_size": [3, None]}, [3, 7, 5]),
    ("adaptiveavgpool2d", {"output_size": 1}, [3, 7, 5]),
    ("adaptiveavgpool3d", {"output_size": [2, 3, 4]}, [2, 5, 7, 6]),
    ("adaptivemaxpool1d", {"output_size": 4}, [3, 10]),
    ("adaptivemaxpool2d", {"output_size": [3, 4]}, [3, 7, 9]),
    ("adaptivemaxpool3d", {"output_size": 2}, [2, 5, 4, 3]),
    # normalisation
    ("batchnorm1d", {}, [5]),
    ("batchnorm1d", {}, [5, 7]),
    ("batchnorm2d", {"eps": 0.001}, [4, 5, 6]),
    ("batchnorm2d", {"track_running_stats": False, "affine": False}, [4, 5, 6]),
    ("batchnorm3d", {}, [3, 3, 4, 5]),
    ("instancenorm1d", {}, [3, 9]),
    ("instancenorm2d", {"affine": True}, [3, 5, 6]),
    ("instancenorm2d", {"affine": True, "track_running_stats": True}, [3, 5, 6]),
    ("instancenorm3d", {}, [2, 3, 4, 5]),
    ("layernorm", {}, [3, 4, 6]),
    ("layernorm", {"normalized_shape": [4, 6], "bias": False}, [3, 4, 6]),
    ("groupnorm", {"num_groups": 2}, [6, 4, 5]),
    ("localresponsenorm", {"size": 3}, [7, 4, 5]),
    ("localresponsenorm", {"size": 4, "alpha": 0.01, "beta": 0.5, "k": 2.0}, [6, 9]),
    # element-wise
    ("identity", {}, [3, 4, 5]),
    ("relu", {}, [3, 4, 5]),
    ("relu6", {}, [3, 4, 5]),
    ("leakyrelu", {"negative_slope": 0.2}, [3, 4, 5]),
    ("prelu", {}, [3, 4, 5]),
    ("prelu", {"num_parameters": 3}, [3, 4, 5]),
    ("elu", {"alpha": 0.7}, [3, 4, 5]),
    ("gelu", {}, [3, 4, 5]),
    ("gelu", {"approximate": "tanh"}, [3, 4, 5]),
    ("silu", {}, [3, 4, 5]),
    ("mish", {}, [3, 4, 5]),
    ("softplus", {}, [3, 4, 5]),
    ("softplus", {"beta": 2.0, "threshold": 1.0}, [3, 4, 5]),
    ("sigmoid", {}, [3, 4, 5]),
    ("tanh", {}, [3, 4, 5]),
    ("hardswish", {}, [3, 4, 5]),
    ("hardsigmoid", {}, [3, 4, 5]),
    ("hardtanh", {"min_val": -0.5, "max_val": 0.8}, [3, 4, 5]),
    ("softmax", {}, [3, 4, 5]),
    ("softmax", {"dim": -1}, [3, 4, 5]),
    ("logsoftmax", {"dim": 2}, [3, 4, 5]),
    *((name, {}, [3, 4, 5]) for name in ("dropout", "dropout2d", "alphadropout", "featurealphadropout")),
    ("dropout1d", {}, [3, 4]),
    ("dropout3d", {}, [2, 3, 4, 5]),
    # shape changes
    ("linear", {"out_features": 7}, [12]),
    ("linear", {"out_features": 5, "bias": False}, [3, 6]),
    ("flatten", {}, [3, 4, 5]),
    ("flatten", {"start_dim": 2}, [3, 4, 5]),
    ("upsample", {"scale_factor": 2}, [3, 4, 5]),
    ("upsample", {"size": [7, 9]}, [3, 4, 5]),
    ("upsample", {"scale_factor": 1.5}, [2, 5, 7]),
    ("upsample", {"size": 6, "mode": "nearest-exact"}, [2, 4, 5]),
    ("upsample", {"scale_factor": 2, "mode": "linear"}, [2, 6]),
    ("upsample", {"size": 11, "mode": "linear", "align_corners": True}, [2, 6]),
    ("upsample", {"scale_factor": 2, "mode": "bilinear"}, [2, 4, 5]),
    ("upsample", {"scale_factor": 1.7, "mode": "bilinear", "align_corners": True}, [2, 4, 5]),
    ("upsample", {"size": [7, 3], "mode": "bilinear"}, [2, 4, 5]),
    ("upsample", {"scale_factor": 2, "mode": "bicubic"}, [2, 4, 5]),
    ("upsample", {"size": [9, 7], "mode": "bicubic", "align_corners": True}, [2, 4, 5]),
    ("upsample", {"scale_factor": [2, 1.5, 3], "mode": "trilinear"}, [2, 3, 4, 3]),
    ("upsample", {"scale_factor": 3, "mode": "nearest"}, [2, 3, 4, 3]),
    # PyTorch's per-axis quirks: linear copies when out == n; 2D nearest shortcuts out == n, 2n
    ("upsample", {"scale_factor": [0.5, 0.5, 1.3], "mode": "trilinear"}, [2, 2, 2, 2]),
    ("upsample", {"scale_factor": [1.3, 2.2], "mode": "nearest"}, [2, 2, 3]),
    ("upsample", {"scale_factor": 2.2, "mode": "nearest"}, [2, 3]),
    ("upsample", {"scale_factor": [1, 1, 1.3], "mode": "nearest"}, [2, 2, 2, 2]),
    ("upsamplingnearest2d", {"scale_factor": 3}, [2, 3, 4]),
    ("upsamplingbilinear2d", {"size": [7, 8]}, [2, 3, 4]),
    ("pixelshuffle", {"upscale_factor": 2}, [8, 3, 4]),
    ("pixelunshuffle", {"downscale_factor": 2}, [2, 6, 4]),
    *((f"{mode}pad{r}d", {"padding": pads, **({"value": 0.5} if mode == "constant" else {})}, shape)
      for mode in ("zero", "constant", "reflection", "replication", "circular")
      for r, pads, shape in ((1, [2, 1], [2, 5]), (2, [1, 2, 0, 3], [2, 4, 5]), (3, 1, [2, 3, 4, 5]))),
    # added later, at the end so the earlier cases keep their index (and their random numbers)
    ("centercrop", {"size": [4, 5]}, [3, 7, 8]),
    ("centercrop", {"size": 3}, [2, 6, 5]),
    ("centercrop", {"size": [7, 4]}, [2, 4, 5]),  # pads the short axis with zeros
    ("zeropad2d", {"padding": [-1, 2, -2, -1]}, [2, 6, 7]),
    ("constantpad1d", {"padding": [-2, 1], "value": 0.5}, [2, 7]),
    # modern blocks
    ("channelshuffle", {"groups": 2}, [6, 3, 4]),
    ("channelshuffle", {"groups": 3}, [6, 5]),
    ("permute", {"dims": [0, 2, 3, 1]}, [3, 4, 5]),
    ("permute", {"dims": [0, 3, 1, 2]}, [4, 5, 3]),
    ("narrow", {"start": 1, "length": 3}, [6, 3, 4]),
    ("layerscale", {"init_values": 1e-6}, [4, 3, 5]),
    ("layerscale", {"init_values": 0.5}, [4, 7]),
    ("stochasticdepth", {"p": 0.2, "mode": "row"}, [4, 3, 5]),
    ("narrow", {"split": [2, 3, 1], "index": 1}, [6, 3, 4]),
    ("narrow", {"split": 3, "index": 2}, [6, 5]),
    ("layernorm2d", {"eps": 1e-6}, [5, 3, 4]),
    ("layernorm2d", {"bias": False}, [4, 1, 1]),
]

NETWORKS = {
    "mixed2d": """
name: mixed2d
input: [3, 12, 14]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - batchnorm2d
  - relu
  - residual:
      body:
        - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, groups: 2}
        - batchnorm2d
        - hardswish
        - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, groups: 8}
  - parallel:
      branches:
        - [{conv2d: {out_channels: 4, kernel_size: 1}}]
        - [{maxpool2d: {kernel_size: 3, stride: 1, padding: 1}}, {conv2d: {out_channels: 4, kernel_size: 1}}]
        - [{avgpool2d: {kernel_size: 3, stride: 1, padding: 1, count_include_pad: false}}]
  - convtranspose2d: {out_channels: 6, kernel_size: 3, stride: 2, padding: 1, output_padding: 1}
  - upsample: {scale_factor: 0.5, mode: bilinear}
  - adaptiveavgpool2d: {output_size: [3, 4]}
  - flatten
  - linear: {out_features: 10}
  - softmax
""",
    "seq1d": """
name: seq1d
input: [2, 40]
layers:
  - conv1d: {out_channels: 6, kernel_size: 5, stride: 2, padding: 2}
  - groupnorm: {num_groups: 3}
  - gelu
  - residual:
      body: [{conv1d: {out_channels: 6, kernel_size: 3, padding: 2, dilation: 2}}, {elu: {}}]
  - maxpool1d: {kernel_size: 3, stride: 2, ceil_mode: true}
  - upsample: {size: 17, mode: linear, align_corners: true}
  - layernorm
""",
    "se_gate": """
name: se_gate
input: [4, 9, 8]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1}
  - parallel:
      merge: mul
      branches:
        - []
        - [adaptiveavgpool2d: {output_size: 1}, conv2d: {out_channels: 2, kernel_size: 1}, relu,
           conv2d: {out_channels: 8, kernel_size: 1}, hardsigmoid]
  - parallel:
      merge: add
      branches:
        - [conv2d: {out_channels: 8, kernel_size: 1}]
        - [adaptiveavgpool2d: {output_size: [1, 8]}]
  - channelshuffle: {groups: 2}
  - permute: {dims: [0, 2, 3, 1]}
  - layernorm
  - linear: {out_features: 6}
  - permute: {dims: [0, 3, 1, 2]}
  - layerscale: {init_values: 0.1}
  - stochasticdepth: {p: 0.1, mode: row}
""",
    "vol3d": """
name: vol3d
input: [2, 6, 8, 7]
layers:
  - conv3d: {out_channels: 4, kernel_size: 3, padding: 1}
  - instancenorm3d: {affine: true}
  - leakyrelu
  - maxpool3d: {kernel_size: 2, ceil_mode: true}
  - convtranspose3d: {out_channels: 3, kernel_size: 2, stride: 2}
  - adaptivemaxpool3d: {output_size: [2, 3, 3]}
""",
    # A graph: fan-out, long skips, size_of, a broadcasting mul gate, a crop, several outputs.
    "graph2d": """
name: graph2d
input: [3, 17, 15]
outputs: [head, gated, crop]
layers:
  - conv2d: {name: stem, out_channels: 8, kernel_size: 3}
  - relu
  - conv2d: {name: down, out_channels: 8, kernel_size: 3, stride: 2}
  - adaptiveavgpool2d: {output_size: 1}
  - conv2d: {out_channels: 8, kernel_size: 1}
  - sigmoid: {name: gate}
  - mul: {from: [down, gate], name: gated}
  - upsample: {from: gated, size_of: stem, mode: nearest, name: up}
  - concat: {from: [stem, up, 1]}
  - conv2d: {out_channels: 4, kernel_size: 3, name: head}
  - centercrop: {from: input, size_of: head, name: crop}
""",
    "split_and_channels_last": """
name: split_and_channels_last
input: [8, 9, 8]
layers:
  - conv2d: {out_channels: 8, kernel_size: 2, stride: 2}
  - layernorm2d: {eps: 1e-6}
  - parallel:
      split: 2
      branches:
        - []
        - [conv2d: {out_channels: 4, kernel_size: 1}, batchnorm2d, relu]
  - channelshuffle: {groups: 2}
  - residual:
      body:
        - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, groups: 8}
        - permute: {dims: [0, 2, 3, 1]}
        - layernorm: {eps: 1e-6}
        - linear: {out_features: 16}
        - gelu
        - linear: {out_features: 8}
        - permute: {dims: [0, 3, 1, 2]}
        - layerscale: {init_values: 0.5}
  - parallel: {split: [3, 5], merge: concat, branches: [[relu], []]}
  - adaptiveavgpool2d: {output_size: 1}
  - layernorm2d
""",
}


def torch_output(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x)).numpy()


def torch_outputs(module: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    """Every output of a network (TorchGraph returns a tuple when there are several)."""
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(x))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def main() -> int:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    manifest = []
    for index, (name, raw, shape) in enumerate(CASES):
        case = f"{index:03d}_{name}"
        lt = REGISTRY[name]
        args = lt.parse_args(raw)
        rng = np.random.default_rng([SEED, index])
        x = rng.standard_normal((2, *shape), dtype=np.float32)
        params = layer_params(lt, args, tuple(shape), rng)
        module, holder = torch_layer(lt, args, tuple(shape))
        load(holder, params)
        arrays[f"{case}/x"] = x
        arrays[f"{case}/y"] = torch_output(module, x)
        for key, value in params.items():
            arrays[f"{case}/param/{key}"] = value
        if name.startswith("maxpool"):
            rank = len(shape) - 1
            relu_x = np.maximum(x, 0)  # many all-zero windows: ties decide the index
            arrays[f"{case}/relu_x"] = relu_x
            _, idx = getattr(F, f"max_pool{rank}d")(
                torch.from_numpy(relu_x), args["kernel_size"], args["stride"], tuple(a for a, _ in args["padding"]),
                args["dilation"], args["ceil_mode"], return_indices=True)
            arrays[f"{case}/indices"] = idx.numpy()
        if name.startswith("adaptivemaxpool"):
            relu_x = np.maximum(x, 0)
            arrays[f"{case}/relu_x"] = relu_x
            out = tuple(n if o is None else o for n, o in zip(shape[1:], args["output_size"]))
            pool = getattr(F, f"adaptive_max_pool{len(shape) - 1}d")
            _, idx = pool(torch.from_numpy(relu_x), out, return_indices=True)
            arrays[f"{case}/indices"] = idx.numpy()
        manifest.append({"case": case, "type": name, "args": raw, "input_shape": shape})
    np.savez_compressed(OUT / "cases.npz", **arrays)
    (OUT / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")

    net_arrays: dict[str, np.ndarray] = {}
    for name, text in NETWORKS.items():
        network = parse_text(text, f"{name}.yaml")
        report = analyze(network, batch_size=2)
        params = convcalc_params(network, report, seed=7)
        x = np.random.default_rng([SEED, 999]).standard_normal((2, *network.input_shape), dtype=np.float32)
        net_arrays[f"{name}/x"] = x
        # The first output is `<name>/y`, the others `<name>/y1`, `<name>/y2`, ... (outputs: order).
        for k, y in enumerate(torch_outputs(torch_network(network, report, params), x)):
            net_arrays[f"{name}/y{k or ''}"] = y
        for path, layer in params.items():
            for key, value in layer.items():
                net_arrays[f"{name}/param/{path}/{key}"] = value
    np.savez_compressed(OUT / "networks.npz", **net_arrays)
    (OUT / "networks.json").write_text(json.dumps(NETWORKS, indent=1) + "\n")
    print(f"wrote {len(manifest)} cases and {len(NETWORKS)} networks to {OUT.relative_to(ROOT)}"
          f" (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
