"""Which generator gives the most recognisable images for a fixed CPU budget?

On the sample dataset, each generator (ddpm, acgan, dcgan) is fitted epoch by epoch until
`--budget` seconds of fitting are spent, then samples `--per-class` images per class. A
judge classifier trained on the real images (`synthmed train`, run as a subprocess) scores
them: the judge's accuracy on a generator's images (label fidelity) is the figure of merit;
its accuracy on the real test images is printed alongside as the ceiling. Memorisation
(near copies) and diversity (synthetic / real) are printed for each generator too.

    python benchmarks/bench_generators.py [--quick] [--budget 90] [--judge RUN] [--no-judge]

Needs `synthmed train` (the train issue) unless `--judge RUN` or `--no-judge` is given.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENERATORS = {
    "acgan": {"width": 32},
    "dcgan": {"width": 32},
    "ddpm": {"preset": "small", "steps": 25},
}


def train_judge(data: Path, out: Path, train_args: list[str]) -> Path:
    probe = subprocess.run([sys.executable, "-m", "synthmed", "train", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit("bench_generators: `synthmed train` is not available in this checkout (it comes with the train "
                 "issue); pass --judge RUN with a classifier trained on the sample data, or --no-judge")
    command = [sys.executable, "-m", "synthmed", "train", str(data), "-o", str(out), *train_args, "-q"]
    print("judge:", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)
    return out


def fit_for(name: str, args: dict, images, labels, classes, budget: float, device, state_dir: Path):
    """Fit one epoch at a time (continuing the fit checkpoint) until `budget` seconds are spent."""
    from synthmed.registry import create_generator

    epochs, spent = 0, 0.0
    while spent < budget:
        generator = create_generator(name, **args)
        start = time.perf_counter()
        epochs += 1
        generator.fit(images, labels, epochs=epochs, device=device, seed=0, num_classes=len(classes),
                      state_dir=state_dir)
        spent += time.perf_counter() - start
    return generator, epochs, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="budget 15 s per generator, 8 images per class")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of fitting per generator")
    parser.add_argument("--per-class", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scale", type=float, default=0.2, help="sample-data scale; below 0.2 the judge itself is near chance")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--judge", type=Path, help="a classifier RUN trained on the same sample data")
    parser.add_argument("--no-judge", action="store_true", help="report memorisation and diversity only")
    parser.add_argument("--train-args", default="--classifier cnn-basic --epochs 15",
                        help="options for `synthmed train` when training the judge")
    parser.add_argument("--generators", default=",".join(GENERATORS))
    args = parser.parse_args()
    budget, per_class = (15.0, 8) if args.quick else (args.budget, args.per_class)

    import numpy as np

    from synthmed.data import Dataset
    from synthmed.devices import resolve_device
    from synthmed.generate.report import Judge
    from synthmed.quality import judge_predictions, quality_report
    from synthmed.data.sample import write_sample_dataset

    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="bench-generators-"))
    try:
        data = Dataset.open(write_sample_dataset(work / "data", size=args.size, scale=args.scale, seed=0))
        judge = None
        if not args.no_judge:
            run = args.judge or train_judge(data.root, work / "judge", args.train_args.split())
            from synthmed.checkpoint import load_classifier

            module, config = load_classifier(run)
            judge = Judge(module, config, run)
            test = data.select(split="test")
            hits = judge_predictions(module, config, data.load_images(test), device=device) == data.label_indices(test)
            print(f"judge accuracy on real test images: {hits.mean():.3f} ({len(test)} images)")
        rows = data.select(split="train", source="real")
        images, labels = data.load_images(rows), data.label_indices(rows)
        real = {c: data.load_images(data.select(split="train", source="real", labels=[c])) for c in data.classes}
        print(f"sample data {args.size} px, {len(rows)} train images; fit budget {budget:.0f} s per generator; "
              f"{per_class} images per class; device {device}")
        results = {}
        for name in args.generators.split(","):
            generator, epochs, spent = fit_for(name, GENERATORS[name], images, labels, data.classes, budget, device,
                                               work / f"state-{name}")
            synthetic = {c: generator.sample(i, per_class, seed=1, device=device) for i, c in enumerate(data.classes)}
            report = quality_report(synthetic, real, classes=data.classes, judge=judge.module if judge else None,
                                    judge_config=judge.config if judge else None, device=device)
            results[name] = (epochs, spent, report)
            overall = report["overall"]
            ratios = [s["diversity"]["ratio"] for s in report["classes"].values() if s["diversity"]["ratio"] is not None]
            fidelity = "-" if overall["label_fidelity"] is None else f"{overall['label_fidelity']:.3f}"
            print(f"  {name:>6}: {epochs:3d} epochs in {spent:5.1f} s; judge accuracy {fidelity}; "
                  f"near copies {overall['near_copies']}; diversity syn/real {np.mean(ratios):.2f}", flush=True)
        if judge is not None:
            best = max(results, key=lambda n: results[n][2]["overall"]["label_fidelity"])
            worst = min(results, key=lambda n: results[n][2]["overall"]["label_fidelity"])
            b, w = (results[n][2]["overall"]["label_fidelity"] for n in (best, worst))
            print(f"ratio best/worst judge accuracy ({best}/{worst}): {b / max(w, 1e-9):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
