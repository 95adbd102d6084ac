"""`learned-checkerboard`: the mean-scale hyperprior with the checkerboard context of He et al. 2021."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tiny import textured_images

TINY = {"hidden": 8, "latent": 8, "hyper": 4}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return textured_images(32)


@pytest.fixture(scope="module")
def fitted(images):
    from synthmed.registry import create_codec

    codec = create_codec("learned-checkerboard", **TINY)
    codec.fit(images, quality=6, steps=6, device="cpu", seed=0)
    return codec


def test_checkerboard_decodes_exactly_what_the_encoder_reconstructed(fitted, images, tmp_path):
    """(Save, load and 16 bit: test_compress.test_learned_codec_decodes_exactly_what_the_encoder_reconstructed.)"""
    for image in (images[0, 0], images[1, 0, :29, :23]):  # 32 px, and a side padded then cropped
        payload = fitted.encode(image, quality=6)
        decoded = fitted.decode(payload, quality=6, shape=image.shape, dtype=image.dtype)
        assert decoded.shape == image.shape and np.array_equal(decoded, fitted.reconstruct(image, quality=6))
        assert fitted.encode(image, quality=6) == payload  # deterministic
    fitted.save(tmp_path / "model", quality=6)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["name"] == "learned-checkerboard" and config["variant"] == "checkerboard"


def test_anchors_see_no_context_and_non_anchors_see_the_anchors(fitted):
    import torch

    from synthmed.compress.checkerboard import anchor_mask
    from synthmed.compress.models import HYPER_RANGE

    model = copy.deepcopy(fitted.models[6])  # its weights are changed below
    torch.manual_seed(0)
    with torch.no_grad():
        y = model.encode_latent(torch.rand(1, 1, 64, 64))
        z_hat = torch.round(model.hyper_analysis(y)).clamp(-HYPER_RANGE, HYPER_RANGE)
    anchors = anchor_mask(*y.shape[-2:]).expand(y.shape)
    # A context conv that is not (near) zero, so a missing mask would show.
    with torch.no_grad():
        model.context.weight.normal_()
        model.entropy_parameters[-1].weight.normal_()

    def parameters(values):
        with torch.no_grad():
            means, scales, _ = model.quantised_parameters(z_hat, lambda m: torch.round(values - m) + m)
        return means, scales

    means, scales = parameters(y)
    # Non-anchor latents changed: the anchors' parameters stay; the non-anchors' are free to change.
    other = torch.where(anchors, y, y + 7.0)
    means_o, scales_o = parameters(other)
    assert torch.equal(means_o[anchors], means[anchors]) and torch.equal(scales_o[anchors], scales[anchors])
    assert torch.equal(means_o[~anchors], means[~anchors])  # non-anchors see anchors only, not each other
    # One anchor latent changed: its non-anchor neighbours' parameters change, no anchor's does.
    bumped = y.clone()
    bumped[0, 0, 2, 2] += 5.0  # (2 + 2) even: an anchor
    means_b, scales_b = parameters(bumped)
    assert torch.equal(means_b[anchors], means[anchors]) and torch.equal(scales_b[anchors], scales[anchors])
    changed = (means_b != means) | (scales_b != scales)
    assert changed[~anchors].any()
    assert changed[0, :, 2, 3].any() and not changed[0, :, 2, 7].any()  # inside, outside the 5x5 reach

    # The coder's two passes agree: the non-anchors' coding parameters come from the anchor symbols alone.
    features, means_a, _ = model.anchor_coding(z_hat)
    symbols = torch.round(y - means_a)
    means_n, indices_n = model.nonanchor_coding(features, symbols, means_a)
    again, indices_again = model.nonanchor_coding(features, torch.where(anchors, symbols, symbols + 3), means_a)
    assert torch.equal(again, means_n) and torch.equal(indices_again, indices_n)


def test_a_model_of_another_variant_is_refused(fitted, images, tmp_path):
    from synthmed.errors import UsageError
    from synthmed.registry import create_codec

    hyper = create_codec("learned-hyperprior", **TINY)
    hyper.fit(images, quality=6, steps=2, device="cpu", seed=0)
    hyper.save(tmp_path / "hyper", quality=6)
    with pytest.raises(UsageError, match="learned-hyperprior"):
        create_codec("learned-checkerboard").load(tmp_path / "hyper", quality=6)
    fitted.save(tmp_path / "board", quality=6)
    with pytest.raises(UsageError, match="learned-checkerboard"):
        create_codec("learned-hyperprior").load(tmp_path / "board", quality=6)

    # Even under the right name, a config of another variant is refused (its weights would not fit).
    path = tmp_path / "hyper" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "name": "learned-checkerboard"}))
    with pytest.raises(UsageError, match="not the checkerboard model"):
        create_codec("learned-checkerboard").load(tmp_path / "hyper", quality=6)


def test_refinement_descends_the_two_pass_rate_and_still_decodes_exactly(fitted, images):
    import torch

    from synthmed.compress.learned import LAMBDAS
    from synthmed.compress.refine import refine_latents

    model = fitted.models[6]
    x = fitted._pad(torch.from_numpy(images[:1].astype(np.float32) / 255))
    _, _, record = refine_latents(model, x, lmbda=LAMBDAS[6], steps=10)
    assert record["cost_after"] <= record["cost_before"]
    image = images[2, 0]
    fitted.refine_steps = 5
    try:
        payload = fitted.encode(image, quality=6)
        assert np.array_equal(fitted.decode(payload, quality=6, shape=image.shape, dtype=image.dtype),
                              fitted.reconstruct(image, quality=6))
    finally:
        fitted.refine_steps = 0


def test_compress_cli_with_the_checkerboard_codec(sample_dataset, run, tmp_path):
    from synthmed.data import Dataset

    out = tmp_path / "board"
    args = ["--codec", "learned-checkerboard=2", "--splits", "test", "--fit-steps", "2", "--device", "cpu", "-q"]
    result = run("compress", sample_dataset, "-o", out, *args)
    assert result.code == 0, result.err
    config = json.loads((out / "models" / "learned-checkerboard-q2" / "config.json").read_text())
    assert config["variant"] == "checkerboard" and config["fit"]["steps"] == 2
    again = tmp_path / "again"
    assert run("compress", sample_dataset, "-o", again, *args, "--model", out).code == 0
    restored = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", restored, "-q")
    assert result.code == 0, result.err
    assert len(Dataset.open(restored).rows) == len(Dataset.open(sample_dataset).select(split="test"))
