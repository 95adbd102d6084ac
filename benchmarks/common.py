"""What the benchmarks share: where the real data is, and timing that takes turns.

The machine a benchmark runs on may be shared, so comparisons run their variants in turns
(A, B, A, B, ...) and compare medians: a change in load then hits every variant alike. With
`alternate=True` every other round runs them in reverse (A, B, B, A, ...), so no variant always
follows the same one (and inherits what it leaves behind: caches, freed disk space, memory).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's synthmed first


def shared_data(name: str) -> Path:
    """../shared/data/NAME of the project root, or of the folder holding this worktree."""
    for root in (REPO.parent, REPO.parent.parent):
        candidate = root / "shared" / "data" / name
        if candidate.exists():
            return candidate
    return REPO.parent / "shared" / "data" / name


def interleaved(variants: dict[str, Callable[[], float]], rounds: int, *, alternate: bool = False
                ) -> dict[str, list[float]]:
    """Run every variant once per round, in turns; each call returns the seconds it measured.

    `alternate`: odd rounds run the variants in reverse order (A B, B A, A B, ...), so each one
    follows every other equally often instead of always the same one."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for number in range(rounds):
        for name in reversed(order) if alternate and number % 2 else order:
            times[name].append(variants[name]())
    return times


def summary(values: list[float]) -> str:
    """`median (min-max, n)` of some seconds."""
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f}, n={len(values)})"


def add_threads_option(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every variant alike (default: torch's own); 1 on a machine "
                             "other jobs share, where spinning OpenMP threads cost several times their work")


def apply_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
