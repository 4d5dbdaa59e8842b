"""Per-layer PyTorch oracle for the example specs: writes tests/fixtures/torch_models/<name>.json.

Generated with torch==2.13.0 (CPU; `pip install torch==2.13.0`). torch is a test oracle only,
never a dependency of convcalc, and torchvision is not used: every model below is written by
hand after torchvision's definitions (or d2l's, PyTorch's DCGAN tutorial, the U-Net paper,
ultralytics' YOLOv5), so that module paths are torchvision's (`layer3.1.conv2`,
`features.denseblock1.denselayer1.conv1`, `fpn.inner_blocks.2.0`, ...).

Each model runs one forward pass (batch 1, eval mode) with a forward hook on every leaf
module; the fixture lists, per leaf in registration order, its path, class, output shape
(without the batch; from its first call, since ResNet reuses one ReLU three times per block),
number of calls, the MACs of that call (conv, transposed conv and linear; from the module's
attributes and the shapes torch gave it), parameter count and buffer count, plus the model totals (sum of numel over
`parameters()` and over `buffers()`) and the output shape (a list of shapes for a model with
several outputs: FPN, YOLO).

Run `python3 scripts/make_torch_models.py` to regenerate all fixtures, or name some models
(`python3 scripts/make_torch_models.py alexnet resnet50`). tests/test_examples.py compares
convcalc against these files, and against this module live when torch is importable.
"""

from __future__ import annotations

import json
import math
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch_models"


# --- d2l ------------------------------------------------------------------------------------


def lenet() -> nn.Module:
    """d2l 7.6: LeNet with sigmoid and average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def nin() -> nn.Module:
    """d2l 8.3: Network in Network, 10 classes."""

    def nin_block(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, padding), nn.ReLU(),
            nn.Conv2d(cout, cout, kernel_size=1), nn.ReLU(),
            nn.Conv2d(cout, cout, kernel_size=1), nn.ReLU(),
        )

    return nn.Sequential(
        nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(384, 10, 3, 1, 1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


# --- torchvision: AlexNet, VGG ----------------------------------------------------------------


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                              512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """torchvision's VGG with make_layers(cfg "D", batch_norm=False): a flat `features`."""

    def __init__(self, cfg: list[int | str] = VGG16_CFG, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# --- torchvision: ResNet ---------------------------------------------------------------------


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5: the stride is on the 3x3 conv."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- torchvision: GoogLeNet (aux_logits=False) ------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        # torchvision's "5x5" branch uses a 3x3 kernel (a known quirk kept for its weights).
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(cin, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a",
                     "inception3b", "maxpool3", "inception4a", "inception4b", "inception4c",
                     "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b",
                     "avgpool"):
            x = getattr(self, name)(x)
        return self.fc(self.dropout(torch.flatten(x, 1)))


# --- torchvision: DenseNet-121 --------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1,
                               bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, cin: int, bn_size: int, growth_rate: int) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(cin + i * growth_rate, growth_rate, bn_size)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, bn_size, growth_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(F.relu(self.features(x), inplace=True), (1, 1))
        return self.classifier(torch.flatten(out, 1))


# --- torchvision: MobileNetV2 (width 1.0) ----------------------------------------------------


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation(..., norm_layer=BatchNorm2d, activation_layer=ReLU6)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
               [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]  # t, c, n, s

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        cin = 32
        features: list[nn.Module] = [ConvBNReLU6(3, cin, stride=2)]
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU6(cin, 1280, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# --- PyTorch's DCGAN tutorial; a dilated context module ----------------------------------------


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class DilatedContext(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        for d in (1, 2, 4, 8):
            self.add_module(f"d{d}", nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(channels, channels, 3, dilation=d, padding=d)),
                ("relu", nn.ReLU()),
            ])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for d in (1, 2, 4, 8):
            x = getattr(self, f"d{d}")(x)
        return x


# --- graphs: torchvision's FPN on ResNet-50, the original U-Net, a YOLOv5-style PAN neck --------


class IntermediateLayerGetter(nn.ModuleDict):
    """torchvision.models._utils.IntermediateLayerGetter: the model's children up to the last
    returned one; forward gives the returned layers' outputs by their new names."""

    def __init__(self, model: nn.Module, return_layers: dict[str, str]) -> None:
        layers, wanted = OrderedDict(), dict(return_layers)
        for name, module in model.named_children():
            layers[name] = module
            wanted.pop(name, None)
            if not wanted:
                break
        super().__init__(layers)
        self.return_layers = dict(return_layers)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                out[self.return_layers[name]] = x
        return out


