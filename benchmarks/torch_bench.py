"""Speed of `convcalc.torch.build` and of `convcalc export`.

Run: python3 benchmarks/torch_bench.py [--runs N]   (needs torch for T1)

T1  `build("examples/resnet50.yaml")` against the constructor of the plain torch.nn copy of
    torchvision's resnet50 in scripts/make_torch_models.py (torchvision itself is not
    importable on these machines), in the same process, alternately; goal: ratio <= 1.5.
    Both initialise 25.6 M weights, which is most of the time; build also reads, checks
    and analyses the spec.
T2  `convcalc export examples/resnet50.yaml --to pytorch` against `convcalc shapes
    examples/resnet50.yaml` as whole processes (output discarded), alternately; goal:
    ratio <= 1.3. The exporter imports neither torch nor NumPy.
Times are medians; the ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = ROOT / "examples" / "resnet50.yaml"
# This tree's convcalc, whatever is installed; bytecode cached as for an installed program.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": str(ROOT / "src")}


def median_pair(first: Callable[[], object], second: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median seconds of each, run in turn (so load affects both alike), after a warm-up."""
    first(), second()
    a, b = [], []
    for _ in range(runs):
        for fn, times in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def process(*args: str) -> Callable[[], object]:
    cmd = [sys.executable, "-m", "convcalc", *args]
    return lambda: subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)


def build_ratio(runs: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    try:
        import torch
    except ImportError:
        print("T1 skipped: torch is not installed (pip install torch==2.13.0)")
        return
    from convcalc.torch import build

    spec = importlib.util.spec_from_file_location("make_torch_models", ROOT / "scripts" / "make_torch_models.py")
    assert spec and spec.loader
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    make_resnet50 = models.MODELS["resnet50"][0]
    torch.manual_seed(0)
    plain, built = median_pair(make_resnet50, lambda: build(RESNET50), runs)
    print(f"T1 resnet50 constructor (plain torch.nn)  {plain * 1000:7.1f} ms")
    print(f"T1 build(resnet50.yaml)                   {built * 1000:7.1f} ms   ratio {built / plain:.2f}x"
          " (goal <= 1.5x)")


def export_ratio(runs: int) -> None:
    shapes, export = median_pair(process("shapes", str(RESNET50)),
                                 process("export", str(RESNET50), "--to", "pytorch"), runs)
    print(f"T2 convcalc shapes resnet50.yaml          {shapes * 1000:7.1f} ms")
    print(f"T2 convcalc export resnet50.yaml          {export * 1000:7.1f} ms   ratio {export / shapes:.2f}x"
          " (goal <= 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each side (median)")
    args = parser.parse_args()
    build_ratio(args.runs)
    export_ratio(args.runs)


if __name__ == "__main__":
    main()
