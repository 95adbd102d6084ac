"""Augmentation throughput: synthmed's batched policies vs torchvision.transforms.v2 per image.

(a) images/s of `hflip+rotate`, `medical` and `autoaugment` on 128 px grayscale images:
    synthmed runs the policy on whole batches (uint8 -> float -> policy) in the main process;
    torchvision.transforms.v2 applies the equivalent transform to each image inside a
    DataLoader worker (what a user would otherwise write). One CPU thread each; the ratio is
    synthmed's rate / torchvision's.
(b) the same for synthmed on CUDA when `--device cuda` is given and a GPU is present.
(c) the overhead `--augment` adds to one training epoch. `train` is another issue's command, so
    this uses a minimal loop of the same shape: the sample dataset's tensors, a small CNN (two
    conv+ReLU+maxpool blocks and a 2-layer head), Adam, forward/backward per batch of 32, with
    the policy applied on the batch (synthmed.augment.training_input) or not, timed in CPU
    seconds of the process (single-threaded, so other load on a shared machine does not count).

    PYTHONPATH=. python benchmarks/bench_augment.py [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


class RandomGamma(torch.nn.Module):
    """torchvision has no random gamma transform: log-uniform gamma, like synthmed's."""

    def __init__(self, amount: float) -> None:
        super().__init__()
        self.bound = torch.log1p(torch.tensor(amount))

    def forward(self, x):
        from torchvision.transforms.v2 import functional as F

        g = float(torch.exp((torch.rand(()) * 2 - 1) * self.bound))
        return F.adjust_gamma(x, g)


def torchvision_transform(name: str):
    from torchvision.transforms import v2

    to_float = v2.ToDtype(torch.float32, scale=True)
    if name == "hflip+rotate":
        return v2.Compose([to_float, v2.RandomHorizontalFlip(0.5), v2.RandomRotation(10)])
    if name == "medical":
        return v2.Compose(
            [
                to_float,
                v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.95, 1.05)),
                v2.RandomApply([RandomGamma(0.2)], p=0.5),
                v2.RandomApply([v2.ColorJitter(contrast=0.1)], p=0.5),
                v2.RandomApply([v2.GaussianNoise(sigma=0.02)], p=0.5),
            ]
        )
    if name == "autoaugment":
        return v2.Compose([v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET), to_float])
    raise ValueError(name)


SYNTHMED_SPECS = {"hflip+rotate": "hflip(p=0.5)+rotate(degrees=10)", "medical": "medical", "autoaugment": "autoaugment"}


class Images(torch.utils.data.Dataset):
    def __init__(self, data: torch.Tensor, transform) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.transform(self.data[i])


def torchvision_rate(data: torch.Tensor, name: str, batch: int) -> float:
    loader = torch.utils.data.DataLoader(Images(data, torchvision_transform(name)), batch_size=batch, num_workers=1)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not counted
    start = time.perf_counter()
    count = sum(len(b) for b in iterator)
    return count / (time.perf_counter() - start)


def kornia_policy(name: str):
    """Plain kornia.augmentation modules: what a careful user would otherwise run."""
    import kornia.augmentation as K
    from kornia.augmentation.auto import AutoAugment

    if name == "hflip+rotate":
        return K.AugmentationSequential(K.RandomHorizontalFlip(p=0.5), K.RandomRotation(10.0))
    if name == "autoaugment":
        module = AutoAugment("imagenet")

        def grayscale_safe(x):
            # kornia's AutoAugment raises on one channel when the batch's sub-policy has `color`
            # (5 of the 25 ImageNet sub-policies); such batches pass through unchanged here.
            try:
                return module(x)
            except ValueError:
                return x

        return grayscale_safe
    return None


def synthmed_rate(data: torch.Tensor, name: str, batch: int, device: torch.device, policy=None) -> float:
    from synthmed.augment import build_policy
    from synthmed.batches import to_unit_float

    policy = policy or build_policy(SYNTHMED_SPECS[name], channels=1)
    policy(to_unit_float(data[:batch], device=device))  # warm-up (lazy imports, kernels)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    count = 0
    for first in range(batch, len(data), batch):
        out = policy(to_unit_float(data[first : first + batch], device=device))
        count += len(out)
    sync()
    return count / (time.perf_counter() - start)