class FeaturePyramidNetwork(nn.Module):
    """torchvision.ops.FeaturePyramidNetwork with LastLevelMaxPool and no norm layer: each
    block is a Conv2dNormActivation holding only its conv (with bias), hence `inner_blocks.2.0`."""

    def __init__(self, in_channels_list: list[int], out_channels: int) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1))
                                          for _ in in_channels_list)

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names, features = list(x), list(x.values())
        last_inner = self.inner_blocks[-1](features[-1])
        results = [self.layer_blocks[-1](last_inner)]
        for idx in range(len(features) - 2, -1, -1):
            inner_lateral = self.inner_blocks[idx](features[idx])
            inner_top_down = F.interpolate(last_inner, size=inner_lateral.shape[-2:], mode="nearest")
            last_inner = inner_lateral + inner_top_down
            results.insert(0, self.layer_blocks[idx](last_inner))
        results.append(F.max_pool2d(results[-1], 1, 2, 0))  # LastLevelMaxPool
        return OrderedDict(zip([*names, "pool"], results))


class BackboneWithFPN(nn.Module):
    """torchvision's resnet_fpn_backbone("resnet50"), with trainable BatchNorm2d."""

    def __init__(self) -> None:
        super().__init__()
        resnet = ResNet(Bottleneck, [3, 4, 6, 3])
        self.body = IntermediateLayerGetter(resnet, {f"layer{i + 1}": str(i) for i in range(4)})
        self.fpn = FeaturePyramidNetwork([256, 512, 1024, 2048], 256)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fpn(self.body(x))


class DoubleConv(nn.Sequential):
    """Two unpadded 3x3 convs with ReLUs (the original U-Net)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(cin, cout, 3)), ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(cout, cout, 3)), ("relu2", nn.ReLU(inplace=True)),
        ]))


def center_crop(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """torchvision.transforms.functional.center_crop for a crop inside the tensor: a slice."""
    (h, w), (ch, cw) = x.shape[-2:], size
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return x[..., top:top + ch, left:left + cw]


class UpStep(nn.Module):
    """One decoder step: 2x2 up-conv halving the channels, the skip centre-cropped, [skip, up], convs."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([center_crop(skip, x.shape[-2:]), x], 1))


class UNet(nn.Module):
    """Ronneberger et al. (2015), figure 1: 1x572x572 in, 2x388x388 out."""

    def __init__(self, in_channels: int = 1, classes: int = 2) -> None:
        super().__init__()
        widths = [64, 128, 256, 512]
        cin = in_channels
        for i, c in enumerate(widths, start=1):
            self.add_module(f"enc{i}", DoubleConv(cin, c))
            self.add_module(f"pool{i}", nn.MaxPool2d(2))
            cin = c
        self.center = DoubleConv(512, 1024)
        for i, c in reversed(list(enumerate(widths, start=1))):
            self.add_module(f"dec{i}", UpStep(2 * c, c))
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i in range(1, 5):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.center(x)
        for i in range(4, 0, -1):
            x = getattr(self, f"dec{i}")(x, skips[i - 1])
        return self.head(x)


class Conv(nn.Module):
    """YOLOv5's Conv: conv without bias (padding k // 2 unless given), BatchNorm, SiLU."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, p: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.03)
        self.act = nn.SiLU()  # one per Conv (YOLOv5 shares one instance, which hides its path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class YoloBottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool = True) -> None:
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 1), Conv(c, c, 3), shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    """YOLOv5's C3: two 1x1 paths from the input, bottlenecks on the first, concat, 1x1."""

    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        c = cout // 2
        self.cv1, self.cv2, self.cv3 = Conv(cin, c), Conv(cin, c), Conv(2 * c, cout)
        self.m = nn.Sequential(*(YoloBottleneck(c, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """YOLOv5's SPPF: one 5x5 max pool applied three times in a row, the four maps concatenated."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        c = cin // 2
        self.cv1, self.cv2 = Conv(cin, c), Conv(4 * c, cout)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)


class Detect(nn.Module):
    """YOLOv5's Detect layer's convolutions: 3 anchors x (80 classes + 5) per position."""

    def __init__(self, channels: tuple[int, ...], outputs: int = 3 * 85) -> None:
        super().__init__()
        self.m = nn.ModuleList(nn.Conv2d(c, outputs, 1) for c in channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [m(x) for m, x in zip(self.m, xs)]


class YoloV5n(nn.Module):
    """YOLOv5n (v6.0 architecture: depth 0.33, width 0.25), as ultralytics' DetectionModel runs
    its `model` list: each module reads the previous output or the listed earlier ones."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[tuple[int | list[int], nn.Module]] = [
            (-1, Conv(3, 16, 6, 2, 2)), (-1, Conv(16, 32, 3, 2)), (-1, C3(32, 32, 1)),            # 0-2
            (-1, Conv(32, 64, 3, 2)), (-1, C3(64, 64, 2)), (-1, Conv(64, 128, 3, 2)),              # 3-5
            (-1, C3(128, 128, 3)), (-1, Conv(128, 256, 3, 2)), (-1, C3(256, 256, 1)),              # 6-8
            (-1, SPPF(256, 256)), (-1, Conv(256, 128)), (-1, nn.Upsample(None, 2, "nearest")),     # 9-11
            ([-1, 6], Concat()), (-1, C3(256, 128, 1, False)), (-1, Conv(128, 64)),               # 12-14
            (-1, nn.Upsample(None, 2, "nearest")), ([-1, 4], Concat()), (-1, C3(128, 64, 1, False)),  # 15-17
            (-1, Conv(64, 64, 3, 2)), ([-1, 14], Concat()), (-1, C3(128, 128, 1, False)),         # 18-20
            (-1, Conv(128, 128, 3, 2)), ([-1, 10], Concat()), (-1, C3(256, 256, 1, False)),       # 21-23
            ([17, 20, 23], Detect((64, 128, 256))),                                               # 24
        ]
        self.sources = [f for f, _ in layers]
        self.model = nn.Sequential(*(m for _, m in layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[Any] = []
        value: Any = x
        for f, module in zip(self.sources, self.model):
            if f != -1:
                value = outputs[f] if isinstance(f, int) else [value if j == -1 else outputs[j] for j in f]
            value = module(value)
            outputs.append(value)
        return value  # Detect's list of three maps


# name (= the example's file stem) -> (builder, input shape without the batch)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "lenet": (lenet, (1, 28, 28)),
    "alexnet": (AlexNet, (3, 224, 224)),
    "vgg16": (VGG, (3, 224, 224)),
    "nin": (nin, (1, 224, 224)),
    "googlenet": (GoogLeNet, (3, 224, 224)),
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), (3, 224, 224)),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), (3, 224, 224)),
    "densenet121": (DenseNet, (3, 224, 224)),
    "mobilenet_v2": (MobileNetV2, (3, 224, 224)),
    "dcgan_generator": (DCGANGenerator, (100, 1, 1)),
    "dilated_context": (DilatedContext, (16, 64, 64)),
    "fpn_resnet50": (BackboneWithFPN, (3, 512, 512)),
    "unet": (UNet, (1, 572, 572)),
    "yolo_neck": (YoloV5n, (3, 640, 640)),
}


