"""The calibration the verdict rests on: unseen real images, posing as synthetic ones, are
judged `ok` in the domain encoder's feature space, and one real image repeated is `collapsed`.
A verdict that failed real images would blame every generator for the measure's own error."""

from __future__ import annotations

import numpy as np

from synthmed.data import Dataset
from synthmed.quality.features import encoder_for
from synthmed.quality.report import quality_report


def _report(dataset: Dataset, synthetic: dict[str, np.ndarray]) -> dict:
    real = {c: dataset.load_images(dataset.select(split="train", source="real", labels=[c])) for c in dataset.classes}
    encoder = encoder_for(dataset, device="cpu", warn=lambda _: None)
    return quality_report(synthetic, real, classes=dataset.classes, encoder=encoder, feature_space="encoder")


def test_held_out_real_images_are_ok_and_one_repeated_image_is_collapsed(sample_dataset):
    dataset = Dataset.open(sample_dataset)
    held_out = {c: dataset.load_images(dataset.select(split=("val", "test"), labels=[c])) for c in dataset.classes}
    report = _report(dataset, held_out)
    verdicts = {c: s["verdict"] for c, s in report["classes"].items()}
    small = {c for c, s in report["classes"].items() if not s["features"]["trusted"]}
    assert verdicts == {c: "unmeasured" if c in small else "ok" for c in dataset.classes}, report["not_ok"]
    largest = max(dataset.classes, key=lambda c: report["classes"][c]["real_train"])
    features = report["classes"][largest]["features"]
    assert features["trusted"] and features["recall"] >= 0.5 and features["precision"] >= 0.5, features
    # The smallest class has too few real images for neighbourhoods: reported, not judged, and
    # so not called ok.
    smallest = min(dataset.classes, key=lambda c: report["classes"][c]["real_train"])
    assert smallest in small and len(small) < len(dataset.classes)

    repeated = {c: np.repeat(images[:1], len(images), axis=0) for c, images in held_out.items()}
    verdicts = {c: s["verdict"] for c, s in _report(dataset, repeated)["classes"].items()}
    assert verdicts == dict.fromkeys(dataset.classes, "collapsed")
