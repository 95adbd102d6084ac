"""DiffAugment and the GAN stabilisers (synthmed.generate.gan_training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch

from synthmed.generate.gan_training import GanRecipe, diff_augment, parse_augment
from synthmed.generate.gans import AcganGenerator, DcganGenerator

REPO = Path(__file__).resolve().parents[2]


def test_diff_augment_changes_images_and_lets_gradients_through():
    torch.manual_seed(0)
    x = (torch.rand(8, 1, 16, 16) * 2 - 1).requires_grad_(True)
    out = diff_augment(x, parse_augment("translation,cutout,color"))
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert (out == 0).flatten(1).sum(1).min() >= 8 * 8  # the cutout square is zero
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert parse_augment("none") == ()
    with pytest.raises(ValueError, match="unknown op 'blur'"):
        parse_augment("blur")


def discriminator_inputs(generator, images, labels, group=None):
    """The batches the discriminator(s) see during one training step."""
    seen = []
    discs = [generator.disc] if hasattr(generator, "disc") and generator.disc is not None else list(generator.discs.values())
    for disc in discs:
        disc.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().clone()))
    generator._train_step(group, images, labels, "cpu")
    return seen


@pytest.mark.parametrize("cls", [AcganGenerator, DcganGenerator])
@pytest.mark.parametrize("augment", ["translation,cutout,color", "none"])
def test_diff_augment_is_applied_to_real_and_fake_discriminator_inputs(cls, augment):
    torch.manual_seed(0)
    generator = cls(width=4, batch_size=4, augment=augment)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 1, 16, 16), dtype=np.uint8)
    labels = np.array([0, 0, 1, 1])
    generator.arch = {"channels": 1, "image_size": [16, 16], "num_classes": 2, "fitted_classes": [0, 1],
                      **generator._arch_extra((16, 16))}
    generator._build(generator.arch)
    generator._training_setup("cpu")
    real = torch.from_numpy(images).float() / 127.5 - 1
    # Capture what G makes in this step, to compare with what D is shown.
    made = []
    nets = [generator.net] if cls is AcganGenerator else [generator.net["0"]]
    nets[0].register_forward_hook(lambda _m, _i, out: made.append(out.detach().clone()))
    seen = discriminator_inputs(generator, real, torch.from_numpy(labels), group=None if cls is AcganGenerator else "0")
    assert len(seen) == 3  # real, fake (D step), fake (G step)
    fake = made[0]
    if augment == "none":
        assert torch.equal(seen[0], real) and torch.equal(seen[1], fake) and torch.equal(seen[2], fake)
    else:
        assert not torch.allclose(seen[0], real)  # the real batch is augmented
        assert not torch.allclose(seen[1], fake) and not torch.allclose(seen[2], fake)  # and both fake ones


def test_recipe_losses_spectral_norm_and_r1():
    hinge = GanRecipe.from_args(augment="none", loss="hinge", spectral_norm=True, r1=2.0)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge.d_loss(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert hinge.g_loss(fake).item() == pytest.approx(1.0)
    disc = hinge.prepare(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1)))
    assert torch.nn.utils.parametrize.is_parametrized(disc[1])
    x = torch.ones(3, 4)
    # score = w . x, so the input gradient is w for every row: r1 / 2 * |w|^2.
    penalty = hinge.r1_penalty(lambda v: disc(v).squeeze(1), x)
    assert penalty.item() == pytest.approx(disc[1].weight.pow(2).sum().item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss"):
        GanRecipe.from_args(augment="none", loss="wgan", spectral_norm=False, r1=0)


@pytest.mark.parametrize("cls", [AcganGenerator, DcganGenerator])
def test_a_fit_with_every_stabiliser_runs_and_samples(cls):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 1, 16, 16), dtype=np.uint8)
    generator = cls(width=4, batch_size=4, loss="hinge", spectral_norm=True, r1=1.0)
    generator.fit(images, np.array([0, 1] * 4), epochs=1, device="cpu", seed=0)
    out = generator.sample(1, 3, seed=0, device="cpu")
    assert out.shape == (3, 1, 16, 16) and out.dtype == np.uint8


def test_mode_seeking_grows_as_the_generator_ignores_its_noise():
    recipe = GanRecipe.from_args(augment="none", loss="hinge", spectral_norm=False, r1=0, mode_seeking=2.0)
    noise = torch.cat([torch.zeros(2, 4), torch.ones(2, 4)])  # the halves are 1 apart
    apart = torch.cat([torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), 0.5)])
    assert recipe.mode_seeking_loss(apart, noise).item() == pytest.approx(2.0 / 0.5, rel=1e-4)
    same = torch.zeros(4, 1, 3, 3)
    assert recipe.mode_seeking_loss(same, noise).item() > 1e4
    off = GanRecipe.from_args(augment="none", loss="hinge", spectral_norm=False, r1=0, mode_seeking=0)
    assert off.mode_seeking_loss(same, noise) == 0.0


def test_acgan_mode_seeking_pairs_share_a_label():
    torch.manual_seed(0)
    generator = AcganGenerator(width=4, batch_size=6, mode_seeking=1.0)
    generator.arch = {"channels": 1, "image_size": [16, 16], "num_classes": 3, "fitted_classes": [0, 1, 2],
                      **generator._arch_extra((16, 16))}
    generator._build(generator.arch)
    generator._training_setup("cpu")
    given = []
    generator.net.register_forward_pre_hook(lambda _m, inputs: given.append(inputs[1].clone()))
    generator._train_step(None, torch.zeros(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2]), "cpu")
    assert torch.equal(given[0][:3], given[0][3:])


def test_discriminator_without_batch_norm_has_biases_instead():
    from synthmed.generate.gan_models import Discriminator

    plain = Discriminator(channels=1, image_size=(16, 16), width=4, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    paper = Discriminator(channels=1, image_size=(16, 16), width=4)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in paper.modules()) == 3


def documented_defaults():
    """{option: (acgan default, dcgan default)} from the small-data table of docs/generate.md."""
    text = (REPO / "docs" / "generate.md").read_text(encoding="utf-8")
    table = text.split("### Small-data options of acgan and dcgan")[1].split("\n\n")[2]
    rows = [line.split("|")[1:4] for line in table.splitlines()[2:]]
    return {name.strip(" `"): (ac.strip(" `"), dc.strip(" `")) for name, ac, dc in rows}


def as_documented(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def test_the_registered_defaults_are_the_documented_ones():
    from synthmed.registry import create_generator

    documented = documented_defaults()
    assert set(documented) == {"augment", "loss", "spectral_norm", "d_norm", "mode_seeking", "r1"}
    for column, name in enumerate(["acgan", "dcgan"]):
        registered = create_generator(name).recipe.args()
        assert {key: as_documented(registered[key]) for key in documented} == {
            key: values[column] for key, values in documented.items()}
    acgan, dcgan = create_generator("acgan"), create_generator("dcgan")
    assert (acgan.optimizer, acgan.lr, acgan.dropout, acgan.batch_size) == ("adam", 1e-4, 0.0, 32)
    assert (dcgan.lr, dcgan.beta1, dcgan.beta2, dcgan.batch_size) == (4e-4, 0.5, 0.999, 16)
    # The cross-modality paper's example keeps the paper's discriminator and optimizer.
    study = tomllib.loads((REPO / "examples" / "acgan-paper" / "study.toml").read_text(encoding="utf-8"))
    paper = create_generator("acgan", **study["sources"]["acgan"]["args"])
    assert (paper.optimizer, paper.lr, paper.dropout) == ("rmsprop", 1e-4, 0.25)
    assert paper.recipe.args() == {"augment": "none", "loss": "nonsaturating", "spectral_norm": False, "r1": 0.0,
                                   "d_norm": "batch", "mode_seeking": 0.0}


@pytest.mark.parametrize("cls, args, message", [
    (DcganGenerator, {"d_norm": "layer"}, "d_norm must be one of batch, none"),
    (DcganGenerator, {"mode_seeking": -1}, "mode_seeking must be >= 0"),
    (DcganGenerator, {"beta2": 1.0}, "beta1 and beta2 must be in"),
    (AcganGenerator, {"optimizer": "sgd"}, "optimizer must be one of adam, rmsprop"),
    (AcganGenerator, {"spectral_norm": "maybe"}, "spectral_norm must be true or false"),
])
def test_bad_small_data_options_are_refused_in_one_line(cls, args, message):
    with pytest.raises(ValueError, match=message):
        cls(**args)
