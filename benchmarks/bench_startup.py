"""Start-up cost of the CLI: `synthmed --help` and `--version` against `python -c pass`.

What a user pays before any work starts. The baseline is a bare interpreter start of the
same Python (same site-packages, same environment); the floor is importing the libraries
every Typer CLI with plugins loads (typer and pluggy). The commands are run interleaved,
one of each per round, so a change in the machine's load falls on all of them alike;
medians over the rounds, with the interquartile range. Target: `--help` <= 6x `python -c pass`.

    python benchmarks/bench_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PY = sys.executable
COMMANDS = {
    "python -c pass": [PY, "-c", "pass"],
    "import typer, pluggy": [PY, "-c", "import typer, pluggy"],
    "synthmed --version": [PY, "-m", "synthmed", "--version"],
    "synthmed --help": [PY, "-m", "synthmed", "--help"],
}


def run_once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="7 rounds")
    parser.add_argument("--torch", action="store_true", help="also time `import torch` (what --help would cost with it)")
    args = parser.parse_args()
    rounds = 7 if args.quick else args.runs
    # Installed third-party plugins load as they would for the user, unless SYNTHMED_PLUGINS says otherwise.
    env = dict(os.environ)
    commands = dict(COMMANDS)
    if args.torch:
        commands["import torch"] = [PY, "-c", "import torch"]
    for command in commands.values():  # warm the file cache; not counted
        run_once(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(rounds):
        names = list(commands)
        names = names[round_ % len(names):] + names[: round_ % len(names)]  # rotate who goes first
        for name in names:
            times[name].append(run_once(commands[name], env))
    bare = statistics.median(times["python -c pass"])
    print(f"{'command':24} {'median ms':>10} {'IQR ms':>15} {'x python -c pass':>17}   ({rounds} rounds, interleaved)")
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        median = statistics.median(values)
        print(f"{name:24} {median * 1000:10.1f} {q1 * 1000:7.1f}-{q3 * 1000:<7.1f} {median / bare:16.2f}x")
    ratio = statistics.median(times["synthmed --help"]) / bare
    print(f"ratio synthmed --help / python -c pass: {ratio:.2f}x (target <= 6x)")


if __name__ == "__main__":
    main()
