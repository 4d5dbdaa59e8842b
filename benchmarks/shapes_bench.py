"""Speed of `convcalc shapes`: start-up against the import floor, and cost per layer.

Run: python3 benchmarks/shapes_bench.py [--runs N] [--scale-runs N] [--only startup|scale]
         [--examples resnet50 efficientnet_b0]

Every command runs as a whole process, both sides with the same interpreter (`sys.executable`)
and the same environment, in turn in each round so that load on the machine affects both
alike; times are medians of wall-clock runs, and the ratios are what to compare across
machines: each is the median over rounds of the two commands' times in the same round (paired,
so a slow spell of a shared machine, which slows both, cancels out). Each line also gives the
ratio of CPU times, user + system, which waiting for a core on a busy machine does not
inflate. convcalc runs as its console script next to `sys.executable` (not a shell shim found
on PATH), else as `python -m convcalc`, importing the convcalc of this checkout (`src/` is put
on PYTHONPATH); cached bytecode is allowed on both sides.

P1  start-up, against what the command cannot avoid importing (--runs, default 15):
    - `convcalc shapes examples/resnet50.yaml`, stdout a pipe, against
      `python -c "import click, yaml"`; goal: ratio <= 1.3;
    - the same on a terminal, against `python -c "import click, yaml, rich.table"`: both run
      with stdout and stderr on a pseudo-terminal (Python's `pty`, 120x50 characters,
      TERM=xterm-256color, no COLUMNS, NO_COLOR or FORCE_COLOR), where convcalc draws the
      coloured table fitted to the width; goal: ratio <= 1.3;
    - `convcalc --help` and `convcalc --version` against `python -c "import click"`;
      goal: ratio <= 1.15.
    The first example carries the goals; further ones (EfficientNet-B0: 256 rows, gates,
    expressions) show how the ratio grows with the work.
P2  scale (--scale-runs, default a third of --runs): a generated 10,000-layer spec to JSON
    against libyaml composing the same file (`yaml.compose(text, Loader=yaml.CSafeLoader)`
    in its own process, in the same run); goal: ratio <= 1.5. Then the 40,000-layer spec
    against the 10,000-layer one; goal: ratio <= 4.4 (cost linear in layers). For three specs:
    - chain: conv/bn/relu triples, one line each;
    - graph: the same, every fifth item an add of the item before it and the one 500 before
      (2,000 long references per 10,000 layers, written by number as `from:` allows);
    - depth: the chain as 100-layer `sequential` groups of 5-layer `sequential` groups, with
      `--depth 2` (JSON gains a group row per group).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PIPED_FLOOR = [sys.executable, "-c", "import click, yaml"]
TERMINAL_FLOOR = [sys.executable, "-c", "import click, yaml, rich.table"]
HELP_FLOOR = [sys.executable, "-c", "import click"]
COMPOSE = [sys.executable, "-c",
           "import sys, yaml; yaml.compose(open(sys.argv[1], encoding='utf-8').read(), Loader=yaml.CSafeLoader)"]


def convcalc(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "convcalc"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "convcalc", *args]


# Both sides run as an installed program would: with cached bytecode (a shell that sets
# PYTHONDONTWRITEBYTECODE would make convcalc recompile itself on every run, while the
# floor's packages in site-packages were compiled at install time), and with this checkout's
# convcalc first on the path.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "NO_COLOR", "FORCE_COLOR")}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
TTY_ENV = {k: v for k, v in ENV.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm-256color"}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def piped(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run with stdout a pipe (read to the end)."""
    before, start = cpu_of_children(), time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - start, cpu_of_children() - before


