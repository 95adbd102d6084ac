"""Factories of the built-in policies (registered in synthmed.default_plugins.augmentations).

Each factory takes the policy's keyword parameters (their defaults are the documented ones),
checks their ranges (a UsageError on bad values) and returns a `Policy`. This module imports
no torch: the stages come from synthmed.augment.ops when a factory is called.
"""

from __future__ import annotations

from typing import Any, Sequence

from synthmed.errors import UsageError


class Policy:
    """A batch transform made of stages; consecutive geometric stages share one warp.

    `policy(x)` draws from torch's global RNG on x's device; `policy(x, generators=[g, ...])`
    draws image i's parameters and noise from the CPU generator g_i instead, so an image's
    result does not depend on which batch it is in."""

    supports_generators = True

    def __init__(self, stages: Sequence[Any]) -> None:
        self.stages = list(stages)
        self._fused: list[Any] | None = None

    def __call__(self, images: Any, *, generators: Sequence[Any] | None = None) -> Any:
        from synthmed.augment.ops import fuse, run_stages

        if self._fused is None:
            self._fused = fuse(self.stages)
        return run_stages(self._fused, images, generators)

    def __add__(self, other: "Policy") -> "Policy":
        return Policy(self.stages + other.stages)


# --------------------------------------------------------------------------- parameter checks


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name}={value!r} must be a number")
    return float(value)


