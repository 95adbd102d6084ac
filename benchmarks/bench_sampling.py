"""Sampling speed of the `ddpm` generator and the quality it keeps: DDIM and DPM-Solver++ at a few
steps against the full DDPM chain the model was trained for.

What a user would otherwise run: the full ancestral DDPM chain (train_timesteps steps, what
the training objective describes). Fewer steps are only worth it if the images stay as good,
so next to images/s each sampler gets, on the same fitted model and the same initial noise:

  FID-real   Fréchet distance to the real test images, in the feature space of a judge CNN
             fitted here on the real train images (nothing downloaded; lower is better)
  FID-chain  the same distance to the full chain's own images: how far the shortcut moves
             the output away from what the chain gives
  judge acc  the judge's accuracy on the samples (class fidelity), beside the chain's

A few CPU minutes of fitting give a rough model, so absolute FIDs are high; the comparison
between samplers on one model is what this measures. Every sampler runs in the same process,
one after another, on the same images; speeds are images per CPU second of this process
(sampling runs in it alone, so other load on a shared machine does not count); on a GPU,
wall-clock images/s.

    python benchmarks/bench_sampling.py [--quick] [--device cpu|cuda] [--per-class 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import add_threads_option, apply_threads


def fitted_generator(images, labels, classes: int, *, epochs: int, timesteps: int, device):
    from synthmed.generate.ddpm import DdpmGenerator

    generator = DdpmGenerator(preset="tiny", guidance=2.0, train_timesteps=timesteps)
    started = time.perf_counter()
    generator.fit(images, labels, epochs=epochs, device=device, seed=0, num_classes=classes)
    return generator, time.perf_counter() - started


def fitted_judge(data, device, epochs: int):
    """cnn-basic trained on the real train split with train's own loop: classifier and feature net."""
    import torch

    from synthmed.registry import get_entry
    from synthmed.train.loop import build_classifier, fit
    from synthmed.train.settings import TrainSettings

    settings = TrainSettings(classifier="cnn-basic", epochs=epochs, batch_size=32, patience=epochs + 1)
    torch.manual_seed(0)
    module, _ = build_classifier(get_entry("classifier", "cnn-basic"), data, settings)
    fit(module, data, settings, seed=0, device=device, head="classifier")
    return module.eval()


class JudgeFeatures:
    """The judge's last hidden layer as the feature space of a Fréchet distance."""

    def __init__(self, judge, normalization, device) -> None:
        import torch

        self.judge, self.normalization, self.device = judge, normalization, device
        self.body = torch.nn.Sequential(judge.features, *list(judge.classifier)[:-1])
        self.num_features = list(judge.classifier)[-1].in_features

    def __call__(self, images: np.ndarray):
        import torch

        from synthmed.batches import model_input

        with torch.no_grad():
            return self.body(model_input(torch.from_numpy(images), self.normalization, device=self.device)).double().cpu()

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        import torch

        from synthmed.batches import predict_logits

        logits = predict_logits(self.judge, torch.from_numpy(images), self.normalization, device=self.device)
        return float((logits.argmax(1).cpu().numpy() == labels).mean())


