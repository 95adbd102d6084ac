"""Learned codecs with a real entropy coder: fit, save, load, encode to bytes, decode.

One model per quality level (its own rate-distortion weight lambda), fitted on the train
split. Entropy coding is `constriction`'s range coder (a queue: symbols come out in the
order they went in, so the hyperlatent is coded first and the latent after it, in one
stream). Its probability models are the integer tables the model stores with its weights
(see synthmed.compress.models), so encoding and decoding use the very same numbers.
Coding always runs on the CPU, which keeps decoding deterministic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthmed.compress.bitstream import BitstreamError
from synthmed.errors import SynthmedError, UsageError

# Rate-distortion weight per quality level: loss = lambda * 255^2 * MSE + bpp. The same
# ladder as CompressAI's pretrained Ballé models, so quality levels mean the same there.
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
MAX_SIDE = 2048  # memory of the convolutions on the CPU, not a format limit
DEFAULT_EPOCHS = 30


class LearnedCodec:
    """`learned-factorized` or `learned-hyperprior`; the models are filled by `fit` or `load`."""

    stream_version = 1
    lossless = False
    quality_range = (1, 8)
    default_qualities = (1, 2, 3, 4, 5)
    max_side = MAX_SIDE
    bit_depths = (8, 16)
    quality_meaning = "rate-distortion level (lambda doubles per step)"

    def __init__(self, name: str, variant: str, *, hidden: int = 48, latent: int = 64, hyper: int = 32,
                 batch_size: int = 4, learning_rate: float = 5e-3) -> None:
        if variant not in ("factorized", "hyperprior"):
            raise ValueError(f"unknown learned codec variant {variant!r}")
        self.name = name
        self.variant = variant
        self.widths = {"hidden": hidden, "latent": latent} | ({"hyper": hyper} if variant == "hyperprior" else {})
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.models: dict[int, Any] = {}
        self.fit_records: dict[int, dict[str, Any]] = {}
        self._tags: dict[int, bytes] = {}

    # ---- models

    def build(self, in_channels: int):
        from synthmed.compress.models import FactorizedPriorCodec, ScaleHyperpriorCodec

        cls = FactorizedPriorCodec if self.variant == "factorized" else ScaleHyperpriorCodec
        return cls(in_channels=in_channels, **self.widths)

    def _model(self, quality: int):
        if quality not in self.models:
            raise SynthmedError(f"codec {self.name}: no model for quality {quality}; fit or load one first")
        return self.models[quality]

    def fit(self, images: np.ndarray, *, quality: int, epochs: int, device: Any, seed: int,
            progress: Callable[[int], None] | None = None, warm_start: int | None = None) -> None:
        """Fit the model of one quality level on uint8/uint16 images (N, C, H, W).

        `warm_start`: start from the fitted model of that quality instead of from scratch
        (a few CPU minutes are far from convergence, so neighbouring rates share the work)."""
        import torch

        from synthmed.batches import to_unit_float
        from synthmed.compress.models import rate_distortion_loss
        from synthmed.seeding import derive_seed

        if len(images) == 0:
            raise UsageError(f"codec {self.name}: no train images to fit on")
        torch.manual_seed(derive_seed(seed, "codec", self.name, quality) % 2**63)
        data = self._pad(to_unit_float(images))
        model = self.build(images.shape[1])
        if warm_start is not None:
            model.load_state_dict(self._model(warm_start).state_dict())
        model = model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        lmbda = LAMBDAS[quality]
        steps_per_epoch = max(1, -(-len(data) // self.batch_size))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch, eta_min=1e-5)
        model.train()
        last = {}
        for _ in range(epochs):
            order = torch.randperm(len(data))
            totals = torch.zeros(3)
            for start in range(0, len(data), self.batch_size):
                batch = data[order[start : start + self.batch_size]].to(device)
                x_hat, likelihoods = model(batch)
                loss, bpp, mse = rate_distortion_loss(batch, x_hat, likelihoods, lmbda)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                totals += torch.stack([loss.detach(), bpp.detach(), mse.detach()]).cpu() * len(batch)
            mean = (totals / len(data)).tolist()
            last = {"loss": mean[0], "bpp_estimate": mean[1], "mse": mean[2]}
            if progress is not None:
                progress(1)
        model = model.cpu().eval()
        model.build_tables()
        self.models[quality] = model
        self._tags.pop(quality, None)
        self.fit_records[quality] = {"epochs": epochs, "images": int(len(images)), "seed": seed, "lambda": lmbda,
                                   "warm_start": warm_start, **last}

    def config(self, quality: int) -> dict[str, Any]:
        model = self._model(quality)
        in_channels = model.analysis[0].in_channels  # the first layer is a Conv2d
        return {
            "kind": "codec",
            "name": self.name,
            "args": {"in_channels": in_channels, **self.widths},
            "quality": quality,
            "lambda": LAMBDAS[quality],
            "channels": in_channels,
            "stream_version": self.stream_version,
            "fit": self.fit_records.get(quality, {}),
        }

    def save(self, folder: Path, *, quality: int, extra: dict[str, Any] | None = None) -> None:
        from synthmed.checkpoint import save_checkpoint

        save_checkpoint(Path(folder), self._model(quality), {**self.config(quality), **(extra or {})})

    def load(self, folder: Path, *, quality: int) -> None:
        from synthmed.checkpoint import load_weights, read_config

        config = read_config(Path(folder), kind="codec")
        if config.get("name") != self.name or config.get("quality") != quality:
            raise UsageError(
                f"{folder}: holds codec {config.get('name')!r} at quality {config.get('quality')!r}, "
                f"not {self.name!r} at quality {quality}"
            )
        args = dict(config.get("args", {}))
        in_channels = int(args.pop("in_channels", config.get("channels", 1)))
        self.widths = args
        model = self.build(in_channels)
        load_weights(model, Path(folder))
        model.eval()
        self.models[quality] = model
        self.fit_records[quality] = config.get("fit", {})
        self._tags.pop(quality, None)

    def model_tag(self, quality: int) -> bytes:
        """First 8 bytes of the SHA-256 of the weights and tables: a stream names its model."""
        if quality not in self._tags:
            digest = hashlib.sha256()
            for key, tensor in sorted(self._model(quality).state_dict().items()):
                digest.update(key.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._tags[quality] = digest.digest()[:8]
        return self._tags[quality]

    # ---- coding

    def _pad(self, x):
        import torch.nn.functional as F

        from synthmed.compress.models import ScaleHyperpriorCodec

        step = ScaleHyperpriorCodec.downsampling if self.variant == "hyperprior" else 8
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % step, (-width) % step
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

    def _latents(self, model, pixels: np.ndarray):
        """Rounded, clamped latents (and hyperlatents) of one image."""
        import torch

        from synthmed.batches import to_unit_float
        from synthmed.compress.models import HYPER_RANGE, LATENT_RANGE
        from synthmed.data.imageio import to_chw

        x = self._pad(to_unit_float(np.array(to_chw(pixels)[None])))  # a writable copy for torch
        y = model.analysis(x)
        y_hat = torch.round(y).clamp(-LATENT_RANGE, LATENT_RANGE)
        z_hat = None
        if self.variant == "hyperprior":
            z_hat = torch.round(model.hyper_analysis(torch.abs(y))).clamp(-HYPER_RANGE, HYPER_RANGE)
        return y_hat, z_hat

    def _pixels(self, model, y_hat, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import torch

        from synthmed.data.imageio import from_chw

        x_hat = model.synthesis(y_hat)[0, :, : shape[0], : shape[1]]
        scale = 65535.0 if dtype == np.uint16 else 255.0
        chw = (x_hat.clamp(0, 1) * scale).round().to(torch.int64).numpy().astype(dtype)
        return from_chw(chw)

    def reconstruct(self, pixels: np.ndarray, *, quality: int) -> np.ndarray:
        """What decoding this image's stream gives, computed on the encoder's side."""
        import torch

        model = self._model(quality)
        with torch.no_grad():
            y_hat, _ = self._latents(model, pixels)
            return self._pixels(model, y_hat, pixels.shape, pixels.dtype)

    def encode(self, pixels: np.ndarray, *, quality: int) -> bytes:
        import constriction
        import torch

        from synthmed.compress.models import HYPER_RANGE, LATENT_RANGE

        model = self._model(quality)
        coder = constriction.stream.queue.RangeEncoder()
        categorical = constriction.stream.model.Categorical(perfect=False)
        with torch.no_grad():
            y_hat, z_hat = self._latents(model, pixels)
            if z_hat is None:
                y_tables = _per_channel(model.latent_table, y_hat)
            else:
                coder.encode(_symbols(z_hat, HYPER_RANGE), categorical, _per_channel(model.hyper_table, z_hat))
                indices = model.scale_indices(z_hat)
                y_tables = model.scale_table[indices.flatten()].numpy().astype(np.float64)
            coder.encode(_symbols(y_hat, LATENT_RANGE), categorical, y_tables)
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, *, quality: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import constriction
        import torch

        from synthmed.compress.models import (
            HYPER_RANGE,
            LATENT_RANGE,
            ScaleHyperpriorCodec,
        )

        model = self._model(quality)
        if len(payload) % 4:
            raise BitstreamError(f"{self.name} payload is not a whole number of 32-bit words")
        latent = self.widths["latent"]
        height, width = shape[0], shape[1]
        step = ScaleHyperpriorCodec.downsampling if self.variant == "hyperprior" else 8
        padded = (-(-height // step) * step, -(-width // step) * step)
        y_shape = (1, latent, padded[0] // 8, padded[1] // 8)
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        categorical = constriction.stream.model.Categorical(perfect=False)
        try:
            with torch.no_grad():
                if self.variant == "factorized":
                    y_tables = _per_channel(model.latent_table, torch.zeros(y_shape))
                else:
                    z_shape = (1, self.widths["hyper"], padded[0] // 32, padded[1] // 32)
                    z_tables = _per_channel(model.hyper_table, torch.zeros(z_shape))
                    z_hat = _values(decoder.decode(categorical, z_tables), HYPER_RANGE, z_shape)
                    indices = model.scale_indices(z_hat)
                    y_tables = model.scale_table[indices.flatten()].numpy().astype(np.float64)
                y_hat = _values(decoder.decode(categorical, y_tables), LATENT_RANGE, y_shape)
                return self._pixels(model, y_hat, shape, np.dtype(dtype))
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise BitstreamError(f"{self.name} payload does not decode ({exc})") from None


def _symbols(values, half_range: int) -> np.ndarray:
    """Integer-valued latents (1, C, H, W) -> coder symbols 0..2R, in C, H, W order."""
    import torch

    return (values.flatten().to(torch.int64) + half_range).numpy().astype(np.int32)


def _values(symbols: np.ndarray, half_range: int, shape: tuple[int, ...]):
    import torch

    return torch.from_numpy(symbols.astype(np.int64) - half_range).float().reshape(shape)


def _per_channel(table, like) -> np.ndarray:
    """One table row per element of `like` (1, C, H, W), chosen by its channel, as float64 counts."""
    channels, height, width = like.shape[1:]
    rows = np.repeat(np.arange(channels), height * width)
    return table.numpy()[rows].astype(np.float64)


def factorized_codec(**args: Any) -> LearnedCodec:
    return LearnedCodec("learned-factorized", "factorized", **args)


def hyperprior_codec(**args: Any) -> LearnedCodec:
    return LearnedCodec("learned-hyperprior", "hyperprior", **args)
