"""Speed of `convcalc sweep`: 64 input sizes against one `convcalc shapes` run.

Run: python3 benchmarks/sweep_bench.py [--runs N]

S1  `convcalc sweep examples/resnet50.yaml --size 32:2048:32` (64 sizes, table piped)
    against `convcalc shapes examples/resnet50.yaml`, run alternately; goal: ratio <= 3.
    The sweep parses the spec once and re-runs shape inference (and the training-memory
    walk) per size; parsing per size would cost about 64 parses.
S2  the same sweep in-process, per size: analysis and training memory of one size, and
    what one parse of the spec costs, for comparison.
Times are medians of wall-clock runs of whole processes (S1) or of calls (S2); the ratio
is what to compare across machines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "resnet50.yaml"
SIZES = "32:2048:32"

# As in shapes_bench: both sides run with cached bytecode, as an installed program would; and
# both run this checkout's source (an installed convcalc may be another version).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])


def convcalc(*args: str) -> list[str]:
    return [sys.executable, "-m", "convcalc", *args]


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


def in_process(runs: int) -> tuple[float, float, float]:
    """(seconds per size of the sweep, seconds of one parse, seconds of the whole 64-size sweep)."""
    sys.path.insert(0, str(ROOT / "src"))
    from convcalc.load import load_network
    from convcalc.sweep import parse_values, sweep_sizes

    sizes = parse_values(SIZES, "--size")
    parses, sweeps = [], []
    for _ in range(runs):
        start = time.perf_counter()
        network = load_network(str(SPEC))
        parses.append(time.perf_counter() - start)
        start = time.perf_counter()
        sweep_sizes(network, sizes)
        sweeps.append(time.perf_counter() - start)
    sweep = statistics.median(sweeps)
    return sweep / len(sizes), statistics.median(parses), sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="timed runs per command (median)")
    args = parser.parse_args()

    s1 = alternate({"shapes": convcalc("shapes", str(SPEC)),
                    "sweep": convcalc("sweep", str(SPEC), "--size", SIZES)}, args.runs)
    ratio = s1["sweep"] / s1["shapes"]
    print(f"S1 shapes resnet50.yaml              {s1['shapes'] * 1000:7.1f} ms")
    print(f"S1 sweep resnet50.yaml --size {SIZES} {s1['sweep'] * 1000:7.1f} ms   ratio {ratio:.2f}x (goal <= 3x)")
    per_size, parse, whole = in_process(max(3, args.runs // 2))
    print(f"S2 in-process: {per_size * 1000:.2f} ms per size ({whole * 1000:.0f} ms for 64), one parse"
          f" {parse * 1000:.1f} ms (64 parses would add {64 * parse * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
