"""Augmentation throughput: synthmed's batched policies vs torchvision.transforms.v2 per image.

(a) images/s of `hflip+rotate`, `medical` and `autoaugment` on 128 px grayscale images:
    synthmed runs the policy on whole batches (uint8 -> float -> policy) in the main process;
    torchvision.transforms.v2 applies the equivalent transform to each image inside a
    DataLoader worker (what a user would otherwise write). One CPU thread each; the ratio is
    synthmed's rate / torchvision's.
(b) the same for synthmed on CUDA when `--device cuda` is given and a GPU is present.
(c) what `train --augment POLICY` adds to a training epoch, measured through train's own loop
    (synthmed.train.loop.fit, the code `synthmed train` runs): cnn-basic on the 64 px sample
    dataset, batch 32, torch's default threads, the training part of the epoch with the policy
    and without it. The policies take turns run by run (none, medical, ..., none, medical, ...;
    each run one warm-up epoch and one timed one) and the medians are compared, in CPU seconds of
    the process (other load on a shared machine does not count) and by the wall clock.
    Target: `medical` adds <= 10 % to a CPU epoch.

    python benchmarks/bench_augment.py [--quick] [--device cuda] [--parts abc]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (this checkout's synthmed first)
import torch

DEFAULT_THREADS = torch.get_num_threads()  # (c) runs train as a user would, with these


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (synthmed side of (a), and (b))")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. 'ac'")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of part (c) (default: torch's own)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from synthmed.devices import resolve_device

    device = resolve_device(args.device)
    n, batch = (768, 256) if args.quick else (2048, 256)
    data = (torch.rand(n, 1, 128, 128) * 255).to(torch.uint8)

    repeats = 3
    if "a" in args.parts:
        throughput(data, batch, repeats)
    if "b" in args.parts and device.type == "cuda":
        print(f"(b) synthmed on {torch.cuda.get_device_name(device)}")
        for name in SYNTHMED_SPECS:
            print(f"{name:14} {synthmed_rate(data, name, batch, device):10.0f} images/s")
    if "c" in args.parts:
        training_overhead(args.quick, device, args.threads or DEFAULT_THREADS)


def throughput(data: torch.Tensor, batch: int, repeats: int) -> None:
    import statistics

    n = len(data)
    cpu = torch.device("cpu")
    print(f"(a) images/s on {n} 128x128 grayscale images, batch {batch}, 1 CPU thread each, median of {repeats} "
          "interleaved runs")
    print(f"{'policy':14} {'synthmed':>10} {'torchvision':>12} {'ratio':>7} {'plain kornia':>13} {'ratio':>7}")
    for name in SYNTHMED_SPECS:
        ours, theirs, plain = [], [], []
        baseline = kornia_policy(name)
        for _ in range(repeats):
            ours.append(synthmed_rate(data, name, batch, cpu))
            theirs.append(torchvision_rate(data, name, batch))
            if baseline is not None:
                plain.append(synthmed_rate(data, name, batch, cpu, policy=baseline))
        ours_r, theirs_r = statistics.median(ours), statistics.median(theirs)
        plain_r = statistics.median(plain) if plain else 0.0
        kornia_text = f"{plain_r:13.0f} {plain_r / theirs_r:6.2f}x" if plain else f"{'-':>13} {'-':>7}"
        print(f"{name:14} {ours_r:10.0f} {theirs_r:12.0f} {ours_r / theirs_r:6.2f}x {kornia_text}")


def train_epoch(data, spec: str, device: torch.device) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the training part of epoch 2 of a `train --augment SPEC` run."""
    from synthmed.registry import get_entry
    from synthmed.train.loop import build_classifier, fit
    from synthmed.train.settings import TrainSettings

    settings = TrainSettings(classifier="cnn-basic", epochs=2, batch_size=32, patience=3, augment=spec)
    torch.manual_seed(0)
    module, _ = build_classifier(get_entry("classifier", "cnn-basic"), data, settings)
    walls: list[float] = []

    def clock() -> float:  # fit's epoch clock: CPU time, with the wall clock noted at each call
        walls.append(time.perf_counter())
        return time.process_time()

    history, _ = fit(module, data, settings, seed=0, device=device, head="classifier", clock=clock)
    # fit reads the clock three times an epoch: start, end of training, end of validation
    return history[1]["train_seconds"], walls[4] - walls[3]


