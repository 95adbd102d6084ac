"""`--distortion ms-ssim`: learned codecs fitted (and refined) for lambda * (1 - MS-SSIM) + bpp."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tiny import textured_images

TINY = {"hidden": 8, "latent": 8, "hyper": 4}


def _assert_usage_error(result, *words: str) -> None:
    assert result.code == 2, result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("synthmed: error: "), result.err
    for word in words:
        assert word in last, last
    assert result.out == ""


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return textured_images(32)


def test_ms_ssim_loss_is_lambda_times_one_minus_torchmetrics_ms_ssim_at_three_scales_on_64_px_crops():
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    from synthmed.compress.models import rate_distortion_loss
    from synthmed.compress.report import MS_SSIM_BETAS, ms_ssim_scales

    assert ms_ssim_scales(64, 64) == 3  # the training crops: the first three standard scales
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    x_hat = (x + 0.1 * torch.randn_like(x)).requires_grad_(True)
    likelihoods = [torch.full((2, 8, 8, 8), 0.5)]
    loss, bpp, mse = rate_distortion_loss(x, x_hat, likelihoods, 60.5, "ms-ssim")
    betas = tuple(b / sum(MS_SSIM_BETAS[:3]) for b in MS_SSIM_BETAS[:3])
    expected = multiscale_structural_similarity_index_measure(x_hat, x, data_range=1.0, betas=betas, normalize="relu")
    assert torch.allclose(loss, 60.5 * (1 - expected) + bpp)
    assert torch.allclose(mse, torch.mean((x_hat - x) ** 2))
    mse_loss, _, _ = rate_distortion_loss(x, x_hat, likelihoods, 60.5)
    assert not torch.allclose(loss, mse_loss)  # equal lambda, another distortion
    loss.backward()
    assert x_hat.grad is not None and torch.isfinite(x_hat.grad).all() and x_hat.grad.abs().sum() > 0


def test_a_codec_fitted_for_ms_ssim_records_it_decodes_and_is_refused_for_mse(images, tmp_path):
    from synthmed.compress.learned import MS_SSIM_LAMBDAS
    from synthmed.errors import UsageError
    from synthmed.registry import create_codec

    codec = create_codec("learned-hyperprior", **TINY, distortion="ms-ssim")
    codec.fit(images, quality=6, steps=3, device="cpu", seed=0)
    image = images[0, 0]
    payload = codec.encode(image, quality=6)
    assert np.array_equal(codec.decode(payload, quality=6, shape=image.shape, dtype=image.dtype),
                          codec.reconstruct(image, quality=6))
    codec.save(tmp_path / "ms", quality=6)
    config = json.loads((tmp_path / "ms" / "config.json").read_text())
    assert config["distortion"] == "ms-ssim" and config["lambda"] == MS_SSIM_LAMBDAS[6] == config["fit"]["lambda"]

    # Not the same model as an mse fit of the same seed (the loss differs).
    mse = create_codec("learned-hyperprior", **TINY)
    mse.fit(images, quality=6, steps=3, device="cpu", seed=0)
    assert mse.model_tag(6) != codec.model_tag(6)
    mse.save(tmp_path / "mse", quality=6)
    assert json.loads((tmp_path / "mse" / "config.json").read_text())["distortion"] == "mse"

    with pytest.raises(UsageError, match="fitted for ms-ssim, not mse; pass --distortion ms-ssim"):
        create_codec("learned-hyperprior", distortion="mse").load(tmp_path / "ms", quality=6)
    with pytest.raises(UsageError, match="fitted for mse, not ms-ssim"):
        create_codec("learned-hyperprior", distortion="ms-ssim").load(tmp_path / "mse", quality=6)
    # Not told (decoding): the folder's own; a folder from before the option was fitted for mse.
    fresh = create_codec("learned-hyperprior")
    fresh.load(tmp_path / "ms", quality=6)
    assert fresh.distortion == "ms-ssim" and fresh.model_tag(6) == codec.model_tag(6)
    config_path = tmp_path / "mse" / "config.json"
    old = json.loads(config_path.read_text())
    del old["distortion"]
    config_path.write_text(json.dumps(old))
    with pytest.raises(UsageError, match="fitted for mse"):
        create_codec("learned-hyperprior", distortion="ms-ssim").load(tmp_path / "mse", quality=6)


def test_refinement_descends_the_distortion_the_model_was_fitted_for(images, monkeypatch):
    from synthmed.compress import models, refine
    from synthmed.registry import create_codec

    seen = []
    original = models.distortion
    monkeypatch.setattr(refine, "distortion", lambda x_hat, x, kind="mse": (seen.append(kind), original(x_hat, x, kind))[1])
    codec = create_codec("learned-factorized", hidden=8, latent=8, distortion="ms-ssim", refine_steps=2)
    codec.fit(images, quality=8, steps=2, device="cpu", seed=0)
    image = images[0, 0]
    payload = codec.encode(image, quality=8)
    assert seen and set(seen) == {"ms-ssim"}
    assert np.array_equal(codec.decode(payload, quality=8, shape=image.shape, dtype=image.dtype),
                          codec.reconstruct(image, quality=8))


def test_compress_distortion_option_model_reuse_and_resume(sample_dataset, run, tmp_path):
    out = tmp_path / "ms"
    args = ["--codec", "learned-factorized=8", "--splits", "test", "--fit-steps", "2", "--device", "cpu", "-q"]
    result = run("compress", sample_dataset, "-o", out, *args, "--distortion", "ms-ssim")
    assert result.code == 0, result.err
    config = json.loads((out / "models" / "learned-factorized-q8" / "config.json").read_text())
    assert config["distortion"] == "ms-ssim"
    restored = tmp_path / "restored"
    assert run("compress", "--decode", out, "-o", restored, "-q").code == 0  # decoding needs no --distortion

    # --model: the same distortion reuses the model, another is refused in one line.
    again = tmp_path / "again"
    assert run("compress", sample_dataset, "-o", again, *args, "--model", out, "--distortion", "ms-ssim").code == 0
    _assert_usage_error(run("compress", sample_dataset, "-o", tmp_path / "bad", *args, "--model", out),
                        "fitted for ms-ssim", "--distortion ms-ssim")
    # --resume refuses another --distortion, either way round.
    _assert_usage_error(run("compress", sample_dataset, "-o", out, *args, "--resume"), "--distortion")
    _assert_usage_error(run("compress", sample_dataset, "-o", out, *args, "--resume", "--distortion", "mse"),
                        "--distortion")
    mse_out = tmp_path / "mse"
    assert run("compress", sample_dataset, "-o", mse_out, *args).code == 0
    _assert_usage_error(run("compress", sample_dataset, "-o", mse_out, *args, "--resume", "--distortion", "ms-ssim"),
                        "--distortion")
    assert run("compress", sample_dataset, "-o", out, *args, "--resume", "--distortion", "ms-ssim").code == 0
    _assert_usage_error(run("compress", sample_dataset, "-o", tmp_path / "bad", *args, "--distortion", "ssim"),
                        "--distortion", "mse, ms-ssim")


def test_a_learned_plugin_codec_without_a_distortion_is_refused_ms_ssim(sample_dataset, run, tmp_path):
    import synthmed.plugins
    from synthmed.hookspecs import hookimpl

    class OwnLearned:  # only what is read before fitting
        lossless = False
        quality_range = (1, 2)
        default_qualities = (1,)
        max_side = 1024
        bit_depths = (8,)

    class Plugin:
        @hookimpl
        def register_codecs(self, register):
            register("own-learned", OwnLearned, learned=True)

    pm = synthmed.plugins.get_plugin_manager()
    pm.register(Plugin(), name="own-learned-plugin")
    try:
        _assert_usage_error(run("compress", sample_dataset, "-o", tmp_path / "out", "--codec", "own-learned",
                                "--splits", "test", "--distortion", "ms-ssim", "-q"), "own-learned", "--distortion")
    finally:
        pm.unregister(name="own-learned-plugin")
