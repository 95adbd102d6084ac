"""Which generator's images pass the quality verdict for a fixed fitting budget?

On the 32 px sample data, each generator (ddpm, acgan, dcgan, with their registered defaults
unless SETTINGS below says otherwise) is fitted for `--fit-minutes` (default 5) of wall time
(CPU time on a CPU, where other jobs would otherwise take steps away; wall time on a GPU) on
`--device`, then samples as many images per class as the class has real train images (at
least 32; at most `--per-class` when given), so the synthetic and real sets are of equal size
as precision / recall / density / coverage assume (Naeem et al. 2020). Per generator:

- label fidelity: a judge classifier's accuracy on the synthetic images (`synthmed train` on
  the real images, run as a subprocess), relative to its accuracy on the real test images;
- FID, KID, precision / recall / density / coverage in the domain encoder's feature space,
  near copies (pixels or features) and the verdict per class (synthmed.quality);
- PASS or MISS against the targets below.

The first row is the reference every measure is calibrated on: the real val and test images
posing as synthetic ones. On CUDA the device name and peak memory are printed too.

    python benchmarks/bench_generators.py [--quick] [--fit-minutes 5] [--device auto] [--generators ddpm-tiny,acgan]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_threads_option, apply_threads

# name: (generator, settings). ddpm: the tiny preset without its middle attention (auto picks
# small at 32 px, whose steps cost 4x more on a CPU; the attention took a fifth of a tiny
# step) at lr 1e-3, batch 16: twice the updates of batch 32 for the same CPU time
# (docs/benchmarks.md); the GANs at the width the demo uses.
GENERATORS = {
    "ddpm-tiny": ("ddpm", {"preset": "tiny-noattn", "lr": 1e-3, "batch_size": 16}),
    "acgan": ("acgan", {"width": 32}),
    "dcgan": ("dcgan", {"width": 32}),
}
DEFAULT_GENERATOR = "ddpm-tiny"
TARGETS = {"fidelity_ratio": 0.9, "recall": 0.5, "coverage": 0.5}
# Near copies: none beyond the real held-out images' own share (unseen real slices of other
# subjects come that close to a train image too: 2 of 156 on the sample data).


def train_judge(data: Path, out: Path, train_args: list[str]) -> Path:
    command = [sys.executable, "-m", "synthmed", "train", str(data), "-o", str(out), *train_args, "-q"]
    print("judge:", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)
    return out


def fit_on_cpu_time(target: str, settings: dict, images, labels, num_classes: int, minutes: float, state: Path):
    """Fit epoch by epoch, each resumed from the last one's fit checkpoint, until this
    process's CPU time spent fitting would pass `minutes` with one more epoch (its mean cost):
    other jobs on a shared machine then take no steps away from the fit, as they do from a
    wall-clock `--fit-minutes`. The same steps as one uninterrupted fit (resumes are exact)."""
    from synthmed.registry import create_generator

    spent, epochs = 0.0, 0
    while True:
        generator = create_generator(target, **settings)
        start = time.process_time()
        generator.fit(images, labels, epochs=epochs + 1, device="cpu", seed=0, num_classes=num_classes,
                      state_dir=state)
        spent += time.process_time() - start
        epochs += 1
        if spent + spent / epochs > minutes * 60:
            return generator, spent


def misses(report: dict, fidelity_ratio: float | None, copy_share: float = 0.0) -> list[str]:
    """The targets a quality report misses (empty: PASS)."""
    overall, features = report["overall"], report["overall"]["features"]
    found = []
    if fidelity_ratio is not None and fidelity_ratio < TARGETS["fidelity_ratio"]:
        found.append(f"fidelity {fidelity_ratio:.2f} < {TARGETS['fidelity_ratio']}")
    for key in ("recall", "coverage"):
        if features[key] is None or features[key] < TARGETS[key]:
            found.append(f"{key} {features[key]} < {TARGETS[key]}")
    collapsed = [c for c, s in report["classes"].items() if s["verdict"] == "collapsed"]
    if collapsed:
        found.append("collapsed: " + ", ".join(collapsed))
    if (overall["copies"]["share"] or 0.0) > copy_share:
        found.append(f"{overall['copies']['either']} near copies ({overall['copies']['share']:.1%})")
    return found


def row(name: str, report: dict, fidelity_ratio: float | None, extra: str = "", copy_share: float = 0.0) -> str:
    f = report["overall"]["features"]
    verdicts = " ".join(f"{c[:4]}={s['verdict']}" for c, s in report["classes"].items())
    ratio = "-" if fidelity_ratio is None else f"{fidelity_ratio:.2f}"
    found = misses(report, fidelity_ratio, copy_share)
    return (f"{name:>10} {extra:>24} fid/real {ratio:>4}  FID {f['fid']:7.2f}  KID {f['kid']:7.4f}  "
            f"P {f['precision']:.2f} R {f['recall']:.2f} D {f['density']:.2f} C {f['coverage']:.2f}  "
            f"copies {report['overall']['copies']['either']:3d}  {verdicts}  "
            f"{'PASS' if not found else 'MISS (' + '; '.join(found) + ')'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 0.2 minutes per generator, 32 images per class")
    parser.add_argument("--fit-minutes", type=float, default=5.0, help="minutes of fitting per generator (--clock)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="most synthetic images per class (default: as many as the class's real train images)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scale", type=float, default=0.2,
                        help="sample-data scale; below 0.2 the judge is near chance")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--judge", type=Path, help="a classifier RUN trained on the same sample data")
    parser.add_argument("--train-args", default="--classifier cnn-basic --epochs 15",
                        help="options for `synthmed train` when training the judge")
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="what --fit-minutes counts: this process's CPU time (auto on a CPU) or wall time "
                             "(auto on a GPU, whose work CPU time does not count)")
    add_threads_option(parser)
    args = parser.parse_args()
    minutes, most = (0.2, 32) if args.quick else (args.fit_minutes, args.per_class or 10**9)
    threads = apply_threads(args.threads)

    import torch

    from synthmed.checkpoint import load_classifier
    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset
    from synthmed.devices import resolve_device
    from synthmed.quality import judge_predictions, quality_report
    from synthmed.quality.features import encoder_for
    from synthmed.registry import create_generator

    device = resolve_device(args.device)
    clock = args.clock if args.clock != "auto" else "cpu" if torch.device(device).type == "cpu" else "wall"
    work = Path(tempfile.mkdtemp(prefix="bench-generators-"))
    os.environ["SYNTHMED_CACHE_DIR"] = str(work / "cache")  # the encoder of a throwaway dataset
    try:
        data = Dataset.open(write_sample_dataset(work / "data", size=args.size, scale=args.scale, seed=0))
        run = args.judge or train_judge(data.root, work / "judge", args.train_args.split())
        module, config = load_classifier(run)
        test = data.select(split="test")
        real_accuracy = float((judge_predictions(module, config, data.load_images(test), device=device)
                               == data.label_indices(test)).mean())
        encoder = encoder_for(data, device=device, warn=print)
        rows = data.select(split="train", source="real")
        images, labels = data.load_images(rows), data.label_indices(rows)
        real = {c: data.load_images(data.select(split="train", source="real", labels=[c])) for c in data.classes}
        cuda = torch.device(device).type == "cuda"
        where = f"{device}" + (f" ({torch.cuda.get_device_name(device)})" if cuda else "")
        print(f"sample data {args.size} px scale {args.scale}: {len(rows)} train images "
              f"({', '.join(f'{c} {len(v)}' for c, v in real.items())}); {minutes:g} min ({clock} time) of fitting "
              f"per generator on {where}, {threads} torch thread(s); judge accuracy on the {len(test)} real test images "
              f"{real_accuracy:.3f}")
        print(f"targets: label fidelity >= {TARGETS['fidelity_ratio']} of real, recall and coverage >= "
              f"{TARGETS['recall']}, no class collapsed, no more near copies than the real held-out images",
              flush=True)

        def measure(synthetic: dict) -> tuple[dict, float]:
            report = quality_report(synthetic, real, classes=data.classes, judge=module, judge_config=config,
                                    encoder=encoder, feature_space="encoder", device=device)
            return report, report["overall"]["label_fidelity"] / real_accuracy

        held_out = {c: data.load_images(data.select(split=("val", "test"), labels=[c])) for c in data.classes}
        reference = measure(held_out)
        copy_share = reference[0]["overall"]["copies"]["share"] or 0.0
        print(row("real", *reference, extra="val+test", copy_share=copy_share), flush=True)
        for name in args.generators.split(","):
            target, settings = GENERATORS[name]
            generator = create_generator(target, **settings)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            start, cpu = time.perf_counter(), None
            if clock == "cpu":
                generator, cpu = fit_on_cpu_time(target, settings, images, labels, len(data.classes), minutes,
                                                 work / f"state-{name}")
            else:
                generator.fit(images, labels, epochs=1_000_000, minutes=minutes, device=device, seed=0,
                              num_classes=len(data.classes))
            fitted = time.perf_counter() - start
            start = time.perf_counter()
            synthetic = {c: generator.sample(i, min(most, max(32, len(real[c]))), seed=1, device=device)
                         for i, c in enumerate(data.classes)}
            sampled = time.perf_counter() - start
            memory = (f", peak {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
                      if cuda else "")
            count = sum(len(v) for v in synthetic.values())
            print(row(name, *measure(synthetic), extra=f"{generator.epochs_done} ep {fitted:.0f} s"
                      + ("" if cpu is None else f" ({cpu:.0f} cpu s)"), copy_share=copy_share)
                  + f"  [{count} sampled in {sampled:.0f} s{memory}]"
                  + ("  <- default" if name == DEFAULT_GENERATOR else ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
