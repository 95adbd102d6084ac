"""Sampling speed of the `ddpm` generator: DDIM at 25 and 50 steps against DDPM's full chain.

A user who samples with the full 1000-step DDPM chain (what the training objective
describes) waits steps/25 times longer than with DDIM at 25 steps; this prints the measured
images/s of each and the ratios, on a tiny untrained model (speed does not depend on training).

    python benchmarks/bench_sampling.py [--quick] [--device cpu|cuda] [--size 32] [--batch 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 px, a batch of 4, and a 250-step DDPM chain")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--guidance", type=float, default=2.0)
    args = parser.parse_args()

    import torch

    from synthmed.devices import resolve_device
    from synthmed.generate.ddpm import DdpmGenerator

    torch.set_num_threads(max(1, torch.get_num_threads()))
    size, batch, timesteps = (16, 4, 250) if args.quick else (args.size, args.batch, 1000)
    device = resolve_device(args.device)
    generator = DdpmGenerator(preset=args.preset, guidance=args.guidance, train_timesteps=timesteps, steps=25)
    images = np.zeros((2, 1, size, size), dtype=np.uint8)
    generator.fit(images, np.array([0, 1]), epochs=0, device=device, seed=0, num_classes=2)

    def images_per_second(sampler: str, steps: int) -> float:
        generator.sampler, generator.steps = sampler, steps
        seeds = list(range(batch))
        generator.sample_seeds(0, seeds[:2], device=device)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        generator.sample_seeds(0, seeds, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batch / (time.perf_counter() - start)

    print(f"ddpm preset {args.preset}, {size} px, batch {batch}, guidance {args.guidance}, device {device}")
    rates = {}
    for label, sampler, steps in (("DDIM 25", "ddim", 25), ("DDIM 50", "ddim", 50), (f"DDPM {timesteps}", "ddpm", timesteps)):
        rates[label] = images_per_second(sampler, steps)
        print(f"  {label:>10}: {rates[label]:8.2f} images/s")
    full = rates[f"DDPM {timesteps}"]
    print(f"ratio DDIM 25 / DDPM {timesteps}: {rates['DDIM 25'] / full:.1f}x faster")
    print(f"ratio DDIM 50 / DDPM {timesteps}: {rates['DDIM 50'] / full:.1f}x faster")


if __name__ == "__main__":
    main()
