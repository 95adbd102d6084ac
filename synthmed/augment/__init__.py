"""Augmentation policies (kornia), shared by `synthmed augment` and `synthmed train --augment`.

A policy is a batch transform `policy(images) -> images` on float (N, C, H, W) in [0, 1],
drawing its randomness from torch's global generator (seeded by the caller), so the same
seed gives the same output on the same device. Built-in policies also accept
`policy(images, generators=[...])` (one CPU generator per image; see synthmed.augment.ops).

A spec composes registered policies: `hflip(p=0.5)+rotate(degrees=10)` (synthmed.policies);
`build_policy` is `synthmed.registry.create_policy`, which `train --augment` calls too.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from synthmed.policies import normalise_spec, parse_spec
from synthmed.registry import create_policy as build_policy
from synthmed.registry import get_entry

Policy = Callable[[Any], Any]

__all__ = ["Policy", "build_policy", "policy_tag", "normalise_spec", "parse_spec", "supports_generators", "training_input"]


def supports_generators(policy: Policy) -> bool:
    """True when `policy(x, generators=[...])` draws each image from its own generator."""
    return bool(getattr(policy, "supports_generators", False))


def policy_tag(spec: str, *, channels: int) -> str:
    """`generator` column value for images a spec made: `<normalised spec>@<version>`.

    One version when all components come from plugins of the same version, else each
    component carries its own (`hflip@0.1+warp(k=1)@2.0`)."""
    build_policy(spec, channels=channels)  # refuses what `augment` would refuse
    components = parse_spec(spec)
    versions = [get_entry("augmentation", component.name).version for component in components]
    if len(set(versions)) == 1:
        return f"{normalise_spec(spec)}@{versions[0]}"
    return "+".join(f"{component.text()}@{version}" for component, version in zip(components, versions))


def training_input(images: Any, policy: Policy, normalization: dict[str, Sequence[float]], *, device: Any = None) -> Any:
    """What `train --augment` feeds a classifier: stored uint8/uint16 pixels -> [0, 1] floats on
    `device` -> policy (on that device) -> standardised with the dataset statistics."""
    from synthmed.batches import standardize, to_unit_float

    x = policy(to_unit_float(images, device=device))
    return standardize(x, normalization["mean"], normalization["std"])
