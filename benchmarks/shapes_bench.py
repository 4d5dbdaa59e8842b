"""Speed of `convcalc shapes`: start-up against the import floor, and cost per layer.

Run: python3 benchmarks/shapes_bench.py [--runs N] [--examples resnet50 efficientnet_b0]

P1  `convcalc shapes examples/NAME.yaml` (output piped) against the bare import floor
    `python -c "import click, yaml, rich.table"`, run alternately, for ResNet-50 and
    EfficientNet-B0 (blocks, gates, skips); goal: ratio <= 1.3.
P2  a generated 10,000-layer spec to JSON; goal: <= 1 s, and a 40,000-layer spec at most
    5x that (cost linear in layers).
Times are medians of wall-clock runs of whole processes; the ratios are what to compare
across machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = [sys.executable, "-c", "import click, yaml, rich.table"]


def convcalc(*args: str) -> list[str]:
    exe = shutil.which("convcalc")
    return [exe, *args] if exe else [sys.executable, "-m", "convcalc", *args]


# Both sides run as an installed program would: with cached bytecode (a shell that sets
# PYTHONDONTWRITEBYTECODE would make convcalc recompile itself on every run, while the
# floor's packages in site-packages were compiled at install time).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - start


def alternate(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median seconds per command, running them in turn so load affects all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the file cache and .pyc files
        once(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(once(cmd))
    return {name: statistics.median(t) for name, t in times.items()}


def generated_spec(layers: int) -> str:
    """A valid spec of exactly `layers` leaf layers: conv/bn/relu triples on a small input."""
    kinds = [
        "  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}",
        "  - batchnorm2d",
        "  - relu",
    ]
    lines = ["name: generated", "input: [8, 16, 16]", "layers:"]
    lines += [kinds[i % 3] for i in range(layers)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (median)")
    parser.add_argument("--examples", nargs="*", default=["resnet50", "efficientnet_b0"],
                        help="examples whose `shapes` start-up is compared with the import floor")
    args = parser.parse_args()

    commands = {"floor": FLOOR}
    for name in args.examples:
        spec = ROOT / "examples" / f"{name}.yaml"
        if not spec.exists():  # pragma: no cover - examples ship with the repo
            sys.exit(f"{spec} is missing")
        commands[name] = convcalc("shapes", str(spec))
    p1 = alternate(commands, args.runs)
    print(f"P1 import floor                   {p1['floor'] * 1000:7.1f} ms")
    for name in args.examples:
        ratio = p1[name] / p1["floor"]
        print(f"P1 shapes {name + '.yaml':23s} {p1[name] * 1000:7.1f} ms   ratio {ratio:.2f}x (goal <= 1.3x)")

    with tempfile.TemporaryDirectory() as tmp:
        specs = {}
        for n in (10_000, 40_000):
            path = Path(tmp) / f"gen{n}.yaml"
            path.write_text(generated_spec(n))
            specs[n] = path
        p2 = alternate({n: convcalc("shapes", str(p), "--format", "json") for n, p in specs.items()},
                       max(3, args.runs // 5))
    print(f"P2 10,000 layers to JSON          {p2[10_000]:7.3f} s    (goal <= 1 s)")
    print(f"P2 40,000 layers to JSON          {p2[40_000]:7.3f} s    {p2[40_000] / p2[10_000]:.2f}x the 10,000-layer"
          " time (goal <= 5x)")


if __name__ == "__main__":
    main()
