"""How faithful the autoencoder is and how novel its interpolants are (quality.json, in the
layout of synthmed.quality), plus the strip figure per class.

- reconstruction on the val split: PSNR, SSIM, MSE (torchmetrics), LPIPS when weights are given;
- per class and overall, the copy measures every quality.json holds (`nearest_real`: distance
  to the nearest train image; a near copy: SSIM to that image at or above a threshold), the
  same distance in the autoencoder's feature space, SSIM to the parents (mean and closest),
  and overall the same distances for the real val images as a reference (what "new" looks like).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

FEATURE_GRID = 8  # spatial codes are average-pooled to at most 8x8 before distances


def _ssim_kernel(image_size: Sequence[int]) -> int:
    side = min(image_size)
    return 11 if side >= 11 else max(3, side - (1 - side % 2))


def ssim_per_image(preds: Any, target: Any) -> Any:
    """SSIM of each pair (torchmetrics), shape (N,)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    kernel = _ssim_kernel(preds.shape[-2:])
    return structural_similarity_index_measure(
        preds, target, data_range=1.0, reduction="none", kernel_size=kernel
    ).reshape(-1)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def reconstruct(model: Any, images: np.ndarray, *, device: Any, batch_size: int = 64) -> Any:
    import torch

    from synthmed.batches import to_unit_float

    outputs = []
    with torch.no_grad():
        for part in _batches(len(images), batch_size):
            outputs.append(model.decode(model.encode(to_unit_float(images[part], device=device))).float().cpu())
    return torch.cat(outputs)


def reconstruction_quality(
    model: Any, images: np.ndarray, *, device: Any, lpips: Any = None, batch_size: int = 64
) -> dict[str, Any]:
    """PSNR, SSIM, MSE (and LPIPS) of the autoencoder's reconstructions of `images`."""
    from torchmetrics.functional import mean_squared_error
    from torchmetrics.functional.image import peak_signal_noise_ratio

    from synthmed.batches import to_unit_float

    if len(images) == 0:
        return {"images": 0, "psnr": None, "ssim": None, "mse": None, "lpips": None}
    target = to_unit_float(images)
    recon = reconstruct(model, images, device=device, batch_size=batch_size)
    ssim = ssim_per_image(recon, target)
    return {
        "images": len(images),
        "psnr": float(peak_signal_noise_ratio(recon, target, data_range=1.0)),
        "ssim": float(ssim.mean()),
        "mse": float(mean_squared_error(recon, target)),
        "lpips": float(lpips(recon, target).mean()) if lpips is not None else None,
    }


def encoder_features(model: Any, images: np.ndarray, *, device: Any, batch_size: int = 64) -> Any:
    """Flattened codes; spatial codes are average-pooled to at most FEATURE_GRID x FEATURE_GRID
    so distances stay cheap for large images."""
    import torch
    import torch.nn.functional as F

    from synthmed.batches import to_unit_float

    features = []
    with torch.no_grad():
        for part in _batches(len(images), batch_size):
            code = model.encode(to_unit_float(images[part], device=device)).float()
            if code.dim() == 4 and max(code.shape[-2:]) > FEATURE_GRID:
                code = F.adaptive_avg_pool2d(code, (min(code.shape[-2], FEATURE_GRID), min(code.shape[-1], FEATURE_GRID)))
            features.append(code.flatten(1).cpu())
    return torch.cat(features)