def training_epoch_seconds(images, labels, spec: str | None, *, epochs: int) -> tuple[float, float]:
    """(CPU seconds of the whole epoch, CPU seconds of the augmentation in it), best epoch."""
    from synthmed.augment import build_policy, training_input

    torch.manual_seed(0)
    side = images.shape[-1]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * (side // 4) ** 2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4),
    )  # fmt: skip
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    policy = build_policy(spec or "none", channels=1)
    policy(torch.rand(2, 1, side, side))  # lazy imports are not part of an epoch
    norm = {"mean": [0.2], "std": [0.25]}
    best = (float("inf"), 0.0)
    for _ in range(epochs):
        start = time.process_time()
        augmenting = 0.0
        for first in range(0, len(images), 32):
            before = time.process_time()
            x = training_input(images[first : first + 32], policy, norm)
            augmenting += time.process_time() - before
            loss = torch.nn.functional.cross_entropy(model(x), labels[first : first + 32])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        best = min(best, (time.process_time() - start, augmenting))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (synthmed side of (a), and (b))")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ac'")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from synthmed.devices import resolve_device

    device = resolve_device(args.device)
    n, batch = (768, 256) if args.quick else (2048, 256)
    data = (torch.rand(n, 1, 128, 128) * 255).to(torch.uint8)

    repeats = 2 if args.quick else 3
    if "a" in args.parts:
        throughput(data, batch, repeats)
    if "b" in args.parts and device.type == "cuda":
        print(f"(b) synthmed on {torch.cuda.get_device_name(device)}")
        for name in SYNTHMED_SPECS:
            print(f"{name:14} {synthmed_rate(data, name, batch, device):10.0f} images/s")
    if "c" in args.parts:
        training_overhead(args.quick)


def throughput(data: torch.Tensor, batch: int, repeats: int) -> None:
    n = len(data)
    cpu = torch.device("cpu")
    print(f"(a) images/s on {n} 128x128 grayscale images, batch {batch}, 1 CPU thread each, best of {repeats} interleaved runs")
    print(f"{'policy':14} {'synthmed':>10} {'torchvision':>12} {'ratio':>7} {'plain kornia':>13} {'ratio':>7}")
    for name in SYNTHMED_SPECS:
        ours = theirs = plain = 0.0
        baseline = kornia_policy(name)
        for _ in range(repeats):
            ours = max(ours, synthmed_rate(data, name, batch, cpu))
            theirs = max(theirs, torchvision_rate(data, name, batch))
            if baseline is not None:
                plain = max(plain, synthmed_rate(data, name, batch, cpu, policy=baseline))
        kornia_text = f"{plain:13.0f} {plain / theirs:6.2f}x" if plain else f"{'-':>13} {'-':>7}"
        print(f"{name:14} {ours:10.0f} {theirs:12.0f} {ours / theirs:6.2f}x {kornia_text}")


def training_overhead(quick: bool) -> None:
    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = write_sample_dataset(Path(tmp) / "data", size=64, scale=0.05 if quick else 0.15, seed=0)
        dataset = Dataset.open(root)
        rows = dataset.select(split="train")
        images = torch.from_numpy(dataset.load_images(rows))
        labels = torch.from_numpy(dataset.label_indices(rows))
    epochs = 2 if quick else 3
    print(
        f"(c) one training epoch, {len(images)} 64 px images, small CNN, batch 32, 1 CPU thread; "
        f"CPU seconds of this process (robust to other load), best of {epochs} interleaved"
    )
    best = {name: (float("inf"), 0.0) for name in ["none", *SYNTHMED_SPECS]}
    for _ in range(epochs):  # interleaved, so load changes on a shared machine hit every policy alike
        for name in best:
            best[name] = min(best[name], training_epoch_seconds(images, labels, SYNTHMED_SPECS.get(name), epochs=1))
    base, scaling = best["none"]
    print(f"{'none':14} epoch {base:6.2f} s (of which [0,1] scaling + standardising {scaling:5.3f} s)")
    for name in SYNTHMED_SPECS:
        epoch, augmenting = best[name]
        policy_only = augmenting - scaling
        print(
            f"{name:14} epoch {epoch:6.2f} s  policy {policy_only:5.3f} s = {100 * policy_only / base:4.1f}% of the plain "
            f"epoch (whole-epoch difference {100 * (epoch - base) / base:+5.1f}%)"
        )


if __name__ == "__main__":
    main()