def policy_epoch_seconds(data, spec: str, device: torch.device, repeats: int = 5) -> float:
    """CPU seconds of the policy alone over one epoch's batches, as train's loop calls it (uint8
    -> unit float on the device -> policy), median of `repeats`: the part of the epoch the
    policy is, measured without the training noise around it."""
    import statistics

    from synthmed.batches import to_unit_float
    from synthmed.registry import create_policy

    policy = create_policy(spec, channels=data.channels)
    images, times = data.train.images, []
    for _ in range(repeats):
        started = time.process_time()
        for start in range(0, len(images), 32):
            policy(to_unit_float(images[start : start + 32], device=device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.process_time() - started)
    return statistics.median(times)


def training_overhead(quick: bool, device: torch.device, threads: int) -> None:
    import statistics

    from common import interleaved

    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset
    from synthmed.train.data import load_training_data, split_train_val

    with tempfile.TemporaryDirectory() as tmp:
        root = write_sample_dataset(Path(tmp) / "data", size=64, scale=0.05 if quick else 0.15, seed=0)
        dataset = Dataset.open(root)
        train, val, notes = split_train_val(dataset, val_fraction=None, seed=0)
        data = load_training_data(dataset, train, val, device, notes)
    torch.set_num_threads(threads)
    # 9 rounds, each policy's run compared with the `none` run of its own round: on a shared
    # machine an epoch's CPU time drifts by +-15 % from minute to minute, more than the cost
    # measured, and a paired ratio cancels what the two runs of a round share.
    rounds = 2 if quick else 9
    policies = {"none": "none", **SYNTHMED_SPECS}
    wall: dict[str, list[float]] = {name: [] for name in policies}

    def variant(name: str):
        def run() -> float:
            cpu, seconds = train_epoch(data, policies[name], device)
            wall[name].append(seconds)
            return cpu
        return run

    cpu = interleaved({name: variant(name) for name in policies}, rounds)
    print(f"(c) train --augment POLICY: cnn-basic, {len(data.train)} train images of 64 px, batch 32, {device}, "
          f"{torch.get_num_threads()} torch threads; training part of an epoch, {rounds} interleaved rounds; "
          f"'adds' = median over rounds of (policy / none of the same round) - 1, with its range")
    base_cpu, base_wall = statistics.median(cpu["none"]), statistics.median(wall["none"])
    print(f"{'none':14} CPU {base_cpu:6.2f} s  wall {base_wall:6.2f} s")

    def added(times: dict[str, list[float]], name: str) -> tuple[float, float, float]:
        paired = [100 * (a / b - 1) for a, b in zip(times[name], times["none"])]
        return statistics.median(paired), min(paired), max(paired)

    policy_cpu = {name: policy_epoch_seconds(data, spec, device) for name, spec in SYNTHMED_SPECS.items()}
    for name in SYNTHMED_SPECS:
        (c_mid, c_low, c_high), (w_mid, _, _) = added(cpu, name), added(wall, name)
        target = f"  (target <= 10 %: {'met' if c_mid <= 10 else 'MISSED'})" if name == "medical" else ""
        print(f"{name:14} CPU {statistics.median(cpu[name]):6.2f} s  wall {statistics.median(wall[name]):6.2f} s  "
              f"adds {c_mid:+5.1f} % CPU ({c_low:+.1f} to {c_high:+.1f}), {w_mid:+5.1f} % wall{target}")
        print(f"{'':14} the policy alone on the epoch's batches: CPU {policy_cpu[name]:.3f} s "
              f"= {100 * policy_cpu[name] / base_cpu:.1f} % of the none epoch")

if __name__ == "__main__":
    main()
