"""Best-checkpoint selection (`generate --select-by fid`) and the fit history of every fitted model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gen_helpers import assert_usage_error, class_arrays, make_dataset, sample16
from synthmed.generate.selection import FitCheck
from synthmed.registry import create_generator
from tiny import TINY

ARGS = TINY["generator"]
CLI_TINY = ["-g", "width=8", "-g", "batch_size=16"]


@pytest.fixture(scope="module")
def data():
    return class_arrays()


@pytest.fixture(scope="module")
def small16(tmp_path_factory) -> Path:
    """16 px sample data, read only."""
    return sample16(tmp_path_factory.mktemp("small16"))


def scripted(scores: dict[int, float], crash_at: int | None = None):
    """A score read from a script by epoch (the fit history's length is the epoch just done)."""
    def score(generator):
        epoch = len(generator.fit_history)
        if epoch == crash_at:
            raise RuntimeError("simulated crash while checking")
        return scores[epoch]

    return score


def fit(name, data, *, epochs, check=None, state_dir=None):
    generator = create_generator(name, **ARGS[name])
    generator.fit(*data, epochs=epochs, device=torch.device("cpu"), seed=0, num_classes=4, state_dir=state_dir,
                  check=check)
    return generator


def same_weights(a, b) -> bool:
    a, b = a.net.state_dict(), b.net.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["acgan", "dcgan", "ddpm"])
def test_the_lowest_score_is_kept_and_the_fit_stops_after_the_patience(name, data):
    # Epoch 2 is best; epochs 3 and 4 are worse, so with patience 2 the fit stops after epoch 4.
    check = FitCheck(scripted({1: 5.0, 2: 3.0, 3: 4.0, 4: 3.5, 5: 1.0, 6: 1.0}), every=1, patience=2)
    selected = fit(name, data, epochs=6, check=check)
    assert selected.epochs_done == 4 and selected.selected_epoch == 2
    assert check.scores == {1: 5.0, 2: 3.0, 3: 4.0, 4: 3.5}
    # The kept weights are those a fit of exactly 2 epochs ends with (EMA, standing statistics included).
    two = fit(name, data, epochs=2)
    assert same_weights(selected, two)
    assert not same_weights(selected, fit(name, data, epochs=4))
    assert [row["epoch"] for row in selected.fit_history] == [1, 2, 3, 4]


def test_checks_follow_check_every_and_the_last_epoch_is_a_candidate(data):
    check = FitCheck(scripted({2: 9.0, 4: 8.0, 5: 1.0}), every=2, patience=5)
    selected = fit("acgan", data, epochs=5, check=check)
    assert sorted(check.scores) == [2, 4, 5] and selected.selected_epoch == 5
    assert same_weights(selected, fit("acgan", data, epochs=5))  # checks leave the fit itself unchanged


def test_a_resumed_selection_ends_with_the_same_weights_and_state(data, tmp_path):
    scores = {1: 4.0, 2: 2.0, 3: 3.0, 4: 2.5, 5: 2.2}
    whole_check = FitCheck(scripted(scores), every=1, patience=3)
    whole = fit("dcgan", data, epochs=6, check=whole_check)
    state = tmp_path / "state"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit("dcgan", data, epochs=6, check=FitCheck(scripted(scores, crash_at=4), every=1, patience=3),
            state_dir=state)
    resumed_check = FitCheck(scripted(scores), every=1, patience=3)
    resumed = fit("dcgan", data, epochs=6, check=resumed_check, state_dir=state)
    assert resumed.epochs_done == whole.epochs_done == 5 and resumed.selected_epoch == 2
    assert resumed_check.scores == whole_check.scores and resumed_check.since_best == 3
    assert resumed.fit_history == whole.fit_history
    assert same_weights(resumed, whole)


# ---------------------------------------------------------------------------- the command


