"""Latent-space interpolation: fit an autoencoder, plan groups of parents with weights on
the simplex, decode the weighted mixture of their codes, write the results as a dataset.

    weights = parse_alphas("0.25,0.5,0.75")            # pairs: (1 - a, a)
    rows = parent_rows(dataset)
    plan = plan_interpolants(rows, dataset.classes, n=2, counts={"A": 6}, seed=0, name="cnn-ae",
                             weight_vectors=weights)
    model = build_autoencoder(entry, channels=1, image_size=(64, 64), args={})
    fit_autoencoder(model, images, epochs=20)
    run_interpolation(plan, images, index, model, writer, generator=entry.tag)

`synthmed.interpolate.job` drives these for the command.

Everything random is drawn from `derive_seed(seed, ...)` per class and item, so the plan
does not depend on order, batching or `--shard`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from synthmed.data import Dataset, Row
from synthmed.errors import UsageError
from synthmed.parsing import number_list
from synthmed.progress import Advance, no_advance
from synthmed.seeding import derive_seed

SIMPLEX_TOLERANCE = 1e-6
LOSSES = ("mse", "bce")


# --------------------------------------------------------------------------- weights


def check_simplex(weights: Sequence[float], *, option: str = "--mix-weights") -> tuple[float, ...]:
    """Weights must be non-negative and sum to 1 (a point on the simplex)."""
    values = tuple(float(w) for w in weights)
    if not values or any(not math.isfinite(w) for w in values):
        raise UsageError(f"{option} {','.join(map(str, weights))}: weights must be finite numbers")
    if any(w < 0 for w in values):
        raise UsageError(f"{option} {','.join(map(str, values))}: weights must not be negative")
    if abs(sum(values) - 1.0) > SIMPLEX_TOLERANCE:
        raise UsageError(f"{option} {','.join(map(str, values))}: weights must sum to 1 (they sum to {sum(values):g})")
    return values


def _numbers(text: str, option: str) -> list[float]:
    return number_list(text, option, example="0.25,0.5,0.75") or []


def parse_alphas(text: str) -> list[tuple[float, float]]:
    """'0.25,0.5' -> weight pairs (1 - a, a): alpha is the weight of the second parent."""
    alphas = _numbers(text, "--alphas")
    if not alphas:
        raise UsageError("--alphas: give at least one value in [0, 1]")
    pairs = []
    for alpha in alphas:
        if not 0 <= alpha <= 1:
            raise UsageError(f"--alphas {alpha:g}: alpha must lie in [0, 1] so both weights (1-a, a) are non-negative")
        pairs.append((1.0 - alpha, alpha))
    return pairs


def parse_weight_vectors(texts: Sequence[str], n: int) -> list[tuple[float, ...]]:
    """Each `--mix-weights W1,...,Wn` is one explicit point on the simplex for n parents."""
    vectors = []
    for text in texts:
        values = _numbers(text, "--mix-weights")
        if len(values) != n:
            raise UsageError(f"--mix-weights {text}: gives {len(values)} weight(s) but --n is {n}")
        vectors.append(check_simplex(values))
    return vectors


def mix_latents(latents: Any, weights: Any) -> Any:
    """sum_j weights[..., j] * latents[..., j, ...]: latents (B, n, *code), weights (B, n)."""
    shape = weights.shape + (1,) * (latents.dim() - weights.dim())
    return (weights.reshape(shape).to(latents.dtype) * latents).sum(dim=1)


def interpolate(model: Any, parents: Any, weights: Sequence[float]) -> Any:
    """Decode the weighted mixture of the codes of `parents` (float (n, C, H, W) in [0, 1])."""
    import torch

    values = torch.tensor(check_simplex(weights), device=parents.device)
    with torch.no_grad():
        codes = model.encode(parents)
        return model.decode(mix_latents(codes.unsqueeze(0), values.unsqueeze(0)))[0]


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedInterpolant:
    id: str
    label: str  # the row's class (within-class: the anchor; across: largest soft-label weight)
    anchor: str  # the class the group was drawn for
    group: int  # items of one group share their parents (an alpha sweep)
    parents: tuple[str, ...]
    weights: tuple[float, ...]
    seed: int
    soft_label: tuple[float, ...] | None = None  # per class, in dataset class order (across classes)


def parent_rows(dataset: Dataset) -> list[Row]:
    """Images that may be parents (and that the autoencoder fits on): real train rows,
    or every train row when the dataset has no real ones. Never val or test (leakage)."""
    train = dataset.select(split="train")
    return [row for row in train if row["source"] == "real"] or train


def counts_per_class(
    rows: Sequence[Row], classes: Sequence[str], *, per_class: int | None, ratio: float | None
) -> dict[str, int]:
    """Interpolants wanted per class: N each, or R times the class's parent count."""
    available = {label: sum(1 for r in rows if r["label"] == label) for label in classes}
    if per_class is not None:
        return {label: per_class for label in classes}
    return {label: int(round((1.0 if ratio is None else ratio) * available[label])) for label in classes}


