"""Every registered component, of every kind, is built and run once at a tiny size (as timm
tests its model registry): a new registration is covered without writing a test for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed.protocols import ResumableFit
from synthmed.registry import KINDS, Entry, create_policy, list_entries
from tiny import tiny_args


def smoke_classifier(entry: Entry) -> None:
    info = entry.info
    size = -(-max(32, info.min_size) // info.size_multiple) * info.size_multiple
    channels = 1 if not info.channels or 1 in info.channels else info.channels[0]
    torch.manual_seed(0)
    model = entry.factory(num_classes=3, in_channels=channels, image_size=[size, size])
    x = torch.randn(4, channels, size, size)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    logits = model(x)
    assert logits.shape == (4, 3)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 1]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())
    if info.head is not None:  # the head that --weights replaces and --freeze-backbone trains exists, and trained
        head_ids = {id(p) for p in model.get_submodule(info.head).parameters()}
        moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters()) if id(p) in head_ids]
        assert moved and all(moved)


def smoke_generator(entry: Entry, tmp_path) -> None:
    if entry.info.conditioning == "image":
        pytest.skip(f"{entry.name}: image-conditional generators need their service or model (tests/plugins)")
    generator = entry.factory(**tiny_args("generator", entry.name))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 1, 16, 16), dtype=np.uint8)
    labels = np.array([0, 1] * 4, dtype=np.int64)
    extras = {"num_classes": 2, "state_dir": None} if isinstance(generator, ResumableFit) else {}
    generator.fit(images, labels, epochs=1, device=torch.device("cpu"), seed=0, **extras)
    sampled = generator.sample(1, 2, seed=0, device=torch.device("cpu"))
    assert sampled.dtype == np.uint8 and sampled.shape == (2, 1, 16, 16)
    generator.save(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").is_file()


def smoke_autoencoder(entry: Entry) -> None:
    torch.manual_seed(0)
    model = entry.factory(in_channels=1, image_size=[16, 16], **tiny_args("autoencoder", entry.name))
    x = torch.rand(2, 1, 16, 16)
    y = model.decode(model.encode(x))
    assert y.shape == x.shape and torch.isfinite(y).all()
    torch.nn.functional.mse_loss(y, x).backward()


def smoke_codec(entry: Entry) -> None:
    codec = entry.factory(**tiny_args("codec", entry.name))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 1, 16, 16), dtype=np.uint8)
    quality = codec.default_qualities[0] if codec.quality_range is not None else None
    if entry.info.learned:
        codec.fit(images, quality=quality, epochs=1, device="cpu", seed=0)
    payload = codec.encode(images[0, 0], quality=quality)
    decoded = codec.decode(payload, quality=quality, shape=(16, 16), dtype=np.dtype(np.uint8))
    assert isinstance(payload, bytes) and decoded.shape == (16, 16) and decoded.dtype == np.uint8
    if codec.lossless:
        assert np.array_equal(decoded, images[0, 0])


def smoke_augmentation(entry: Entry) -> None:
    accepted = entry.info.channels
    channels = 1 if not accepted or 1 in accepted else accepted[0]
    policy = create_policy(entry.name, channels=channels)
    torch.manual_seed(0)
    x = torch.rand(4, channels, 16, 16)
    y = policy(x)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1


SMOKE = {
    "classifier": smoke_classifier,
    "generator": smoke_generator,
    "autoencoder": smoke_autoencoder,
    "codec": smoke_codec,
    "augmentation": smoke_augmentation,
}


def test_every_kind_has_a_smoke_test():
    assert set(SMOKE) == set(KINDS)


@pytest.mark.parametrize("kind, name", [(kind, name) for kind in KINDS for name in list_entries(kind)])
def test_registered_component_builds_and_runs_at_a_tiny_size(kind, name, tmp_path):
    entry = list_entries(kind)[name]
    if kind == "generator":
        smoke_generator(entry, tmp_path)
    else:
        SMOKE[kind](entry)
