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
# For models fitted for MS-SSIM (`--distortion ms-ssim`): loss = lambda * (1 - MS-SSIM) + bpp,
# with CompressAI's published MS-SSIM ladder (its models fitted for MS-SSIM use these).
MS_SSIM_LAMBDAS = {1: 2.40, 2: 4.58, 3: 8.73, 4: 16.64, 5: 31.73, 6: 60.50, 7: 115.37, 8: 220.00}
DISTORTIONS = ("mse", "ms-ssim")  # what a model is fitted (and its latents refined) to lower
MAX_SIDE = 2048  # memory of the convolutions on the CPU, not a format limit
DEFAULT_EPOCHS = 30
NOISY_FRACTION = 0.2
STREAM_VERSION = 3
DEFAULT_REFINE_STEPS = 0
VARIANTS = ("factorized", "hyperprior", "checkerboard")  # checkerboard: synthmed.compress.checkerboard


def lambda_of(quality: int, distortion: str = "mse") -> float:
    """The rate-distortion weight of a quality level for a distortion (mse or ms-ssim)."""
    return (MS_SSIM_LAMBDAS if distortion == "ms-ssim" else LAMBDAS)[quality]


class LearnedCodec:
    """`learned-factorized`, `learned-hyperprior` (mean-scale) or `learned-checkerboard` (mean-scale
    with a checkerboard context); the models are filled by `fit` or `load`."""

    lossless = False
    quality_range = (1, 8)
    default_qualities = (1, 2, 3, 4, 5)
    max_side = MAX_SIDE
    bit_depths = (8, 16)
    quality_meaning = "rate-distortion level (lambda doubles per step)"

    def __init__(self, name: str, variant: str, *, hidden: int = 48, latent: int = 64, hyper: int = 32,
                 batch_size: int = 8, learning_rate: float = 3e-3, patch: int = 64,
                 refine_steps: int = DEFAULT_REFINE_STEPS, distortion: str | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown learned codec variant {variant!r}")
        if distortion is not None and distortion not in DISTORTIONS:
            raise UsageError(f"--distortion: {distortion!r} is not one of {', '.join(DISTORTIONS)}")
        self.name = name
        self.variant = variant
        # 3: pixels centred around the models (2: uncentred; 1: the hyperprior coded its scale only)
        self.stream_version = STREAM_VERSION
        self.patch = patch
        self.widths = {"hidden": hidden, "latent": latent} | ({"hyper": hyper} if variant != "factorized" else {})
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        # Encoder-side latent refinement per image (synthmed.compress.refine); 0 = the analysis' latents.
        self.refine_steps = refine_steps
        # mse or ms-ssim; None: mse when fitting, the model folder's own when loading (decoding).
        self.distortion = distortion
        self.models: dict[int, Any] = {}
        self.fit_records: dict[int, dict[str, Any]] = {}
        self._tags: dict[int, bytes] = {}

    # ---- models

    def _class(self):
        from synthmed.compress.checkerboard import CheckerboardHyperpriorCodec
        from synthmed.compress.models import (
            FactorizedPriorCodec,
            MeanScaleHyperpriorCodec,
        )

        return {"factorized": FactorizedPriorCodec, "hyperprior": MeanScaleHyperpriorCodec,
                "checkerboard": CheckerboardHyperpriorCodec}[self.variant]

    def build(self, in_channels: int):
        return self._class()(in_channels=in_channels, **self.widths)

    def _model(self, quality: int):
        if quality not in self.models:
            raise SynthmedError(f"codec {self.name}: no model for quality {quality}; fit or load one first")
        return self.models[quality]

    def fit(self, images: np.ndarray, *, quality: int, epochs: int | None = None, steps: int | None = None,
            device: Any, seed: int, progress: Callable[[int], None] | None = None,
            warm_start: int | None = None) -> None:
        """Fit the model of one quality level on uint8/uint16 images (N, C, H, W), for `epochs`
        passes over the images or for exactly `steps` optimiser steps (one of the two; progress
        then counts steps). A steps budget does not grow with the train split, so the same
        schedule converges on 200 images or on 5000.

        An epoch takes one random `patch`-px crop of every image, randomly flipped: small
        crops give many more optimiser steps per CPU minute than whole images, and flips
        stretch a small train split. The learning rate warms up over the first 5 % of steps,
        then follows a cosine to 1 % of its peak. `warm_start`: start from the fitted model of
        that quality instead of from scratch (neighbouring rates share most of the work)."""
        import math

        import torch

        from synthmed.batches import to_unit_float
        from synthmed.compress.models import rate_distortion_loss
        from synthmed.seeding import derive_seed

        if len(images) == 0:
            raise UsageError(f"codec {self.name}: no train images to fit on")
        if (epochs is None) == (steps is None):
            raise UsageError(f"codec {self.name}: fit for a number of epochs or of steps (one of the two)")
        if (steps if epochs is None else epochs) < 1:
            raise UsageError(f"codec {self.name}: fit for at least one {'step' if epochs is None else 'epoch'}")
        generator = torch.Generator().manual_seed(derive_seed(seed, "codec", self.name, quality) % 2**63)
        torch.manual_seed(derive_seed(seed, "codec-noise", self.name, quality) % 2**63)
        data = to_unit_float(images).to(device)
        side = min(data.shape[-2:])
        patch = self.patch if self.patch and self.patch <= side and self.patch % self._step() == 0 else None
        if patch is None:
            data = self._pad(data)
        self.distortion = kind = self.distortion or "mse"
        model = self.build(images.shape[1])
        if warm_start is not None:
            model.load_state_dict(self._model(warm_start).state_dict())
        # channels_last: oneDNN's convolutions run about twice as fast on the CPU in that layout
        model = model.to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        lmbda = lambda_of(quality, kind)
        per_epoch = max(1, -(-len(data) // self.batch_size))
        total = steps if steps is not None else epochs * per_epoch
        warmup = max(1, total // 20)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        # From scratch, the synthesis sees noisy latents for the first NOISY_FRACTION of steps
        # (see models._quantised); a warm-started model already codes, so it keeps rounding.
        noisy_steps = 0 if warm_start is not None else int(total * NOISY_FRACTION)
        model.train()
        last = {}
        step = 0
        while step < total:
            order = torch.randperm(len(data), generator=generator)
            totals = torch.zeros(3)
            seen = 0
            for start in range(0, len(data), self.batch_size):
                if step == total:  # a steps budget ends inside an epoch
                    break
                batch = self._crops(data[order[start : start + self.batch_size].to(data.device)], patch, generator)
                batch = batch.contiguous(memory_format=torch.channels_last)
                x_hat, likelihoods = model(batch, noisy_synthesis=step < noisy_steps)
                step += 1
                loss, bpp, mse = rate_distortion_loss(batch, x_hat, likelihoods, lmbda, kind)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                totals += torch.stack([loss.detach(), bpp.detach(), mse.detach()]).cpu() * len(batch)
                seen += len(batch)
                if progress is not None and steps is not None:
                    progress(1)
            mean = (totals / seen).tolist()
            last = {"loss": mean[0], "bpp_estimate": mean[1], "mse": mean[2]}
            if progress is not None and steps is None:
                progress(1)
        model = model.cpu().to(memory_format=torch.contiguous_format).eval()
        model.build_tables()
        self.models[quality] = model
        self._tags.pop(quality, None)
        self.fit_records[quality] = {"epochs": epochs if steps is None else round(total / per_epoch, 3), "budget": "steps" if steps else "epochs",
                                     "images": int(len(images)), "seed": seed, "lambda": lmbda,
                                     "patch": patch, "warm_start": warm_start, "steps": total,
                                     "noisy_steps": noisy_steps, **last}

    @staticmethod
    def _crops(batch, patch: int | None, generator):
        """One random patch x patch crop of each image, flipped at random (whole images when None)."""
        import torch

        if patch is None:
            return batch
        height, width = batch.shape[-2:]
        tops = torch.randint(0, height - patch + 1, (len(batch),), generator=generator).tolist()
        lefts = torch.randint(0, width - patch + 1, (len(batch),), generator=generator).tolist()
        flips = torch.randint(0, 4, (len(batch),), generator=generator).tolist()
        crops = []
        for image, top, left, flip in zip(batch, tops, lefts, flips):
            crop = image[:, top : top + patch, left : left + patch]
            dims = [d for d, bit in ((-1, 1), (-2, 2)) if flip & bit]
            crops.append(crop.flip(dims) if dims else crop)
        return torch.stack(crops)

    def config(self, quality: int) -> dict[str, Any]:
        model = self._model(quality)
        in_channels = model.analysis[0].in_channels  # the first layer is a Conv2d
        return {
            "kind": "codec",
            "name": self.name,
            "args": {"in_channels": in_channels, **self.widths},
            "quality": quality,
            "lambda": lambda_of(quality, self.distortion or "mse"),
            "distortion": self.distortion or "mse",
            "channels": in_channels,
            "stream_version": self.stream_version,
            "fit": self.fit_records.get(quality, {}),
        } | ({"variant": self.variant} if self.variant == "checkerboard" else {})  # the older two: by name

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
        if config.get("stream_version") != STREAM_VERSION:
            raise UsageError(
                f"{folder}: a {self.name} model of stream version {config.get('stream_version')}; this synthmed "
                f"codes version {STREAM_VERSION} (fit it again)"
            )
        variant = config.get("variant", self.variant if self.variant != "checkerboard" else None)
        if variant != self.variant:
            raise UsageError(f"{folder}: holds a {variant or 'non-checkerboard'} model, not the {self.variant} model "
                             f"{self.name} codes")
        distortion = config.get("distortion", "mse")  # folders from before the option were fitted for mse
        if self.distortion is not None and distortion != self.distortion:
            raise UsageError(f"{folder}: a {self.name} model fitted for {distortion}, not {self.distortion}; "
                             f"pass --distortion {distortion} or fit it again")
        self.distortion = distortion
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

    def _step(self) -> int:
        """Side lengths must be a multiple of this (the total downsampling of the model)."""
        return self._class().downsampling

    def _pad(self, x):
        import torch.nn.functional as F

        step = self._step()
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % step, (-width) % step
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x

    def _latents(self, model, pixels: np.ndarray, quality: int):
        """The coder's symbols of one image (synthmed.compress.latent_coding.Latents): what the
        coder writes, and what rebuilding y needs."""
        import torch

        from synthmed.batches import to_unit_float
        from synthmed.compress.latent_coding import quantise
        from synthmed.data.imageio import to_chw

        x = self._pad(to_unit_float(np.array(to_chw(pixels)[None])))  # a writable copy for torch
        if self.refine_steps:
            from synthmed.compress.refine import refine_latents

            with torch.enable_grad():
                kind = self.distortion or "mse"  # the distortion the model was fitted for
                y, z, _ = refine_latents(model, x, lmbda=lambda_of(quality, kind), steps=self.refine_steps, kind=kind)
        else:
            y = model.encode_latent(x)
            z = None if self.variant == "factorized" else model.hyper_analysis(y)
        return quantise(model, self.variant, y, z)

    def _pixels(self, model, y_hat, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import torch

        from synthmed.data.imageio import from_chw

        x_hat = model.decode_latent(y_hat)[0, :, : shape[0], : shape[1]]
        scale = 65535.0 if dtype == np.uint16 else 255.0
        chw = (x_hat.clamp(0, 1) * scale).round().to(torch.int64).numpy().astype(dtype)
        return from_chw(chw)

    def reconstruct(self, pixels: np.ndarray, *, quality: int) -> np.ndarray:
        """What decoding this image's stream gives, computed on the encoder's side."""
        import torch

        model = self._model(quality)
        with torch.no_grad():
            return self._pixels(model, self._latents(model, pixels, quality).y_hat, pixels.shape, pixels.dtype)

    def encode(self, pixels: np.ndarray, *, quality: int) -> bytes:
        import constriction
        import torch

        from synthmed.compress.latent_coding import write

        model = self._model(quality)
        coder = constriction.stream.queue.RangeEncoder()
        with torch.no_grad():
            write(coder, model, self.variant, self._latents(model, pixels, quality))
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, *, quality: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import constriction
        import torch

        from synthmed.compress.latent_coding import read

        model = self._model(quality)
        if len(payload) % 4:
            raise BitstreamError(f"{self.name} payload is not a whole number of 32-bit words")
        latent = self.widths["latent"]
        height, width = shape[0], shape[1]
        step = self._step()
        padded = (-(-height // step) * step, -(-width // step) * step)
        y_shape = (1, latent, padded[0] // 8, padded[1] // 8)
        z_shape = (1, self.widths.get("hyper", 0), padded[0] // 32, padded[1] // 32)
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        try:
            with torch.no_grad():
                return self._pixels(model, read(decoder, model, self.variant, y_shape, z_shape), shape, np.dtype(dtype))
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise BitstreamError(f"{self.name} payload does not decode ({exc})") from None


def factorized_codec(**args: Any) -> LearnedCodec:
    return LearnedCodec("learned-factorized", "factorized", **args)


def hyperprior_codec(**args: Any) -> LearnedCodec:
    return LearnedCodec("learned-hyperprior", "hyperprior", **args)


def checkerboard_codec(**args: Any) -> LearnedCodec:
    return LearnedCodec("learned-checkerboard", "checkerboard", **args)
