"""The image-conditional driver (synthmed.generate.variation) with a tiny inline generator."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from gen_helpers import inline_generator
from synthmed.data import check_leakage, Dataset, DatasetWriter, partial_path
from synthmed.generate.variation import pending_variations, plan_variations, run_variations, variation_id
from synthmed.errors import SynthmedError, UsageError
from synthmed.seeding import derive_seed


class FlipGenerator:
    """Answers each task with its source flipped left-right; records every task it is handed."""

    name = "flip"
    version = "1"

    def __init__(self, upload_host=None, reject=(), stop_after=None, bad_shape=False):
        self.upload_host = upload_host
        self.reject = set(reject)
        self.stop_after = stop_after
        self.bad_shape = bad_shape
        self.handed: list[tuple[str, int]] = []

    def columns(self):
        return {"mode": "flip"}

    def vary(self, tasks, *, device, concurrency):
        for done, task in enumerate(tasks):
            if self.stop_after is not None and done == self.stop_after:
                raise KeyboardInterrupt
            self.handed.append((task.source_id, task.index))
            if task.source_id in self.reject:
                yield task, ValueError("rejected by the safety system\nsecond line")
            elif self.bad_shape:
                yield task, task.pixels[:, :4]
            else:
                yield task, np.ascontiguousarray(task.pixels[:, :, ::-1])


@pytest.fixture
def flip_entry():
    with inline_generator("flip", FlipGenerator, conditioning="image") as entry:
        yield entry


@pytest.fixture
def data(sample_dataset):
    return Dataset.open(sample_dataset)


def writer_for(data, out, **kwargs):
    return DatasetWriter(out, classes=data.classes, command="generate", parents=[data.root], resumable=True, **kwargs)


# --------------------------------------------------------------------------- planning


def test_plan_per_image_uses_train_sources_round_robin(data):
    plan = plan_variations(data, per_image=2, seed=7, generator="flip")
    train = data.select(split="train", source="real")
    assert len(plan) == 2 * len(train)
    assert {p.source["split"] for p in plan} == {"train"}
    # every source's variation 0 before any variation 1
    assert [p.index for p in plan] == [0] * len(train) + [1] * len(train)
    first = plan[0]
    assert first.id == f"{first.source['id']}--flip-000"
    assert first.seed == derive_seed(7, first.source["id"], 0)
    assert len({p.id for p in plan}) == len(plan)
    assert len({p.seed for p in plan}) == len(plan)


def test_plan_counts_spread_evenly_over_sources(data):
    plan = plan_variations(data, counts={"ModerateDemented": 10, "MildDemented": 3}, seed=0)
    per_source = Counter(p.source["id"] for p in plan if p.source["label"] == "ModerateDemented")
    assert sum(per_source.values()) == 10
    assert sorted(per_source.values()) == [2, 2, 3, 3]  # 4 train sources
    mild = [p for p in plan if p.source["label"] == "MildDemented"]
    assert len(mild) == 3 and len({p.source["id"] for p in mild}) == 3
    # which sources get the extra one depends on the seed, reproducibly
    again = plan_variations(data, counts={"ModerateDemented": 10, "MildDemented": 3}, seed=0)
    assert [p.id for p in again] == [p.id for p in plan]


def test_plan_splits_classes_and_shards(data):
    plan = plan_variations(data, per_image=1, splits=("val", "test"), classes=["ModerateDemented"], seed=0)
    assert {p.source["split"] for p in plan} == {"val", "test"}
    assert {p.source["label"] for p in plan} == {"ModerateDemented"}
    full = plan_variations(data, per_image=3, seed=1)
    parts = [plan_variations(data, per_image=3, seed=1, shard=(k, 3)) for k in range(3)]
    ids = [p.id for part in parts for p in part]
    assert sorted(ids) == sorted(p.id for p in full) and len(set(ids)) == len(ids)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"per_image": 2, "counts": {"MildDemented": 1}}, "not both or neither"),
        ({}, "not both or neither"),
        ({"per_image": 0}, "--per-image 0"),
        ({"per_image": 1, "classes": ["Nope"]}, "unknown class 'Nope'"),
        ({"counts": {"Nope": 3}}, "unknown class 'Nope'"),
        ({"counts": {"MildDemented": -1}}, "cannot be negative"),
        ({"per_image": 1, "splits": ("training",)}, "--splits training"),
    ],
)
def test_plan_bad_input(data, kwargs, message):
    with pytest.raises(UsageError, match=message):
        plan_variations(data, seed=0, **kwargs)


# --------------------------------------------------------------------------- running


def test_run_writes_flipped_variations_with_provenance_columns(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=3, generator="flip")
    generator = flip_entry.factory()
    with writer_for(data, tmp_path / "out") as writer:
        summary = run_variations(data, plan, writer, flip_entry, generator, device="cpu")
    assert summary == {"planned": 8, "already_done": 0, "requested": 8, "written": 8, "rejected": 0}
    out = Dataset.open(tmp_path / "out")
    out.verify()
    by_id = {row["id"]: row for row in out.rows}
    assert set(by_id) == {p.id for p in plan}
    for item in plan:
        row = by_id[item.id]
        assert row["source"] == "synthetic"
        assert row["origin"] == item.source["id"]
        assert row["subject"] == item.source["subject"]
        assert row["label"] == item.source["label"] and row["split"] == "train"
        assert row["generator"] == "flip@0+inline"
        assert row["seed"] == str(item.seed)
        assert row["mode"] == "flip"
        made = out.load_images([row])[0]
        source = data.load_images([item.source])[0]
        np.testing.assert_array_equal(made, source[:, :, ::-1])
    assert not (tmp_path / "out" / "rejected.csv").exists()


def test_variations_of_held_out_images_stay_held_out(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=1, splits=("train", "test"), classes=["MildDemented"], seed=0, generator="flip")
    with writer_for(data, tmp_path / "out") as writer:
        run_variations(data, plan, writer, flip_entry, flip_entry.factory(), device="cpu")
    out = Dataset.open(tmp_path / "out")
    test_ids = {row["id"] for row in data.select(split="test")}
    from_test = [row for row in out.rows if row["origin"] in test_ids]
    assert from_test and {row["split"] for row in from_test} == {"test"}
    assert {row["split"] for row in out.rows} == {"train", "test"}
    check_leakage(out.rows, data.rows)  # raises on a leak


def test_interrupt_then_resume_requests_each_task_once(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=3, classes=["ModerateDemented", "MildDemented"], seed=0, generator="flip")
    first = flip_entry.factory(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, first, device="cpu")
    assert partial_path(tmp_path / "out").is_dir() and not (tmp_path / "out").exists()
    second = flip_entry.factory()
    with writer_for(data, tmp_path / "out", resume=True) as writer:
        summary = run_variations(data, plan, writer, flip_entry, second, device="cpu")
    assert summary["already_done"] == 5 and summary["requested"] == len(plan) - 5
    counts = Counter(first.handed + second.handed)
    assert len(counts) == len(plan) and set(counts.values()) == {1}
    assert {row["id"] for row in Dataset.open(tmp_path / "out").rows} == {p.id for p in plan}


def test_max_requests_is_a_hard_cap_and_resume_continues(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=0, generator="flip")
    capped = flip_entry.factory()
    with writer_for(data, tmp_path / "out") as writer:
        summary = run_variations(data, plan, writer, flip_entry, capped, device="cpu", max_requests=3)
    assert len(capped.handed) == 3 and summary["requested"] == 3 and summary["written"] == 3
    assert len(Dataset.open(tmp_path / "out").rows) == 3
    assert capped.handed == [(p.source["id"], p.index) for p in plan[:3]]


def test_upload_needs_permission_and_names_the_host(data, flip_entry, tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTHMED_ALLOW_UPLOAD", raising=False)
    plan = plan_variations(data, per_image=1, classes=["ModerateDemented"], seed=0, generator="flip")
    uploader = flip_entry.factory(upload_host="images.example.org")
    with pytest.raises(UsageError, match="images.example.org.*--allow-upload"):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, uploader, device="cpu")
    assert uploader.handed == []
    assert not (tmp_path / "out").exists() and not partial_path(tmp_path / "out").exists()

    with writer_for(data, tmp_path / "out") as writer:
        run_variations(data, plan, writer, flip_entry, uploader, device="cpu", allow_upload=True)
    assert len(uploader.handed) == len(plan)

    monkeypatch.setenv("SYNTHMED_ALLOW_UPLOAD", "1")
    again = flip_entry.factory(upload_host="images.example.org")
    with writer_for(data, tmp_path / "env") as writer:
        run_variations(data, plan, writer, flip_entry, again, device="cpu")
    assert len(again.handed) == len(plan)


def test_refusal_on_resume_keeps_finished_images(data, flip_entry, tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTHMED_ALLOW_UPLOAD", raising=False)
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=0, generator="flip")
    with pytest.raises(KeyboardInterrupt):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, flip_entry.factory(upload_host="h.example", stop_after=2),
                           device="cpu", allow_upload=True)
    with pytest.raises(SynthmedError, match="h.example") as refused:
        with writer_for(data, tmp_path / "out", resume=True) as writer:
            run_variations(data, plan, writer, flip_entry, flip_entry.factory(upload_host="h.example"), device="cpu")
    assert refused.value.exit_code == 2
    journal = partial_path(tmp_path / "out") / "rows.jsonl"
    assert len(journal.read_text().splitlines()) == 2  # the paid-for images survive


def test_rejections_are_recorded_and_retried_on_resume(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=0, generator="flip")
    bad_source = plan[0].source["id"]
    with pytest.raises(KeyboardInterrupt):
        with writer_for(data, tmp_path / "out") as writer:
            summary = run_variations(data, plan, writer, flip_entry, flip_entry.factory(reject=[bad_source], stop_after=6),
                                     device="cpu")
    rejected_csv = partial_path(tmp_path / "out") / "rejected.csv"
    with open(rejected_csv, newline="") as handle:
        entries = list(csv.DictReader(handle))
    assert [e["id"] for e in entries] == [variation_id(bad_source, "flip", 0), variation_id(bad_source, "flip", 1)]
    assert entries[0]["source"] == bad_source
    assert entries[0]["reason"] == "ValueError: rejected by the safety system"

    still_bad = flip_entry.factory(reject=[bad_source])
    with writer_for(data, tmp_path / "out", resume=True) as writer:
        summary = run_variations(data, plan, writer, flip_entry, still_bad, device="cpu")
    assert summary["rejected"] == 2 and summary["written"] == len(plan) - 2 - summary["already_done"]
    assert sorted(still_bad.handed) == sorted(
        [(bad_source, 0), (bad_source, 1)] + [(p.source["id"], p.index) for p in plan[6:] if p.source["id"] != bad_source]
    )
    with open(tmp_path / "out" / "rejected.csv", newline="") as handle:
        assert sorted(e["id"] for e in csv.DictReader(handle)) == [
            variation_id(bad_source, "flip", 0),
            variation_id(bad_source, "flip", 1),
        ]
    assert bad_source not in {row["origin"] for row in Dataset.open(tmp_path / "out").rows}


def test_wrong_result_shape_is_a_plugin_error(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=1, classes=["ModerateDemented"], seed=0, generator="flip")
    with pytest.raises(SynthmedError, match="expected uint8 \\(1, 32, 32\\)"):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, flip_entry.factory(bad_shape=True), device="cpu")


def test_concurrency_must_be_positive(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=1, classes=["ModerateDemented"], seed=0, generator="flip")
    with pytest.raises(UsageError, match="--concurrency 0"):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, flip_entry.factory(), device="cpu", concurrency=0)
    assert not partial_path(tmp_path / "out").exists()


def test_pending_variations_reads_an_interrupted_output_without_writing(data, flip_entry, tmp_path):
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=0, generator="flip")
    assert pending_variations(plan, tmp_path / "out", "flip") == plan
    with pytest.raises(KeyboardInterrupt):
        with writer_for(data, tmp_path / "out") as writer:
            run_variations(data, plan, writer, flip_entry, flip_entry.factory(stop_after=3), device="cpu")
    before = sorted(p.name for p in partial_path(tmp_path / "out").rglob("*"))
    left = pending_variations(plan, tmp_path / "out", "flip")
    assert [p.id for p in left] == [p.id for p in plan[3:]]
    assert sorted(p.name for p in partial_path(tmp_path / "out").rglob("*")) == before


def test_sixteen_bit_sources_are_varied_as_eight_bit(flip_entry, tmp_path):
    classes = ["a", "b"]
    with DatasetWriter(tmp_path / "deep", classes=classes, command="test") as writer:
        for i in range(4):
            pixels = np.full((8, 8), 1000 * (i + 1), dtype=np.uint16)
            pixels[:, :2] = 60000
            writer.add_image(pixels, id=f"img{i}", label=classes[i % 2], split="train", subject=f"p{i}")
    deep = Dataset.open(tmp_path / "deep")
    assert deep.bit_depth == 16
    plan = plan_variations(deep, per_image=1, seed=0, generator="flip")
    with writer_for(deep, tmp_path / "out") as writer:
        run_variations(deep, plan, writer, flip_entry, flip_entry.factory(), device="cpu")
    out = Dataset.open(tmp_path / "out")
    assert out.bit_depth == 8
    made = out.load_images([r for r in out.rows if r["origin"] == "img0"])[0, 0]
    assert made[0, -1] == 60000 >> 8 and made[0, 0] == 1000 >> 8
