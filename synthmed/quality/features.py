"""Feature spaces in which synthetic images are compared with real ones, needing no download.

- `JudgeFeatures`: the penultimate layer of a judge classifier (`synthmed train`), that is
  the input of its last linear layer, when `--judge` is given;
- `DomainEncoder`: otherwise a small CNN fitted here to tell the real train images' classes
  apart, with random shifts and flips so that a one-pixel shift barely moves an image's
  features. It is cached per dataset (`encoder_for`), so each dataset is fitted once.

Both are `nn.Module`s mapping stored pixels (uint8/uint16 (N, C, H, W) tensors) to float
features (N, num_features); `num_features` is an attribute, which is what torchmetrics' FID
and KID take in place of their Inception network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from synthmed.batches import model_input, to_unit_float

ENCODER_SIDE = 32  # images are shrunk (area average) to at most this side before the encoder
ENCODER_EPOCHS = 20  # an encoder fit lasts this many passes over the train images,
ENCODER_STEPS = (50, 300)  # within these bounds on optimizer steps
ENCODER_BATCH = 64
ENCODER_VERSION = 2  # bump when the architecture or the fit changes: older caches are refitted
ENCODER_FEATURES = 64


def _shrink(x: torch.Tensor, side: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    if max(height, width) <= side:
        return x
    scale = side / max(height, width)
    return F.interpolate(x, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")


class DomainEncoder(nn.Module):
    """Three conv blocks (16, 32, 64 channels; batch norm, ReLU, 2x2 average pooling), global
    average pooling and a linear projection to `num_features`; `head` classifies during the fit."""

    def __init__(self, *, channels: int, num_classes: int, mean: Sequence[float], std: Sequence[float],
                 num_features: int = ENCODER_FEATURES) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        layers: list[nn.Module] = []
        widths = [channels, 16, 32, 64]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(w_in, w_out, 3, padding=1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(inplace=True),
                       nn.AvgPool2d(2, ceil_mode=True)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.project = nn.Linear(widths[-1], self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised float input -> features."""
        return self.project(self.body(_shrink(x, ENCODER_SIDE)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (to_unit_float(images, device=self.mean.device) - self.mean) / self.std
        return self.embed(x).float()


class JudgeFeatures(nn.Module):
    """A judge classifier's penultimate layer: what its last `nn.Linear` receives."""

    def __init__(self, judge: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        linears = [m for m in judge.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("the judge classifier has no linear layer to take features from")
        self.judge = judge.eval()
        self.normalization = config["normalization"]
        self.size = tuple(config.get("image_size") or ())
        self.num_features = int(linears[-1].in_features)
        self._captured: list[torch.Tensor] = []
        linears[-1].register_forward_pre_hook(lambda _module, inputs: self._captured.append(inputs[0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.judge.parameters()).device
        x = model_input(images, self.normalization, device=device)
        if self.size and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        self._captured.clear()
        self.judge(x)
        return self._captured[-1].flatten(1).float()


def embed(encoder: nn.Module, images: np.ndarray, *, device: Any, batch_size: int = 256) -> torch.Tensor:
    """Features (N, num_features) of stored images, float64 on the CPU."""
    encoder = encoder.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
            out.append(encoder(batch).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, getattr(encoder, "num_features", 0), dtype=torch.float64)


def fit_encoder(images: np.ndarray, labels: np.ndarray, *, num_classes: int, mean: Sequence[float],
                std: Sequence[float], device: Any, steps: int | None = None, seed: int = 0) -> DomainEncoder:
    """A `DomainEncoder` fitted to classify the real train images (shifts of up to 1/16 of the
    side and horizontal flips as augmentation; classes weighted by their inverse frequency)."""
    from synthmed.seeding import derive_seed

    if steps is None:
        low, high = ENCODER_STEPS
        steps = min(high, max(low, ENCODER_EPOCHS * -(-len(images) // ENCODER_BATCH)))

    torch.manual_seed(derive_seed(seed, "encoder"))
    encoder = DomainEncoder(channels=images.shape[1], num_classes=num_classes, mean=mean, std=std).to(device)
    x = (to_unit_float(images) - encoder.mean.cpu()) / encoder.std.cpu()
    x = _shrink(x, ENCODER_SIDE).to(device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    counts = torch.bincount(y, minlength=num_classes).clamp(min=1).float()
    weights = (1.0 / counts)[y]
    shift = max(1, x.shape[-1] // 16)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    encoder.train()
    for _ in range(steps):
        pick = torch.multinomial(weights, min(ENCODER_BATCH, len(y)), replacement=True)
        batch = x[pick]
        dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,)))
        batch = torch.roll(batch, shifts=(dy, dx), dims=(-2, -1))
        flip = torch.rand(len(batch), device=device) < 0.5
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        loss = F.cross_entropy(encoder.head(encoder.embed(batch)), y[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return encoder.eval()


# ---- the cache


def cache_root() -> Path:
    """SYNTHMED_CACHE_DIR, else $XDG_CACHE_HOME/synthmed, else ~/.cache/synthmed."""
    if os.environ.get("SYNTHMED_CACHE_DIR"):
        return Path(os.environ["SYNTHMED_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthmed"


def train_digest(dataset: Any) -> str:
    """What the encoder depends on: classes, size, channels and the real train images' digests."""
    rows = dataset.select(split="train", source="real")
    record = {"classes": dataset.classes, "size": list(dataset.require_uniform_size()), "channels": dataset.channels,
              "images": sorted(f"{r['label']}:{r['sha256']}" for r in rows), "encoder": ENCODER_VERSION}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def encoder_folder(dataset: Any) -> Path:
    """The cache folder of a dataset's encoder, named after the dataset's location."""
    where = str(Path(dataset.root).resolve())
    return cache_root() / "encoders" / hashlib.sha256(where.encode()).hexdigest()[:16]


def encoder_for(dataset: Any, *, device: Any, warn: Callable[[str], None]) -> DomainEncoder:
    """The dataset's `DomainEncoder`: read from the cache, or fitted on its real train split
    and cached. A cache made from other images (the dataset at that path changed) is refitted,
    and `warn` says so."""
    from synthmed.checkpoint import load_weights, read_config, save_checkpoint

    folder = encoder_folder(dataset)
    digest = train_digest(dataset)
    stats = dataset.stats
    config = {"kind": "encoder", "digest": digest, "classes": dataset.classes, "channels": dataset.channels,
              "normalization": stats, "num_features": ENCODER_FEATURES}
    if (folder / "config.json").is_file():
        try:
            cached = read_config(folder, kind="encoder")
        except Exception:  # noqa: BLE001 - an unreadable cache is simply refitted
            cached = {}
        if cached.get("digest") == digest:
            encoder = DomainEncoder(channels=dataset.channels, num_classes=len(dataset.classes), **_norm(stats))
            try:
                load_weights(encoder, folder)
                return encoder.eval()
            except Exception:  # noqa: BLE001 - corrupt weights: refit
                pass
        warn(f"the cached feature encoder in {folder} was fitted on other images than {dataset.root}'s real "
             "train split; fitting a new one")
    rows = dataset.select(split="train", source="real")
    encoder = fit_encoder(dataset.load_images(rows), dataset.label_indices(rows), num_classes=len(dataset.classes),
                          device=device, **_norm(stats))
    scratch = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    save_checkpoint(scratch, encoder.cpu(), config)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(scratch, folder)
    except OSError:  # another process cached it at the same moment: keep theirs
        shutil.rmtree(scratch, ignore_errors=True)
    return encoder.eval()


def _norm(stats: dict[str, Any]) -> dict[str, Any]:
    return {"mean": stats["mean"], "std": stats["std"]}
