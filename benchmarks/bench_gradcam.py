"""Grad-CAM maps per second: batched (what `synthmed gradcam` does) against one image at a time
(what the pytorch-grad-cam examples do, looping over images).

    python benchmarks/bench_gradcam.py [--quick] [--device cpu|cuda] [--size 64] [--batch-size 32]

Prints both rates and their ratio. The model is torchvision's ResNet-18 with a 1-channel stem,
untrained (speed does not depend on the weights)."""

from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch
    import torchvision

    from synthmed.devices import resolve_device
    from synthmed.gradcam.cam import CamExtractor, choose_layer, find_layers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    device = resolve_device(args.device)
    count = 32 if args.quick else 128

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    model = model.to(device).eval()
    layer = choose_layer(find_layers(model, channels=1, image_size=(args.size, args.size), device=device))
    extractor = CamExtractor(model, layer, "gradcam")
    x = torch.randn(count, 1, args.size, args.size, device=device)
    classes = [k % 4 for k in range(count)]

    def timed(batch: int) -> float:
        extractor.maps(x[:batch], classes[:batch])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, count, batch):
            extractor.maps(x[i : i + batch], classes[i : i + batch])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return count / (time.perf_counter() - start)

    single = timed(1)
    batched = timed(args.batch_size)
    extractor.close()
    print(f"ResNet-18, {args.size} px, layer {layer.name}, {count} images on {device}")
    print(f"one at a time: {single:8.1f} maps/s")
    print(f"batch of {args.batch_size:3d}:  {batched:8.1f} maps/s")
    print(f"ratio (batched / one at a time): {batched / single:.2f}x")


if __name__ == "__main__":
    main()