def interpolant_quality(
    model: Any,
    synthetic: np.ndarray,
    parents: Sequence[Sequence[int]],
    train: np.ndarray,
    *,
    device: Any,
    near_copy_ssim: float = 0.95,
    reference: np.ndarray | None = None,
    lpips: Any = None,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Novelty and parent similarity of `synthetic` (stored pixels, N x C x H x W), per class
    of `labels` (interpolant i's class) and overall.

    parents[i]: indices into `train` of interpolant i's parents; reference: real images that
    are not in `train` (the val split), whose distances show what a new real image scores."""
    import torch

    from synthmed.batches import to_unit_float
    from synthmed.quality import DISTANCE, copy_measures, flat_pixels, nearest
    from synthmed.stats import summarize

    record: dict[str, Any] = {"distance": DISTANCE, "near_copy_ssim": near_copy_ssim, "classes": {}}
    if len(synthetic) == 0:
        record["overall"] = copy_measures(np.zeros(0), np.zeros(0, dtype=bool))
        return record
    synth = to_unit_float(synthetic)
    real = to_unit_float(train)
    train_pixels, train_features = flat_pixels(train), encoder_features(model, train, device=device)
    pixel_distance, nearest_index = nearest(flat_pixels(synthetic), train_pixels)
    feature_distance, _ = nearest(encoder_features(model, synthetic, device=device), train_features)
    closest_train = real[torch.from_numpy(nearest_index)]
    nearest_ssim = ssim_per_image(synth, closest_train).numpy()
    per_parent = []
    for slot in range(max(len(p) for p in parents)):
        rows = [i for i, p in enumerate(parents) if slot < len(p)]
        values = torch.full((len(parents),), float("nan"))
        values[rows] = ssim_per_image(synth[rows], real[[parents[i][slot] for i in rows]])
        per_parent.append(values)
    stacked = torch.stack(per_parent, dim=1)
    parents_mean = torch.nanmean(stacked, dim=1).numpy()
    closest_parent = torch.nan_to_num(stacked, nan=-1.0).max(dim=1).values.numpy()
    perceptual = lpips(synth, closest_train).numpy() if lpips is not None else None

    def measures(mask: np.ndarray) -> dict[str, Any]:
        return {
            **copy_measures(pixel_distance[mask], nearest_ssim[mask] >= near_copy_ssim),
            "nearest_real_features": summarize(feature_distance[mask]),
            "ssim_to_parents_mean": summarize(parents_mean[mask]),
            "ssim_to_parents_max": summarize(closest_parent[mask]),
            "ssim_to_nearest_train": summarize(nearest_ssim[mask]),
            "lpips_to_nearest_train": summarize(perceptual[mask]) if perceptual is not None else None,
        }

    for label in dict.fromkeys(labels or ()):
        record["classes"][label] = measures(np.array([value == label for value in labels]))
    record["overall"] = measures(np.ones(len(synthetic), dtype=bool))
    if reference is not None and len(reference):
        record["overall"]["val_nearest_real"] = summarize(nearest(flat_pixels(reference), train_pixels)[0])
        record["overall"]["val_nearest_real_features"] = summarize(
            nearest(encoder_features(model, reference, device=device), train_features)[0])
    return record


# --------------------------------------------------------------------------- LPIPS


LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}


def load_lpips(weights_path: Path, *, device: Any = "cpu") -> tuple[Any, str]:
    """An LPIPS scorer `score(a, b) -> (N,)` for float images in [0, 1], with the ImageNet
    backbone read from a local torchvision weights file (AlexNet, VGG-16 or SqueezeNet 1.1,
    `.pth` or `.safetensors`) instead of the hub. Returns (scorer, backbone name).

    torchmetrics' LPIPS class always fetches its backbone from the hub, so we build its
    network with a random backbone (its linear heads ship with torchmetrics) and load the
    local backbone weights into it."""
    import torch
    import torchvision
    import torch.nn.functional as F
    from torchmetrics.functional.image.lpips import _LPIPS

    from synthmed.errors import UsageError

    path = Path(weights_path)
    if not path.is_file():
        raise UsageError(f"--lpips-weights {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UsageError(f"--lpips-weights {path}: not a readable weights file ({type(exc).__name__})") from None
    for net, architecture in LPIPS_BACKBONES.items():
        backbone = getattr(torchvision.models, architecture)(weights=None)
        try:
            backbone.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError):
            continue
        break
    else:
        raise UsageError(
            f"--lpips-weights {path}: not torchvision AlexNet, VGG-16 or SqueezeNet 1.1 ImageNet weights"
        )
    network = _LPIPS(pretrained=True, net=net, pnet_rand=True)
    # torchmetrics' backbone wrappers hold the torchvision `features[i]` layers in Sequential
    # slices whose children are named by the index i.
    for module in network.net.modules():
        names = [name for name, _ in module.named_children()]
        if isinstance(module, torch.nn.Sequential) and names and all(name.isdigit() for name in names):
            for name, layer in module.named_children():
                layer.load_state_dict(backbone.features[int(name)].state_dict())
    network = network.to(device).eval()

    def score(a: Any, b: Any, batch_size: int = 64) -> Any:
        results = []
        with torch.no_grad():
            for part in _batches(len(a), batch_size):
                x, y = a[part].to(device), b[part].to(device)
                if x.shape[1] == 1:
                    x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
                if min(x.shape[-2:]) < 64:  # the backbones pool too often for tiny images
                    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
                    y = F.interpolate(y, size=(64, 64), mode="bilinear", align_corners=False)
                results.append(network(x, y, normalize=True).reshape(-1).cpu())
        return torch.cat(results)

    return score, net


# --------------------------------------------------------------------------- figures
