"""AutoAugment, RandAugment and TrivialAugmentWide, batched with a choice per image.

`kornia.augmentation.auto.AutoAugment` picks ONE sub-policy per forward call (the whole batch
shares it) and runs each op as a module; here every image draws its own sub-policy, ops run
vectorised on the subset of images that drew them (kornia.enhance functional ops), and all
geometric ops of an image (rotate, shear, translate) are multiplied into one matrix and applied
with one warp per batch at the end. The ImageNet/CIFAR-10/SVHN policy tables are kornia's.

Magnitudes follow torchvision's augmentation spaces (10 bins for AutoAugment, 31 for
RandAugment and TrivialAugmentWide); translations are fractions of the side (150/331, and
32/224 for the wide space) so they scale with the image. Approximations, documented in
docs/augment.md: geometric ops are applied after the intensity ops of the same draw, and about
the image centre; on one channel `color` (saturation) is the identity, since a gray image has no
saturation to change; every other op acts per channel and is meaningful on grayscale.
"""

from __future__ import annotations

import torch

from synthmed.augment.ops import Draw, affine_matrices, blend_with_mean, per_image, warp

INTENSITY_OPS = (
    "identity", "brightness", "color", "contrast", "sharpness",
    "posterize", "solarize", "auto_contrast", "equalize", "invert",
)  # fmt: skip
GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
OPS = INTENSITY_OPS + GEOMETRIC_OPS
INDEX = {name: i for i, name in enumerate(OPS)}
# RandAugment's and TrivialAugmentWide's op list (torchvision's): no invert.
RANDOM_OPS = tuple(name for name in OPS if name != "invert")


def magnitude_table(num_bins: int, *, wide: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(OPS), num_bins) magnitudes and (len(OPS),) `signed` flags, as torchvision's spaces."""

    def lin(high: float, low: float = 0.0) -> torch.Tensor:
        return torch.linspace(low, high, num_bins)

    steps = torch.arange(num_bins, dtype=torch.float32)
    space = {
        "shear_x": lin(0.99 if wide else 0.3),
        "shear_y": lin(0.99 if wide else 0.3),
        "translate_x": lin(32 / 224 if wide else 150 / 331),
        "translate_y": lin(32 / 224 if wide else 150 / 331),
        "rotate": lin(135.0 if wide else 30.0),
        "brightness": lin(0.99 if wide else 0.9),
        "color": lin(0.99 if wide else 0.9),
        "contrast": lin(0.99 if wide else 0.9),
        "sharpness": lin(0.99 if wide else 0.9),
        "posterize": 8 - (steps / ((num_bins - 1) / (6 if wide else 4))).round(),
        "solarize": lin(0.0, 1.0),
    }
    values = torch.zeros(len(OPS), num_bins)
    for name, row in space.items():
        values[INDEX[name]] = row
    signed_names = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color", "contrast", "sharpness")
    signed = torch.tensor([name in signed_names for name in OPS])
    return values, signed


