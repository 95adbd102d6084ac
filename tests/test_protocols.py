"""Optional generator capabilities are declared (synthmed.protocols), not guessed from signatures."""

from __future__ import annotations

import numpy as np
import pytest

from synthmed.protocols import ChecksSize, CountsFitSteps, LoadsModel, ResumableFit, SamplesPerSeed
from synthmed.registry import create_generator


@pytest.mark.parametrize("name", ["ddpm", "acgan", "dcgan"])
def test_builtin_generators_have_every_optional_capability(name):
    generator = create_generator(name)
    for capability in (ResumableFit, CountsFitSteps, SamplesPerSeed, ChecksSize, LoadsModel):
        assert isinstance(generator, capability), capability.__name__


class Recorder:
    """A minimal class-conditional generator that records the keywords its fit received."""

    name = "recorder"
    version = "1"

    def fit(self, images, labels, **keywords):
        self.keywords = keywords

    def sample(self, class_index, count, *, seed, device):
        return np.zeros((count, 1, 8, 8), np.uint8)

    def save(self, folder):
        pass


class ResumableRecorder(Recorder):
    resumable_fit = True


def test_fit_extras_go_only_to_generators_that_declare_them(sample_dataset, tmp_path):
    from synthmed.data import Dataset
    from synthmed.generate.sampling import fit_generator

    dataset = Dataset.open(sample_dataset)
    rows = dataset.select(split="train", source="real")[:8]
    plain, resumable = Recorder(), ResumableRecorder()
    for generator in (plain, resumable):
        fit_generator(generator, dataset, rows, epochs=1, device="cpu", seed=0, state_dir=tmp_path / "state")
    assert not isinstance(plain, (ResumableFit, CountsFitSteps, SamplesPerSeed, ChecksSize, LoadsModel))
    assert set(plain.keywords) == {"epochs", "device", "seed", "progress"}
    assert resumable.keywords["num_classes"] == len(dataset.classes)
    assert resumable.keywords["state_dir"] == tmp_path / "state"
