"""Generator `sd-variation`: Stable Diffusion variations of source images, on this machine.

Two modes, chosen by `-g mode=` or else by the model folder:
- `variation`: `StableDiffusionImageVariationPipeline` (the UNet is conditioned on the CLIP
  image embedding of the source, as in lambdalabs/sd-image-variations-diffusers);
- `img2img`: `StableDiffusionImg2ImgPipeline` on any Stable Diffusion folder: the source is
  noised to `strength` and denoised towards `prompt`.
Each task's noise comes from its own CPU `torch.Generator` seeded with the task's seed, so an
image does not depend on the batch it ran in, nor on the device.
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from synthmed.generate.square import from_square_rgb, to_square_rgb
from synthmed.errors import SynthmedError, UsageError
from synthmed.jsonio import read_json
from synthmed.protocols import VariationTask

MODES = ("variation", "img2img")
# model_index.json `_class_name` -> the mode its components support
PIPELINE_MODES = {
    "StableDiffusionImageVariationPipeline": "variation",
    "StableDiffusionPipeline": "img2img",
    "StableDiffusionImg2ImgPipeline": "img2img",
}
REQUIRED = {
    "variation": ("unet", "vae", "scheduler", "image_encoder", "feature_extractor"),
    "img2img": ("unet", "vae", "scheduler", "text_encoder", "tokenizer"),
}
DEFAULT_GUIDANCE = {"variation": 3.0, "img2img": 7.5}
DEFAULT_PROMPT = "a realistic medical image"


def _argument_error(name: str, value: object, expected: str) -> UsageError:
    return UsageError(f"-g {name}={value}: {expected}")


def _read_model_index(model_dir: Path) -> dict[str, Any]:
    where = f"-g model_dir={model_dir}"
    if not model_dir.is_dir():
        raise UsageError(f"{where}: no such folder; pass a diffusers Stable Diffusion pipeline folder")
    index = read_json(model_dir / "model_index.json", what="a diffusers pipeline folder", where=where,
                      hint="save one with `pipeline.save_pretrained(DIR)`")
    if index.get("_class_name") not in PIPELINE_MODES:
        name = index.get("_class_name")
        raise UsageError(f"{where}: model_index.json names {name!r}, not a Stable Diffusion pipeline; expected one of "
                         f"{', '.join(PIPELINE_MODES)}")
    return index


class StableDiffusionVariationGenerator:
    name = "sd-variation"
    upload_host = None  # everything stays on this machine

    def __init__(
        self,
        model_dir: str | None = None,
        mode: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        negative_prompt: str = "",
        strength: float = 0.6,
        steps: int = 30,
        guidance: float | None = None,
        batch_size: int = 4,
        resolution: int | None = None,
    ) -> None:
        from synthmed_diffusers import __version__

        self.version = __version__
        missing_packages = [name for name in ("torch", "diffusers", "transformers") if importlib.util.find_spec(name) is None]
        if missing_packages:
            raise UsageError(f"generator sd-variation needs {', '.join(missing_packages)}: "
                             "pip install ./plugins/synthmed-diffusers")
        if not model_dir:
            raise UsageError("generator sd-variation needs -g model_dir=DIR (a local diffusers Stable Diffusion folder)")
        self.model_dir = Path(str(model_dir)).expanduser()
        index = _read_model_index(self.model_dir)
        folder_mode = PIPELINE_MODES[index["_class_name"]]
        if mode is not None and mode not in MODES:
            raise _argument_error("mode", mode, "expected variation or img2img")
        self.mode = mode or folder_mode
        if self.mode != folder_mode:
            raise _argument_error("mode", self.mode, f"{self.model_dir} holds a {index['_class_name']}, which supports "
                                  f"mode {folder_mode} only")
        missing = [c for c in REQUIRED[self.mode] if not (self.model_dir / c).is_dir()]
        if missing:
            raise UsageError(f"-g model_dir={self.model_dir}: incomplete pipeline folder, missing {', '.join(missing)}/")
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise _argument_error("strength", strength, "must be in (0, 1]: how far the source is noised (1 = fully)")
        for key, value in (("steps", steps), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _argument_error(key, value, "expected a whole number, 1 or more")
        guidance = DEFAULT_GUIDANCE[self.mode] if guidance is None else guidance
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance < 0:
            raise _argument_error("guidance", guidance, "expected a number, 0 or more (1 or less turns guidance off)")
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                       or resolution < 8 or resolution % 8):
            raise _argument_error("resolution", resolution, "expected a multiple of 8, such as 512")
        self.prompt = str(prompt)
        self.negative_prompt = str(negative_prompt)
        self.strength = float(strength)
        self.steps = steps
        self.guidance = float(guidance)
        self.batch_size = batch_size
        self.resolution = resolution
        self._pipeline = None
        self._device = None

    def columns(self) -> dict[str, str]:
        img2img = self.mode == "img2img"
        return {
            "mode": self.mode,
            "model": self.model_dir.name,  # the folder's name, not a path from this machine
            "prompt": self.prompt if img2img else "",
            "strength": f"{self.strength:g}" if img2img else "",
        }

    # ---- the protocol

    def vary(self, tasks: Sequence[VariationTask], *, device: Any = None, concurrency: int = 1
             ) -> Iterator[tuple[VariationTask, np.ndarray | Exception]]:
        """Batches of `batch_size` (concurrency does not apply: the GPU runs one batch at a time)."""
        pipeline = self._load(device)
        side = self.resolution or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
        for start in range(0, len(tasks), self.batch_size):
            batch = list(tasks[start : start + self.batch_size])
            squares = [to_square_rgb(task.pixels, side) for task in batch]
            outputs = self._run(pipeline, batch, [image for image, _ in squares], side)
            for task, (_, box), output in zip(batch, squares, outputs):
                yield task, from_square_rgb(output, box, task.pixels.shape)

    # ---- internals

    def _load(self, device: Any):
        import torch

        from synthmed.devices import resolve_device

        device = resolve_device(device) if device is None or isinstance(device, str) else torch.device(device)
        if self._pipeline is not None and self._device == device:
            return self._pipeline
        from diffusers import StableDiffusionImageVariationPipeline, StableDiffusionImg2ImgPipeline

        cls = StableDiffusionImageVariationPipeline if self.mode == "variation" else StableDiffusionImg2ImgPipeline
        dtype = torch.float16 if device.type == "cuda" else torch.float32  # fp16 halves memory and time on GPUs
        try:
            with _quiet_libraries():
                # The NSFW safety checker is not loaded: it is meant for photographs and blanks
                # medical images it misreads.
                pipeline = cls.from_pretrained(self.model_dir, **{_dtype_keyword(): dtype}, safety_checker=None,
                                               requires_safety_checker=False, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SynthmedError(f"cannot load the pipeline in {self.model_dir}: {first}") from None
        pipeline.set_progress_bar_config(disable=True)
        self._pipeline = pipeline.to(device)
        self._device = device
        return self._pipeline

    def _run(self, pipeline: Any, batch: list[VariationTask], images: list, side: int) -> list:
        import torch
        from PIL import Image

        # One CPU generator per task: its image depends on its seed only (not batch, not device).
        generators = [torch.Generator("cpu").manual_seed(task.seed) for task in batch]
        common = dict(num_inference_steps=self.steps, guidance_scale=self.guidance, generator=generators,
                      output_type="np")
        try:
            with torch.inference_mode():
                if self.mode == "variation":
                    result = pipeline(image=images, height=side, width=side, **common)
                else:
                    prompts = [self.prompt.replace("{label}", task.label) for task in batch]
                    negative = [self.negative_prompt] * len(batch) if self.negative_prompt else None
                    result = pipeline(prompt=prompts, negative_prompt=negative, image=images, strength=self.strength,
                                      **common)
        except torch.OutOfMemoryError:
            raise SynthmedError(f"out of GPU memory with batches of {self.batch_size}; pass a smaller -g batch_size") from None
        arrays = np.clip(np.nan_to_num(np.asarray(result.images, dtype=np.float32)) * 255 + 0.5, 0, 255).astype(np.uint8)
        return [Image.fromarray(array) for array in arrays]


def _dtype_keyword() -> str:
    """`dtype` in diffusers releases that renamed it, `torch_dtype` in older ones."""
    from diffusers.pipelines import pipeline_utils

    return "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"


@contextlib.contextmanager
def _quiet_libraries():
    """Silence diffusers/transformers loading chatter (progress bars, optional-package hints)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [(lib, lib.get_verbosity(), not lib.is_progress_bar_enabled())
             for lib in (diffusers_logging, transformers_logging)]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, level, bars_were_off in saved:
            lib.set_verbosity(level)
            if not bars_were_off:
                lib.enable_progress_bar()
