"""Speed of `convcalc shapes`: start-up against the import floor, and cost per layer.

Run: python3 benchmarks/shapes_bench.py [--runs N] [--examples resnet50 efficientnet_b0]

P1  `convcalc shapes examples/NAME.yaml` (output piped) against the bare import floor
    `python -c "import click, yaml, rich.table"`, run alternately, for ResNet-50 and
    EfficientNet-B0 (blocks, gates, skips); goal: ratio <= 1.3.
P2  a generated 10,000-layer spec to JSON; goal: <= 1 s, and a 40,000-layer spec at most
    5x that (cost linear in layers).
P3  a generated 10,000-layer graph with 2,000 long-range references (P2's layers, every fifth
    an add of the layer before it and the one 500 before, by path) to JSON, against P2's
    10,000-layer chain in the same run; goal: ratio <= 1.2. Also the ratio of CPU times, which
    a loaded machine disturbs less.
Times are medians of wall-clock runs of whole processes; the ratios are what to compare
across machines.
"""

from __future__ import annotations

import argparse
import os
import resource
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
    return timed(cmd)[0]


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock seconds of one run, and the CPU seconds (user + system) the process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def alternate(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median seconds per command, running them in turn so load affects all alike."""
    return alternate_cpu(commands, runs)[0]


def alternate_cpu(commands: dict[str, list[str]], runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall-clock and median CPU seconds per command, run in turn. On a shared machine
    the CPU time is the steadier of the two (waiting for a core is not counted)."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the file cache and .pyc files
        once(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            wall, cpu = timed(cmd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return ({name: statistics.median(t) for name, t in walls.items()},
            {name: statistics.median(t) for name, t in cpus.items()})


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


def generated_graph(layers: int, every: int = 5, reach: int = 500) -> str:
    """A valid graph of exactly `layers` layers: P2's conv/bn/relu triples, where every `every`-th
    item is instead an add of the item before it and the one `reach` items before (the input
    for the first ones), written by number as `from:` allows: `layers / every` long-range
    references, and the spec otherwise as close to the chain as a graph can be."""
    kinds = [
        "  - conv2d: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}",
        "  - batchnorm2d",
        "  - relu",
    ]
    lines = ["name: generated_graph", "input: [8, 16, 16]", "layers:"]
    chain = 0
    for i in range(layers):
        if i % every == every - 1:
            lines.append(f"  - add: {{from: [{i - 1}, {i - reach if i >= reach else 'input'}]}}")
        else:
            lines.append(kinds[chain % 3])
            chain += 1
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

    with tempfile.TemporaryDirectory() as tmp:
        chain, graph = Path(tmp) / "chain.yaml", Path(tmp) / "graph.yaml"
        chain.write_text(generated_spec(10_000))
        graph.write_text(generated_graph(10_000))
        p3, cpu = alternate_cpu({name: convcalc("shapes", str(p), "--format", "json")
                                 for name, p in (("chain", chain), ("graph", graph))}, max(9, args.runs))
    print(f"P3 10,000-layer chain      {p3['chain']:7.3f} s    (CPU {cpu['chain']:.3f} s)")
    print(f"P3 10,000-layer graph      {p3['graph']:7.3f} s    (CPU {cpu['graph']:.3f} s)   ratio"
          f" {p3['graph'] / p3['chain']:.2f}x, CPU {cpu['graph'] / cpu['chain']:.2f}x"
          " (2,000 long-range references; goal <= 1.2x)")


if __name__ == "__main__":
    main()
