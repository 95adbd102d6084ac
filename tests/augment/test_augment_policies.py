"""Augmentation policies: every registered one, the spec language and the training hook."""

from __future__ import annotations

import pytest
import torch

from synthmed.augment import build_policy, normalise_spec, policy_tag, training_input
from synthmed.errors import UsageError
from synthmed.registry import list_augmentations

# A spec per built-in that is certain (or, for the random-op families, nearly certain per image)
# to change an image; a new policy must be added here.
FORCING = {
    "none": None,
    "hflip": "hflip(p=1)",
    "vflip": "vflip(p=1)",
    "flips": "flips(p=1)",
    "flips-brightness": "flips-brightness(p=1,brightness=0.3)",
    "rotate": "rotate(degrees=30)",
    "affine": "affine",
    "elastic": "elastic(alpha=4)",
    "brightness": "brightness(amount=0.3)",
    "contrast": "contrast(amount=0.5)",
    "gamma": "gamma(amount=1)",
    "noise": "noise(std=0.1)",
    "blur": "blur(p=1,sigma=2,min_sigma=1)",
    "medical": "medical(p=1)",
    "color-jitter": "color-jitter",
    "autoaugment": "autoaugment",
    "randaugment": "randaugment",
    "trivialaugment": "trivialaugment",
}
RGB_ONLY = {"color-jitter"}