def frechet_distance(features: JudgeFeatures, a: np.ndarray, b: np.ndarray) -> float:
    """FID between two image sets in the judge's feature space (torchmetrics' Fréchet distance;
    the one function to swap for synthmed.quality's feature-space FID once it has one)."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Extractor(torch.nn.Module):
        num_features = features.num_features

        def forward(self, x):
            return features(x.cpu().numpy().astype(np.uint8))

    fid = FrechetInceptionDistance(feature=Extractor(), normalize=False)
    fid.update(torch.from_numpy(a), real=True)
    fid.update(torch.from_numpy(b), real=False)
    return float(fid.compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 px, 100-step chain, 4 images per class, short fits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-class", type=int, default=16, help="images per class for every sampler")
    parser.add_argument("--fit-epochs", type=int, default=None)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--timesteps", type=int, default=1000, help="length of the full DDPM chain")
    add_threads_option(parser)
    args = parser.parse_args()
    threads = apply_threads(args.threads)

    import torch

    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset
    from synthmed.devices import resolve_device
    from synthmed.train.data import load_training_data, split_train_val

    device = resolve_device(args.device)
    size, timesteps, per_class, epochs = (16, 100, 4, 3) if args.quick else (args.size, args.timesteps, args.per_class, 40)
    epochs = args.fit_epochs or epochs
    with tempfile.TemporaryDirectory() as tmp:
        root = write_sample_dataset(Path(tmp) / "data", size=size, scale=0.05 if args.quick else 0.1, seed=0)
        dataset = Dataset.open(root)
        train_rows, val_rows, notes = split_train_val(dataset, val_fraction=None, seed=0)
        data = load_training_data(dataset, train_rows, val_rows, torch.device("cpu"), notes)
        test_rows = dataset.select(split="test")
        test_images = dataset.load_images(test_rows)
        test_labels = dataset.label_indices(test_rows)
    classes = len(data.classes)
    generator, fit_seconds = fitted_generator(data.train.images.numpy(), data.train.labels.numpy(), classes,
                                              epochs=epochs, timesteps=timesteps, device=device)
    print(f"fitted ddpm in {fit_seconds:.0f} s", flush=True)
    judge = fitted_judge(data, device, epochs=3 if args.quick else 15)
    features = JudgeFeatures(judge, data.normalization, device)

    # CPU time on the CPU (load-proof); on a GPU the wall clock, after synchronising
    clock = time.perf_counter if device.type == "cuda" else time.process_time

    def sample(sampler: str, steps: int) -> tuple[np.ndarray, np.ndarray, float]:
        generator.sampler, generator.steps = sampler, steps
        generator.sample_seeds(0, [0, 1], device=device)  # warm-up
        images, labels = [], []
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = clock()
        for c in range(classes):
            images.append(generator.sample_seeds(c, list(range(per_class)), device=device))  # same noise per sampler
            labels.append(np.full(per_class, c))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return np.concatenate(images), np.concatenate(labels), clock() - started

    chain, chain_labels, chain_seconds = sample("ddpm", timesteps)
    print(f"ddpm preset tiny, {size} px, {classes} classes, fitted {epochs} epochs ({fit_seconds:.0f} s) on "
          f"{len(data.train)} images, guidance 2, {per_class} images per class, device {device}, {threads} torch threads")
    print(f"judge cnn-basic: accuracy {features.accuracy(test_images, test_labels):.3f} on the real test split "
          f"({len(test_rows)} images)")
    print(f"{'sampler':>14} {'img/CPU s':>9} {'speed-up':>9} {'FID-real':>9} {'FID-chain':>10} {'judge acc':>10}")

    def line(label: str, images: np.ndarray, labels: np.ndarray, seconds: float) -> None:
        rate = len(images) / seconds
        to_chain = "-" if images is chain else f"{frechet_distance(features, chain, images):10.2f}"
        print(f"{label:>14} {rate:9.2f} {chain_seconds / seconds:8.1f}x {frechet_distance(features, test_images, images):9.2f} "
              f"{to_chain:>10} {features.accuracy(images, labels):10.3f}", flush=True)

    line(f"DDPM {timesteps}", chain, chain_labels, chain_seconds)
    for sampler, steps in (("ddim", 10), ("ddim", 25), ("ddim", 50), ("dpm", 10), ("dpm", 25)):
        images, labels, seconds = sample(sampler, steps)
        line(f"{'DDIM' if sampler == 'ddim' else 'DPM-Solver++'} {steps}", images, labels, seconds)
    print(f"reference: FID-real of {len(test_images)} real test images vs the real train images: "
          f"{frechet_distance(features, data.train.images.numpy(), test_images):.2f}")


if __name__ == "__main__":
    main()
