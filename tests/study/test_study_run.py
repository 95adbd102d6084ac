"""`synthmed study` end to end on the sample data: outputs, controls, cache, resume after
SIGKILL, shards and their merge, dry run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from study_helpers import TINY_TRAIN, one_error_line, read_results, write_study

BODY = """repeats = 2
primary = "cross_entropy"

[sources.flips]
augment = "hflip"

[axes]
synthetic = [0, 0.3]
synthetic_classes = [["MildDemented", "ModerateDemented"]]
classifier = ["cnn-basic"]
""" + TINY_TRAIN


@pytest.fixture(scope="module")
def study_run(tiny_dataset, tmp_path_factory):
    """(study file, OUT, CLI result as JSON) of one uninterrupted run."""
    from synthmed.cli import main

    folder = tmp_path_factory.mktemp("study")
    study = write_study(folder, tiny_dataset, BODY)
    out = folder / "out"
    assert main(["study", str(study), "-o", str(out), "--json", "--quiet"]) == 0
    return study, out, json.loads((out / "summary.json").read_text())


def _cells(summary):
    return {c["role"]: c for c in summary["cells"]}


def test_outputs_controls_and_numbers(study_run):
    study, out, summary = study_run
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "cache", "figures", "report.md", "results.csv", "sources", "study.json", "summary.json"]
    roles = _cells(summary)
    # The scenario (real + flipped copies for the two minority classes) and its automatic controls.
    assert set(roles) == {"scenario", "oversample", "steps"} or set(roles) >= {"scenario", "oversample", "steps"}
    labels = [c["label"] for c in summary["cells"]]
    assert labels[0] == "real 1" and labels[1].startswith("real 1 + flips 0.3")
    rows = read_results(out)
    assert list(rows[0]) == ["scenario", "cell", "role", "real", "synthetic", "synthetic_classes", "source",
                             "oversample", "augment", "classifier", "split", "repeat", "seed", "metric", "value"]
    assert {r["repeat"] for r in rows} == {"1", "2"} and {r["split"] for r in rows} == {"test", "training"}
    # Paired: repeat r has one seed in every cell.
    seeds = {(r["repeat"], r["seed"]) for r in rows}
    assert len(seeds) == 2
    values = {(r["scenario"], r["repeat"], r["split"], r["metric"]): r["value"] for r in rows}
    scenario = labels[1]
    control = f"real 1 (steps of {scenario})"
    for repeat in ("1", "2"):
        # The steps-matched control took exactly the scenario's optimizer steps.
        assert values[(control, repeat, "training", "steps")] == values[(scenario, repeat, "training", "steps")]
    # Numbers are numbers in summary.json; verdicts are words; ECE and minority F1 are reported.
    scenario_cell = next(c for c in summary["cells"] if c["label"] == scenario)
    assert isinstance(scenario_cell["metrics"]["cross_entropy"]["median"], float)
    assert {"ece", "f1[ModerateDemented]", "recall[MildDemented]"} <= set(scenario_cell["metrics"])
    (entry,) = summary["verdicts"].values()
    assert entry["overall"] == "no evidence"  # two repeats can never reach p < 0.05, and the report says why
    assert any("smallest two-sided Wilcoxon p-value" in note for note in summary["notes"])
    assert {c["kind"] for c in summary["comparisons"]} == {"without", "oversample", "steps"}
    report = (out / "report.md").read_text()
    assert "## Verdicts" in report and f"synthmed study {study}" in report and "torch" in report
    assert len(summary["figures"]) == 3 and all((out / f).is_file() for f in summary["figures"])


def test_the_duplicates_control_matches_the_synthetic_counts(study_run):
    _, out, summary = study_run
    records = [json.loads(p.read_text()) for p in (out / "cache").glob("*.json")]
    by_cell = {}
    for record in records:
        by_cell.setdefault(record["cell"], []).append(record)
    cells = {c["id"]: c for c in summary["cells"]}
    scenario = next(i for i, c in cells.items() if c["role"] == "scenario" and c["source"])
    duplicates = next(i for i, c in cells.items() if c["role"] == "oversample")
    for a, b in zip(sorted(by_cell[scenario], key=lambda r: r["repeat"]), sorted(by_cell[duplicates], key=lambda r: r["repeat"])):
        assert {k: v["synthetic"] for k, v in a["mix"].items()} == {k: v["duplicates"] for k, v in b["mix"].items()}
        assert {k: v["real"] for k, v in a["mix"].items()} == {k: v["real"] for k, v in b["mix"].items()}
        assert a["mix"]["MildDemented"]["synthetic"] > 0 and a["mix"]["NonDemented"]["synthetic"] == 0


def test_each_repeat_records_the_device_and_threads_it_ran_with(study_run):
    import torch

    _, out, _ = study_run
    records = [json.loads(p.read_text()) for p in (out / "cache").glob("*.json")]
    assert records and all(r["ran_on"] == {"device": "cpu", "torch_threads": torch.get_num_threads()} for r in records)


def test_a_rerun_reuses_every_cell(run, study_run):
    study, out, _ = study_run
    before = (out / "results.csv").read_bytes()
    result = run("study", study, "-o", out, "--json", "--quiet")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["computed"] == 0 and summary["cached"] == 8
    assert (out / "results.csv").read_bytes() == before


def test_a_corrupt_cached_cell_is_recomputed_and_said(run, study_run, tmp_path):
    study, out, _ = study_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    victim = sorted((copy / "cache").glob("*.json"))[0]
    victim.write_text('{"key": "trunc')
    result = run("study", study, "-o", copy, "--json")
    assert result.code == 0, result.err
    assert "unusable" in result.err and "computing it again" in result.err
    assert json.loads(result.out)["computed"] == 1
    assert (copy / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_an_extended_study_reuses_finished_repeats(run, study_run, tmp_path):
    study, out, _ = study_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    longer = study.with_name("longer.toml")
    longer.write_text('name = "study"\n' + study.read_text().replace("repeats = 2", "repeats = 3"))
    result = run("study", longer, "-o", copy, "--json", "--quiet")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert (summary["computed"], summary["cached"]) == (4, 8)
    rows = read_results(copy)
    old = [r for r in read_results(out)]
    assert [r for r in rows if r["repeat"] != "3"] == old


def test_shards_then_report_only_equal_one_run(run, study_run, tmp_path):
    study, out, _ = study_run
    merged = tmp_path / "merged"
    first = run("study", study, "-o", merged, "--shard", "1/2", "--json", "--quiet")
    assert first.code == 0, first.err
    assert not (merged / "results.csv").exists() and json.loads(first.out)["computed"] > 0
    early = one_error_line(run("study", study, "-o", merged, "--report-only"))
    assert "not in" in early and "run the missing shards" in early
    second = run("study", study, "-o", merged, "--shard", "2/2", "--json", "--quiet")
    assert second.code == 0, second.err
    assert json.loads(first.out)["computed"] + json.loads(second.out)["computed"] == 8
    final = run("study", study, "-o", merged, "--report-only", "--json", "--quiet")
    assert final.code == 0, final.err
    assert json.loads(final.out)["computed"] == 0
    assert (merged / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_sigkill_loses_at_most_the_repeat_in_progress(study_run, tmp_path):
    study, out, _ = study_run
    target = tmp_path / "out"
    shutil.copytree(out, target)
    for name in ("results.csv", "summary.json", "report.md"):
        (target / name).unlink()
    for path in sorted((target / "cache").glob("*.json"))[3:]:
        path.unlink()  # five repeats left to run
    command = [sys.executable, "-m", "synthmed", "study", str(study), "-o", str(target), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((target / "cache").glob("*.json"))) < 4:
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.name for p in (target / "cache").glob("*.json")}
    assert 4 <= len(finished) < 8 and not (target / "results.csv").exists()
    for path in (target / "cache").glob("*.json"):
        json.loads(path.read_text())  # every cached repeat is whole: at most the running one was lost
    rerun = subprocess.run([*command[:-1], "--json"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["cached"] == len(finished) and summary["computed"] == 8 - len(finished)
    assert (target / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_another_study_in_the_same_output_is_refused(run, study_run):
    study, out, _ = study_run
    other = study.with_name("other.toml")
    other.write_text('name = "another"\n' + study.read_text())
    line = one_error_line(run("study", other, "-o", out))
    assert "holds another study" in line and "--overwrite" in line
    assert run("study", other, "-o", out, "--dry-run", "--overwrite").code == 0  # accepted with --overwrite


def test_dry_run_lists_cells_and_estimates_without_writing(run, study_run, tmp_path):
    study, out, _ = study_run
    result = run("study", study, "-o", tmp_path / "new", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["count"] == 4 and plan["repeats_left"] == 8 and plan["estimate_seconds"] > 0
    assert plan["calibration"]["cnn-basic"]["seconds_per_step"] > 0
    assert not (tmp_path / "new").exists()
    cached = json.loads(run("study", study, "-o", out, "--dry-run", "--json").out)
    assert cached["repeats_left"] == 0 and all(row["cached"] == 2 for row in cached["cells"])
    text = run("study", study, "-o", tmp_path / "new", "--dry-run")
    assert "4 cells" in text.out and "8 repeats to run" in text.out


def test_a_generator_source_s_quality_comes_before_the_verdicts(run, tiny_dataset, tmp_path):
    import json

    from study_helpers import TINY_TRAIN, write_study

    body = """repeats = 1