def plan_interpolants(
    rows: Sequence[Row],
    classes: Sequence[str],
    *,
    n: int,
    counts: dict[str, int],
    seed: int,
    name: str,
    weight_vectors: Sequence[tuple[float, ...]] | None = None,
    concentration: float = 1.0,
    within_class: bool = True,
) -> list[PlannedInterpolant]:
    """Groups of `n` parents per class with their weights.

    With `weight_vectors` (alphas or explicit `--mix-weights`), every group gets each vector
    once (a sweep between the same parents); otherwise each item is its own group with
    weights drawn from a symmetric Dirichlet(`concentration`)."""
    by_class = {label: [r["id"] for r in rows if r["label"] == label] for label in classes}
    label_of = {r["id"]: r["label"] for r in rows}
    class_index = {label: i for i, label in enumerate(classes)}
    plan: list[PlannedInterpolant] = []
    for label in classes:
        wanted = counts.get(label, 0)
        if wanted <= 0:
            continue
        own = by_class[label]
        others = [r["id"] for r in rows if r["label"] != label]
        _check_group_size(label, own, others, n, within_class)
        for k in range(wanted):
            if weight_vectors:
                group, j = divmod(k, len(weight_vectors))
                weights = tuple(weight_vectors[j])
            else:
                group = k
                draw = np.random.default_rng(derive_seed(seed, "weights", label, k)).dirichlet([concentration] * n)
                weights = tuple(float(w) for w in draw / draw.sum())
            rng = np.random.default_rng(derive_seed(seed, "parents", label, group, within_class))
            if within_class:
                parents = tuple(own[i] for i in rng.choice(len(own), size=n, replace=False))
                soft, row_label = None, label
            else:
                first = own[int(rng.integers(len(own)))]
                rest = tuple(others[i] for i in rng.choice(len(others), size=n - 1, replace=False))
                parents = (first, *rest)
                soft_values = [0.0] * len(classes)
                for parent, weight in zip(parents, weights):
                    soft_values[class_index[label_of[parent]]] += weight
                soft = tuple(soft_values)
                top = max(soft)
                # Ties go to the anchor class, so the row's folder is predictable.
                row_label = label if soft[class_index[label]] >= top - 1e-12 else classes[soft.index(top)]
            plan.append(
                PlannedInterpolant(
                    id=f"{label}--{name}-{k:05d}",
                    label=row_label,
                    anchor=label,
                    group=group,
                    parents=parents,
                    weights=weights,
                    seed=derive_seed(seed, "interpolant", label, k),
                    soft_label=soft,
                )
            )
    return plan


def _check_group_size(label: str, own: list[str], others: list[str], n: int, within_class: bool) -> None:
    if within_class and len(own) < n:
        what = "a single train image" if len(own) == 1 else f"{len(own)} train image(s)"
        raise UsageError(
            f"class {label!r} has {what}; --n {n} needs at least {n} parents from the same class "
            f"(lower --n, leave the class out with --classes, or use --across-classes)"
        )
    if not within_class and (not own or len(others) < n - 1):
        raise UsageError(
            f"class {label!r}: --across-classes --n {n} needs 1 image of the class and {n - 1} of other classes "
            f"({len(own)} and {len(others)} available); lower --n"
        )


# --------------------------------------------------------------------------- fitting


def build_autoencoder(entry: Any, *, channels: int, image_size: tuple[int, int], args: dict[str, Any]) -> Any:
    """Call the registered builder; an argument it does not take is a usage error."""
    try:
        return entry.factory(in_channels=channels, image_size=list(image_size), **args)
    except TypeError as exc:
        raise UsageError(f"autoencoder {entry.name!r}: bad argument ({exc}); see `synthmed interpolate --help`") from None
    except ValueError as exc:
        raise UsageError(f"autoencoder {entry.name!r}: {exc}") from None


def reconstruction_loss(name: str) -> Callable[[Any, Any], Any]:
    import torch.nn.functional as F

    if name == "mse":
        return F.mse_loss
    if name == "bce":
        return F.binary_cross_entropy
    raise UsageError(f"--loss {name!r}: expected one of {', '.join(LOSSES)}")