def _auto_contrast(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    span = high - low
    return torch.where(span > 0, (x - low) / span.clamp_min(1e-8), x).clamp_(0.0, 1.0)


def _color(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x  # a gray image has no saturation to change
    from kornia.enhance import adjust_saturation_with_gray_subtraction

    return adjust_saturation_with_gray_subtraction(x, 1.0 + m).clamp_(0.0, 1.0)


def _sharpness(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from kornia.enhance import sharpness

    return sharpness(x, 1.0 + m).clamp_(0.0, 1.0)


def _posterize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from kornia.enhance import posterize

    return posterize(x, m.round().long())


def _solarize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from kornia.enhance import solarize

    return solarize(x, m)


def _equalize(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    from kornia.enhance import equalize

    return equalize(x)


INTENSITY_FUNCTIONS = {
    "brightness": lambda x, m: (x * per_image(1.0 + m)).clamp_(0.0, 1.0),
    "color": _color,
    "contrast": lambda x, m: blend_with_mean(x, 1.0 + m),
    "sharpness": _sharpness,
    "posterize": _posterize,
    "solarize": _solarize,
    "auto_contrast": _auto_contrast,
    "equalize": _equalize,
    "invert": lambda x, m: 1.0 - x,
}


def apply_ops(x: torch.Tensor, steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Run per-image ops: `steps` is a list of (op index, signed magnitude, applied) tensors of shape (N,)."""
    n, _, h, w = x.shape  # x is the stage's own batch: ops write into it
    total = torch.eye(3, device=x.device).expand(n, 3, 3)
    moved = torch.zeros(n, dtype=torch.bool, device=x.device)
    for op, magnitude, on in steps:
        for name, function in INTENSITY_FUNCTIONS.items():
            idx = torch.nonzero(on & (op == INDEX[name])).flatten()
            if idx.numel():
                x[idx] = function(x[idx], magnitude[idx])
        geometric = on & (op >= INDEX[GEOMETRIC_OPS[0]])
        if bool(geometric.any()):

            def amount(name: str) -> torch.Tensor:
                return torch.where(on & (op == INDEX[name]), magnitude, torch.zeros_like(magnitude))

            step = affine_matrices(
                amount("rotate"),
                tx=amount("translate_x") * w,
                ty=amount("translate_y") * h,
                shear_x=amount("shear_x"),
                shear_y=amount("shear_y"),
            )
            total = step @ total
            moved |= geometric
    idx = torch.nonzero(moved).flatten()
    if idx.numel():
        x[idx] = warp(x[idx], total[idx])
    return x


class _Space:
    def __init__(self, num_bins: int, wide: bool, device: torch.device) -> None:
        values, signed = magnitude_table(num_bins, wide=wide)
        self.values, self.signed = values.to(device), signed.to(device)

    def magnitude(self, op: torch.Tensor, bin_index: torch.Tensor, draw: Draw) -> torch.Tensor:
        sign = draw.sign()
        return self.values[op, bin_index] * torch.where(self.signed[op], sign, torch.ones_like(sign))


class AutoAugmentStage:
    """One sub-policy per image from a table of [(op, probability, magnitude bin or None), ...]."""

    def __init__(self, table: list) -> None:
        unknown = {op for sub in table for op, _, _ in sub} - set(OPS)
        if unknown:
            raise ValueError(f"unsupported AutoAugment ops {sorted(unknown)}")
        self.length = max(len(sub) for sub in table)
        pad = [("identity", 0.0, None)]
        self.ops = torch.tensor([[INDEX[op] for op, _, _ in sub + pad * (self.length - len(sub))] for sub in table])
        self.probs = torch.tensor([[p for _, p, _ in sub + pad * (self.length - len(sub))] for sub in table])
        self.bins = torch.tensor([[m or 0 for _, _, m in sub + pad * (self.length - len(sub))] for sub in table])
        self._spaces: dict[torch.device, _Space] = {}

    def __call__(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        space = self._spaces.setdefault(x.device, _Space(10, False, x.device))
        choice = draw.integers(len(self.ops)).cpu()
        steps = []
        for s in range(self.length):
            op = self.ops[choice, s].to(x.device)
            on = draw.rand() < self.probs[choice, s].to(x.device)
            steps.append((op, space.magnitude(op, self.bins[choice, s].to(x.device), draw), on))
        return apply_ops(x, steps)


class RandomOpsStage:
    """RandAugment (`num_ops` ops at a fixed magnitude bin) or TrivialAugmentWide (one op, random bin)."""

    def __init__(self, *, num_ops: int, magnitude: int | None, num_bins: int = 31, wide: bool = False) -> None:
        self.num_ops, self.magnitude, self.num_bins, self.wide = num_ops, magnitude, num_bins, wide
        self.choices = torch.tensor([INDEX[name] for name in RANDOM_OPS])
        self._spaces: dict[torch.device, _Space] = {}

    def __call__(self, x: torch.Tensor, draw: Draw) -> torch.Tensor:
        space = self._spaces.setdefault(x.device, _Space(self.num_bins, self.wide, x.device))
        choices = self.choices.to(x.device)
        steps = []
        for _ in range(self.num_ops):
            op = choices[draw.integers(len(choices))]
            bin_index = draw.integers(self.num_bins) if self.magnitude is None else torch.full_like(op, self.magnitude)
            steps.append((op, space.magnitude(op, bin_index, draw), torch.ones_like(op, dtype=torch.bool)))
        return apply_ops(x, steps)


def kornia_policy_table(name: str) -> list:
    """kornia's AutoAugment sub-policy tables ('imagenet', 'cifar10', 'svhn')."""
    from kornia.augmentation.auto.autoaugment import autoaugment

    return {"imagenet": autoaugment.imagenet_policy, "cifar10": autoaugment.cifar10_policy, "svhn": autoaugment.svhn_policy}[name]
