"""Start-up cost of the CLI: `synthmed --help` and `--version` against `python -c pass`.

What a user pays before any work starts. The baseline is a bare interpreter start of the
same Python (same site-packages, same environment); the floor is importing the libraries
every Typer CLI with plugins loads (typer and pluggy). The commands are run interleaved,
one of each per round, so a change in the machine's load falls on all of them alike;
medians over the rounds, with the interquartile range, of the wall time and of the CPU time
(user + system) of the child process, which other processes' load disturbs less.
Target: `--help` <= 6x `python -c pass`.

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


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


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
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(rounds):
        names = list(commands)
        names = names[round_ % len(names):] + names[: round_ % len(names)]  # rotate who goes first
        for name in names:
            seconds, cpu_seconds = run_once(commands[name], env)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    print(f"{rounds} rounds, interleaved; median (IQR) in ms, and the median as a multiple of python -c pass")
    print(f"{'command':24} {'wall':>24} {'x':>7} {'cpu':>24} {'x':>7}")
    for name in commands:
        cells = []
        for table in (wall, cpu):
            q1, _, q3 = statistics.quantiles(table[name], n=4)
            ratio = statistics.median(table[name]) / statistics.median(table["python -c pass"])
            cells.append(f"{statistics.median(table[name]) * 1000:8.1f} ({q1 * 1000:6.1f}-{q3 * 1000:6.1f}) {ratio:6.2f}x")
        print(f"{name:24} {cells[0]} {cells[1]}")
    for label, table in (("wall", wall), ("cpu", cpu)):
        ratio = statistics.median(table["synthmed --help"]) / statistics.median(table["python -c pass"])
        print(f"ratio synthmed --help / python -c pass ({label}): {ratio:.2f}x (target <= 6x)")


if __name__ == "__main__":
    main()
