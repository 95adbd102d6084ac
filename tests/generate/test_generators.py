"""The built-in generators as Python objects: checkpoints, seeds, samplers, fit checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gen_helpers import class_arrays
from synthmed.registry import create_generator
from tiny import TINY

ARGS = TINY["generator"]


@pytest.fixture(scope="module")
def data():
    return class_arrays()


def fitted(name, data, epochs=1, state_dir=None, seed=0):
    generator = create_generator(name, **ARGS[name])
    generator.fit(*data, epochs=epochs, device=torch.device("cpu"), seed=seed, num_classes=4, state_dir=state_dir)
    return generator


@pytest.mark.parametrize("name", ["acgan", "dcgan", "ddpm"])
def test_checkpoint_round_trip_is_bit_for_bit(name, data, tmp_path):
    import json

    from safetensors.torch import load_file

    generator = fitted(name, data)
    generator.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["kind"] == "generator" and config["arch"]["num_classes"] == 4
    assert config["arch"]["fitted_classes"] == [0, 1, 2]
    loaded = create_generator(name, **ARGS[name])
    loaded.load(tmp_path / "m")
    original, restored = generator.net.state_dict(), loaded.net.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert load_file(str(tmp_path / "m" / "model.safetensors")).keys() == original.keys()
    seeds = [11, 12, 13]
    first = generator.sample_seeds(1, seeds, device="cpu")
    assert first.shape == (3, 1, 16, 16) and first.dtype == np.uint8
    assert np.array_equal(first, loaded.sample_seeds(1, seeds, device="cpu"))
    # Image i depends only on seeds[i], not on the batch around it.
    assert np.array_equal(first[2], loaded.sample_seeds(1, [13], device="cpu")[0])
    assert not np.array_equal(first[0], first[1])
    # Classes never fitted cannot be sampled.
    with pytest.raises(ValueError, match="not fitted on class index 3"):
        generator.sample_seeds(3, [1], device="cpu")


def test_protocol_sample_is_seeded(data):
    generator = fitted("acgan", data)
    a = generator.sample(0, 4, seed=7, device="cpu")
    assert a.shape == (4, 1, 16, 16)
    assert np.array_equal(a, generator.sample(0, 4, seed=7, device="cpu"))
    assert not np.array_equal(a, generator.sample(0, 4, seed=8, device="cpu"))


@pytest.mark.parametrize("name", ["ddpm", "dcgan"])
def test_resumed_fit_equals_uninterrupted_fit(name, data, tmp_path):
    whole = fitted(name, data, epochs=2)
    state = tmp_path / "state"
    fitted(name, data, epochs=1, state_dir=state)  # "interrupted" after epoch 1
    resumed = fitted(name, data, epochs=2, state_dir=state)
    a, b = whole.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_state_from_other_seed_is_refused(data, tmp_path):
    from synthmed.errors import UsageError

    fitted("acgan", data, epochs=1, state_dir=tmp_path / "s", seed=0)
    with pytest.raises(UsageError, match="other data, seed"):
        fitted("acgan", data, epochs=2, state_dir=tmp_path / "s", seed=1)


@pytest.mark.parametrize("sampler, guidance", [("ddim", 2.0), ("dpm", 1.0), ("ddpm", 3.0)])
def test_ddpm_samplers(sampler, guidance, data):
    generator = fitted("ddpm", data)
    generator.sampler, generator.guidance = sampler, guidance
    generator.arch["train_timesteps"] = 20 if sampler == "ddpm" else generator.arch["train_timesteps"]
    images = generator.sample_seeds(2, [1, 2], device="cpu")
    assert images.shape == (2, 1, 16, 16)
    assert np.array_equal(images, generator.sample_seeds(2, [1, 2], device="cpu"))


def test_ddpm_unet_has_a_null_class_embedding(data):
    generator = fitted("ddpm", data)
    assert generator.net.class_embedding.num_embeddings == 5  # 4 classes + the null label


def test_bad_arguments_and_sizes():
    from synthmed.generate.gan_models import seed_size

    with pytest.raises(ValueError, match="sampler"):
        create_generator("ddpm", sampler="euler")
    with pytest.raises(ValueError, match="preset"):
        create_generator("ddpm", preset="huge")
    with pytest.raises(TypeError):
        create_generator("acgan", steps=3)
    with pytest.raises(ValueError, match="multiples of 16"):
        seed_size((24, 24))
    assert seed_size((112, 112)) == (7, 7)  # the paper's 7x7 seed
    with pytest.raises(ValueError, match="multiples of 16"):
        create_generator("acgan").check_size((24, 24), 1)