def images(channels: int, n: int = 12, size: int = 24) -> torch.Tensor:
    """Smooth, non-symmetric images with structure (random noise hides blur and rotations)."""
    g = torch.Generator().manual_seed(channels)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([(xs * (1 + k) + ys**2 * 0.5) % 1.0 for k in range(n)])[:, None]
    checker = ((torch.arange(size)[:, None] // 4 + torch.arange(size)[None, :] // 4) % 2).float()
    base = 0.7 * base + 0.3 * checker
    out = base.repeat(1, channels, 1, 1) * (0.5 + 0.5 * torch.rand(n, channels, 1, 1, generator=g))
    return out.clamp(0, 1)


def test_every_registered_policy_is_covered():
    assert set(list_augmentations()) == set(FORCING)


@pytest.mark.parametrize(
    "name, channels",
    [(name, channels) for name in sorted(FORCING) for channels in (1, 3) if not (name in RGB_ONLY and channels == 1)],
)  # RGB-only policies on grayscale: see test_bad_specs_are_usage_errors
def test_policy_shape_range_seed_and_effect(name, channels):
    x = images(channels)
    policy = build_policy(name, channels=channels)
    torch.manual_seed(3)
    y = policy(x)
    torch.manual_seed(3)
    again = policy(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(y, again), "same seed must give the same output"
    torch.manual_seed(4)
    assert not torch.equal(policy(x), y) or FORCING[name] is None or name in ("hflip", "vflip", "flips")
    assert torch.equal(x, images(channels)), "the input must not be modified"
    if FORCING[name] is None:
        assert torch.equal(y, x)
        return
    forced = build_policy(FORCING[name], channels=channels)
    torch.manual_seed(5)
    changed = (forced(x) - x).abs().amax(dim=(1, 2, 3)) > 1e-3
    # random-op families can draw the identity op for a few images
    assert changed.float().mean() >= (0.5 if name in ("randaugment", "trivialaugment", "autoaugment") else 1.0), name


@pytest.mark.parametrize("name", ["medical", "autoaugment", "randaugment", "trivialaugment", "affine", "flips", "noise"])
def test_per_image_generators_do_not_depend_on_the_batch(name):
    policy = build_policy(name, channels=1)
    x = images(1, n=6)

    def gens(indices):
        return [torch.Generator().manual_seed(100 + i) for i in indices]

    whole = policy(x, generators=gens(range(6)))
    split = torch.cat([policy(x[:2], generators=gens(range(2))), policy(x[2:], generators=gens(range(2, 6)))])
    assert torch.equal(whole, split)
    assert not torch.equal(whole, policy(x, generators=[torch.Generator().manual_seed(7 + i) for i in range(6)]))


def test_exact_values_of_simple_policies():
    x = images(1)
    assert torch.equal(build_policy("hflip(p=1)", channels=1)(x), x.flip(-1))
    assert torch.equal(build_policy("vflip(p=1)", channels=1)(x), x.flip(-2))
    assert torch.equal(build_policy("hflip(p=0)+vflip(p=0)", channels=1)(x), x)
    assert torch.allclose(build_policy("rotate(degrees=0)", channels=1)(x), x, atol=1e-5)
    assert torch.allclose(build_policy("gamma(amount=0)+noise(std=0)", channels=1)(x), x, atol=1e-6)
    # flips folded into the warp matrix (a rotation follows) are still exact flips
    assert torch.allclose(build_policy("hflip(p=1)+rotate(degrees=0)", channels=1)(x), x.flip(-1), atol=1e-5)
    # the retina thesis's balancing policy raises brightness
    torch.manual_seed(0)
    y = build_policy("flips-brightness(p=0,brightness=0.2)", channels=1)(x)
    assert (y >= x - 1e-6).all() and float((y - x).mean()) > 0.02


def test_rotation_turns_the_image():
    x = torch.zeros(1, 1, 21, 21)
    x[..., 10, 12:] = 1.0  # a bar pointing right from the centre
    torch.manual_seed(0)
    y = build_policy("rotate(degrees=90)", channels=1)(x.repeat(64, 1, 1, 1))
    # some draws turn it far enough that the bar leaves its row
    assert float(y[:, 0, 10, 12:].sum(dim=1).min()) < 5.0
    # an exact quarter turn about the centre equals torch.rot90
    from synthmed.augment.ops import affine_matrices, warp

    z = images(1, n=2, size=16)
    turned = warp(z, affine_matrices(torch.full((2,), 90.0)))
    assert min(float((turned - torch.rot90(z, k, (2, 3))).abs().max()) for k in (1, 3)) < 1e-4


def test_composed_spec_uses_one_warp_and_keeps_dtype():
    from synthmed.augment.ops import GeometricRun, fuse

    policy = build_policy("hflip(p=0.5)+rotate(degrees=10)+affine(shear=0)+gamma", channels=1)
    fused = fuse(policy.stages)
    assert isinstance(fused[0], GeometricRun) and len(fused[0].stages) == 3 and len(fused) == 2
    # stages that fill the outside differently need their own warp
    mixed = build_policy("hflip+rotate(padding=border)+rotate(padding=zeros)", channels=1)
    assert [len(run.stages) for run in fuse(mixed.stages)] == [2, 1]
    x = images(1).double()
    assert policy(x).dtype == torch.float64


def test_grayscale_autoaugment_skips_colour_but_keeps_other_ops():
    from synthmed.augment.auto import INTENSITY_FUNCTIONS

    x = images(1, n=4)
    factor = torch.full((4,), 0.8)
    assert torch.equal(INTENSITY_FUNCTIONS["color"](x, factor), x)
    assert not torch.equal(INTENSITY_FUNCTIONS["equalize"](x, factor), x)
    rgb = images(3, n=4)
    assert not torch.equal(INTENSITY_FUNCTIONS["color"](rgb, factor), rgb)


def test_spec_normalisation_and_tag():
    assert normalise_spec(" rotate( p = 1.0 , degrees=10.0 ) + hflip ") == "rotate(degrees=10,p=1)+hflip"
    assert policy_tag("hflip(p=0.50)+rotate(degrees=10)", channels=1).startswith("hflip(p=0.5)+rotate(degrees=10)@")
    assert normalise_spec("autoaugment(policy='imagenet')") == "autoaugment(policy=imagenet)"


@pytest.mark.parametrize(
    "spec, channels, fragment",
    [
        ("warp", 1, "unknown augmentation 'warp'; available: none, hflip"),
        ("rotate(deg=10)", 1, "has no parameter 'deg'; its parameters are degrees=15.0, p=1.0, padding=zeros"),
        ("rotate(padding=wrap)", 1, "padding='wrap' is not one of zeros, border, reflection"),
        ("trivialaugment(n=1)", 1, "it takes no parameters"),
        ("hflip(p=1.5)", 1, "p=1.5 is out of range; expected 0.0 <= p <= 1.0"),
        ("hflip(p=-0.1)", 1, "out of range"),
        ("rotate(degrees=-5)", 1, "degrees=-5.0 is out of range"),
        ("noise(std=big)", 1, "std='big' must be a number"),
        ("randaugment(n=2.5)", 1, "must be a whole number"),
        ("autoaugment(policy=foo)", 1, "is not one of imagenet, cifar10, svhn"),
        ("hflip(p=0.5", 1, "never closed"),
        ("hflip+", 1, "policy name is missing"),
        ("", 1, "empty"),
        ("hflip(p)", 1, "is not KEY=VALUE"),
        ("hflip(p=1,p=2)", 1, "given twice"),
        ("color-jitter", 1, "needs images with 3 channel(s) (RGB), these have 1"),
    ],
)
def test_bad_specs_are_usage_errors(spec, channels, fragment):
    with pytest.raises(UsageError) as info:
        build_policy(spec, channels=channels)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_training_input_runs_the_policy_then_standardises():
    from synthmed.batches import model_input

    stored = (images(1, n=4) * 255).round().to(torch.uint8)
    norm = {"mean": [0.4], "std": [0.2]}
    assert torch.allclose(training_input(stored, build_policy("none", channels=1), norm), model_input(stored, norm))
    flipped = training_input(stored, build_policy("hflip(p=1)", channels=1), norm)
    assert torch.allclose(flipped, model_input(stored, norm).flip(-1))


def test_plugin_policy_composes_with_builtins(fresh_plugins):
    from synthmed.hookspecs import hookimpl
    from synthmed.plugins import get_plugin_manager

    class Plugin:
        @hookimpl
        def register_augmentations(self, register):
            def invert_factory(strength: float = 1.0):
                return lambda x: (1 - x) * strength + x * (1 - strength)

            register("invert", invert_factory)

    pm = get_plugin_manager()
    pm.register(Plugin(), name="inverter")
    try:
        x = images(1)
        policy = build_policy("invert+hflip(p=1)", channels=1)
        assert torch.allclose(policy(x), (1 - x).flip(-1))
        with pytest.raises(UsageError, match="its parameters are strength=1.0"):
            build_policy("invert(k=1)", channels=1)
        assert "@0+inline" in policy_tag("invert+hflip", channels=1)
    finally:
        pm.unregister(name="inverter")


def test_medical_preset_preserves_anatomy_on_real_xrays():
    """On real chest X-rays, `medical` keeps each image's layout (correlation of 8x8-pooled
    images with the original) far better than flips do, and its border padding beats black
    wedges; every grayscale policy keeps the value range."""
    import numpy as np
    from PIL import Image

    from tests.conftest import shared_data

    folder = shared_data("chest-xray-kermany-224", "test", "NORMAL")
    files = sorted(folder.glob("*.jp*g"))[:8]
    arrays = [np.asarray(Image.open(f).convert("L").resize((64, 64))) for f in files]
    x = torch.from_numpy(np.stack(arrays)).float().div(255)[:, None]

    def layout_correlation(spec):
        torch.manual_seed(0)
        a = torch.nn.functional.avg_pool2d(build_policy(spec, channels=1)(x), 8).flatten(1)
        b = torch.nn.functional.avg_pool2d(x, 8).flatten(1)
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))

    kept = layout_correlation("medical")
    assert float(kept.min()) > 0.6 and float(kept.max()) < 0.9999
    assert float(kept.mean()) > float(layout_correlation("hflip(p=1)+vflip(p=1)").mean()) + 0.3
    assert float(kept.mean()) > float(layout_correlation("medical(padding=zeros)").mean())
    for name in FORCING:
        if name not in RGB_ONLY:
            y = build_policy(name, channels=1)(x)
            assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_unselected_images_are_untouched_by_a_warp():
    x = images(1, n=32)
    torch.manual_seed(1)
    y = build_policy("rotate(degrees=30,p=0.5)", channels=1)(x)
    same = (y == x).flatten(1).all(1)
    assert 0 < int(same.sum()) < 32
    assert torch.equal(build_policy("affine(p=0)", channels=1)(x), x)
