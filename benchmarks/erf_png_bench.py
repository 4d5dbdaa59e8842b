"""`erf --png` against `erf` alone, on a 1D audio net of 16,000 samples and a 2D U-Net corner.

Run: python3 benchmarks/erf_png_bench.py [--runs N]

The figure is drawn over the theoretical field plus a margin, so its cost follows the field
(1,772 samples here), not the input; goal: `erf --png` takes at most 2x the time of `erf`.
Times are medians of wall-clock runs of whole processes (NumPy and matplotlib imports included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

AUDIO = """\
name: audio_m5
input: [1, 16000]
layers:
  - conv1d: {out_channels: 32, kernel_size: 80, stride: 4}
  - batchnorm1d
  - relu
  - maxpool1d: {kernel_size: 4}
  - conv1d: {out_channels: 32, kernel_size: 3}
  - batchnorm1d
  - relu
  - maxpool1d: {kernel_size: 4}
  - conv1d: {out_channels: 64, kernel_size: 3}
  - batchnorm1d
  - relu
  - maxpool1d: {kernel_size: 4}
  - conv1d: {out_channels: 64, kernel_size: 3}
  - batchnorm1d
  - relu
  - maxpool1d: {kernel_size: 4}
  - adaptiveavgpool1d: {output_size: 1}
  - flatten
  - linear: {out_features: 35}
"""


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convcalc", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "audio.yaml"
        spec.write_text(AUDIO)
        png = Path(tmp) / "erf.png"
        plain, figure = [], []
        timed(["erf", str(spec), "--png", str(png)], env)  # warm caches (matplotlib's font list)
        for _ in range(runs):  # alternately, so load on the machine hits both alike
            plain.append(timed(["erf", str(spec), "-f", "json"], env))
            figure.append(timed(["erf", str(spec), "-f", "json", "--png", str(png)], env))
    a, b = statistics.median(plain), statistics.median(figure)
    print(f"erf         {a:.2f} s")
    print(f"erf --png   {b:.2f} s   ratio {b / a:.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