def fit_autoencoder(
    model: Any,
    images: np.ndarray,
    *,
    epochs: int,
    loss: str = "mse",
    batch_size: int = 32,
    lr: float = 1e-3,
    device: Any = "cpu",
    seed: int = 0,
    advance: Advance = no_advance,
) -> list[float]:
    """Adam on the reconstruction loss (plus the model's own terms: `fit_loss`, e.g. the
    VAE's KL, or a whole `fit_step` with `fit_optimizers`, e.g. ACAI's critic).

    images: uint8/uint16 (N, C, H, W); kept on the device as a whole, batches drawn from a
    seeded permutation. `advance(1, loss=...)` after each epoch. Returns the mean loss of each epoch."""
    import torch

    from synthmed.batches import pixels_on_device, to_unit_float

    criterion = reconstruction_loss(loss)
    torch.manual_seed(derive_seed(seed, "autoencoder-init-noise"))
    model.to(device).train()
    data = pixels_on_device(images, device)
    # A model with its own step (ACAI's critic) brings its optimizers; others get one Adam.
    fit_step = getattr(model, "fit_step", None)
    optimizers = model.fit_optimizers(lr) if fit_step else [torch.optim.Adam(model.parameters(), lr=lr)]
    fit_loss = getattr(model, "fit_loss", None)
    order_generator = torch.Generator().manual_seed(derive_seed(seed, "autoencoder-batches"))
    history = []
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=order_generator)
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = to_unit_float(data[order[start : start + batch_size].to(device)], device=device)
            if len(batch) < 2 and count:  # a lone last sample would break batch norm statistics
                continue
            if fit_step:
                value = fit_step(batch, criterion, optimizers)
            else:
                loss_value = fit_loss(batch, criterion) if fit_loss else criterion(model.decode(model.encode(batch)), batch)
                optimizers[0].zero_grad(set_to_none=True)
                loss_value.backward()
                optimizers[0].step()
                value = float(loss_value.detach())
            total += value * len(batch)
            count += len(batch)
        history.append(total / max(count, 1))
        advance(1, loss=history[-1])
    model.eval()
    return history


def autoencoder_config(entry: Any, *, args: dict[str, Any], channels: int, image_size: tuple[int, int],
                       classes: Sequence[str], **extra: Any) -> dict[str, Any]:
    """config.json of a fitted autoencoder (synthmed.checkpoint)."""
    return {
        "kind": "autoencoder",
        "name": entry.name,
        "plugin": entry.plugin,
        "version": entry.version,
        "args": {"in_channels": channels, "image_size": list(image_size), **args},
        "image_size": list(image_size),
        "channels": channels,
        "classes": list(classes),
        **extra,
    }


# --------------------------------------------------------------------------- generating


def to_stored(decoded: Any, *, bit_depth: int) -> np.ndarray:
    """Float (N, C, H, W) in [0, 1] -> uint8 (or uint16) numpy, rounded."""
    import torch

    scale, dtype = (65535.0, np.uint16) if bit_depth > 8 else (255.0, np.uint8)
    return torch.round(decoded.clamp(0, 1) * scale).cpu().numpy().astype(dtype)


def run_interpolation(
    plan: Sequence[PlannedInterpolant],
    images: np.ndarray,
    index: dict[str, int],
    model: Any,
    writer: Any,
    *,
    generator: str,
    bit_depth: int = 8,
    device: Any = "cpu",
    batch_size: int = 32,
    advance: Advance = no_advance,
) -> dict[str, int]:
    """Write every planned interpolant not yet in `writer` (resume), `advance(k)` after each
    batch of k; returns counts.

    images: the parents' stored pixels (N, C, H, W); index: parent id -> row in `images`."""
    import torch

    from synthmed.batches import to_unit_float
    from synthmed.data.imageio import from_chw

    todo = [item for item in plan if not writer.has(item.id)]
    model.to(device).eval()
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        parent_ids = sorted({p for item in batch for p in item.parents})
        position = {pid: i for i, pid in enumerate(parent_ids)}
        pixels = to_unit_float(images[[index[p] for p in parent_ids]], device=device)
        with torch.no_grad():
            codes = model.encode(pixels)
            gather = torch.tensor([[position[p] for p in item.parents] for item in batch], device=device)
            weights = torch.tensor([item.weights for item in batch], device=device)
            decoded = model.decode(mix_latents(codes[gather], weights))
        stored = to_stored(decoded, bit_depth=bit_depth)
        for item, chw in zip(batch, stored):
            extra = {}
            if item.soft_label is not None:
                extra["soft_label"] = ";".join(f"{w:.6g}" for w in item.soft_label)
                extra["anchor"] = item.anchor
            writer.add_image(
                from_chw(chw),
                id=item.id,
                label=item.label,
                split="train",
                source="synthetic",
                origin=";".join(item.parents),
                generator=generator,
                seed=item.seed,
                weights=";".join(f"{w:.6g}" for w in item.weights),
                **extra,
            )
        advance(len(batch))
    return {"planned": len(plan), "already_done": len(plan) - len(todo), "written": len(todo)}