split = "test"

[sources.gan]
generator = "dcgan"
args = { width = 4, batch_size = 8 }
fit_epochs = 1
select_by = "fid"

[axes]
real = [1.0]
synthetic = [0, 0.5]
synthetic_classes = [["NonDemented"]]
classifier = ["cnn-basic"]
""" + TINY_TRAIN
    out = tmp_path / "out"
    result = run("study", write_study(tmp_path, tiny_dataset, body), "-o", out)
    assert result.code == 0, result.err
    summary = json.loads((out / "summary.json").read_text())
    quality = summary["source_quality"]["gan"]["NonDemented"]
    histories = list(out.rglob("history.csv"))  # select_by reaches generate: the one epoch was scored
    assert len(histories) == 1 and histories[0].read_text().splitlines()[1].split(",")[-2] != ""
    assert quality["verdict"] in ("ok", "collapsed", "copies", "off-distribution") and quality["fid"] is not None
    report = (out / "report.md").read_text()
    assert "## Synthetic image quality" in report
    assert report.index("## Synthetic image quality") < report.index("## cnn-basic, augment none")


def test_dry_run_times_a_generator_source_on_its_own_classes_without_making_it(run, tiny_dataset, tmp_path,
                                                                               monkeypatch):
    # Two whole short fits differenced (the old calibration) drowned one epoch in the fits'
    # fixed costs: the demo's 5-minute source read as 13 hours on a loaded machine. The
    # generator's own estimate times a few steps of the source's request instead.
    from study_helpers import TINY_TRAIN, write_study

    import synthmed.generate.job as job
    import synthmed.study.sources as sources

    asked = []

    def estimate(request, generator, rows, device):
        asked.append((request.classes, request.counts, request.fit_epochs, {r["label"] for r in rows}))
        return {"fit": 100.0, "sample": 20.0, "checks": 0.0, "total": 120.0}

    def make_source(*args, **kwargs):
        raise AssertionError("a dry run must not make a source")

    monkeypatch.setattr(job, "estimate_class_request", estimate)
    monkeypatch.setattr(sources, "make_source", make_source)
    body = """repeats = 1
[sources.gan]
generator = "dcgan"
args = { width = 4, batch_size = 8 }
fit_epochs = 7
pool = 2
[axes]
real = [1.0]
synthetic = [0, 0.5]
synthetic_classes = [["NonDemented"]]
classifier = ["cnn-basic"]
""" + TINY_TRAIN
    from synthmed.study.run import run_study

    plan = run_study(write_study(tmp_path, tiny_dataset, body), tmp_path / "out", dry_run=True)
    ((classes, counts, epochs, fitted),) = asked
    assert classes == ["NonDemented"] and fitted == {"NonDemented"} and epochs == 7
    from synthmed.data import Dataset
    from synthmed.generate.plan import real_train_counts

    real = real_train_counts(Dataset.open(tiny_dataset))["NonDemented"]
    assert counts == {"NonDemented": 2 * -(-real // 2)}  # pool 2 x the cell's 0.5 x its real count
    assert plan["sources_seconds"] == {"gan": 120.0}
