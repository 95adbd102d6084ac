"""`synthmed generate` with image-conditional generators (the `openai` plugin against a local
server), end to end through the command line."""

from __future__ import annotations

import csv
import json
import socket

import pytest

pytest.importorskip("synthmed.cli.generate", reason="the generate command has not landed yet")
pytest.importorskip("synthmed_openai", reason="install plugins/synthmed-openai (make install does)")

from synthmed.data import Dataset, partial_path  # noqa: E402
from synthmed_openai.testing import Faults, FakeImagesServer  # noqa: E402

API_KEY = "sk-synthmed-cli-test-Hk29SECRET"


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """12 images per class (about 8 train sources per class), 16 px."""
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(tmp_path_factory.mktemp("small") / "data", size=16, scale=0.001, seed=0)


@pytest.fixture
def api_env(monkeypatch, fresh_plugins):
    monkeypatch.setenv("SYNTHMED_PLUGINS", "openai,diffusers")
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SYNTHMED_ALLOW_UPLOAD", raising=False)


@pytest.fixture
def server(api_env):
    with FakeImagesServer(api_key=API_KEY, latency=0.002, lifetime=120) as running:
        yield running


def train_sources(path):
    return Dataset.open(path).select(split="train", source="real")


def openai_args(data, out, server, *extra):
    return ("generate", data, "-o", out, "--generator", "openai", "-g", f"base_url={server.base_url}",
            "-g", "mode=variation", *extra)


def assert_usage_error(result, out, *needles):
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthmed: error: "), result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.out == ""
    assert not out.exists() and not partial_path(out).exists()


def test_openai_per_image_with_concurrency(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 2, "--concurrency", 4, "--allow-upload"))
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    sources = train_sources(small_dataset)
    rows = Dataset.open(out).rows
    synthetic = [row for row in rows if row["source"] == "synthetic"]
    assert len(synthetic) == 2 * len(sources) == len(server.requests)
    assert {row["origin"] for row in synthetic} == {row["id"] for row in sources}
    assert {row["split"] for row in synthetic} == {"train"}
    assert {row["generator"] for row in synthetic} == {"openai@0.1.0"}
    assert {row["mode"] for row in synthetic} == {"variation"} and {row["model"] for row in synthetic} == {"dall-e-2"}
    assert sorted(row["id"] for row in synthetic) == sorted(
        f"{s['id']}--openai-{i:03d}" for s in sources for i in range(2)
    )


def test_dry_run_counts_and_sends_nothing(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 3, "--dry-run"))
    assert result.code == 0, result.err
    assert str(3 * len(train_sources(small_dataset))) in result.out + result.err
    assert server.requests == [] and not out.exists() and not partial_path(out).exists()


def test_max_requests_is_a_hard_cap(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 2, "--max-requests", 5, "--allow-upload"))
    assert result.code == 0, result.err
    assert len(server.requests) == 5
    assert len([r for r in Dataset.open(out).rows if r["source"] == "synthetic"]) == 5


def test_dry_run_resume_counts_what_a_run_cut_short_made(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    assert run(*openai_args(small_dataset, out, server, "--per-image", 2, "--max-requests", 5, "--allow-upload")).code == 0
    result = run(*openai_args(small_dataset, out, server, "--per-image", 2, "--dry-run", "--resume", "--json"))
    assert result.code == 0, result.err
    summary, planned = json.loads(result.out), 2 * len(train_sources(small_dataset))
    assert (summary["planned"], summary["already_done"], summary["would_request"]) == (planned, 5, planned - 5)
    assert len(server.requests) == 5


def test_resume_after_a_run_cut_short_asks_for_nothing_twice(run, small_dataset, api_env, tmp_path):
    out = tmp_path / "out"
    with FakeImagesServer(api_key=API_KEY, latency=0.005, faults=Faults(quota_after=7)) as server:
        args = openai_args(small_dataset, out, server, "--per-image", 2, "--concurrency", 3, "--allow-upload",
                           "-g", "max_retries=0")
        first = run(*args)
        assert first.code == 1 and "quota" in first.err
        assert partial_path(out).is_dir() and not out.exists()
        server.faults.quota_after = None
        second = run(*args, "--resume")
        assert second.code == 0, second.err
        assert server.served_twice == 0
        assert len(server.served()) == 2 * len(train_sources(small_dataset))
    assert len([r for r in Dataset.open(out).rows if r["source"] == "synthetic"]) == len(server.served())


def test_content_policy_rejections_go_to_rejected_csv(run, small_dataset, server, tmp_path):
    from synthmed_openai.generator import request_key
    from synthmed.generate.variation import plan_variations
    from synthmed.protocols import VariationTask

    plan = plan_variations(Dataset.open(small_dataset), per_image=1, seed=0, generator="openai")
    refused = plan[0]
    server.faults.reject_keys = {request_key(VariationTask(refused.source["id"], "", 0, None, refused.seed))}
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1, "--seed", 0, "--allow-upload", "--json"))
    assert result.code == 0, result.err
    with open(out / "rejected.csv", newline="") as handle:
        [rejected] = list(csv.DictReader(handle))
    assert rejected["id"] == refused.id and "content_policy_violation" in rejected["reason"]
    summary = json.loads(result.out)
    assert summary["output"] == str(out)


