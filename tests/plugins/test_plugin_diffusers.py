"""Plugin synthmed-diffusers: tiny randomly initialised Stable Diffusion folders, saved with
`save_pretrained` in the test and loaded back through the plugin (no hub access)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("synthmed_diffusers", reason="install plugins/synthmed-diffusers (make install does)")

from synthmed.data import Dataset, DatasetWriter, partial_path  # noqa: E402
from synthmed.generate.variation import plan_variations, run_variations  # noqa: E402
from synthmed.errors import UsageError  # noqa: E402
from synthmed.protocols import VariationTask  # noqa: E402
from synthmed.registry import get_entry  # noqa: E402


def _tiny_unet(cross_attention_dim):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, norm_num_groups=4, attention_head_dim=2,
    )


def _tiny_parts():
    from diffusers import AutoencoderKL, DDIMScheduler

    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=4, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return vae, scheduler


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """{"variation": folder of a StableDiffusionImageVariationPipeline, "img2img": of a StableDiffusionPipeline}."""
    import torch
    from diffusers import StableDiffusionImageVariationPipeline, StableDiffusionPipeline
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("sd")
    vae, scheduler = _tiny_parts()
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=16, projection_dim=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    StableDiffusionImageVariationPipeline(
        vae=vae, image_encoder=encoder, unet=_tiny_unet(16), scheduler=scheduler, safety_checker=None,
        feature_extractor=processor, requires_safety_checker=False,
    ).save_pretrained(root / "sd-image-variations-tiny")

    # A tokenizer from a vocabulary made here: single letters, as words' ends or not.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=16, projection_dim=16, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=_tiny_unet(16), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(root / "sd-tiny")
    return {"variation": root / "sd-image-variations-tiny", "img2img": root / "sd-tiny"}


@pytest.fixture
def entry(monkeypatch, fresh_plugins):
    monkeypatch.setenv("SYNTHMED_PLUGINS", "diffusers")
    return get_entry("generator", "sd-variation")


def task(index=0, seed=0, shape=(1, 20, 28)):
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 255, size=shape, dtype=np.uint8)
    return VariationTask(source_id=f"s{index}", label="MildDemented", index=0, pixels=pixels, seed=seed)


def test_registered_through_the_entry_point(entry):
    assert entry.plugin == "diffusers" and entry.info.conditioning == "image"
    assert entry.tag == "sd-variation@0.1.0"


def test_both_first_party_plugins_are_listed(run, monkeypatch, fresh_plugins):
    pytest.importorskip("synthmed_openai")
    monkeypatch.setenv("SYNTHMED_PLUGINS", "openai,diffusers")
    listed = {p["name"]: p for p in json.loads(run("plugins", "--json").out)["plugins"]}
    assert listed["openai"]["registers"]["generator"] == ["openai"]
    assert listed["diffusers"]["registers"]["generator"] == ["sd-variation"]
    assert {listed[n]["origin"] for n in ("openai", "diffusers")} == {"entry point"}
    assert {listed[n]["status"] for n in ("openai", "diffusers")} == {"ok"}


def test_variation_mode_from_clip_image_embeddings(entry, model_dirs):
    generator = entry.factory(model_dir=str(model_dirs["variation"]), steps=2, batch_size=2)
    assert generator.mode == "variation" and generator.upload_host is None
    tasks = [task(i, seed=100 + i) for i in range(3)]
    results = list(generator.vary(tasks, device="cpu"))
    assert [t.source_id for t, _ in results] == ["s0", "s1", "s2"]
    for _, image in results:
        assert image.shape == (1, 20, 28) and image.dtype == np.uint8
    assert generator.columns() == {"mode": "variation", "model": "sd-image-variations-tiny", "prompt": "", "strength": ""}


def test_same_seed_same_image_whatever_the_batch(entry, model_dirs):
    batched = entry.factory(model_dir=str(model_dirs["variation"]), steps=2, batch_size=3)
    single = entry.factory(model_dir=str(model_dirs["variation"]), steps=2, batch_size=1)
    tasks = [task(i, seed=7 + i) for i in range(3)]
    together = [image for _, image in batched.vary(tasks, device="cpu")]
    alone = [image for _, image in single.vary(tasks[1:2], device="cpu")]
    assert np.abs(together[1].astype(int) - alone[0].astype(int)).max() <= 1
    other_seed = [image for _, image in single.vary([task(1, seed=999)], device="cpu")]
    assert np.abs(other_seed[0].astype(int) - alone[0].astype(int)).mean() > 1


def test_img2img_strength_controls_how_far_from_the_source(entry, model_dirs):
    source = [task(0, seed=3, shape=(3, 16, 16))]
    distance = {}
    for strength in (0.25, 1.0):
        generator = entry.factory(model_dir=str(model_dirs["img2img"]), mode="img2img", strength=strength, steps=4,
                                  prompt="a brain scan of {label}")
        [(_, image)] = list(generator.vary(source, device="cpu"))
        assert image.shape == (3, 16, 16)
        distance[strength] = image.astype(int)
    assert generator.columns() == {"mode": "img2img", "model": "sd-tiny", "prompt": "a brain scan of {label}",
                                   "strength": "1"}
    assert not np.array_equal(distance[0.25], distance[1.0])


def test_through_run_variations_into_a_dataset(entry, model_dirs, sample_dataset, tmp_path):
    data = Dataset.open(sample_dataset)
    generator = entry.factory(model_dir=str(model_dirs["variation"]), steps=1, batch_size=4)
    plan = plan_variations(data, per_image=1, splits=("train", "val"), classes=["ModerateDemented"], seed=0,
                           generator=entry.name)
    with DatasetWriter(tmp_path / "out", classes=data.classes, command="generate", resumable=True) as writer:
        summary = run_variations(data, plan, writer, entry, generator, device="cpu")  # no --allow-upload needed
    assert summary["written"] == len(plan) == 8
    out = Dataset.open(tmp_path / "out")
    out.verify()
    assert {row["split"] for row in out.rows} == {"train", "val"}
    assert {row["generator"] for row in out.rows} == {"sd-variation@0.1.0"}
    assert out.image_size == (32, 32) and out.channels == 1


def test_folder_that_is_not_a_diffusers_pipeline(entry, tmp_path, model_dirs):
    with pytest.raises(UsageError, match="not a diffusers pipeline folder \\(no model_index.json\\)"):
        entry.factory(model_dir=str(tmp_path))
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    with pytest.raises(UsageError, match="names 'DDPMPipeline', not a Stable Diffusion pipeline"):
        entry.factory(model_dir=str(tmp_path))
    with pytest.raises(UsageError, match="no such folder"):
        entry.factory(model_dir=str(tmp_path / "absent"))
    with pytest.raises(UsageError, match="needs -g model_dir=DIR"):
        entry.factory()
    with pytest.raises(UsageError, match="supports mode img2img only"):
        entry.factory(model_dir=str(model_dirs["img2img"]), mode="variation")


@pytest.mark.parametrize("strength", [0, -0.5, 1.5, "high"])
def test_strength_outside_zero_one_is_refused(entry, model_dirs, strength):
    with pytest.raises(UsageError, match=f"-g strength={strength}: must be in \\(0, 1\\]"):
        entry.factory(model_dir=str(model_dirs["img2img"]), strength=strength)


@pytest.mark.parametrize(
    "args, message",
    [({"steps": 0}, "-g steps=0"), ({"batch_size": 0}, "-g batch_size=0"), ({"resolution": 30}, "multiple of 8"),
     ({"mode": "inpaint"}, "expected variation or img2img"), ({"guidance": -1}, "-g guidance=-1")],
)
def test_bad_generator_arguments(entry, model_dirs, args, message):
    with pytest.raises(UsageError, match=message):
        entry.factory(model_dir=str(model_dirs["variation"]), **args)


def test_missing_component_is_named(entry, model_dirs, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["variation"], broken)
    shutil.rmtree(broken / "image_encoder")
    with pytest.raises(UsageError, match="missing image_encoder/"):
        entry.factory(model_dir=str(broken))
    assert not partial_path(tmp_path / "out").exists()
