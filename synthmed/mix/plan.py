"""`mix`: a train split of X_i % of the real images of class i plus synthetic images per class.

Only train is mixed; val and test are copied from REAL untouched. Real images are sampled per
class with a seeded permutation; synthetic images are drawn round-robin across generators and,
within a generator, across the real images they were made from, so that a class's synthetic
share is spread as evenly as the inputs allow. `oversample` adds duplicates of the kept real
images instead (the control that asks whether synthetic images beat plain copies). The
leakage rule (no train row made from, or sharing a subject with, a val/test image:
synthmed.data.leakage) is checked against REAL's rows before anything is written.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np

from synthmed.data import check_leakage, Dataset, DatasetWriter, Row
from synthmed.errors import UsageError
from synthmed.parsing import comma_list
from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed

DUPLICATE_GENERATOR = "duplicate"  # `generator` column of oversampled rows: duplicate@<synthmed version>


@dataclass(frozen=True)
class Amount:
    """A fraction of the class's real train count, or an absolute number of images."""

    fraction: float | None = None
    count: int | None = None

    def of(self, real_count: int) -> int:
        return self.count if self.count is not None else int(round((self.fraction or 0.0) * real_count))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.fraction:g}"


@dataclass
class PerClass:
    default: Amount | None
    classes: dict[str, Amount] = field(default_factory=dict)

    def get(self, label: str) -> Amount | None:
        return self.classes.get(label, self.default)


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_per_class(spec: str, option: str, classes: list[str], *, counts: bool) -> PerClass:
    """`0.8`, `A=1.0,B=0.3`, `B=500` (a plain integer is a count when `counts`), or `0.2,B=500`."""
    result = PerClass(None)
    for part in comma_list(spec) or []:
        name, _, value = part.rpartition("=")
        name = name.strip()
        value = value.strip()
        if not _NUMBER.fullmatch(value):
            raise UsageError(f"{option} {spec!r}: {value!r} is not a number (expected e.g. 0.8 or CLASS=0.3)")
        number = float(value)
        if number < 0:
            raise UsageError(f"{option} {spec!r}: {part!r} is negative")
        is_count = counts and re.fullmatch(r"\+?\d+", value) is not None and number != 0
        if not counts and number > 1.0:
            raise UsageError(f"{option} {spec!r}: {part!r} is over 1.0 (a fraction of the real images, at most all of them)")
        amount = Amount(count=int(number)) if is_count else Amount(fraction=number)
        if not name:
            if result.default is not None:
                raise UsageError(f"{option} {spec!r}: more than one value without a class name")
            result.default = amount
        elif name not in classes:
            raise UsageError(f"{option} {spec!r}: unknown class {name!r}; classes are {', '.join(classes)}")
        elif name in result.classes:
            raise UsageError(f"{option} {spec!r}: class {name!r} given twice")
        else:
            result.classes[name] = amount
    if result.default is None and not result.classes:
        raise UsageError(f"{option} {spec!r}: no value given")
    return result


@dataclass
class ClassPlan:
    real_available: int
    real_kept: list[Row]
    synthetic_asked: int
    synthetic_available: int
    synthetic: list[tuple[Dataset, Row]]
    duplicates: list[tuple[Row, int]] = field(default_factory=list)  # (kept real row, copy number)

    def summary(self) -> dict:
        return {
            "real_available": self.real_available,
            "real_kept": len(self.real_kept),
            "synthetic_asked": self.synthetic_asked,
            "synthetic_available": self.synthetic_available,
            "synthetic_added": len(self.synthetic),
            "duplicates_added": len(self.duplicates),
            "final": len(self.real_kept) + len(self.synthetic) + len(self.duplicates),
        }


@dataclass
class MixPlan:
    real: Dataset
    synthetic: list[Dataset]
    per_class: dict[str, ClassPlan]
    held_out: list[Row]  # REAL val and test rows, copied as they are
    settings: dict

    @property
    def shortfalls(self) -> list[str]:
        return [
            f"class {label}: asked for {plan.synthetic_asked} synthetic images, only {plan.synthetic_available} available"
            for label, plan in self.per_class.items()
            if plan.synthetic_asked > plan.synthetic_available
        ]


