"""Cells from the axes: the declared scenarios, the controls added for each scenario with
synthetic images, the probes of selective augmentation, and the units shards split.

A cell is a training set (a `Mix`: what `synthmed mix` is asked for), an augmentation policy
and a classifier. Every repeat r of every cell uses the same seed, so a scenario and its
controls are paired: in repeat r they keep the same real images."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from synthmed.study.schema import Study

# control kinds, in report order, and how the report names them
CONTROL_NAMES = {
    "without": "same real images, no synthetic",
    "oversample": "same counts of duplicated real images",
    "reference": "100 % real",
    "steps": "same real images, same optimizer steps",
}


@dataclass(frozen=True)
class Mix:
    """What `synthmed mix` is asked for (spec strings as the mix options take them)."""

    real: str = "1.0"
    synthetic: str | None = None
    balance: bool = False
    synthetic_classes: tuple[str, ...] | None = None
    source: str | None = None
    oversample: str | None = None

    @property
    def has_synthetic(self) -> bool:
        return self.source is not None

    def label(self) -> str:
        text = f"real {_short(self.real)}"
        if self.source is not None:
            amount = "balance" if self.balance else _short(self.synthetic or "")
            text += f" + {self.source} {amount}"
            if self.synthetic_classes is not None:
                text += f" [{', '.join(self.synthetic_classes)}]"
        if self.oversample:
            text += f" + duplicates ({self.oversample.replace(',', ', ')})"
        return text


@dataclass(frozen=True)
class Cell:
    role: str  # scenario, without, oversample, reference, steps, probe, selective
    mix: Mix
    augment: str
    classifier: str
    steps_of: str | None = None  # the cell whose optimizer steps (per repeat) this one trains for
    matched: str = ""  # that cell's label (for reading, not part of the identity)

    @property
    def id(self) -> str:
        identity = {k: v for k, v in asdict(self).items() if k not in ("role", "matched")}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        return self.mix.label() + (f" (steps of {self.matched})" if self.steps_of else "")


@dataclass
class Grid:
    cells: dict[str, Cell] = field(default_factory=dict)
    scenarios: list[str] = field(default_factory=list)  # declared cells, in axis order
    controls: dict[str, dict[str, str]] = field(default_factory=dict)  # scenario id -> {kind: cell id}
    splits: dict[str, set[str]] = field(default_factory=dict)  # cell id -> splits it is scored on
    links: list[tuple[str, str]] = field(default_factory=list)  # cells a shard must keep together
    skipped: list[str] = field(default_factory=list)  # axis combinations that leave a class without images
    selective: dict[str, Any] | None = None  # probes, control, candidates; "chosen" once resolved

    def add(self, cell: Cell, split: str) -> str:
        self.cells.setdefault(cell.id, cell)
        self.splits.setdefault(cell.id, set()).add(split)
        return cell.id

    def units(self) -> list[list[str]]:
        """Cells grouped so that a cell and those it depends on stay in one shard."""
        parent = {cell_id: cell_id for cell_id in self.cells}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in self.links:
            parent[find(a)] = find(b)
        groups: dict[str, list[str]] = {}
        for cell_id in self.cells:
            groups.setdefault(find(cell_id), []).append(cell_id)
        return list(groups.values())


def _short(spec: str) -> str:
    """'0.8' for '0.8', '1' for '1.0'; per-class specs as given."""
    try:
        return f"{float(spec):g}"
    except ValueError:
        return spec.replace(",", ", ")


def kept_counts(real_spec: str, real_counts: dict[str, int]) -> dict[str, int]:
    from synthmed.mix.plan import Amount, parse_per_class

    amounts = parse_per_class(real_spec, "--real", list(real_counts), counts=False)
    return {c: (amounts.get(c) or Amount(fraction=1.0)).of(n) for c, n in real_counts.items()}


def asked_counts(mix: Mix, real_counts: dict[str, int]) -> dict[str, int]:
    """Synthetic images per class a mix asks for, as `plan_mix` counts them."""
    from synthmed.mix.plan import parse_per_class

    receives = [c for c in real_counts if mix.synthetic_classes is None or c in mix.synthetic_classes]
    if mix.source is None:
        return {c: 0 for c in real_counts}
    if mix.balance:
        kept = kept_counts(mix.real, real_counts)
        largest = max(kept.values())
        return {c: (largest - kept[c] if c in receives else 0) for c in real_counts}
    amounts = parse_per_class(mix.synthetic or "0", "--synthetic", list(real_counts), counts=True)
    return {c: ((amounts.get(c).of(n) if amounts.get(c) else 0) if c in receives else 0) for c, n in real_counts.items()}


def oversample_spec(counts: dict[str, int]) -> str | None:
    return ",".join(f"{c}={n}" for c, n in counts.items() if n) or None


def add_scenario(grid: Grid, study: Study, cell: Cell, real_counts: dict[str, int],
                 available: dict[str, dict[str, int]], split: str) -> str:
    """The cell and, when it adds synthetic images, the controls the study asks for."""
    scenario = grid.add(cell, split)
    if not cell.mix.has_synthetic:
        if cell.mix.real != "1.0" and "reference" in study.controls:
            grid.controls[scenario] = {"reference": grid.add(replace(cell, role="reference", mix=Mix()), split)}
        return scenario
    controls: dict[str, str] = {}
    real_only = Mix(real=cell.mix.real)
    trainable = all(kept_counts(cell.mix.real, real_counts).values())  # every class keeps a real image
    if trainable and "without" in study.controls:
        controls["without"] = grid.add(replace(cell, role="without", mix=real_only), split)
    if trainable and "oversample" in study.controls:
        counts = asked_counts(cell.mix, real_counts)
        pool = available.get(cell.mix.source)
        if pool is not None:  # a folder: it may hold fewer than asked, and the mix takes what there is
            counts = {c: min(n, pool.get(c, 0)) for c, n in counts.items()}
        if any(counts.values()):
            duplicates = Mix(real=cell.mix.real, oversample=oversample_spec(counts))
            controls["oversample"] = grid.add(replace(cell, role="oversample", mix=duplicates), split)
    if cell.mix.real != "1.0" and "reference" in study.controls:
        controls["reference"] = grid.add(replace(cell, role="reference", mix=Mix()), split)
    if "steps" in study.controls:
        matched = replace(cell, role="steps", mix=real_only if trainable else Mix(), steps_of=scenario,
                          matched=cell.label())
        controls["steps"] = grid.add(matched, split)
        grid.links.append((controls["steps"], scenario))
    grid.controls[scenario] = controls
    return scenario


def build_grid(study: Study, real_counts: dict[str, int], available: dict[str, dict[str, int]]) -> Grid:
    """Every cell of the study in axis order: classifier, augment, real, synthetic, classes, source.
    `available` holds the per-class pool of each folder source (made sources hold what is asked)."""
    grid = Grid()
    axes = study.axes
    for classifier in axes["classifier"]:
        for augment in axes["augment"]:
            for real in axes["real"]:
                for synthetic in axes["synthetic"]:
                    if synthetic is None and not all(kept_counts(real, real_counts).values()):
                        if Mix(real=real).label() not in grid.skipped:
                            grid.skipped.append(Mix(real=real).label())  # e.g. real 0 without synthetic images
                        continue
                    mixes = [Mix(real=real)] if synthetic is None else [
                        Mix(real=real, synthetic=None if synthetic == "balance" else synthetic,
                            balance=synthetic == "balance", synthetic_classes=classes, source=source)
                        for classes in axes["synthetic_classes"] for source in axes["source"]]
                    for mix in mixes:
                        cell_id = add_scenario(grid, study, Cell("scenario", mix, augment, classifier), real_counts,
                                               available, study.split)
                        if cell_id not in grid.scenarios:
                            grid.scenarios.append(cell_id)
    if study.selective:
        _add_probes(grid, study, real_counts)
    return grid


def _add_probes(grid: Grid, study: Study, real_counts: dict[str, int]) -> None:
    """Selective augmentation: one probe per candidate class (synthetic images for that class
    only), scored with the real-only control on the val split."""
    sel = study.selective
    base = Mix(real=sel["real"], synthetic=sel["synthetic"], source=sel["source"])
    asked = asked_counts(base, real_counts)
    candidates = [c for c in (sel["candidates"] or list(real_counts)) if asked[c] > 0]
    control = grid.add(Cell("without", Mix(real=sel["real"]), sel["augment"], sel["classifier"]), "val")
    probes = {}
    for label in candidates:
        probe = Cell("probe", replace(base, synthetic_classes=(label,)), sel["augment"], sel["classifier"])
        probes[label] = grid.add(probe, "val")
        grid.links.append((probes[label], control))
    grid.selective = {"base": base, "augment": sel["augment"], "classifier": sel["classifier"],
                      "candidates": candidates, "probes": probes, "control": control, "chosen": None}


def resolve_selective(grid: Grid, study: Study, chosen: list[str], real_counts: dict[str, int],
                      available: dict[str, dict[str, int]]) -> str | None:
    """Add the selective scenario (synthetic images for the chosen classes) and its controls."""
    sel = grid.selective
    sel["chosen"] = chosen
    if not chosen:
        return None
    mix = replace(sel["base"], synthetic_classes=tuple(c for c in real_counts if c in chosen))
    before = set(grid.cells)
    cell_id = add_scenario(grid, study, Cell("selective", mix, sel["augment"], sel["classifier"]), real_counts,
                           available, study.split)
    grid.links += [(new, sel["control"]) for new in set(grid.cells) - before]
    sel["cell"] = cell_id
    if cell_id not in grid.scenarios:
        grid.scenarios.append(cell_id)
    return cell_id


def pool_counts(study: Study, grid: Grid, real_counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """Images per class each made source needs: the most any cell (or selective choice) asks for."""
    needed: dict[str, dict[str, int]] = {}
    mixes = [cell.mix for cell in grid.cells.values()]
    if grid.selective:
        mixes.append(grid.selective["base"])
    for mix in mixes:
        if mix.source is None:
            continue
        counts = needed.setdefault(mix.source, {c: 0 for c in real_counts})
        for label, n in asked_counts(mix, real_counts).items():
            counts[label] = max(counts[label], n)
    return needed
