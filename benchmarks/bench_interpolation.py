"""Does latent interpolation help a classifier more than pixel-space mixup of the same parents?

On the sample dataset, train the same classifier (`synthmed train --classifier cnn-basic
--repeats R`) on three train sets and evaluate each on the real test split
(`synthmed evaluate --json`, median over the repeats):

    none    the real images only
    mixup   real + pixel-space mixtures of exactly the parents and weights of the interpolants
    interp  real + `synthmed interpolate` outputs (latent mixtures, decoded)

and print the ratios interp/none and interp/mixup of balanced accuracy and macro F1 (and
cross-entropy, lower is better).

    python benchmarks/bench_interpolation.py [--quick] [--repeats 5] [--device cpu]

Needs `synthmed train` and `synthmed evaluate` (the train issue); without them it stops
with a message saying so.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the dataset-building helpers use this checkout's synthmed
METRICS = ("balanced_accuracy", "macro_f1", "accuracy", "cross_entropy")


def synthmed(*args: object, capture: bool = True) -> str:
    """Run `python -m synthmed ARGS` with this checkout first on the path; stdout on success."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "synthmed", *map(str, args)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise SystemExit(f"bench_interpolation: `synthmed {' '.join(map(str, args))}` failed: {' '.join(detail)}")
    return result.stdout


def require_commands(names: list[str]) -> None:
    """Stop with a clear message when a command this benchmark drives is not installed."""
    from synthmed.cli import BUILTIN_COMMANDS

    known = {name for name, _, _ in BUILTIN_COMMANDS}
    missing = [name for name in names if name not in known]
    if missing:
        raise SystemExit(
            f"bench_interpolation: `synthmed {' / '.join(missing)}` is not available in this checkout "
            "(it comes with the train/evaluate issue); merge it, then run this benchmark again"
        )


def read_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def augmented_dataset(real: Path, extra: Path | None, out: Path) -> Path:
    """`real` with every row of `extra` (synthetic train rows) added: the `none` + X train set.
    Files are hard-linked, so this is cheap."""
    from synthmed.data import Dataset, DatasetWriter

    data = Dataset.open(real)
    parents = [real] + ([extra] if extra else [])
    with DatasetWriter(out, classes=data.classes, command="bench-interpolation", parents=parents) as writer:
        for row in data.rows:
            writer.add_file(data.path_of(row), row)
        if extra is not None:
            synthetic = Dataset.open(extra)
            for row in synthetic.rows:
                writer.add_file(synthetic.path_of(row), row)
    return out


def pixel_mixup(parents: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of stored parent images (n, C, H, W) -> one image of the same dtype."""
    info = np.iinfo(parents.dtype)
    mixed = np.tensordot(np.asarray(weights, dtype=np.float64), parents.astype(np.float64), axes=1)
    return np.clip(np.round(mixed), info.min, info.max).astype(parents.dtype)


def mixup_dataset(real: Path, interpolated: Path, out: Path) -> Path:
    """`real` plus, for every interpolant, the pixel-space mix of its parents with its weights."""
    from synthmed.data import Dataset, DatasetWriter, origins_of
    from synthmed.data.imageio import from_chw

    data = Dataset.open(real)
    by_id = {row["id"]: row for row in data.rows}
    interp = Dataset.open(interpolated)
    with DatasetWriter(out, classes=data.classes, command="bench-interpolation", parents=[real, interpolated]) as writer:
        for row in data.rows:
            writer.add_file(data.path_of(row), row)
        for row in interp.rows:
            parents = data.load_images([by_id[p] for p in origins_of(row)])
            weights = np.array([float(w) for w in row["weights"].split(";")])
            writer.add_image(
                from_chw(pixel_mixup(parents, weights)), id=f"{row['id']}-mixup", label=row["label"], split="train",
                source="synthetic", origin=row["origin"], generator="pixel-mixup@1", seed=row["seed"],
                weights=row["weights"],
            )
    return out


def train_and_evaluate(train_set: Path, test_set: Path, work: Path, *, repeats: int, seed: int, device: str,
                       extra: list[str]) -> dict[str, float]:
    run = work / f"run-{train_set.name}"
    synthmed("train", train_set, "-o", run, "--classifier", "cnn-basic", "--repeats", repeats, "--seed", seed,
             "--device", device, "--quiet", *extra)
    report = json.loads(synthmed("evaluate", run, test_set, "-o", work / f"report-{train_set.name}", "--json", "--quiet"))
    return {metric: float(report["summary"][metric]["median"]) for metric in METRICS if metric in report["summary"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repeats and epochs")
    parser.add_argument("--repeats", type=int, default=None, help="training repeats per train set (default 5, quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autoencoder", default="cnn-ae")
    parser.add_argument("--fit-epochs", type=int, default=None, help="autoencoder epochs (default 40, quick 10)")
    parser.add_argument("--ratio", type=float, default=1.0, help="interpolants per real train image of each class")
    parser.add_argument("--train-args", default="", help="extra options for `synthmed train`, e.g. '--epochs 10'")
    parser.add_argument("--work", type=Path, default=None, help="keep the datasets and runs here")
    args = parser.parse_args(argv)
    require_commands(["train", "evaluate"])
    repeats = args.repeats or (2 if args.quick else 5)
    fit_epochs = args.fit_epochs or (10 if args.quick else 40)
    scale = 0.05 if args.quick else 0.1
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-interpolation-"))
    work.mkdir(parents=True, exist_ok=True)

    real = Path(synthmed("sample-data", "-o", work / "none", "--size", 32, "--scale", scale, "--seed", args.seed,
                         "--quiet", "--overwrite").strip())
    synthetic = Path(synthmed(
        "interpolate", real, "-o", work / "interpolants", "--autoencoder", args.autoencoder, "--fit-epochs", fit_epochs,
        "--ratio", args.ratio, "--seed", args.seed, "--device", args.device, "--quiet", "--overwrite",
    ).strip())
    train_sets = {
        "none": real,
        "mixup": mixup_dataset(real, synthetic, work / "mixup"),
        "interp": augmented_dataset(real, synthetic, work / "interp"),
    }
    extra = shlex.split(args.train_args)
    results = {name: train_and_evaluate(path, real, work, repeats=repeats, seed=args.seed, device=args.device,
                                        extra=extra) for name, path in train_sets.items()}
    quality = json.loads((synthetic / "quality.json").read_text())
    print(f"sample data (32 px, scale {scale}), {args.autoencoder} fitted {fit_epochs} epochs, "
          f"{len(read_rows(synthetic))} interpolants (ratio {args.ratio}); cnn-basic x {repeats} repeats, median on test")
    print(f"reconstruction PSNR on val: {quality['reconstruction_val']['psnr']:.2f} dB, "
          f"near-copies: {quality['overall']['near_copies']}")
    print(f"{'train set':<10}" + "".join(f"{m:>20}" for m in METRICS))
    for name, values in results.items():
        print(f"{name:<10}" + "".join(f"{values.get(m, float('nan')):>20.4f}" for m in METRICS))
    for baseline in ("none", "mixup"):
        ratios = ", ".join(
            f"{m} {results['interp'][m] / results[baseline][m]:.3f}"
            for m in METRICS if m in results["interp"] and results[baseline].get(m)
        )
        print(f"ratio interp / {baseline}: {ratios}")
    print(f"(work folder: {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
