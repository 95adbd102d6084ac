"""Plugin synthmed-openai: the official client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import logging
import socket

import numpy as np
import pytest

pytest.importorskip("synthmed_openai", reason="install plugins/synthmed-openai (make install does)")

from synthmed.data import Dataset, DatasetWriter, partial_path  # noqa: E402
from synthmed.generate.variation import plan_variations, run_variations  # noqa: E402
from synthmed.errors import SynthmedError, UsageError  # noqa: E402
from synthmed.progress import Advanced  # noqa: E402
from synthmed.protocols import VariationTask  # noqa: E402
from synthmed.registry import get_entry  # noqa: E402
from synthmed_openai.generator import request_key  # noqa: E402
from synthmed_openai.testing import Faults, FakeImagesServer  # noqa: E402

API_KEY = "sk-synthmed-test-Zq7Xw3SECRET"


@pytest.fixture
def api_env(monkeypatch, fresh_plugins):
    """The entry-point route (SYNTHMED_PLUGINS=openai) and a key only these tests know."""
    monkeypatch.setenv("SYNTHMED_PLUGINS", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SYNTHMED_ALLOW_UPLOAD", raising=False)


@pytest.fixture
def entry(api_env):
    return get_entry("generator", "openai")


@pytest.fixture
def server():
    with FakeImagesServer(api_key=API_KEY, latency=0.002, lifetime=120) as running:
        yield running


@pytest.fixture
def data(sample_dataset):
    return Dataset.open(sample_dataset)


def generate(data, entry, generator, out, *, resume=False, per_image=2, classes=("ModerateDemented",), **kwargs):
    """plan + run into `out`, the way `synthmed generate` does."""
    plan = plan_variations(data, per_image=per_image, classes=list(classes), seed=0, generator=entry.name)
    with DatasetWriter(out, classes=data.classes, command="generate", parents=[data.root], resumable=True,
                       resume=resume) as writer:
        summary = run_variations(data, plan, writer, entry, generator, device="cpu", allow_upload=True, **kwargs)
    return plan, summary


def task(size=(1, 32, 32), dtype=np.uint8, source_id="s", index=0):
    pixels = np.zeros(size, dtype=dtype)
    pixels[:, :, : size[2] // 4] = 200  # a bright band on the left
    return VariationTask(source_id=source_id, label="MildDemented", index=index, pixels=pixels, seed=index)


def test_registered_through_the_entry_point(entry, run):
    assert entry.plugin == "openai" and entry.info.conditioning == "image"
    assert entry.tag == "openai@0.1.0"
    listed = json.loads(run("plugins", "--json").out)
    record = next(p for p in listed["plugins"] if p["name"] == "openai")
    assert record["origin"] == "entry point" and record["registers"]["generator"] == ["openai"]


def test_variation_mode_round_trip(data, entry, server, tmp_path):
    generator = entry.factory(mode="variation", base_url=server.base_url)
    assert generator.upload_host == server.base_url.split("/")[2]
    plan, summary = generate(data, entry, generator, tmp_path / "out", concurrency=4)
    assert summary == {"planned": 8, "already_done": 0, "requested": 8, "written": 8, "rejected": 0}
    assert len(server.requests) == 8 and server.duplicates == 0
    for request in server.requests:
        assert request.path == "/v1/images/variations"
        assert request.fields == {"model": "dall-e-2", "n": "1", "response_format": "b64_json", "size": "256x256"}
        assert request.image_size == (256, 256) and request.image_mode == "RGB"  # grayscale sent as RGB
    out = Dataset.open(tmp_path / "out")
    out.verify()
    assert out.channels == 1 and out.image_size == (32, 32)
    by_id = {row["id"]: row for row in out.rows}
    for item in plan:
        row = by_id[item.id]
        assert (row["mode"], row["model"], row["prompt"]) == ("variation", "dall-e-2", "")
        assert row["generator"] == "openai@0.1.0" and row["origin"] == item.source["id"]
        # the server mirrors what it gets: the answer comes back mirrored at the source's size
        made = out.load_images([row])[0].astype(int)
        mirrored = data.load_images([item.source])[0][:, :, ::-1].astype(int)
        assert np.corrcoef(made.ravel(), mirrored.ravel())[0, 1] > 0.95


def test_edit_mode_sends_model_prompt_and_size(entry, server):
    generator = entry.factory(mode="edit", base_url=server.base_url, model="gpt-image-test",
                              prompt="a variation of this {label} scan", size=256)
    results = dict((t.index, r) for t, r in generator.vary([task(index=i) for i in range(3)], concurrency=2))
    assert sorted(results) == [0, 1, 2]
    assert results[0].shape == (1, 32, 32) and results[0].dtype == np.uint8
    assert results[0][0, :, -8:].mean() > 150 and results[0][0, :, :8].mean() < 50  # mirrored
    request = server.requests[0]
    assert request.path == "/v1/images/edits"
    assert request.fields == {"prompt": "a variation of this MildDemented scan", "model": "gpt-image-test",
                              "n": "1", "size": "256x256"}
    assert generator.columns() == {"mode": "edit", "model": "gpt-image-test", "prompt": "a variation of this {label} scan"}
    assert entry.factory(base_url=server.base_url).columns()["model"] == "gpt-image-2"  # documented default


def test_rgb_non_square_source_is_padded_and_restored(entry, server):
    generator = entry.factory(mode="variation", base_url=server.base_url)
    source = task(size=(3, 24, 40))
    [(_, result)] = list(generator.vary([source], concurrency=1))
    assert result.shape == (3, 24, 40)
    np.testing.assert_allclose(result.astype(int), source.pixels[:, :, ::-1].astype(int), atol=40)
    assert server.requests[0].image_size == (256, 256)


def test_answer_given_as_url_is_downloaded(entry):
    with FakeImagesServer(api_key=API_KEY, answer_by_url=True) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url)
        [(_, result)] = list(generator.vary([task()], concurrency=1))
    assert result.shape == (1, 32, 32) and result[0, :, -8:].mean() > 150


def test_429_500_and_dropped_connections_are_retried(data, entry, tmp_path):
    faults = Faults(rate_limit={1, 2}, server_error={3}, drop={4}, retry_after=0.01)
    with FakeImagesServer(api_key=API_KEY, faults=faults) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url, max_retries=3)
        _, summary = generate(data, entry, generator, tmp_path / "out", concurrency=2)
    assert summary["written"] == 8 and summary["rejected"] == 0
    assert len(server.requests) == 8 + 4  # each fault retried once by the client
    assert [r.status for r in sorted(server.requests, key=lambda r: r.number)[:4]] == [429, 429, 500, 0]
    assert server.duplicates == 0 and len(server.served()) == 8


def test_content_policy_rejection_is_recorded_and_skipped(data, entry, server, tmp_path):
    plan = plan_variations(data, per_image=2, classes=["ModerateDemented"], seed=0, generator="openai")
    refused = plan[1]
    server.faults.reject_keys = {request_key(VariationTask(refused.source["id"], "", refused.index, None, refused.seed))}
    generator = entry.factory(mode="variation", base_url=server.base_url)
    _, summary = generate(data, entry, generator, tmp_path / "out", concurrency=3)
    assert summary["written"] == 7 and summary["rejected"] == 1
    with open(tmp_path / "out" / "rejected.csv", newline="") as handle:
        [entry_row] = list(csv.DictReader(handle))
    assert entry_row["id"] == refused.id and entry_row["source"] == refused.source["id"]
    assert "content_policy_violation" in entry_row["reason"] and "safety system" in entry_row["reason"]
    assert API_KEY not in entry_row["reason"]  # the server echoed the key; it was scrubbed
    assert refused.id not in {row["id"] for row in Dataset.open(tmp_path / "out").rows}


def test_authentication_error_stops_at_once(data, entry, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY + "-wrong")
    with FakeImagesServer(api_key=API_KEY, latency=0.01) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url)
        with pytest.raises(UsageError, match="refused the API key in OPENAI_API_KEY \\(HTTP 401\\)") as error:
            generate(data, entry, generator, tmp_path / "out", per_image=5, concurrency=2)
        # at most the requests already in flight (each of the 2 workers may have started its
        # next one before the first refusal is seen), not one per task
        planned = len(plan_variations(data, per_image=5, classes=["ModerateDemented"], seed=0, generator="openai"))
        assert len(server.requests) <= 2 * 2 < planned
    assert API_KEY not in str(error.value)
    assert not (tmp_path / "out").exists() and not partial_path(tmp_path / "out").exists()


def test_missing_api_key_is_a_usage_error(entry, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UsageError, match="OPENAI_API_KEY is not set; export your API key for api.openai.com"):
        entry.factory()


def test_unreachable_base_url_is_a_usage_error(entry):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = entry.factory(mode="variation", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(UsageError, match=f"cannot reach http://127.0.0.1:{port}/v1 .*check -g base_url"):
        list(generator.vary([task(index=i) for i in range(3)], concurrency=1))


def test_exhausted_quota_stops_the_run(entry):
    with FakeImagesServer(api_key=API_KEY, faults=Faults(quota_exhausted=True)) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url, max_retries=0)
        with pytest.raises(SynthmedError, match="quota is exhausted") as error:
            list(generator.vary([task(index=i) for i in range(4)], concurrency=1))
    assert error.value.exit_code == 1


def test_interrupt_finishes_requests_in_flight_and_resume_asks_nothing_twice(data, entry, tmp_path):
    with FakeImagesServer(api_key=API_KEY, latency=0.05) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url)
        seen = []

        def ctrl_c_after_three(event):
            if isinstance(event, Advanced):
                seen.append(event.n)
                if len(seen) == 3:
                    raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            generate(data, entry, generator, tmp_path / "out", per_image=5, concurrency=4, progress=ctrl_c_after_three)
        journal = partial_path(tmp_path / "out") / "rows.jsonl"
        kept = len(journal.read_text().splitlines())
        asked_first = len(server.requests)
        assert kept == asked_first > 3  # the requests in flight were finished and stored
        plan, summary = generate(data, entry, entry.factory(mode="variation", base_url=server.base_url),
                                 tmp_path / "out", resume=True, per_image=5, concurrency=4)
        assert summary["already_done"] == kept and summary["requested"] == len(plan) - kept
        assert server.duplicates == 0 and len(server.requests) == len(plan)
    assert len(Dataset.open(tmp_path / "out").rows) == len(plan)


@pytest.mark.parametrize(
    "pixels, message",
    [
        (task(size=(2, 32, 32)).pixels, "is not supported; the images API takes 8-bit grayscale or RGB"),
        (task(dtype=np.uint16).pixels, "uint16 .* is not supported"),
        (task(size=(1, 1100, 1100)).pixels, "1100x1100 px; the images API returns at most 1024x1024"),
    ],
)
def test_unusable_sources_are_refused_before_any_upload(entry, server, pixels, message):
    generator = entry.factory(mode="variation", base_url=server.base_url)
    bad = VariationTask(source_id="bad", label="x", index=0, pixels=pixels, seed=0)
    with pytest.raises(UsageError, match=message):
        list(generator.vary([task(), bad], concurrency=1))
    assert server.requests == []


@pytest.mark.parametrize(
    "args, message",
    [
        ({"mode": "inpaint"}, "-g mode=inpaint: expected variation or edit"),
        ({"mode": "variation", "size": 300}, "-g size=300: mode variation accepts 256x256, 512x512, 1024x1024"),
        ({"size": "1024x512"}, "expected a square size"),
        ({"timeout": 0}, "-g timeout=0"),
        ({"max_retries": -1}, "-g max_retries=-1"),
        ({"base_url": "ftp://example.org"}, "-g base_url=ftp://example.org: expected an http\\(s\\) URL"),
        ({"mode": "edit", "prompt": " "}, "needs a non-empty prompt"),
    ],
)
def test_bad_generator_arguments(entry, args, message):
    with pytest.raises(UsageError, match=message):
        entry.factory(**args)


def test_concurrency_zero_is_refused_before_any_request(data, entry, server, tmp_path):
    with pytest.raises(UsageError, match="--concurrency 0"):
        generate(data, entry, entry.factory(base_url=server.base_url), tmp_path / "out", concurrency=0)
    assert server.requests == [] and not (tmp_path / "out").exists()


def test_api_key_never_appears_in_outputs_logs_or_errors(data, entry, tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_LOG", "debug")
    texts = []
    with FakeImagesServer(api_key=API_KEY, faults=Faults(rate_limit={1}, server_error={2})) as server:
        plan = plan_variations(data, per_image=1, classes=["ModerateDemented"], seed=0, generator="openai")
        server.faults.reject_keys = {request_key(VariationTask(p.source["id"], "", p.index, None, p.seed))
                                     for p in plan[:2]}
        generator = entry.factory(mode="variation", base_url=server.base_url)
        texts.append(repr(generator))
        generate(data, entry, generator, tmp_path / "out", per_image=1, concurrency=2)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-other-wrong-key-123")
        with pytest.raises(UsageError) as error:
            generate(data, entry, entry.factory(mode="variation", base_url=server.base_url), tmp_path / "out2",
                     per_image=1)
        texts.append(str(error.value))
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
            assert b"sk-other-wrong-key-123" not in path.read_bytes(), path
    assert (tmp_path / "out" / "rejected.csv").is_file()
    for text in texts:
        assert API_KEY not in text and "sk-other-wrong-key-123" not in text


def test_run_stopped_by_quota_keeps_paid_images_and_resume_pays_nothing_twice(data, entry, tmp_path):
    with FakeImagesServer(api_key=API_KEY, latency=0.02, faults=Faults(quota_after=6)) as server:
        generator = entry.factory(mode="variation", base_url=server.base_url, max_retries=0)
        with pytest.raises(SynthmedError, match="quota is exhausted.*--resume"):
            generate(data, entry, generator, tmp_path / "out", per_image=4, concurrency=4)
        journal = partial_path(tmp_path / "out") / "rows.jsonl"
        assert len(journal.read_text().splitlines()) == len(server.served()) == 6  # in-flight answers kept
        server.faults.quota_after = None
        plan, summary = generate(data, entry, entry.factory(mode="variation", base_url=server.base_url),
                                 tmp_path / "out", resume=True, per_image=4, concurrency=4)
        assert summary["already_done"] == 6 and summary["written"] == len(plan) - 6
        assert server.served_twice == 0 and len(server.served()) == len(plan)


def test_real_chest_xrays_round_trip(entry, server, tmp_path):
    from PIL import Image

    from conftest import shared_data

    root = shared_data("chest-xray-kermany-224")
    with DatasetWriter(tmp_path / "xray", classes=["NORMAL", "PNEUMONIA"], command="test") as writer:
        for label in ("NORMAL", "PNEUMONIA"):
            for split, folder in (("train", "train"), ("test", "test")):
                for path in sorted((root / folder / label).glob("*.jpeg"))[:2]:
                    with Image.open(path) as image:
                        pixels = np.asarray(image.convert("L"))
                    writer.add_image(pixels, id=f"{split}-{path.stem}", label=label, split=split)
    xray = Dataset.open(tmp_path / "xray")
    generator = entry.factory(mode="variation", base_url=server.base_url)
    plan = plan_variations(xray, per_image=1, splits=("train", "test"), seed=0, generator="openai")
    with DatasetWriter(tmp_path / "out", classes=xray.classes, command="generate", resumable=True) as writer:
        summary = run_variations(xray, plan, writer, entry, generator, device="cpu", concurrency=4, allow_upload=True)
    assert summary["written"] == 8
    out = Dataset.open(tmp_path / "out")
    assert out.image_size == (224, 224) and out.channels == 1
    assert {r["split"] for r in out.rows if r["origin"].startswith("test-")} == {"test"}
    assert {request.image_size for request in server.requests} == {(256, 256)}
    for row in out.rows:
        made = out.load_images([row])[0].astype(float)
        source = xray.load_images([next(r for r in xray.rows if r["id"] == row["origin"])])[0][:, :, ::-1]
        assert np.corrcoef(made.ravel(), source.astype(float).ravel())[0, 1] > 0.98
