"""From stored pixels to model input, the one place this conversion is written.

Stored images are uint8 (or uint16 for 16-bit data), (N, C, H, W). Models take float
(N, C, H, W): first scaled to [0, 1], then standardised with the train-split statistics
recorded in dataset.json (and copied into every model's config.json as `normalization`).
"""

from __future__ import annotations

from typing import Any, Sequence


def to_unit_float(images: Any, *, device: Any = None) -> Any:
    """uint8/uint16 tensor or array (N, C, H, W) -> float32 tensor in [0, 1] on `device`."""
    import numpy as np
    import torch

    if isinstance(images, np.ndarray):
        scale = 65535.0 if images.dtype == np.uint16 else 255.0
        images = torch.from_numpy(images.astype(np.float32) if images.dtype == np.uint16 else images)
    else:
        scale = 65535.0 if images.dtype in (torch.uint16, torch.int32) else 255.0
    return images.to(device=device, non_blocking=True).float().div_(scale)


def pixels_on_device(images: Any, device: Any) -> Any:
    """Stored uint8/uint16 pixels (N, C, H, W) as a tensor on `device`, ready to be indexed there.

    16-bit pixels travel as int32: CUDA implements few kernels (indexing among them) for uint16,
    int32 holds every 16-bit value exactly, and `to_unit_float` scales both alike."""
    import numpy as np
    import torch

    if images.dtype == np.uint16:
        images = images.astype(np.int32)
    return torch.from_numpy(np.ascontiguousarray(images)).to(device)


def standardize(x: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """(x - mean) / std per channel, for float (N, C, H, W)."""
    import torch

    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def model_input(images: Any, normalization: dict[str, Sequence[float]], *, device: Any = None) -> Any:
    """Stored pixels -> standardised float input for a classifier trained with `normalization`."""
    return standardize(to_unit_float(images, device=device), normalization["mean"], normalization["std"])


def predict_logits(model: Any, images: Any, normalization: dict[str, Sequence[float]], *, device: Any,
                   batch_size: int = 256, amp_dtype: Any = None) -> Any:
    """Float32 logits (N, K) on `device` for stored uint8 images (N, C, H, W), in eval mode."""
    import torch

    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = model_input(images[start : start + batch_size], normalization, device=device)
            with torch.autocast(torch.device(device).type, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                outputs.append(model(x).float())
    return torch.cat(outputs)
