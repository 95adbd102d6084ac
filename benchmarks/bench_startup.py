"""Start-up cost of the CLI: `synthmed --help` against `python -c pass`, measured in one run.

`synthmed --help` must not import torch (the CLI defers heavy imports), so it should cost a
small multiple of a bare interpreter start. Prints the median of several runs of each and
the ratio.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    env = dict(os.environ, SYNTHMED_PLUGINS=os.environ.get("SYNTHMED_PLUGINS", ""))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    bare = median_seconds([sys.executable, "-c", "pass"], runs)
    help_ = median_seconds([sys.executable, "-m", "synthmed", "--help"], runs)
    import_torch = median_seconds([sys.executable, "-c", "import torch"], max(3, runs // 3))
    print(f"python -c pass        {bare * 1000:8.1f} ms")
    print(f"synthmed --help       {help_ * 1000:8.1f} ms")
    print(f"python -c 'import torch' {import_torch * 1000:5.1f} ms  (what --help would cost if it imported torch)")
    print(f"ratio synthmed --help / python -c pass: {help_ / bare:.2f}x")
    print(f"ratio synthmed --help / import torch:   {help_ / import_torch:.2f}x")


if __name__ == "__main__":
    main()
