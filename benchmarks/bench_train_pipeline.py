"""How much the training data pipeline costs: one `synthmed train` epoch of cnn-basic on the sample
dataset against

  (a) the same optimiser steps on tensors already in memory (pure forward/backward; the
      pipeline's overhead, target <= 1.10 on the CPU), and
  (b) the loop a user would otherwise write: torchvision ImageFolder + DataLoader, decoding
      PNGs in every epoch.

    python benchmarks/bench_train_pipeline.py [--quick] [--device cpu|cuda] [--epochs 3] [--workers 0]

Times are medians over epochs after one warm-up epoch, the variants taking turns (CPU time of
this process on the CPU, wall time on CUDA); only the training part of an epoch is
timed (the val pass is the same work in every variant).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def decode(dataset_path: Path, device: torch.device):
    """What `synthmed train` does once per run: decode train and val into uint8 tensors."""
    from synthmed.data import Dataset
    from synthmed.train.data import load_training_data, split_train_val

    dataset = Dataset.open(dataset_path)
    train, val, notes = split_train_val(dataset, val_fraction=None, seed=0)
    return load_training_data(dataset, train, val, device, notes)


def synthmed_epochs(data, epochs: int, batch_size: int, device: torch.device, between, clock) -> list[float]:
    """`synthmed train`'s loop for `epochs` epochs (no early stopping); `between()` runs after each."""
    from synthmed.train.settings import TrainSettings
    from synthmed.train.loop import build_classifier, fit
    from synthmed.registry import get_entry

    settings = TrainSettings(classifier="cnn-basic", epochs=epochs, batch_size=batch_size, patience=epochs + 1)
    torch.manual_seed(0)
    module, _ = build_classifier(get_entry("classifier", "cnn-basic"), data, settings)
    history, _ = fit(module, data, settings, seed=0, device=device, head="classifier",
                     advance=lambda n=1, **status: between(), clock=clock)
    return [record["train_seconds"] for record in history]


def pure_epoch(data, batch_size: int, device: torch.device, clock):
    """The same number and sizes of Adam steps on standardised float tensors made in advance."""
    from synthmed.registry import create_classifier

    n = len(data.train)
    sizes = [min(batch_size, n - s) for s in range(0, n, batch_size) if min(batch_size, n - s) >= 2]
    channels, (height, width) = data.channels, data.image_size
    batches = [(torch.randn(k, channels, height, width, device=device), torch.randint(0, 4, (k,), device=device))
               for k in sizes]
    torch.manual_seed(0)
    model = create_classifier("cnn-basic", num_classes=len(data.classes), in_channels=channels,
                              image_size=[height, width]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> float:
        _sync(device)
        started = clock()
        model.train()
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        return clock() - started

    return epoch


def imagefolder_epoch(dataset_path: Path, data, batch_size: int, device: torch.device, workers: int, clock):
    """What a user writes without synthmed: ImageFolder + DataLoader, PNGs decoded every epoch."""
    from torchvision import datasets, transforms

    from synthmed.registry import create_classifier

    mean, std = data.normalization["mean"], data.normalization["std"]
    to_channels = transforms.Grayscale(1) if data.channels == 1 else transforms.Lambda(lambda im: im.convert("RGB"))
    transform = transforms.Compose([to_channels, transforms.ToTensor(), transforms.Normalize(mean, std)])
    folder = datasets.ImageFolder(str(dataset_path / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(folder, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    channels, (height, width) = data.channels, data.image_size
    model = create_classifier("cnn-basic", num_classes=len(folder.classes), in_channels=channels,
                              image_size=[height, width]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> float:
        _sync(device)
        started = clock()
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _sync(device)
        return clock() - started

    return epoch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="32 px, scale 0.05 (265 images) instead of 64 px, 0.2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for the ImageFolder loop")
    args = parser.parse_args()

    from synthmed.devices import resolve_device
    from synthmed.data.sample import write_sample_dataset

    device = resolve_device(args.device)
    size, scale = (32, 0.05) if args.quick else (64, 0.2)
    with tempfile.TemporaryDirectory() as tmp:
        dataset_path = write_sample_dataset(Path(tmp) / "data", size=size, scale=scale, seed=0)
        started = time.perf_counter()
        data = decode(dataset_path, device)
        decode_seconds = time.perf_counter() - started
        # On the CPU, this process's CPU time: the machine may be shared, and wall time then
        # measures the neighbours. DataLoader workers run in other processes, so workers > 0
        # is timed by the wall clock.
        clock = time.process_time if device.type == "cpu" and args.workers == 0 else time.perf_counter
        pure_step = pure_epoch(data, args.batch_size, device, clock)
        folder_step = imagefolder_epoch(dataset_path, data, args.batch_size, device, args.workers, clock)
        pure, folder = [], []

        def between() -> None:
            # The variants take turns epoch by epoch, so a change in machine load hits all alike.
            pure.append(pure_step())
            folder.append(folder_step())

        ours = synthmed_epochs(data, args.epochs + 1, args.batch_size, device, between, clock)
    # Epoch 1 of each variant is a warm-up.
    ours, pure, folder = ours[1:], pure[1:], folder[1:]
    ours_s, pure_s, folder_s = (statistics.median(t) for t in (ours, pure, folder))
    print(f"sample dataset {size} px, {len(data.train)} train images, batch {args.batch_size}, cnn-basic, "
          f"{device}, torch threads {torch.get_num_threads()}, timed by {clock.__name__}")
    print(f"decode once (train + val)            {decode_seconds:8.3f} s")
    print(f"synthmed train epoch                 {ours_s:8.3f} s   (median of {len(ours)})")
    print(f"pure forward/backward, same steps    {pure_s:8.3f} s")
    print(f"ImageFolder + DataLoader ({args.workers} workers)  {folder_s:8.3f} s")
    print(f"(a) pipeline overhead: synthmed / pure        = {ours_s / pure_s:.3f}  (target <= 1.10)")
    print(f"(b) speed-up: ImageFolder loop / synthmed     = {folder_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