def history(folder: Path) -> list[dict]:
    with open(folder / "model" / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_select_by_fid_end_to_end_and_history_without_it(run, small16, tmp_path):
    out = tmp_path / "selected"
    result = run("generate", small16, "-o", out, "--generator", "acgan", *CLI_TINY, "--fit-epochs", "4",
                 "--select-by", "fid", "--check-every", "2", "--patience", "1", "--per-class", "2", "--json")
    assert result.code == 0, result.err
    selection = json.loads(result.out)["selection"]
    rows = history(out)
    assert list(rows[0]) == ["epoch", "steps", "loss_d", "loss_g", "fid", "best"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"][: len(rows)]
    assert [int(r["steps"]) for r in rows] == [5 * (i + 1) for i in range(len(rows))]  # 73 images, batch 16
    checked = {int(r["epoch"]): float(r["fid"]) for r in rows if r["fid"]}
    assert sorted(checked) == [2, 4] and all(np.isfinite(v) and v >= 0 for v in checked.values())
    kept = min(checked, key=checked.get)
    assert [int(r["epoch"]) for r in rows if r["best"] == "1"] == [kept] == [selection["kept_epoch"]]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["selected_epoch"] == kept and (out / "model" / "history.png").stat().st_size > 1000
    recorded = json.loads((out / "options.json").read_text())["options"]
    assert (recorded["--select-by"], recorded["--check-every"], recorded["--patience"]) == ("fid", 2, 1)

    plain = tmp_path / "plain"
    assert run("generate", small16, "-o", plain, "--generator", "dcgan", *CLI_TINY, "--fit-epochs", "2",
               "--fit-only", "-q").code == 0
    rows = history(plain)
    assert list(rows[0]) == ["epoch", "steps", "loss_d", "loss_g", "fid", "best"]
    assert [(r["epoch"], r["fid"], r["best"]) for r in rows] == [("1", "", "0"), ("2", "", "1")]
    assert all(float(r["loss_d"]) > 0 for r in rows)


def test_select_by_with_a_time_budget(run, small16, tmp_path):
    out = tmp_path / "timed"
    result = run("generate", small16, "-o", out, "--generator", "dcgan", *CLI_TINY, "--fit-minutes", "0.02",
                 "--select-by", "fid", "--fit-only", "--json")
    assert result.code == 0, result.err
    selection = json.loads(result.out)["selection"]
    rows = history(out)
    # Checks every 5 epochs on a time budget, and the last epoch is always scored.
    assert selection["epochs"] == len(rows) >= 1 and rows[-1]["fid"] != ""
    assert [r["epoch"] for r in rows if r["fid"]] == [str(e) for e in range(5, len(rows), 5)] + [str(len(rows))]
    recorded = json.loads((out / "options.json").read_text())["options"]
    assert recorded["--check-every"] == 5 and recorded["--patience"] == 3


class CrashingAcgan:
    """Plugin: `crashy`, an acgan whose fit raises after `fail_after` optimizer steps."""

    fail_after: int | None = None

    def factory(self, **args):
        from synthmed.generate.gans import AcganGenerator

        plugin = self

        class Crashy(AcganGenerator):
            name = "crashy"

            def _train_step(self, *a, **k):
                if plugin.fail_after is not None:
                    plugin.fail_after -= 1
                    if plugin.fail_after < 0:
                        raise RuntimeError("simulated crash while fitting")
                return super()._train_step(*a, **k)

        return Crashy(**args)

    from synthmed.hookspecs import hookimpl

    @hookimpl
    def register_generators(self, register):
        register("crashy", self.factory, conditioning="class", min_images=4)


def test_resume_of_an_interrupted_selection_gives_the_same_model(run, small16, tmp_path):
    from synthmed.plugins import get_plugin_manager

    plugin = CrashingAcgan()
    pm = get_plugin_manager()
    pm.register(plugin, name="crashy-test")
    try:
        args = ["--generator", "crashy", *CLI_TINY, "--fit-epochs", "5", "--select-by", "fid", "--check-every", "1",
                "--patience", "2", "--fit-only", "-q"]
        reference = tmp_path / "reference"
        assert run("generate", small16, "-o", reference, *args).code == 0
        out = tmp_path / "out"
        plugin.fail_after = 12  # in the third epoch (5 steps each), after two checks
        result = run("generate", small16, "-o", out, *args)
        assert result.code == 1 and "simulated crash" in result.err
        plugin.fail_after = None
        changed = run("generate", small16, "-o", out, *args[:-3], "3", "--fit-only", "-q", "--resume")
        assert changed.code == 2 and "--patience" in changed.err
        assert run("generate", small16, "-o", out, *args, "--resume").code == 0
    finally:
        pm.unregister(name="crashy-test")
    for name in ("model.safetensors", "history.csv", "config.json"):
        assert (out / "model" / name).read_bytes() == (reference / "model" / name).read_bytes(), name


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, words", [
    (["--select-by", "kid"], ["--select-by", "'kid'", "fid"]),
    (["--select-by", "fid", "--patience", "0"], ["--patience", "at least 1"]),
    (["--select-by", "fid", "--check-every", "0"], ["--check-every", "at least 1"]),
    (["--patience", "2"], ["--patience", "--select-by"]),
    (["--select-by", "fid", "--model", "m"], ["--select-by", "--model"]),
])
def test_selection_option_errors(run, small16, tmp_path, args, words):
    out = tmp_path / "o"
    assert_usage_error(run("generate", small16, "-o", out, "--generator", "acgan", "--fit-epochs", "2", "--per-class", "1",
                *args), out, *words)