def shapes_of(output: Any) -> list[Any]:
    """The output shape without the batch, or a list of them when the model has several outputs
    (a tuple, list or dict of tensors), as convcalc's JSON gives `output_shape`."""
    if isinstance(output, torch.Tensor):
        return list(output.shape[1:])
    values = list(output.values()) if isinstance(output, dict) else list(output)
    return [list(t.shape[1:]) for t in values]


def macs(module: nn.Module, inputs: Any, output: Any) -> int:
    """Multiply-accumulates of one call at batch 1, from the module's own attributes and the
    shapes torch gave it: conv, output positions x C_out x C_in/groups x prod(k); transposed
    conv, *input* positions x C_in x C_out/groups x prod(k); linear, in x out per position."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        positions = inputs[0].shape[2:].numel()
        return positions * module.in_channels * module.out_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvNd):
        positions = output.shape[2:].numel()
        return positions * module.out_channels * module.in_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.shape[1:-1].numel() * module.in_features * module.out_features
    return 0


def describe(name: str) -> dict[str, Any]:
    """One forward pass of model `name` with hooks on every leaf; the fixture's content."""
    build, shape = MODELS[name]
    version = torch.__version__.split("+")[0]
    torch.manual_seed(0)
    model = build().eval()
    leaves = [(path, m) for path, m in model.named_modules() if path and not any(m.children())]
    seen: dict[str, dict[str, Any]] = {}

    def hook(path: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            entry = seen.setdefault(path, {"output_shape": shapes_of(output), "calls": 0,
                                           "macs": macs(module, inputs, output)})
            entry["calls"] += 1
        return record

    handles = [m.register_forward_hook(hook(path)) for path, m in leaves]
    with torch.no_grad():
        output = model(torch.zeros(1, *shape))
    for handle in handles:
        handle.remove()
    return {
        "model": name,
        "generated_by": f"scripts/make_torch_models.py with torch {version}",
        "input_shape": list(shape),
        "output_shape": shapes_of(output),
        "totals": {
            "params": sum(p.numel() for p in model.parameters()),
            "buffers": sum(b.numel() for b in model.buffers()),
        },
        "leaves": [
            {
                "path": path,
                "type": type(m).__name__,
                "output_shape": seen[path]["output_shape"] if path in seen else None,
                "calls": seen[path]["calls"] if path in seen else 0,
                "macs": seen[path]["macs"] if path in seen else 0,
                "params": sum(p.numel() for p in m.parameters(recurse=False)),
                "buffers": sum(b.numel() for b in m.buffers(recurse=False)),
            }
            for path, m in leaves
        ],
    }


def write(name: str) -> Path:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    target = FIXTURES / f"{name}.json"
    data = describe(name)
    # One leaf per line: small, and diffs stay readable.
    lines = [json.dumps(leaf, separators=(", ", ": ")) for leaf in data.pop("leaves")]
    head = json.dumps(data, indent=1)[:-2]
    target.write_text(head + ',\n "leaves": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n")
    return target


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names or list(MODELS):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        print(write(name).relative_to(FIXTURES.parent.parent.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
