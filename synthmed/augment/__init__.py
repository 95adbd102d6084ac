"""Augmentation policies (kornia), shared by `synthmed augment` and `synthmed train --augment`.

A policy is a batch transform `policy(images) -> images` on float (N, C, H, W) in [0, 1],
drawing its randomness from torch's global generator (seeded by the caller), so the same
seed gives the same output on the same device. Built-in policies also accept
`policy(images, generators=[...])` (one CPU generator per image; see synthmed.augment.ops).

A spec composes registered policies: `hflip(p=0.5)+rotate(degrees=10)` (synthmed.augment.spec).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from synthmed.augment.spec import Component, normalise_spec, parse_spec
from synthmed.errors import UsageError

Policy = Callable[[Any], Any]

__all__ = ["Policy", "build_policy", "policy_tag", "normalise_spec", "parse_spec", "supports_generators", "training_input"]


class Sequential:
    """Policies run one after another (used when a component is not a built-in `Policy`)."""

    def __init__(self, parts: Sequence[Policy]) -> None:
        self.parts = list(parts)

    def __call__(self, images: Any) -> Any:
        for part in self.parts:
            images = part(images)
        return images


def supports_generators(policy: Policy) -> bool:
    """True when `policy(x, generators=[...])` draws each image from its own generator."""
    return bool(getattr(policy, "supports_generators", False))


def _parameters_text(factory: Callable[..., Any]) -> str:
    params = [
        f"{p.name}={p.default}" if p.default is not inspect.Parameter.empty else p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return "its parameters are " + ", ".join(params) if params else "it takes no parameters"


def _check_parameters(component: Component, factory: Callable[..., Any]) -> dict[str, Any]:
    signature = inspect.signature(factory)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    params = dict(component.params)
    for key, value in params.items():
        parameter = signature.parameters.get(key)
        if parameter is None or parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            if accepts_any:
                continue
            raise UsageError(
                f"augmentation policy {component.name!r} has no parameter {key!r}; {_parameters_text(factory)}"
            )
        # 10 means 10.0 for a float parameter.
        if isinstance(parameter.default, float) and isinstance(value, int) and not isinstance(value, bool):
            params[key] = float(value)
    return params


def _build_component(component: Component, *, channels: int) -> tuple[Policy, str]:
    from synthmed.registry import get_entry

    entry = get_entry("augmentation", component.name)
    accepted = entry.meta.get("channels")
    if accepted and channels not in accepted:
        need = " or ".join(str(c) for c in accepted)
        raise UsageError(
            f"augmentation policy {component.name!r} needs images with {need} channel(s) (RGB), these have {channels}; "
            "choose a policy without colour operations (for example 'medical')"
        )
    params = _check_parameters(component, entry.factory)
    try:
        policy = entry.factory(**params)
    except (UsageError, ValueError, TypeError) as exc:
        raise UsageError(f"augmentation policy {component.text()!r}: {str(exc).splitlines()[0]}") from None
    return policy, entry.version


def build_policy(spec: str, *, channels: int) -> Policy:
    """Build the policy a spec names, e.g. `hflip(p=0.5)+rotate(degrees=10)`, for images with
    `channels` channels. Unknown names or parameters, bad values, or a colour policy on
    grayscale raise a UsageError saying what exists."""
    parts = [_build_component(component, channels=channels)[0] for component in parse_spec(spec)]
    if len(parts) == 1:
        return parts[0]
    from synthmed.augment.builtin import Policy as StagePolicy

    if all(isinstance(part, StagePolicy) for part in parts):
        return StagePolicy([stage for part in parts for stage in part.stages])
    return Sequential(parts)


def policy_tag(spec: str, *, channels: int) -> str:
    """`generator` column value for images a spec made: `<normalised spec>@<version>`.

    One version when all components come from plugins of the same version, else each
    component carries its own (`hflip@0.1+warp(k=1)@2.0`)."""
    components = parse_spec(spec)
    versions = [_build_component(component, channels=channels)[1] for component in components]
    if len(set(versions)) == 1:
        return f"{normalise_spec(spec)}@{versions[0]}"
    return "+".join(f"{component.text()}@{version}" for component, version in zip(components, versions))


def training_input(images: Any, policy: Policy, normalization: dict[str, Sequence[float]], *, device: Any = None) -> Any:
    """What `train --augment` feeds a classifier: stored uint8/uint16 pixels -> [0, 1] floats on
    `device` -> policy (on that device) -> standardised with the dataset statistics."""
    from synthmed.batches import standardize, to_unit_float

    x = policy(to_unit_float(images, device=device))
    return standardize(x, normalization["mean"], normalization["std"])