def test_api_key_never_written_or_printed(run, small_dataset, server, tmp_path):
    server.faults.reject_keys = set()
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1, "--allow-upload", "--json"))
    assert result.code == 0
    for path in out.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in result.out + result.err


# --------------------------------------------------------------------------- bad input


def test_upload_refused_without_permission_names_the_host(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1))
    assert_usage_error(result, out, server.base_url.split("/")[2], "--allow-upload")
    assert server.requests == []


@pytest.mark.parametrize("value", ["1", "true", "Yes", "ON"])
def test_allow_upload_from_the_environment(run, small_dataset, server, tmp_path, monkeypatch, value):
    """The command line reads SYNTHMED_ALLOW_UPLOAD as the library does (=true used to be refused here)."""
    monkeypatch.setenv("SYNTHMED_ALLOW_UPLOAD", value)
    result = run(*openai_args(small_dataset, tmp_path / "out", server, "--per-image", 1))
    assert result.code == 0, result.err


@pytest.mark.parametrize("value", ["0", "maybe"])
def test_an_unreadable_allow_upload_is_refused(run, small_dataset, server, tmp_path, monkeypatch, value):
    from synthmed.generate.variation import check_upload_permission
    from synthmed.errors import UsageError
    from synthmed.registry import get_entry

    monkeypatch.setenv("SYNTHMED_ALLOW_UPLOAD", value)
    out = tmp_path / "out"
    assert_usage_error(run(*openai_args(small_dataset, out, server, "--per-image", 1)), out,
                       f"SYNTHMED_ALLOW_UPLOAD={value!r}", "1, true, yes, on")
    generator = get_entry("generator", "openai").factory(base_url=server.base_url)
    with pytest.raises(UsageError, match=f"SYNTHMED_ALLOW_UPLOAD={value!r}"):
        check_upload_permission(generator)
    assert server.requests == []


def test_missing_api_key(run, small_dataset, server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1, "--allow-upload"))
    assert_usage_error(result, out, "OPENAI_API_KEY is not set")


def test_wrong_api_key_stops_at_once(run, small_dataset, server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0000")
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 2, "--allow-upload"))
    assert_usage_error(result, out, "refused the API key")
    assert "sk-wrong-key-0000" not in result.err


def test_unreachable_base_url(run, small_dataset, api_env, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    result = run("generate", small_dataset, "-o", out, "--generator", "openai", "-g", f"base_url=http://127.0.0.1:{port}/v1",
                 "-g", "max_retries=0", "--per-image", 1, "--allow-upload")
    assert_usage_error(result, out, "cannot reach", "base_url")


def test_concurrency_zero(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1, "--concurrency", 0, "--allow-upload"))
    assert_usage_error(result, out, "--concurrency")


def test_bad_generator_argument(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    result = run(*openai_args(small_dataset, out, server, "--per-image", 1, "-g", "size=300", "--allow-upload"))
    assert_usage_error(result, out, "-g size=300")


def test_diffusers_model_folder_that_is_not_a_pipeline(run, small_dataset, api_env, tmp_path):
    pytest.importorskip("synthmed_diffusers")
    out = tmp_path / "out"
    result = run("generate", small_dataset, "-o", out, "--generator", "sd-variation", "-g", f"model_dir={tmp_path}",
                 "--per-image", 1)
    assert_usage_error(result, out, "not a diffusers pipeline folder")


@pytest.mark.parametrize("strength", ["0", "1.5"])
def test_diffusers_strength_outside_zero_one(run, small_dataset, api_env, tmp_path, strength):
    pytest.importorskip("synthmed_diffusers")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    for part in ("unet", "vae", "scheduler", "text_encoder", "tokenizer"):
        (model / part).mkdir()
    out = tmp_path / "out"
    result = run("generate", small_dataset, "-o", out, "--generator", "sd-variation", "-g", f"model_dir={model}",
                 "-g", f"strength={strength}", "--per-image", 1)
    assert_usage_error(result, out, f"-g strength={strength}")


def test_resume_continues_a_run_stopped_by_max_requests(run, small_dataset, server, tmp_path):
    out = tmp_path / "out"
    args = openai_args(small_dataset, out, server, "--per-image", 2, "--allow-upload")
    first = run(*args, "--max-requests", 3)
    assert first.code == 0 and first.out.strip() == str(out) and "left" in first.err
    second = run(*args, "--resume")
    assert second.code == 0, second.err
    synthetic = [r for r in Dataset.open(out).rows if r["source"] == "synthetic"]
    assert len(synthetic) == 2 * len(train_sources(small_dataset)) == len(server.requests)
    assert len({r["id"] for r in synthetic}) == len(synthetic)