def test_select_by_without_val_images_or_with_an_unfitted_generator(run, small16, tmp_path):
    no_val = make_dataset(tmp_path / "noval", {"a": [("train", 16)] * 4, "b": [("train", 16)] * 4})
    one_val = make_dataset(tmp_path / "oneval", {"a": [("train", 16)] * 4 + [("val", 16)], "b": [("train", 16)] * 4})
    for data, label in ((no_val, "'a'"), (one_val, "'b'")):
        out = tmp_path / f"out-{data.name}"
        assert_usage_error(run("generate", data, "-o", out, "--generator", "acgan", "--fit-epochs", "1", "--per-class", "1",
                    "--select-by", "fid"), out, "--select-by", "val", label)


class Unfitted:
    """Plugin: `varies` (image-conditional) and `plain` (class-conditional, no checkpoint selection)."""

    from synthmed.hookspecs import hookimpl

    @hookimpl
    def register_generators(self, register):
        register("varies", lambda **args: object(), conditioning="image")
        register("plain", lambda **args: object(), conditioning="class")


def test_select_by_with_a_generator_that_cannot_select(run, small16, tmp_path):
    from synthmed.plugins import get_plugin_manager

    pm = get_plugin_manager()
    pm.register(Unfitted(), name="unfitted-test")
    try:
        out = tmp_path / "o"
        assert_usage_error(run("generate", small16, "-o", out, "--generator", "varies", "--per-image", "1", "--select-by", "fid"),
                out, "--select-by", "not fitted")
        assert_usage_error(run("generate", small16, "-o", out, "--generator", "plain", "--per-class", "1", "--select-by", "fid"),
                out, "--select-by", "'plain'", "cannot keep the best checkpoint")
    finally:
        pm.unregister(name="unfitted-test")


def test_the_dry_run_estimate_counts_the_selection_checks(run, small16, tmp_path):
    from synthmed.data import Dataset
    from synthmed.generate.selection import CHECK_PER_CLASS

    base = ["generate", small16, "-o", tmp_path / "x", "--generator", "acgan", *CLI_TINY, "--fit-epochs", "10",
            "--per-class", "2", "--dry-run", "--device", "cpu", "--json"]
    plain = json.loads(run(*base).out)["estimate_seconds"]
    result = run(*base, "--select-by", "fid", "--check-every", "3")
    assert result.code == 0, result.err
    selected = json.loads(result.out)["estimate_seconds"]
    assert plain["checks"] == 0 and selected["checks"] > 0
    assert selected["total"] == pytest.approx(selected["fit"] + selected["sample"] + selected["checks"])
    # checks at epochs 3, 6, 9 and 10, each sampling as many images as the val images it compares with
    dataset = Dataset.open(small16)
    val = sum(min(CHECK_PER_CLASS, len(dataset.select(split="val", source="real", labels=[c]))) for c in dataset.classes)
    per_image = selected["sample"] / (2 * len(dataset.classes))
    assert selected["checks"] == pytest.approx(4 * val * per_image)
    human = run(*base[:-1], "--select-by", "fid", "--check-every", "3")
    assert "--select-by checks ~" in human.err
