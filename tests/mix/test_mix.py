"""`synthmed mix`: per-class real fractions, synthetic amounts, balance, even spread, leakage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from synthmed.data import Dataset, DatasetWriter
from synthmed.data.imageio import decode_png


def make_synthetic(out: Path, real: Path, *, per_origin: int | dict[str, int] = 2, generators=("gen-a@1", "gen-b@1"),
                   size=None, leak_from: str | None = None, classes=None) -> Path:
    """A synthetic dataset: `per_origin` images (per class when a dict) per real train image and generator."""
    data = Dataset.open(real)
    height, width = size or data.image_size
    rng = np.random.default_rng(0)
    sources = data.select(split="train")
    if leak_from:
        sources = sources + data.select(split=leak_from)[:1]
    with DatasetWriter(out, classes=classes or data.classes, command="test-generate") as writer:
        for generator in generators:
            for row in sources:
                count = per_origin.get(row["label"], 0) if isinstance(per_origin, dict) else per_origin
                for k in range(count):
                    writer.add_image(
                        rng.integers(0, 256, size=(height, width), dtype=np.uint8),
                        id=f"{row['id']}--{generator.split('@')[0]}-{k:03d}",
                        label=row["label"], split="train", source="synthetic",
                        origin=row["id"], subject=row["subject"], generator=generator, seed=k,
                    )
    return out


@pytest.fixture(scope="module")
def synthetic(sample_dataset, tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("synth") / "synth", sample_dataset, per_origin=1)


def train_counts(out: Path) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for row in Dataset.open(out).select(split="train"):
        counts[(row["label"], row["source"])] = counts.get((row["label"], row["source"]), 0) + 1
    return counts


def real_train(sample_dataset) -> dict[str, int]:
    data = Dataset.open(sample_dataset)
    return {c: len(data.select(split="train", source="real", labels=[c])) for c in data.classes}


def test_real_fraction_only_train_is_subsampled(run, sample_dataset, tmp_path):
    out = tmp_path / "mix"
    result = run("mix", sample_dataset, "-o", out, "--real", "0.5", "--json")
    assert result.code == 0, result.err
    available = real_train(sample_dataset)
    counts = train_counts(out)
    for label, n in available.items():
        assert counts[(label, "real")] == round(0.5 * n)
    real = Dataset.open(sample_dataset)
    mixed = Dataset.open(out)
    mixed.verify()
    held_out = {r["id"]: r["sha256"] for r in real.rows if r["split"] != "train"}
    assert {r["id"]: r["sha256"] for r in mixed.rows if r["split"] != "train"} == held_out
    # val/test files are hard links to REAL's (same filesystem here).
    row = next(r for r in mixed.rows if r["split"] == "test")
    assert os.stat(mixed.path_of(row)).st_ino == os.stat(real.root / row["file_name"]).st_ino
    summary = json.loads(result.out)
    assert summary["per_class"]["NonDemented"]["real_kept"] == round(0.5 * available["NonDemented"])
    assert summary["test"] == sum(1 for r in real.rows if r["split"] == "test")


def test_same_seed_same_mix_other_seed_differs(run, sample_dataset, synthetic, tmp_path):
    args = ("--real", "0.5", "--synthetic", "0.3")
    assert run("mix", sample_dataset, synthetic, "-o", tmp_path / "a", *args, "-q").code == 0
    assert run("mix", sample_dataset, synthetic, "-o", tmp_path / "b", *args, "-q").code == 0
    assert run("mix", sample_dataset, synthetic, "-o", tmp_path / "c", *args, "--seed", "1", "-q").code == 0
    a, b, c = ((tmp_path / n / "metadata.csv").read_bytes() for n in "abc")
    assert a == b and a != c


def test_per_class_real_and_synthetic_classes(run, sample_dataset, synthetic, tmp_path):
    out = tmp_path / "mix"
    result = run(
        "mix", sample_dataset, synthetic, "-o", out,
        "--real", "NonDemented=1.0,MildDemented=0.3",
        "--synthetic", "0.2", "--synthetic-classes", "MildDemented,ModerateDemented", "--json",
    )
    assert result.code == 0, result.err
    available = real_train(sample_dataset)
    counts = train_counts(out)
    assert counts[("NonDemented", "real")] == available["NonDemented"]
    assert counts[("MildDemented", "real")] == round(0.3 * available["MildDemented"])
    assert counts[("VeryMildDemented", "real")] == available["VeryMildDemented"]  # unnamed classes keep all
    assert ("NonDemented", "synthetic") not in counts and ("VeryMildDemented", "synthetic") not in counts
    # 20 % of the class's real train count (before --real), as in "80 % real + 20 % synthetic".
    assert counts[("MildDemented", "synthetic")] == round(0.2 * available["MildDemented"])
    assert counts[("ModerateDemented", "synthetic")] == round(0.2 * available["ModerateDemented"])
    rows = Dataset.open(out).select(split="train", source="synthetic")
    assert all(r["origin"] and r["generator"] for r in rows)  # columns carried through


def test_synthetic_count_spread_across_generators_and_origins(run, sample_dataset, tmp_path):
    synth = make_synthetic(tmp_path / "synth", sample_dataset, per_origin={"MildDemented": 3})
    out = tmp_path / "mix"
    assert run("mix", sample_dataset, synth, "-o", out, "--synthetic", "MildDemented=10", "-q").code == 0
    rows = Dataset.open(out).select(split="train", source="synthetic")
    assert len(rows) == 10 and {r["label"] for r in rows} == {"MildDemented"}
    generators = [r["generator"] for r in rows]
    assert generators.count("gen-a@1") == generators.count("gen-b@1") == 5
    for generator in ("gen-a@1", "gen-b@1"):
        origins = [r["origin"] for r in rows if r["generator"] == generator]
        assert len(set(origins)) == len(origins)  # 5 different real images before any repeats


def test_shortfall_is_reported(run, sample_dataset, synthetic, tmp_path):
    out = tmp_path / "mix"
    result = run("mix", sample_dataset, synthetic, "-o", out, "--synthetic", "ModerateDemented=500", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    moderate = summary["per_class"]["ModerateDemented"]
    assert moderate["synthetic_asked"] == 500 and moderate["synthetic_added"] == moderate["synthetic_available"] < 500
    assert any("ModerateDemented" in s and "only" in s for s in summary["shortfalls"])
    assert "only" in result.err


def test_balance_fills_every_class_to_the_largest(run, sample_dataset, tmp_path):
    available = real_train(sample_dataset)
    largest = max(available.values())
    # Just enough per source image (one generator) to fill each class up to the largest.
    per_origin = {c: -(-(largest - n) // n) for c, n in available.items() if n < largest}
    synth = make_synthetic(tmp_path / "synth", sample_dataset, per_origin=per_origin, generators=("gen@1",))
    out = tmp_path / "mix"
    result = run("mix", sample_dataset, synth, "-o", out, "--balance", "--json")
    assert result.code == 0, result.err
    finals = {c: v["final"] for c, v in json.loads(result.out)["per_class"].items()}
    assert len(set(finals.values())) == 1 and finals["NonDemented"] == max(real_train(sample_dataset).values())
    assert "train split" in result.err  # the per-class table on stderr


def test_leakage_is_refused(run, sample_dataset, tmp_path):
    synth = make_synthetic(tmp_path / "synth", sample_dataset, per_origin=1, leak_from="test")
    out = tmp_path / "mix"
    result = run("mix", sample_dataset, synth, "-o", out, "--synthetic", "0.1")
    assert_usage_error(result, out, "leakage")


def assert_usage_error(result, out: Path, *fragments: str) -> None:
    assert result.code == 2, result.err
    errors = [line for line in result.err.strip().splitlines() if "synthmed: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("synthmed: error:") and result.err.strip().endswith(errors[0]), result.err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert not out.exists()
    assert not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("--real", "1.5"), "over 1.0"),
        (("--real", "NonDemented=1.2"), "over 1.0"),
        (("--synthetic", "MildDemented=-3"), "negative"),
        (("--synthetic", "Unknown=3"), "unknown class"),
        (("--synthetic", "0.2", "--balance"), "choose one"),
        (("--synthetic", "MildDemented=5", "--synthetic-classes", "ModerateDemented"), "--synthetic-classes"),
        (("--real", "ModerateDemented=0", "--synthetic-classes", "MildDemented", "--synthetic", "0.1"), "no train images"),
        ((), "no amount"),
    ],
)
def test_bad_options(run, sample_dataset, synthetic, tmp_path, args, fragment):
    out = tmp_path / "mix"
    assert_usage_error(run("mix", sample_dataset, synthetic, "-o", out, *args), out, fragment)


def test_synthetic_must_match_real(run, sample_dataset, tmp_path):
    small = make_synthetic(tmp_path / "small", sample_dataset, per_origin=1, generators=("g@1",), size=(16, 16))
    out = tmp_path / "mix"
    assert_usage_error(run("mix", sample_dataset, small, "-o", out, "--synthetic", "0.1"), out, "16x16")
    assert_usage_error(run("mix", sample_dataset, "-o", out, "--synthetic", "0.1"), out, "SYNTH")


def test_mixed_images_are_the_inputs_pixels(run, sample_dataset, synthetic, tmp_path):
    out = tmp_path / "mix"
    assert run("mix", sample_dataset, synthetic, "-o", out, "--synthetic", "0.2", "-q").code == 0
    mixed = Dataset.open(out)
    source = Dataset.open(synthetic)
    row = mixed.select(source="synthetic")[0]
    original = next(r for r in source.rows if r["id"] == row["id"])
    assert np.array_equal(decode_png(mixed.path_of(row)), decode_png(source.path_of(original)))
    assert json.loads((out / "dataset.json").read_text())["mix"]["synthetic"] == "0.2"


def test_oversample_adds_exactly_the_asked_duplicates_of_kept_train_images(run, sample_dataset, tmp_path):
    out = tmp_path / "dup"
    result = run("mix", sample_dataset, "-o", out, "--real", "0.5", "--oversample", "MildDemented=7,ModerateDemented=5",
                 "--seed", "3", "--json")
    assert result.code == 0, result.err
    real, mixed = Dataset.open(sample_dataset), Dataset.open(out)
    mixed.verify()
    kept = {r["id"] for r in mixed.select(split="train", source="real")}
    duplicates = mixed.select(split="train", source="augmented")
    by_class = {c: [r for r in duplicates if r["label"] == c] for c in real.classes}
    assert {c: len(rows) for c, rows in by_class.items()} == {"NonDemented": 0, "VeryMildDemented": 0,
                                                              "MildDemented": 7, "ModerateDemented": 5}
    real_rows = {r["id"]: r for r in real.rows}
    for row in duplicates:
        original = real_rows[row["origin"]]
        # A copy of a kept real train image of its own class, with the same pixels.
        assert row["origin"] in kept and original["split"] == "train" and original["label"] == row["label"]
        assert row["generator"].startswith("duplicate@") and row["id"].startswith(row["origin"] + "--dup-")
        assert np.array_equal(decode_png(mixed.path_of(row)), decode_png(real.path_of(original)))
    # Each kept image is copied once before any twice: ModerateDemented keeps fewer than 5.
    moderate_kept = sum(1 for r in mixed.select(split="train", source="real", labels=["ModerateDemented"]))
    origins = [r["origin"] for r in by_class["ModerateDemented"]]
    assert max(origins.count(o) for o in origins) - min(origins.count(o) for o in set(origins)) <= 1
    assert len(set(origins)) == min(5, moderate_kept)
    # Val and test are REAL's, untouched; the train statistics are those of the real images alone.
    assert {r["id"]: r["sha256"] for r in mixed.rows if r["split"] != "train"} == \
        {r["id"]: r["sha256"] for r in real.rows if r["split"] != "train"}
    plain = tmp_path / "plain"
    assert run("mix", sample_dataset, "-o", plain, "--real", "0.5", "--seed", "3", "-q").code == 0
    assert Dataset.open(plain).stats == mixed.stats
    assert json.loads(result.out)["per_class"]["MildDemented"]["duplicates_added"] == 7


def test_oversample_needs_kept_images(run, sample_dataset, tmp_path):
    out = tmp_path / "dup"
    assert_usage_error(run("mix", sample_dataset, "-o", out, "--real", "ModerateDemented=0",
                           "--oversample", "ModerateDemented=3"), out, "no real train images to duplicate")