def _within(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    number = _number(name, value)
    if number < low or number > high or (low_open and number == low):
        low_text = f"{low} < {name}" if low_open else f"{low} <= {name}"
        raise UsageError(f"{name}={value} is out of range; expected {low_text} <= {high}")
    return number


def _probability(p: Any) -> float:
    return _within("p", p, 0.0, 1.0)


def _padding(padding: Any) -> str:
    from synthmed.augment.ops import PADDINGS

    if padding not in PADDINGS:
        raise UsageError(f"padding={padding!r} is not one of {', '.join(PADDINGS)}")
    return padding


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise UsageError(f"{name}={value!r} must be a whole number")
    return int(_within(name, value, low, high))


# --------------------------------------------------------------------------- factories


def none() -> Policy:
    """The identity: the baseline every study compares against."""
    return Policy([])


def hflip(p: float = 0.5) -> Policy:
    from synthmed.augment.ops import Flip

    return Policy([Flip(-1, _probability(p))])


def vflip(p: float = 0.5) -> Policy:
    from synthmed.augment.ops import Flip

    return Policy([Flip(-2, _probability(p))])


def flips(p: float = 0.5) -> Policy:
    """Horizontal and vertical flips, each with probability p."""
    return hflip(p) + vflip(p)


def flips_brightness(p: float = 0.5, brightness: float = 0.2) -> Policy:
    """The retina thesis's balancing augmentation: flips and a raised brightness (+U(0, brightness))."""
    from synthmed.augment.ops import Brightness

    return flips(p) + Policy([Brightness(0.0, _within("brightness", brightness, 0.0, 1.0))])


def rotate(degrees: float = 15.0, p: float = 1.0, padding: str = "zeros") -> Policy:
    """Rotation by an angle uniform in [-degrees, degrees]; corners filled by `padding`."""
    from synthmed.augment.ops import Affine

    return Policy([Affine(degrees=_within("degrees", degrees, 0.0, 180.0), p=_probability(p), padding=_padding(padding))])


def affine(
    degrees: float = 10.0, translate: float = 0.1, scale: float = 0.1, shear: float = 5.0, p: float = 1.0, padding: str = "zeros"
) -> Policy:
    """Random rotation, translation (fraction of the side), scale (1 +/- scale) and shear (degrees)."""
    from synthmed.augment.ops import Affine

    return Policy(
        [
            Affine(
                degrees=_within("degrees", degrees, 0.0, 180.0),
                translate=_within("translate", translate, 0.0, 1.0),
                scale=_within("scale", scale, 0.0, 0.9),
                shear=_within("shear", shear, 0.0, 60.0),
                p=_probability(p),
                padding=_padding(padding),
            )
        ]
    )


def elastic(alpha: float = 2.0, sigma: float = 8.0, p: float = 1.0) -> Policy:
    """kornia's elastic transform: alpha scales the displacement, sigma (pixels) smooths it."""
    from synthmed.augment.ops import Elastic

    return Policy(
        [Elastic(_within("alpha", alpha, 0.0, 100.0), _within("sigma", sigma, 0.0, 128.0, low_open=True), _probability(p))]
    )


def brightness(amount: float = 0.2, p: float = 1.0) -> Policy:
    """Add a value uniform in [-amount, amount]."""
    from synthmed.augment.ops import Brightness

    value = _within("amount", amount, 0.0, 1.0)
    return Policy([Brightness(-value, value, _probability(p))])


def contrast(amount: float = 0.2, p: float = 1.0) -> Policy:
    """Scale the distance to the image mean by a factor uniform in [1 - amount, 1 + amount]."""
    from synthmed.augment.ops import Contrast

    return Policy([Contrast(_within("amount", amount, 0.0, 1.0), _probability(p))])


def gamma(amount: float = 0.3, p: float = 1.0) -> Policy:
    """x ** g with log g uniform in [-log(1 + amount), log(1 + amount)]."""
    from synthmed.augment.ops import Gamma

    return Policy([Gamma(_within("amount", amount, 0.0, 4.0), _probability(p))])


def noise(std: float = 0.03, p: float = 1.0) -> Policy:
    """Additive Gaussian noise (standard deviation on the [0, 1] scale)."""
    from synthmed.augment.ops import Noise

    return Policy([Noise(_within("std", std, 0.0, 1.0), _probability(p))])


def blur(sigma: float = 1.0, min_sigma: float = 0.1, p: float = 0.5) -> Policy:
    """Gaussian blur with a standard deviation uniform in [min_sigma, sigma] pixels."""
    from synthmed.augment.ops import Blur

    high = _within("sigma", sigma, 0.1, 16.0)
    return Policy([Blur(_within("min_sigma", min_sigma, 0.1, high), high, _probability(p))])


def medical(
    degrees: float = 10.0,
    translate: float = 0.05,
    scale: float = 0.05,
    gamma: float = 0.2,
    contrast: float = 0.1,
    noise: float = 0.02,
    p: float = 0.5,
    padding: str = "border",
) -> Policy:
    """Anatomy-preserving preset: small rotation, shift and zoom (always), then gamma, contrast
    and noise, each with probability p. No flips (anatomy has a side) and no colour ops. The
    border strip a shift uncovers repeats the edge pixels (no black wedges on X-rays whose
    anatomy reaches the edge, no mirrored anatomy)."""
    from synthmed.augment.ops import Affine, Contrast, Gamma, Noise

    probability = _probability(p)
    return Policy(
        [
            Affine(
                degrees=_within("degrees", degrees, 0.0, 45.0),
                translate=_within("translate", translate, 0.0, 0.5),
                scale=_within("scale", scale, 0.0, 0.5),
                padding=_padding(padding),
            ),
            Gamma(_within("gamma", gamma, 0.0, 4.0), probability),
            Contrast(_within("contrast", contrast, 0.0, 1.0), probability),
            Noise(_within("noise", noise, 0.0, 1.0), probability),
        ]
    )


def color_jitter(brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, hue: float = 0.05, p: float = 1.0) -> Policy:
    """Brightness, contrast, saturation and hue jitter: RGB images only."""
    from synthmed.augment.ops import ColorJitter

    return Policy(
        [
            ColorJitter(
                _within("brightness", brightness, 0.0, 1.0),
                _within("contrast", contrast, 0.0, 1.0),
                _within("saturation", saturation, 0.0, 1.0),
                _within("hue", hue, 0.0, 0.5),
                _probability(p),
            )
        ]
    )


AUTOAUGMENT_POLICIES = ("imagenet", "cifar10", "svhn")


def autoaugment(policy: str = "imagenet") -> Policy:
    """AutoAugment with kornia's sub-policy table (ImageNet by default), one sub-policy per image."""
    from synthmed.augment.auto import AutoAugmentStage, kornia_policy_table

    if policy not in AUTOAUGMENT_POLICIES:
        raise UsageError(f"policy={policy!r} is not one of {', '.join(AUTOAUGMENT_POLICIES)}")
    return Policy([AutoAugmentStage(kornia_policy_table(policy))])


def randaugment(n: int = 2, magnitude: int = 9) -> Policy:
    """RandAugment: n ops drawn per image, at magnitude bin `magnitude` of 31 (torchvision's defaults)."""
    from synthmed.augment.auto import RandomOpsStage

    return Policy([RandomOpsStage(num_ops=_integer("n", n, 1, 10), magnitude=_integer("magnitude", magnitude, 0, 30))])


def trivialaugment() -> Policy:
    """TrivialAugmentWide: one op per image at a random magnitude bin of 31."""
    from synthmed.augment.auto import RandomOpsStage

    return Policy([RandomOpsStage(num_ops=1, magnitude=None, wide=True)])


# name -> factory, registration order; meta `channels` lists the channel counts a policy accepts.
BUILTIN = {
    "none": (none, {}),
    "hflip": (hflip, {}),
    "vflip": (vflip, {}),
    "flips": (flips, {}),
    "flips-brightness": (flips_brightness, {}),
    "rotate": (rotate, {}),
    "affine": (affine, {}),
    "elastic": (elastic, {}),
    "brightness": (brightness, {}),
    "contrast": (contrast, {}),
    "gamma": (gamma, {}),
    "noise": (noise, {}),
    "blur": (blur, {}),
    "medical": (medical, {}),
    "color-jitter": (color_jitter, {"channels": (3,)}),
    "autoaugment": (autoaugment, {}),
    "randaugment": (randaugment, {}),
    "trivialaugment": (trivialaugment, {}),
}