def on_terminal(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one run with stdout and stderr a 120x50 pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
    before, start = cpu_of_children(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=TTY_ENV)
    os.close(slave)
    with contextlib.suppress(OSError):  # EIO once the child has closed its end
        while os.read(master, 65536):
            pass
    status = proc.wait()
    wall = time.perf_counter() - start
    os.close(master)
    if status != 0:
        raise subprocess.CalledProcessError(status, cmd)
    return wall, cpu_of_children() - before


Run = Callable[[list[str]], tuple[float, float]]


class Times:
    """Wall-clock and CPU seconds of each command, one of each per round."""

    def __init__(self, walls: dict[str, list[float]], cpus: dict[str, list[float]]) -> None:
        self.walls, self.cpus = walls, cpus

    def wall(self, name: str) -> float:
        return statistics.median(self.walls[name])

    def cpu(self, name: str) -> float:
        return statistics.median(self.cpus[name])

    def ratio(self, name: str, floor: str, cpu: bool = False) -> float:
        """The median over rounds of `name`'s time over `floor`'s in the same round: paired, so a
        slow spell of the machine, which slows both commands of a round, cancels out."""
        times = self.cpus if cpu else self.walls
        return statistics.median(a / b for a, b in zip(times[name], times[floor]))


def alternate(commands: dict[str, tuple[Run, list[str]]], runs: int) -> Times:
    """Every command timed `runs` times, in turn in each round so load affects all alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for how, cmd in commands.values():  # warm the file cache and .pyc files
        how(cmd)
    for _ in range(runs):
        for name, (how, cmd) in commands.items():
            wall, cpu = how(cmd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return Times(walls, cpus)


KINDS = [
    "conv2d: {out_channels: 8, kernel_size: 3, padding: 1, bias: false}",
    "batchnorm2d",
    "relu",
]


def generated_spec(layers: int) -> str:
    """A valid spec of exactly `layers` leaf layers: conv/bn/relu triples on a small input."""
    lines = ["name: generated", "input: [8, 16, 16]", "layers:"]
    lines += [f"  - {KINDS[i % 3]}" for i in range(layers)]
    return "\n".join(lines) + "\n"


def generated_graph(layers: int, every: int = 5, reach: int = 500) -> str:
    """A valid graph of exactly `layers` layers: the chain's conv/bn/relu triples, where every
    `every`-th item is instead an add of the item before it and the one `reach` items before
    (the input for the first ones), written by number as `from:` allows: `layers / every`
    long-range references, and the spec otherwise as close to the chain as a graph can be."""
    lines = ["name: generated_graph", "input: [8, 16, 16]", "layers:"]
    chain = 0
    for i in range(layers):
        if i % every == every - 1:
            lines.append(f"  - add: {{from: [{i - 1}, {i - reach if i >= reach else 'input'}]}}")
        else:
            lines.append(f"  - {KINDS[chain % 3]}")
            chain += 1
    return "\n".join(lines) + "\n"


def generated_nested(layers: int, outer: int = 100, inner: int = 5) -> str:
    """A valid spec of exactly `layers` layers (a multiple of `outer`): the chain's layers in
    `sequential` groups of `outer` layers, each made of `sequential` groups of `inner`."""
    lines = ["name: generated_nested", "input: [8, 16, 16]", "layers:"]
    for i in range(layers):
        if i % outer == 0:
            lines.append("  - sequential:")
        if i % inner == 0:
            lines.append("    - sequential:")
        lines.append(f"      - {KINDS[i % 3]}")
    return "\n".join(lines) + "\n"


def ratio(value: float, goal: float) -> str:
    return f"ratio {value:5.2f}x (goal <= {goal}x: {'met' if value <= goal else 'NOT met'})"


def startup(examples: list[str], runs: int) -> None:
    commands: dict[str, tuple[Run, list[str]]] = {
        "piped floor": (piped, PIPED_FLOOR),
        "terminal floor": (on_terminal, TERMINAL_FLOOR),
        "help floor": (piped, HELP_FLOOR),
        "--help": (piped, convcalc("--help")),
        "--version": (piped, convcalc("--version")),
    }
    for name in examples:
        spec = ROOT / "examples" / f"{name}.yaml"
        if not spec.exists():  # pragma: no cover - examples ship with the repo
            sys.exit(f"{spec} is missing")
        commands[f"{name} piped"] = (piped, convcalc("shapes", str(spec)))
        commands[f"{name} terminal"] = (on_terminal, convcalc("shapes", str(spec)))
    times = alternate(commands, runs)

    def line(label: str, name: str, floor: str, goal: float | None) -> None:
        vs = times.ratio(name, floor)
        shown = ratio(vs, goal) if goal is not None else f"ratio {vs:5.2f}x (for reference)"
        cpu = times.ratio(name, floor, cpu=True)
        print(f"P1 {label:44s} {times.wall(name) * 1000:6.1f} ms  {shown}, CPU {cpu:.2f}x")

    for floor, code in (("piped floor", "import click, yaml"), ("terminal floor", "import click, yaml, rich.table"),
                        ("help floor", "import click")):
        wall, cpu = times.wall(floor) * 1000, times.cpu(floor) * 1000
        print(f"P1 floor python -c {code!r:32s} {wall:6.1f} ms  (CPU {cpu:.1f} ms)")
    for i, name in enumerate(examples):
        for how, floor in (("piped", "piped floor"), ("terminal", "terminal floor")):
            # The issue's goal is ResNet-50's; the other examples show how the ratio grows with work.
            line(f"shapes {name}.yaml, {how}", f"{name} {how}", floor, 1.3 if i == 0 else None)
    for flag in ("--help", "--version"):
        line(f"convcalc {flag}", flag, "help floor", 1.15)


CASES = {"chain": "10,000-layer chain", "graph": "10,000 layers, 2,000 references",
         "depth": "10,000 layers in groups, --depth 2"}


def scale_line(case: str, times: Times, label: str, name: str, to: str | None = None, goal: float = 0.0) -> None:
    text = f"P2 {case:5s} {label:43s} {times.wall(name):6.3f} s (CPU {times.cpu(name):.3f} s)"
    if to is not None:
        text += f"  {ratio(times.ratio(name, to), goal)}, CPU {times.ratio(name, to, cpu=True):.2f}x"
    print(text)


def scale(runs: int) -> None:
    cases = {
        "chain": (generated_spec, ()),
        "graph": (generated_graph, ()),
        "depth": (generated_nested, ("--depth", "2")),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for case, (generate, extra) in cases.items():
            commands: dict[str, tuple[Run, list[str]]] = {}
            for n in (10_000, 40_000):
                path = Path(tmp) / f"{case}{n}.yaml"
                path.write_text(generate(n), encoding="utf-8")
                commands[str(n)] = (piped, convcalc("shapes", str(path), "--format", "json", *extra))
                if n == 10_000:
                    commands["compose"] = (piped, [*COMPOSE, str(path)])
            times = alternate(commands, runs)
            scale_line(case, times, "libyaml composes the 10,000-layer file", "compose")
            scale_line(case, times, f"{CASES[case]} to JSON", "10000", "compose", 1.5)
            scale_line(case, times, "the same with 40,000 layers", "40000", "10000", 4.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per start-up command (median)")
    parser.add_argument("--scale-runs", type=int, default=None,
                        help="timed runs per scale command (default: a third of --runs, at least 3)")
    parser.add_argument("--examples", nargs="*", default=["resnet50", "efficientnet_b0"],
                        help="examples whose `shapes` start-up is compared with the import floors")
    parser.add_argument("--only", choices=["startup", "scale"], help="run one part")
    args = parser.parse_args()
    if args.only != "scale":
        startup(args.examples, args.runs)
    if args.only != "startup":
        scale(args.scale_runs or max(3, args.runs // 3))


if __name__ == "__main__":
    main()
