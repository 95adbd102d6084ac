"""`--device` and `--shard` parsing, and what a device offers (mixed precision, room for data),
shared by every command."""

from __future__ import annotations

import re

from synthmed.errors import UsageError


def resolve_device(spec: str = "auto"):
    """auto, cpu, cuda or cuda:N -> torch.device; asking for a missing GPU is a usage error."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {spec}: no CUDA device is available here; use --device cpu")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    return torch.device(f"cuda:{index}")


def cuda_amp_dtype(device):
    """The mixed-precision type on `device`: bf16 where the GPU has it (fp32's range, so no
    gradient scaler), else fp16 (with one); None off CUDA. Training and sampling use the same."""
    import torch

    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# Share of the free device memory a whole data set may take before it stays on the host:
# the model, its activations and the optimizer need the rest.
DATA_SHARE_OF_FREE_MEMORY = 0.25


def holds_data(device, nbytes: int) -> bool:
    """Whether `nbytes` of stored pixels fit on `device` beside a model (always on the CPU)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DATA_SHARE_OF_FREE_MEMORY * free


def parse_shard(spec: str | None) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) -> (K - 1, N) as a zero-based index; None -> (0, 1)."""
    if spec is None:
        return 0, 1
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard {spec!r}: expected K/N with 1 <= K <= N, for example 2/4")
    return int(match.group(1)) - 1, int(match.group(2))


def take_shard(items: list, shard: tuple[int, int]) -> list:
    """The items of one shard: every N-th item starting at K, so shards stay balanced."""
    index, count = shard
    return items[index::count]
