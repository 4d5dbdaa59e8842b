"""Regenerate tests/fixtures/backward/*.npz: input gradients computed by PyTorch's autograd.

Each case is one layer (a convcalc spec item, whose argument names are torch.nn's) on a
small input. The fixture holds the spec text, the input `x`, the parameters (state_dict
names), the output gradient `g` and PyTorch's `gx` = d(sum(g * layer(x)))/dx, in float64.

    python3 scripts/make_backward_fixtures.py      # needs torch; writes the fixtures
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "backward"

# name: (input shape without batch, layer type, args)
CASES: dict[str, tuple[list[int], str, dict]] = {
    "conv2d_s2_p1": ([4, 9, 9], "conv2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1}),
    "conv2d_dil2_groups2": ([4, 9, 10], "conv2d",
        {"out_channels": 6, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2}),
    "conv2d_same_even_kernel": ([3, 8, 7], "conv2d", {"out_channels": 2, "kernel_size": [4, 2], "padding": "same"}),
    "conv2d_unread_s3": ([3, 10, 11], "conv2d", {"out_channels": 2, "kernel_size": 3, "stride": 3}),
    "conv2d_depthwise": ([4, 8, 8], "conv2d", {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 4}),
    "conv2d_reflect": ([2, 7, 8], "conv2d",
        {"out_channels": 3, "kernel_size": 3, "padding": 2, "padding_mode": "reflect"}),
    "conv2d_replicate_s2": ([2, 7, 8], "conv2d",
        {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 2, "padding_mode": "replicate"}),
    "conv2d_circular": ([2, 6, 7], "conv2d",
        {"out_channels": 3, "kernel_size": 3, "padding": [1, 2], "padding_mode": "circular"}),
    "conv1d_k5_s2": ([3, 17], "conv1d", {"out_channels": 4, "kernel_size": 5, "stride": 2, "padding": 1}),
    "conv3d_s2": ([2, 5, 6, 5], "conv3d", {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1}),
    "convtranspose2d_s2_op1": ([4, 5, 6], "convtranspose2d",
        {"out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}),
    "convtranspose2d_k4_s2": ([4, 5, 5], "convtranspose2d",
        {"out_channels": 2, "kernel_size": 4, "stride": 2, "padding": 1}),
    "convtranspose2d_dil2_groups2": ([4, 5, 5], "convtranspose2d",
        {"out_channels": 6, "kernel_size": 3, "stride": 2, "dilation": 2, "groups": 2}),
    "convtranspose1d_s3_op2": ([3, 7], "convtranspose1d",
        {"out_channels": 2, "kernel_size": 3, "stride": 3, "padding": 2, "output_padding": 2}),
    "convtranspose3d": ([2, 3, 4, 3], "convtranspose3d", {"out_channels": 2, "kernel_size": 2, "stride": 2}),
    "maxpool2d_s2_p1": ([3, 9, 9], "maxpool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    "maxpool2d_ceil": ([3, 9, 8], "maxpool2d", {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
    "maxpool2d_dilation": ([2, 10, 10], "maxpool2d", {"kernel_size": 3, "stride": 1, "dilation": 2}),
    "maxpool1d": ([2, 15], "maxpool1d", {"kernel_size": 4, "stride": 3, "padding": 2}),
    "avgpool2d_s2_p1": ([3, 9, 9], "avgpool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    "avgpool2d_exclude_pad_ceil": ([3, 9, 8], "avgpool2d",
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    "avgpool2d_ceil_include_pad": ([2, 8, 9], "avgpool2d",
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    "avgpool2d_divisor": ([2, 7, 7], "avgpool2d", {"kernel_size": 2, "divisor_override": 5}),
    "avgpool1d": ([2, 13], "avgpool1d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    "adaptiveavgpool2d": ([3, 7, 9], "adaptiveavgpool2d", {"output_size": [3, 4]}),
    "adaptivemaxpool2d": ([3, 7, 9], "adaptivemaxpool2d", {"output_size": [4, 3]}),
    "batchnorm2d": ([4, 5, 5], "batchnorm2d", {}),
    "instancenorm2d_affine": ([3, 5, 6], "instancenorm2d", {"affine": True}),
    "groupnorm": ([4, 5, 5], "groupnorm", {"num_groups": 2}),
    "layernorm_last": ([3, 4, 6], "layernorm", {"normalized_shape": [6]}),
    "layernorm_all": ([3, 4, 6], "layernorm", {"normalized_shape": [3, 4, 6]}),
    "localresponsenorm": ([6, 4, 4], "localresponsenorm", {"size": 3}),
    "localresponsenorm_even": ([6, 3, 4], "localresponsenorm", {"size": 4, "alpha": 0.1, "beta": 0.6, "k": 2.0}),
    "relu": ([3, 5, 5], "relu", {}),
    "relu6": ([3, 5, 5], "relu6", {}),
    "leakyrelu": ([3, 5, 5], "leakyrelu", {"negative_slope": 0.2}),
    "prelu": ([3, 5, 5], "prelu", {"num_parameters": 3}),
    "elu": ([3, 5, 5], "elu", {"alpha": 0.7}),
    "gelu": ([3, 5, 5], "gelu", {}),
    "gelu_tanh": ([3, 5, 5], "gelu", {"approximate": "tanh"}),
    "silu": ([3, 5, 5], "silu", {}),
    "mish": ([3, 5, 5], "mish", {}),
    "softplus": ([3, 5, 5], "softplus", {"beta": 2.0, "threshold": 1.0}),
    "sigmoid": ([3, 5, 5], "sigmoid", {}),
    "tanh": ([3, 5, 5], "tanh", {}),
    "hardswish": ([3, 5, 5], "hardswish", {}),
    "hardsigmoid": ([3, 5, 5], "hardsigmoid", {}),
    "hardtanh": ([3, 5, 5], "hardtanh", {"min_val": -0.5, "max_val": 0.8}),
    "softmax_channels": ([4, 3, 3], "softmax", {"dim": 1}),
    "logsoftmax_last": ([4, 3, 5], "logsoftmax", {"dim": -1}),
    "dropout_eval": ([3, 4, 4], "dropout", {"p": 0.5}),
    "alphadropout_eval": ([3, 4, 4], "alphadropout", {"p": 0.5}),
    "identity": ([3, 4, 4], "identity", {}),
    "instancenorm1d": ([3, 7], "instancenorm1d", {}),
    "upsamplingnearest2d": ([2, 3, 4], "upsamplingnearest2d", {"size": [5, 9]}),
    "linear_last_dim": ([3, 4, 6], "linear", {"out_features": 5}),
    "flatten": ([3, 4, 5], "flatten", {}),
    "upsample_nearest_2": ([2, 4, 5], "upsample", {"scale_factor": 2}),
    "upsample_nearest_size": ([2, 5, 4], "upsample", {"size": [7, 9]}),
    "upsample_nearest_exact": ([2, 5, 4], "upsample", {"size": [7, 9], "mode": "nearest-exact"}),
    "upsample_bilinear": ([2, 4, 5], "upsample", {"scale_factor": 2, "mode": "bilinear"}),
    "upsample_bilinear_size": ([2, 4, 5], "upsample", {"size": [7, 11], "mode": "bilinear"}),
    "upsample_bilinear_align": ([2, 4, 5], "upsample", {"scale_factor": 2, "mode": "bilinear", "align_corners": True}),
    "upsample_bicubic": ([2, 4, 5], "upsample", {"scale_factor": 2, "mode": "bicubic"}),
    "upsample_linear_1d": ([2, 6], "upsample", {"scale_factor": 1.5, "mode": "linear"}),
    "upsamplingbilinear2d": ([2, 4, 5], "upsamplingbilinear2d", {"scale_factor": 2}),
    "pixelshuffle": ([8, 3, 4], "pixelshuffle", {"upscale_factor": 2}),
    "pixelunshuffle": ([2, 6, 4], "pixelunshuffle", {"downscale_factor": 2}),
    "reflectionpad2d": ([2, 5, 6], "reflectionpad2d", {"padding": [1, 2, 0, 3]}),
    "replicationpad2d": ([2, 4, 5], "replicationpad2d", {"padding": 2}),
    "circularpad2d": ([2, 4, 5], "circularpad2d", {"padding": [1, 2, 2, 1]}),
    "zeropad2d": ([2, 4, 5], "zeropad2d", {"padding": [1, 0, 2, 1]}),
    "constantpad1d": ([2, 6], "constantpad1d", {"padding": [2, 1], "value": 3.0}),
    "reflectionpad1d": ([2, 6], "reflectionpad1d", {"padding": 4}),
    "channelshuffle": ([6, 3, 4], "channelshuffle", {"groups": 3}),
    "permute": ([3, 4, 5], "permute", {"dims": [0, 2, 3, 1]}),
    "narrow": ([6, 3, 4], "narrow", {"start": 2, "length": 3}),
    "layerscale": ([4, 3, 5], "layerscale", {"init_values": 1e-6}),
    "stochasticdepth": ([4, 3, 5], "stochasticdepth", {"p": 0.2, "mode": "row"}),
    "layernorm2d": ([5, 3, 4], "layernorm2d", {"eps": 1e-6}),
    "narrow_split": ([6, 3, 4], "narrow", {"split": [2, 3, 1], "index": 1}),
}
ORACLE_ONLY = ("channelshuffle", "permute", "narrow", "layerscale", "stochasticdepth", "layernorm2d")

# Cases added later, drawn from their own generator so the earlier fixtures stay as they are.
LATER_CASES: dict[str, tuple[list[int], str, dict]] = {
    "centercrop": ([2, 7, 8], "centercrop", {"size": [4, 5]}),
    "centercrop_pad": ([2, 4, 5], "centercrop", {"size": [7, 4]}),
    "zeropad2d_negative": ([2, 6, 7], "zeropad2d", {"padding": [-1, 2, -2, -1]}),
}


class CenterCrop(nn.Module):
    """torchvision.transforms.CenterCrop on tensors (torchvision is not a dependency)."""

    def __init__(self, size: list[int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (ch, cw), (h, w) = self.size, x.shape[-2:]
        if ch > h or cw > w:
            pads = [(cw - w) // 2 if cw > w else 0, (ch - h) // 2 if ch > h else 0,
                    (cw - w + 1) // 2 if cw > w else 0, (ch - h + 1) // 2 if ch > h else 0]
            x = torch.nn.functional.pad(x, [pads[0], pads[2], pads[1], pads[3]])
            h, w = x.shape[-2:]
        top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
        return x[..., top:top + ch, left:left + cw]


CLASSES = {name.lower(): cls for name, cls in vars(nn).items() if isinstance(cls, type)}
CLASSES["centercrop"] = CenterCrop


def module(kind: str, args: dict, shape: list[int]) -> nn.Module:
    """The torch.nn module of a case (convcalc's argument names are torch.nn's)."""
    if kind in ORACLE_ONLY:  # not torch.nn classes of the same name: tests/torch_oracle.py builds them
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from convcalc.layers import REGISTRY
        from torch_oracle import torch_layer

        lt = REGISTRY[kind]
        return torch_layer(lt, lt.parse_args(args), tuple(shape))[0]
    args = dict(args)
    if kind.startswith(("conv", "batchnorm", "instancenorm")):
        first = "in_channels" if kind.startswith("conv") else "num_features"
        args[first] = shape[0]
    if kind == "groupnorm":
        args["num_channels"] = shape[0]
    if kind == "linear":
        args["in_features"] = shape[-1]
    return CLASSES[kind](**args)


def gradient(layer: nn.Module, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(x).requires_grad_(True)
    (layer(xt) * torch.from_numpy(g)).sum().backward()
    return xt.grad.numpy()


def make(name: str, shape: list[int], kind: str, args: dict, rng: np.random.Generator) -> dict:
    layer = module(kind, args, shape).double().eval()
    with torch.no_grad():
        for key, value in layer.state_dict().items():
            if key == "num_batches_tracked":
                continue
            if key == "running_var" or (kind == "prelu" and key == "weight"):
                value.copy_(torch.from_numpy(rng.uniform(0.2, 1.5, value.shape)))
            else:
                value.copy_(torch.from_numpy(rng.normal(size=value.shape)))
    x = rng.normal(size=[2, *shape])
    if kind.startswith("maxpool") or kind.startswith("adaptivemax"):
        x = rng.permutation(x.size).reshape(x.shape).astype(np.float64)  # no ties
    y = layer(torch.from_numpy(x))
    g = rng.normal(size=tuple(y.shape))
    params = {k: v.numpy() for k, v in layer.state_dict().items() if k != "num_batches_tracked"}
    spec = json.dumps({"input": shape, "layers": [{kind: args}]})
    return {"spec": np.array(spec), "x": x, "g": g, "gx": gradient(layer, x, g),
            **{f"param.{k}": v for k, v in params.items()}}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261123)
    if "--later" not in sys.argv:
        for name, (shape, kind, args) in CASES.items():
            np.savez_compressed(OUT / f"{name}.npz", **make(name, shape, kind, args, rng))
    later = np.random.default_rng(20260511)
    for name, (shape, kind, args) in LATER_CASES.items():
        np.savez_compressed(OUT / f"{name}.npz", **make(name, shape, kind, args, later))
    print(f"wrote {len(CASES) + len(LATER_CASES)} fixtures to {OUT} (torch {torch.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
