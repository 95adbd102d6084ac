"""The default generator, fitted for the generator benchmark's budget on the 32 px sample
data, makes images that no class's verdict calls `collapsed` (slow: 5 CPU-minutes of fitting)."""

from __future__ import annotations

import pytest

# The epochs 5 CPU-minutes of fitting gave (benchmarks/bench_generators.py --fit-minutes 5):
# a count, not a clock, so that the test does not depend on the machine's other load.
FIT_EPOCHS = 31
# benchmarks/bench_generators.py DEFAULT_GENERATOR and its settings
DEFAULT_GENERATOR, SETTINGS = "ddpm", {"preset": "tiny", "lr": 1e-3, "batch_size": 32}


@pytest.mark.slow
def test_the_default_generator_does_not_collapse_on_the_sample_data(tmp_path):
    from synthmed.data import Dataset
    from synthmed.data.sample import write_sample_dataset
    from synthmed.quality.features import encoder_for
    from synthmed.quality.report import quality_report
    from synthmed.registry import create_generator

    dataset = Dataset.open(write_sample_dataset(tmp_path / "data", size=32, scale=0.2, seed=0))
    rows = dataset.select(split="train", source="real")
    generator = create_generator(DEFAULT_GENERATOR, **SETTINGS)
    generator.fit(dataset.load_images(rows), dataset.label_indices(rows), epochs=FIT_EPOCHS, device="cpu", seed=0,
                  num_classes=len(dataset.classes))
    real = {c: dataset.load_images(dataset.select(split="train", source="real", labels=[c])) for c in dataset.classes}
    synthetic = {c: generator.sample(i, 64, seed=1, device="cpu") for i, c in enumerate(dataset.classes)}
    report = quality_report(synthetic, real, classes=dataset.classes, feature_space="encoder",
                            encoder=encoder_for(dataset, device="cpu", warn=lambda _: None))
    verdicts = {c: s["verdict"] for c, s in report["classes"].items()}
    assert "collapsed" not in verdicts.values(), {c: report["classes"][c]["problems"] for c in verdicts}
