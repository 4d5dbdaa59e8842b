"""ERF of examples/resnet18.yaml at 224x224, 8 samples: convcalc (NumPy) vs PyTorch autograd.

Both do the same computation: a forward pass of the 8 random inputs through ResNet-18 (random
weights, BatchNorm in inference mode, real ReLU masks and max-pool arg-max) up to
layer4.1.relu_out, then the gradient of the centre output (summed over channels) with
respect to the input, then mean |gradient|. The PyTorch model is written out by hand
(torchvision is not needed) and loads convcalc's weights, so the two maps must agree.

    python3 benchmarks/erf_bench.py [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from convcalc.analysis import analyze
from convcalc.fieldwalk import explain, find
from convcalc.numeric.backward import effective_field
from convcalc.spec.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 8


def torch_resnet18(torch, params: dict[str, dict[str, np.ndarray]]):
    """ResNet-18 features (conv1 .. layer4) with convcalc's weights, in inference mode."""
    nn = torch.nn

    def bn(c: int, path: str) -> nn.BatchNorm2d:
        m = nn.BatchNorm2d(c)
        m.load_state_dict({k: torch.from_numpy(v) for k, v in params[path].items()}, strict=False)
        return m

    def conv(cin: int, cout: int, k: int, s: int, p: int, path: str) -> nn.Conv2d:
        m = nn.Conv2d(cin, cout, k, s, p, bias=False)
        m.weight.data = torch.from_numpy(params[path]["weight"])
        return m

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, path: str) -> None:
            super().__init__()
            self.conv1 = conv(cin, cout, 3, stride, 1, f"{path}.conv1")
            self.bn1 = bn(cout, f"{path}.bn1")
            self.conv2 = conv(cout, cout, 3, 1, 1, f"{path}.conv2")
            self.bn2 = bn(cout, f"{path}.bn2")
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(conv(cin, cout, 1, stride, 0, f"{path}.downsample.0"),
                                          bn(cout, f"{path}.downsample.1"))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (self.down(x) if self.down is not None else x))

    layers = [conv(3, 64, 7, 2, 3, "conv1"), bn(64, "bn1"), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, (cout, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
        layers += [Basic(cin, cout, stride, f"layer{i}.0"), Basic(cout, cout, 1, f"layer{i}.1")]
        cin = cout
    return nn.Sequential(*layers).eval()


def torch_erf(torch, model, x: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(x).requires_grad_(True)
    y = model(xt)
    h, w = y.shape[2:]
    y[:, :, (h - 1) // 2, (w - 1) // 2].sum().backward()
    return xt.grad.abs().sum(1).mean(0).double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    options = parser.parse_args()

    network = parse_text((ROOT / "examples" / "resnet18.yaml").read_text(), "resnet18.yaml")
    graph = analyze(network).rows
    target = find(graph, "layer4.1.relu_out")
    e = explain(network, "layer4.1.relu_out")
    position = e.position
    # the radii are measured around the centre of the position's theoretical field, as `erf` does
    middle = tuple((a.theory[0] + a.theory[1]) / 2 for a in e.axes if a.theory)
    ours_times = []
    for _ in range(options.repeat):
        start = time.perf_counter()
        erf = effective_field(graph, network, target, position, middle, samples=SAMPLES)
        ours_times.append(time.perf_counter() - start)

    from convcalc.numeric.runner import input_array, trace

    x = input_array(network.input_shape, SAMPLES, 0)
    params = {s.path: s.params for s in trace(network, x[:1], save=False) if s.params}
    try:
        import torch
    except ImportError:
        print(f"convcalc: {min(ours_times):.2f} s (best of {options.repeat}); torch not installed")
        return
    if options.threads:
        torch.set_num_threads(options.threads)
    model = torch_resnet18(torch, params)
    torch_times = []
    for _ in range(options.repeat):
        start = time.perf_counter()
        reference = torch_erf(torch, model, x)
        torch_times.append(time.perf_counter() - start)
    scale = float(np.abs(reference).max())
    error = float(np.abs(erf.heat - reference).max()) / scale
    ours, theirs = min(ours_times), min(torch_times)
    print(f"ERF of resnet18 layer4.1.relu_out at 224x224, {SAMPLES} samples, float32,"
          f" torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"  convcalc (NumPy): {ours:.2f} s   PyTorch autograd: {theirs:.2f} s   ratio {ours / theirs:.2f}x"
          f"   (best of {options.repeat})")
    print(f"  max |difference| / max: {error:.1e}   radius 50%: {erf.radius50:.1f}  95%: {erf.radius95:.1f}")


if __name__ == "__main__":
    main()
