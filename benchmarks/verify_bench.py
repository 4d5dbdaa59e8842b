"""Speed and memory of `--verify`: convcalc's NumPy forward pass against PyTorch's, side by side.

    python3 benchmarks/verify_bench.py [--runs 5] [--nets resnet50 vgg16 mobilenet_v2 efficientnet_b0 convnext_tiny]

For each example network at its spec's input size, batch 1, float32: the forward pass of
convcalc (`numeric.runner.run`, weights drawn beforehand) and of the same network in torch
with the same weights, with `torch.set_num_threads` equal to NumPy's BLAS thread count: for
the torchvision networks whose copies in scripts/make_torch_models.py carry torchvision's
module paths (EfficientNet-B0, ConvNeXt-T, ...), that copy, weights loaded by path; for the
others the network built in torch.nn from the spec (tests/torch_oracle.py). One warm-up
each, then the two alternate `--runs` times (so machine load hits both alike); medians are
reported, and the outputs are compared. Goal: convcalc <= 2x PyTorch (ResNet-50,
EfficientNet-B0, ConvNeXt-T).

Then the whole command `convcalc shapes examples/resnet50.yaml --verify` (weights drawn,
shapes checked), as a fresh process: wall time and peak RSS from /usr/bin/time (else
getrusage, an upper bound). Goals: a few seconds, <= 1.5 GB.
Without torch only convcalc's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from convcalc.analysis import analyze  # noqa: E402
from convcalc.numeric.kernels import layer_params  # noqa: E402
from convcalc.numeric.runner import input_array, param_rng, run  # noqa: E402
from convcalc.spec.parser import parse_text  # noqa: E402


def blas_threads() -> int:
    """NumPy's BLAS threads: the usual environment variables, else OpenBLAS's default (all cores)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def params_for(network, report) -> dict:
    shapes = {r.path: r.input_shape for r in report.rows}
    return {leaf.path: layer_params(leaf.type, leaf.args, shapes[leaf.path], param_rng(0, leaf.path))
            for leaf in network.leaves()}


# Torch copies of torchvision's classes with torchvision's module paths (state_dict keys).
TORCHVISION_COPIES = ("efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_x1_0",
                      "convnext_tiny", "regnet_y_400mf")


def torchvision_copy(name: str, params: dict, torch):
    """The copy of torchvision's model `name`, in eval mode, holding convcalc's weights."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_torch_models", ROOT / "scripts" / "make_torch_models.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.MODELS[name][0]().eval()
    state = {}
    for path, values in params.items():
        for key, value in values.items():  # a layer scale is the block's own (C, 1, 1) parameter
            state[path if key == "gamma" else f"{path}.{key}"] = torch.from_numpy(
                value.reshape(-1, 1, 1) if key == "gamma" else np.ascontiguousarray(value))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return model


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_network(name: str, runs: int, torch) -> None:
    path = ROOT / "examples" / f"{name}.yaml"
    if not path.exists():
        print(f"{name:14s} (examples/{name}.yaml not found, skipped)")
        return
    network = parse_text(path.read_text(), path.name)
    report = analyze(network)
    params = params_for(network, report)
    x = input_array(network.input_shape, 1, seed=0)

    def ours():
        return run(network, x, lambda step: None, params=params)

    y = ours()  # warm-up
    ours_times, torch_times = [], []
    if torch is not None:
        from torch_oracle import torch_network

        if name in TORCHVISION_COPIES:
            model = torchvision_copy(name, params, torch)
        else:
            model = torch_network(network, report, params)
        tx = torch.from_numpy(x)
        with torch.no_grad():
            ty = model(tx).numpy()  # warm-up
            for _ in range(runs):
                ours_times.append(timed(ours))
                torch_times.append(timed(lambda: model(tx)))
        err = float(np.abs(y - ty).max() / max(1.0, np.abs(ty).max()))
    else:
        ours_times = [timed(ours) for _ in range(runs)]
    a = statistics.median(ours_times)
    line = f"{name:14s} {'x'.join(map(str, network.input_shape)):>10s}  convcalc {a * 1000:8.1f} ms"
    if torch_times:
        b = statistics.median(torch_times)
        line += f"   torch {b * 1000:8.1f} ms   ratio {a / b:5.2f}x   max rel. diff {err:.1e}"
    print(line, flush=True)


def bench_command(runs: int) -> None:
    exe = shutil.which("convcalc")
    cmd = [exe] if exe else [sys.executable, "-m", "convcalc"]
    cmd += ["shapes", str(ROOT / "examples" / "resnet50.yaml"), "--verify"]
    if not (ROOT / "examples" / "resnet50.yaml").exists():
        return
    # /usr/bin/time measures the command alone; getrusage's children figure can include pages
    # the forked child shared with this process (NumPy, torch) before it exec'd.
    gnu_time = Path("/usr/bin/time")
    prefix = [str(gnu_time), "-f", "%M"] if gnu_time.exists() else []
    walls, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(prefix + cmd, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            print(done.stderr)
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}")
        if prefix:
            peaks.append(int(done.stderr.strip().splitlines()[-1]))  # KiB
        else:
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB, an upper bound
    print(f"\n`convcalc shapes examples/resnet50.yaml --verify`: median {statistics.median(walls):.2f} s"
          f" wall over {runs} runs, peak RSS {max(peaks) / 1024:.0f} MiB (goals: a few seconds, <= 1536 MiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nets", nargs="*",
                        default=["resnet50", "vgg16", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"])
    opts = parser.parse_args()
    threads = blas_threads()
    try:
        import torch

        torch.set_num_threads(threads)
        version = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch = None
        version = "torch not installed: convcalc only"
    print(f"NumPy {np.__version__} ({threads} BLAS threads); {version}; batch 1, float32,"
          f" median of {opts.runs} alternating runs\n", flush=True)
    bench_command(3)  # first: RUSAGE_CHILDREN then holds only the command's own peak
    print()
    for name in opts.nets:
        bench_network(name, opts.runs, torch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