def check_compatible(real: Dataset, synthetic: list[Dataset]) -> None:
    for other in synthetic:
        extra = [c for c in other.classes if c not in real.classes]
        if extra:
            raise UsageError(f"{other.root}: class(es) {', '.join(extra)} are not in {real.root} ({', '.join(real.classes)})")
        if other.image_size != real.image_size or other.channels != real.channels or other.bit_depth != real.bit_depth:
            raise UsageError(
                f"{other.root}: images are {_shape(other)} but {real.root} has {_shape(real)}; "
                "generate from REAL or preprocess both to the same --size and --mode"
            )


def _shape(data: Dataset) -> str:
    size = "x".join(map(str, data.image_size)) if data.image_size else "mixed sizes"
    return f"{size} px, {data.channels} channel(s), {data.bit_depth}-bit"


def _seeded_order(rows: list[Row], seed: int, *keys: object) -> list[Row]:
    ordered = sorted(rows, key=lambda r: r["id"])
    permutation = np.random.default_rng(derive_seed(seed, *keys)).permutation(len(ordered))
    return [ordered[int(i)] for i in permutation]


def plan_duplicates(kept: list[Row], count: int, seed: int, label: str) -> list[tuple[Row, int]]:
    """`count` copies of the kept real images, each duplicated as evenly as possible: a seeded
    order of the images, taken round-robin (the second copy of any image only after every image
    has one)."""
    order = _seeded_order(kept, seed, "oversample", label)
    return [(order[i % len(order)], i // len(order) + 1) for i in range(count)]


def _round_robin(streams: list[list]) -> list:
    return [item for layer in zip_longest(*streams) for item in layer if item is not None]


def spread_evenly(candidates: list[tuple[Dataset, Row]], seed: int, label: str) -> list[tuple[Dataset, Row]]:
    """Candidates ordered so that any prefix takes generators, then origins, in turn."""
    by_generator: dict[str, dict[str, list[tuple[Dataset, Row]]]] = defaultdict(lambda: defaultdict(list))
    for dataset, row in candidates:
        by_generator[row.get("generator", "")][row.get("origin", "")].append((dataset, row))
    generator_streams = []
    for generator in sorted(by_generator):
        origin_streams = []
        for origin in sorted(by_generator[generator]):
            pairs = by_generator[generator][origin]
            rows = _seeded_order([row for _, row in pairs], seed, "synthetic", label, generator, origin)
            owner = {id(row): dataset for dataset, row in pairs}
            origin_streams.append([(owner[id(row)], row) for row in rows])
        # Which origin goes first is seeded too, so a small draw does not always favour the same images.
        start = int(np.random.default_rng(derive_seed(seed, "origins", label, generator)).integers(len(origin_streams)))
        origin_streams = origin_streams[start:] + origin_streams[:start]
        generator_streams.append(_round_robin(origin_streams))
    return _round_robin(generator_streams)


def plan_mix(
    real: Dataset,
    synthetic: list[Dataset],
    *,
    real_spec: str = "1.0",
    synthetic_spec: str | None = None,
    synthetic_classes: list[str] | None = None,
    balance: bool = False,
    oversample_spec: str | None = None,
    seed: int = 0,
) -> MixPlan:
    classes = real.classes
    check_compatible(real, synthetic)
    real_amounts = parse_per_class(real_spec, "--real", classes, counts=False)
    synth_amounts = parse_per_class(synthetic_spec, "--synthetic", classes, counts=True) if synthetic_spec else None
    duplicate_amounts = parse_per_class(oversample_spec, "--oversample", classes, counts=True) if oversample_spec else None
    if balance and synthetic_spec is not None:
        raise UsageError("--balance and --synthetic both set the synthetic amount; choose one")
    if synthetic and synthetic_spec is None and not balance:
        raise UsageError("SYNTH datasets given but no amount: pass --synthetic (e.g. 0.2) or --balance")
    if not synthetic and (synthetic_spec is not None or balance):
        raise UsageError("--synthetic/--balance need at least one SYNTH dataset after REAL")
    if synthetic_classes is not None:
        unknown = [c for c in synthetic_classes if c not in classes]
        if unknown:
            raise UsageError(f"--synthetic-classes: unknown class {unknown[0]!r}; classes are {', '.join(classes)}")
    if synth_amounts and synthetic_classes is not None:
        outside = [c for c in synth_amounts.classes if c not in synthetic_classes]
        if outside:
            raise UsageError(f"--synthetic names {outside[0]!r}, which --synthetic-classes leaves out")

    real_train = defaultdict(list)
    for row in real.select(split="train", source="real"):
        real_train[row["label"]].append(row)
    candidates: dict[str, list[tuple[Dataset, Row]]] = defaultdict(list)
    for dataset in synthetic:
        pool = [row for row in dataset.select(split="train") if row["source"] != "real"]
        # A synthetic image made from a REAL val/test image (or patient) must never reach train.
        check_leakage(pool, real.rows, where=str(dataset.root))
        for row in pool:
            candidates[row["label"]].append((dataset, row))

    kept: dict[str, list[Row]] = {}
    for label in classes:
        amount = real_amounts.get(label) or Amount(fraction=1.0)
        rows = real_train[label]
        chosen = {r["id"] for r in _seeded_order(rows, seed, "real", label)[: amount.of(len(rows))]}
        kept[label] = [r for r in rows if r["id"] in chosen]
    largest = max(len(rows) for rows in kept.values())

    per_class: dict[str, ClassPlan] = {}
    for label in classes:
        receives = synthetic_classes is None or label in synthetic_classes
        if not receives:
            asked = 0
        elif balance:
            asked = largest - len(kept[label])
        else:
            amount = synth_amounts.get(label) if synth_amounts else None
            asked = amount.of(len(real_train[label])) if amount else 0
        ordered = spread_evenly(candidates[label], seed, label) if asked else []
        per_class[label] = ClassPlan(len(real_train[label]), kept[label], asked, len(candidates[label]), ordered[:asked])
        duplicates = duplicate_amounts.get(label) if duplicate_amounts else None
        if duplicates is not None and duplicates.of(len(real_train[label])):
            if not kept[label]:
                raise UsageError(f"--oversample: class {label!r} keeps no real train images to duplicate; raise --real for it")
            per_class[label].duplicates = plan_duplicates(kept[label], duplicates.of(len(real_train[label])), seed, label)
        if not per_class[label].real_kept and not per_class[label].synthetic:
            raise UsageError(f"class {label!r} would have no train images; raise --real for it or add synthetic images")

    settings = {
        "real": real_spec,
        "synthetic": synthetic_spec,
        "synthetic_classes": synthetic_classes,
        "balance": balance,
        "oversample": oversample_spec,
        "seed": seed,
        "fractions_of": "the class's real train count in REAL",
    }
    held_out = [row for row in real.rows if row["split"] != "train"]
    return MixPlan(real, synthetic, per_class, held_out, settings)


def write_mix(plan: MixPlan, out: Path, *, overwrite: bool = False, progress: Progress = no_progress) -> dict:
    """Write the planned mix (hard links where possible) and return the summary."""
    from synthmed import __version__

    real = plan.real
    rows_out: list[tuple[Dataset, Row]] = []
    for label, class_plan in plan.per_class.items():
        rows_out += [(real, row) for row in class_plan.real_kept] + class_plan.synthetic
        # A duplicate is a copy made by a rule, not a model: source augmented, origin the copied image.
        rows_out += [(real, {**row, "id": f"{row['id']}--dup-{copy:03d}", "source": "augmented", "origin": row["id"],
                             "generator": f"{DUPLICATE_GENERATOR}@{__version__}", "seed": str(plan.settings["seed"])})
                     for row, copy in class_plan.duplicates]
    rows_out += [(real, row) for row in plan.held_out]
    seen: dict[str, Path] = {}
    for dataset, row in rows_out:
        if row["id"] in seen:
            raise UsageError(
                f"id {row['id']!r} is in both {seen[row['id']]} and {dataset.root}; the same images given twice?"
            )
        seen[row["id"]] = dataset.root
    # The planned train split against all of REAL: the same rule `train` enforces.
    check_leakage([row for _, row in rows_out], real.rows, where=str(out))

    summary = {
        "classes": real.classes,
        "per_class": {label: class_plan.summary() for label, class_plan in plan.per_class.items()},
        "val": sum(1 for r in plan.held_out if r["split"] == "val"),
        "test": sum(1 for r in plan.held_out if r["split"] == "test"),
        "shortfalls": plan.shortfalls,
    }
    summary["train"] = sum(c["final"] for c in summary["per_class"].values())
    info = {"mix": {**plan.settings, "per_class": summary["per_class"]}}
    parents = [real.root, *(d.root for d in plan.synthetic)]
    with DatasetWriter(out, classes=real.classes, command="mix", parents=parents, overwrite=overwrite, info=info) as writer:
        with start_task(progress, "linking", total=len(rows_out), unit="img") as task:
            for dataset, row in rows_out:
                writer.add_file(dataset.path_of(row), row)  # a duplicate's file_name is still its original's
                task(1)
    return summary
