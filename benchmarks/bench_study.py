"""What `synthmed study` costs against the CLI calls it stands for, and what a cached rerun costs.

The same 4-cell grid (100 % real; + flipped copies for the two minority classes; the duplicates
control; the steps-matched control), every repeat through

  (a) `synthmed study STUDY.toml -o OUT` (one process), and
  (b) the equivalent sequence a careful user would type: per cell and repeat `synthmed mix`,
      `synthmed train`, `synthmed evaluate`, with the study's seeds (the steps control reads
      the scenario's steps from its config.json), each a new process,

then (c) the same study again into the same OUT, every repeat cached. Both sides use the same
machine and process count, one after the other; the sample data and the synthetic folder are
made once beforehand and not timed. The benchmark also checks that (a) and (b) give the same
test metrics.

    python benchmarks/bench_study.py [--quick] [--repeats 3] [--epochs 3]

Targets: (a) / (b) <= 1.05; (c) / (a) < 0.05.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINORITY = "MildDemented,ModerateDemented"


def synthmed(*args: object) -> str:
    result = subprocess.run([sys.executable, "-m", "synthmed", *map(str, args), "--quiet"], capture_output=True,
                            text=True, env=os.environ)
    if result.returncode != 0:
        raise SystemExit(f"synthmed {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout.strip()


def study_file(folder: Path, data: Path, flips: Path, repeats: int, epochs: int) -> Path:
    path = folder / "bench.toml"
    path.write_text(f"""name = "bench"
repeats = {repeats}
dataset = "{data}"
[sources.flips]
path = "{flips}"
[axes]
synthetic = [0, 0.3]
synthetic_classes = [["MildDemented", "ModerateDemented"]]
[train]
epochs = {epochs}
""")
    return path


def cli_sequence(work: Path, data: Path, flips: Path, repeats: int, epochs: int, counts: str) -> dict:
    """Every repeat of the 4 cells as separate CLI calls; returns test metrics per (cell, repeat).
    Each repeat mixes again with its own seed, as the study does (a fresh real sample per repeat)."""
    from synthmed.study.run import repeat_seed

    metrics = {}
    train = ["--classifier", "cnn-basic", "--epochs", epochs]
    for r in range(1, repeats + 1):
        seed = repeat_seed(0, r)
        cells = {
            "real 1": ["mix", data],
            "real 1 + flips": ["mix", data, flips, "--synthetic", "0.3", "--synthetic-classes", MINORITY],
            "duplicates": ["mix", data, "--oversample", counts],
        }
        for name, mix in cells.items():
            tag = f"{name.replace(' ', '_').replace('+', 'p')}-{r}"
            mixed = synthmed(*mix, "-o", work / f"mix-{tag}", "--seed", seed)
            run = synthmed("train", mixed, "-o", work / f"run-{tag}", *train, "--seed", seed)
            report = synthmed("evaluate", run, data, "-o", work / f"rep-{tag}", "--split", "test")
            metrics[(name, r)] = json.loads((Path(report) / "metrics.json").read_text())["summary"]
        steps = json.loads((work / f"run-real_1_p_flips-{r}" / "config.json").read_text())["training"]["steps"]
        mixed = synthmed("mix", data, "-o", work / f"mix-steps-{r}", "--seed", seed)
        run = synthmed("train", mixed, "-o", work / f"run-steps-{r}", *train[:2], "--epochs", 10**9,
                       "--patience", 10**9, "--max-steps", steps, "--seed", seed)
        report = synthmed("evaluate", run, data, "-o", work / f"rep-steps-{r}", "--split", "test")
        metrics[("steps", r)] = json.loads((Path(report) / "metrics.json").read_text())["summary"]
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and 2 repeats (a check, not a measurement)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    scale, repeats = (0.05, 2) if args.quick else (0.1, args.repeats)
    os.environ.setdefault("SYNTHMED_PLUGINS", "")
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        work = Path(tmp)
        data = Path(synthmed("sample-data", "-o", work / "data", "--size", 32, "--scale", scale))
        flips = Path(synthmed("augment", data, "-o", work / "flips", "--policy", "hflip", "--classes", MINORITY,
                              "--only-augmented"))
        study = study_file(work, data, flips, repeats, args.epochs)

        started = time.perf_counter()
        out = synthmed("study", study, "-o", work / "out")
        study_seconds = time.perf_counter() - started
        summary = json.loads((Path(out) / "summary.json").read_text())
        counts = next(c["oversample"] for c in summary["cells"] if c["role"] == "oversample")

        (work / "cli").mkdir()
        started = time.perf_counter()
        cli = cli_sequence(work / "cli", data, flips, repeats, args.epochs, counts)
        cli_seconds = time.perf_counter() - started

        started = time.perf_counter()
        synthmed("study", study, "-o", work / "out")
        cached_seconds = time.perf_counter() - started

        with open(Path(out) / "results.csv", newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["split"] == "test" and r["metric"] == "cross_entropy"]
        mine = {}
        for row in rows:
            name = {"oversample": "duplicates", "steps": "steps"}.get(row["role"]) or \
                ("real 1 + flips" if row["source"] else "real 1")
            mine[(name, int(row["repeat"]))] = float(row["value"])
        same = all(abs(mine[key] - cli[key]["cross_entropy"]["median"]) < 1e-6 for key in cli)
    cells = len(summary["cells"])
    print(f"study: {cells} cells x {repeats} repeats of cnn-basic ({args.epochs} epochs) on sample data at 32 px, "
          f"scale {scale}")
    print(f"  synthmed study (one process)        {study_seconds:8.1f} s")
    print(f"  equivalent CLI calls ({4 * repeats * 3} processes) {cli_seconds:8.1f} s")
    print(f"  ratio study / CLI                    {study_seconds / cli_seconds:8.3f}   (target <= 1.05)")
    print(f"  rerun, every repeat cached           {cached_seconds:8.1f} s = {cached_seconds / study_seconds:.1%} of the "
          "first run (target < 5 %)")
    print(f"  same test cross-entropy in every cell and repeat: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
