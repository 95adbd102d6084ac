"""Augmentation policies (kornia), shared by `synthmed augment` and `synthmed train --augment`.

A policy is a batch transform `policy(images) -> images` on float (N, C, H, W) in [0, 1],
drawing its randomness from torch's global generator (seeded by the caller), so the same
seed gives the same output on the same device.
"""

from __future__ import annotations

from typing import Any, Callable

Policy = Callable[[Any], Any]


def build_policy(spec: str, *, channels: int) -> Policy:
    """Build the policy named by `spec` from the augmentation registry.

    Only plain registered names are understood so far (`none`); composed and
    parameterised specs such as `hflip(p=0.5)+rotate(degrees=10)` come with the augment issue.
    """
    from synthmed.registry import get_entry

    entry = get_entry("augmentation", spec.strip())
    return entry.factory()
