"""ddpm's training objective and samplers, and --fit-minutes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthmed.generate.ddpm import DdpmGenerator


def blobs(count=32, side=16, seed=0):
    """Bright discs on black: a distribution a tiny model learns in a few epochs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    out = []
    for _ in range(count):
        cx, cy = rng.uniform(side / 4, 3 * side / 4, 2)
        out.append((255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8)).astype(np.uint8))
    return np.stack(out)[:, None]


@pytest.fixture
def one_thread():
    # Restored afterwards: a thread count left at 1 makes every later in-process run differ in
    # the last digit from the same run in a subprocess (2 threads), which the kill-and-rerun
    # tests compare byte for byte.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_dpm_solver_at_20_steps_is_close_to_ddim_at_50(one_thread):
    generator = DdpmGenerator(preset="tiny", batch_size=16, guidance=1.0)
    assert (generator.sampler, generator.steps, generator.prediction) == ("dpm", 20, "v_prediction")
    generator.fit(blobs(), np.zeros(32, dtype=np.int64), epochs=6, device="cpu", seed=0)
    dpm = generator.sample(0, 8, seed=1, device="cpu").astype(float) / 255
    generator.sampler, generator.steps = "ddim", 50
    ddim = generator.sample(0, 8, seed=1, device="cpu").astype(float) / 255
    # The same noise through two solvers of one ODE: a few grey levels apart, not a different image
    # (with noise prediction on this schedule DPM-Solver++ was 0.4 off: saturated noise).
    assert np.abs(dpm - ddim).mean() < 0.06


def test_min_snr_weighting_changes_the_loss():
    import torch

    losses = {}
    for gamma in (0.0, 5.0):
        generator = DdpmGenerator(preset="tiny", batch_size=8, min_snr_gamma=gamma)
        generator.arch = {"channels": 1, "image_size": [16, 16], "num_classes": 1, "fitted_classes": [0],
                          **generator._arch_extra((16, 16))}
        torch.manual_seed(0)
        generator._build(generator.arch)
        generator._training_setup("cpu")
        torch.manual_seed(1)
        images = torch.from_numpy(blobs(8)).float() / 127.5 - 1
        losses[gamma] = generator._train_step(None, images, torch.zeros(8, dtype=torch.long), "cpu")["loss"].item()
    assert losses[0.0] != pytest.approx(losses[5.0], rel=1e-3)
    with pytest.raises(ValueError, match="prediction"):
        DdpmGenerator(prediction="x0")


def test_fit_minutes_stops_on_time_and_refuses_fit_epochs(run, tmp_path):
    from gen_helpers import make_dataset

    data = make_dataset(tmp_path / "data", {"a": [("train", 16)] * 8, "b": [("train", 16)] * 8})
    both = run("generate", data, "-o", tmp_path / "x", "--generator", "dcgan", "--fit-only", "--fit-epochs", "2",
               "--fit-minutes", "1")
    assert both.code == 2 and "--fit-minutes and --fit-epochs" in both.err
    assert not (tmp_path / "x").exists()
    # A budget shorter than one epoch: exactly one epoch runs, and the model says so.
    result = run("generate", data, "-o", tmp_path / "fit", "--generator", "dcgan", "-g", "width=4",
                 "-g", "batch_size=4", "--fit-only", "--fit-minutes", "0.0001")
    assert result.code == 0, result.err
    config = json.loads((tmp_path / "fit" / "model" / "config.json").read_text())
    assert config["fit_epochs"] == 1


def test_dry_run_estimates_time_and_warns_above_an_hour_on_a_cpu(run, tmp_path):
    from gen_helpers import make_dataset

    data = make_dataset(tmp_path / "data", {"a": [("train", 16)] * 8, "b": [("train", 16)] * 8})
    base = ["generate", data, "-o", tmp_path / "x", "--generator", "dcgan", "-g", "width=4", "-g", "batch_size=4",
            "--per-class", "4", "--dry-run", "--device", "cpu"]
    short = run(*base, "--fit-epochs", "1", "--json")
    assert short.code == 0, short.err
    estimate = json.loads(short.out)["estimate_seconds"]
    assert estimate["fit"] > 0 and estimate["sample"] > 0 and estimate["total"] == pytest.approx(
        estimate["fit"] + estimate["sample"])
    assert "estimated time on cpu: fitting ~" in short.err and "warning" not in short.err
    long = run(*base, "--fit-epochs", "10000000")
    assert long.code == 0 and "synthmed: warning: this job is estimated at" in long.err
    assert not (tmp_path / "x").exists()


def test_an_fp16_fit_resumes_at_its_gradient_scale(tmp_path):
    """The loss scale an fp16 fit has reached is part of its fit checkpoint (a CPU GradScaler
    stands in for the CUDA one: the same state, the same code path)."""
    import json

    import numpy as np
    import torch
    from safetensors import safe_open

    from synthmed.fit_state import STATE_FILE
    from synthmed.generate.ddpm import DdpmGenerator

    class ScaledDdpm(DdpmGenerator):
        def _training_setup(self, device):
            setup = super()._training_setup(device)
            self.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1)
            return setup

    images = np.random.default_rng(0).integers(0, 256, (8, 1, 16, 16), dtype=np.uint8)
    labels = np.array([0, 1] * 4)
    first = ScaledDdpm(preset="tiny", batch_size=4, steps=2)
    first.fit(images, labels, epochs=1, device="cpu", seed=0, state_dir=tmp_path, num_classes=2)
    with safe_open(str(tmp_path / STATE_FILE), framework="pt") as handle:
        saved = json.loads(handle.metadata()["fit_state"])["meta"]["scaler"]
    assert saved["scale"] == first.scaler.get_scale() > 2.0**10  # it grew once per finite step

    resumed = ScaledDdpm(preset="tiny", batch_size=4, steps=2)
    resumed.fit(images, labels, epochs=1, device="cpu", seed=0, state_dir=tmp_path, num_classes=2)
    assert resumed.scaler.get_scale() == saved["scale"]  # nothing left to fit: the saved scale, not the initial one


def test_the_tiny_noattn_preset_is_tiny_without_the_middle_attention(tmp_path):
    import torch
    from diffusers.models.attention_processor import Attention

    from synthmed.generate.diffusion_models import build_unet

    nets = {preset: build_unet(channels=1, image_size=(16, 16), num_classes=2, preset=preset)
            for preset in ("tiny", "tiny-noattn")}
    attentions = {preset: sum(isinstance(m, Attention) for m in net.modules()) for preset, net in nets.items()}
    assert attentions == {"tiny": 1, "tiny-noattn": 0}  # tiny (the demo's) keeps its middle attention
    tiny, flat = nets["tiny"].state_dict(), nets["tiny-noattn"].state_dict()
    assert {k: v.shape for k, v in flat.items()} == {k: v.shape for k, v in tiny.items() if ".attentions." not in k}
    # A model folder remembers the preset: it loads as the network it was fitted as.
    generator = DdpmGenerator(preset="tiny-noattn", batch_size=8, steps=2)
    generator.fit(blobs(8), np.zeros(8, dtype=np.int64), epochs=1, device="cpu", seed=0)
    generator.save(tmp_path / "m")
    loaded = DdpmGenerator(steps=2)
    loaded.load(tmp_path / "m")
    assert not any(isinstance(m, Attention) for m in loaded.net.modules())
    assert all(torch.equal(a, b) for a, b in zip(generator.net.state_dict().values(), loaded.net.state_dict().values()))
