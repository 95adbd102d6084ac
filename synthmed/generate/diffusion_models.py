"""The class-conditional U-Net of the `ddpm` generator (diffusers `UNet2DModel`).

Class k in 0..K-1 is embedding k; embedding K is the "no label" used for classifier-free
guidance, so the model is built with `num_class_embeds = K + 1`.
"""

from __future__ import annotations

from typing import Any

# Size presets: widths per resolution level, ResNet layers per level, and how many of the
# lowest-resolution levels use self-attention (the middle block has it too unless
# `mid_attention` is False). `auto` picks one from the image size.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"block_out_channels": (16, 32), "layers_per_block": 1, "attention_levels": 0, "norm_num_groups": 8},
    # tiny without the middle block's attention: ~0.78x the CPU time per step (that attention
    # took ~20 % of a tiny step at 32 px, one thread).
    "tiny-noattn": {"block_out_channels": (16, 32), "layers_per_block": 1, "attention_levels": 0,
                    "norm_num_groups": 8, "mid_attention": False},
    "small": {"block_out_channels": (32, 64, 128), "layers_per_block": 2, "attention_levels": 1, "norm_num_groups": 16},
    "base": {"block_out_channels": (64, 128, 256, 256), "layers_per_block": 2, "attention_levels": 1},
    "large": {"block_out_channels": (64, 128, 256, 256, 512), "layers_per_block": 2, "attention_levels": 2},
    "xlarge": {"block_out_channels": (128, 128, 256, 256, 512, 512), "layers_per_block": 2, "attention_levels": 2},
}
AUTO_PRESETS = ((32, "small"), (64, "base"), (128, "large"), (256, "xlarge"))


def preset_for(image_size: tuple[int, int], preset: str = "auto") -> str:
    if preset != "auto":
        if preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of auto, {', '.join(PRESETS)}")
        return preset
    side = max(image_size)
    for limit, name in AUTO_PRESETS:
        if side <= limit:
            return name
    return AUTO_PRESETS[-1][1]


def build_unet(*, channels: int, image_size: tuple[int, int], num_classes: int, preset: str):
    """A UNet2DModel for `preset` with K + 1 class embeddings (the last is the null label)."""
    from diffusers import UNet2DModel

    spec = PRESETS[preset_for(image_size, preset)]
    widths = spec["block_out_channels"]
    levels = len(widths)
    step = 2 ** (levels - 1)
    if image_size[0] % step or image_size[1] % step:
        raise ValueError(
            f"image size {image_size[0]}x{image_size[1]}: preset {preset!r} needs sides that are multiples of {step}"
        )
    attention = spec["attention_levels"]
    down = tuple("AttnDownBlock2D" if i >= levels - attention else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if i < attention else "UpBlock2D" for i in range(levels))
    return UNet2DModel(
        sample_size=tuple(image_size),
        in_channels=channels,
        out_channels=channels,
        block_out_channels=widths,
        layers_per_block=spec["layers_per_block"],
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=spec.get("norm_num_groups", 32),
        num_class_embeds=num_classes + 1,
        add_attention=spec.get("mid_attention", True),
    )
