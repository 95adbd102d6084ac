"""A study against its dataset: every class, classifier, policy, source and split checked before
any cell runs (a bad value is a one-line error naming its line), and the warnings the report
repeats."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from synthmed.data import Dataset, check_leakage
from synthmed.errors import UsageError
from synthmed.study.schema import Path_, Study


@contextmanager
def at(study: Study, path: Path_) -> Iterator[None]:
    """A UsageError raised inside becomes one naming the study file, line and key."""
    try:
        yield
    except UsageError as exc:
        raise study.fail(path, str(exc)) from None


def settings_for(study: Study, classifier: str, augment: str) -> dict[str, Any]:
    """TrainSettings keyword arguments of one classifier: [train], then [classifiers.NAME]."""
    return {"classifier": classifier, "augment": augment, **study.train, **study.classifiers.get(classifier, {})}


def check_study(study: Study, real: Dataset) -> list[str]:
    """Refuse what cannot run; return the warnings (val split quality)."""
    from synthmed.evaluate.metrics import METRICS
    from synthmed.mix.plan import parse_per_class

    classes = real.classes
    with at(study, ("dataset",)):
        size = real.require_uniform_size()
        check_leakage(real.rows, where=str(real.root))
    _check_split(study, real)
    if study.primary not in METRICS:
        raise study.fail(("primary",), f"unknown metric {study.primary!r}; expected one of {', '.join(METRICS)}")
    for i, entry in enumerate(study.published):
        if entry["metric"] not in METRICS:
            raise study.fail(("published", i, "metric"), f"unknown metric {entry['metric']!r}")
    names = [(("minority", i), c) for i, c in enumerate(study.minority or [])]
    names += [(("axes", "synthetic_classes", i), c) for i, group in enumerate(study.axes["synthetic_classes"]) for c in group or ()]
    if study.selective:
        names += [(("selective", "candidates", i), c) for i, c in enumerate(study.selective["candidates"] or [])]
    for path, name in names:
        if name not in classes:
            raise study.fail(path, f"the dataset has no class {name!r}; its classes are {', '.join(classes)}")
    specs = [(("axes", "real", i), v, False) for i, v in enumerate(study.axes["real"])]
    specs += [(("axes", "synthetic", i), v, True) for i, v in enumerate(study.axes["synthetic"]) if v and v != "balance"]
    if study.selective:
        specs += [(("selective", "real"), study.selective["real"], False), (("selective", "synthetic"), study.selective["synthetic"], True)]
    for path, spec, counts in specs:
        with at(study, path):
            parse_per_class(spec, "value", classes, counts=counts)
    _check_training(study, real, size)
    _check_sources(study, real)
    return val_warnings(study, real)


def _check_split(study: Study, real: Dataset) -> None:
    if study.split not in ("val", "test"):
        raise study.fail(("split",), f"{study.split!r}: every cell trains on its own train split, so cells can share "
                                     "only a held-out one; use test or val")
    carved = not real.select("val")
    if study.split == "val" and carved:
        raise study.fail(("split",), "the dataset has no val split: each cell would carve its own (val_fraction), so "
                                     "the cells would not share one; score on test")
    if not real.select(study.split):
        raise study.fail(("split",), f"{real.root} has no {study.split} images")
    if study.selective and study.split == "val":
        raise study.fail(("selective",), "chooses its classes on the val split, so the study must be scored on test")
    for path, options in [(("train",), study.train), *((("classifiers", k), v) for k, v in study.classifiers.items())]:
        if carved and "val_fraction" not in options and "val_fraction" not in study.train:
            raise study.fail((*path, "val_fraction"), f"{real.root} has no val split (needed for early stopping); "
                                                      "set val_fraction = 0.15 to carve one by subject")
        if not carved and "val_fraction" in options:
            raise study.fail((*path, "val_fraction"), f"{real.root} already has a val split; drop val_fraction")


def _check_training(study: Study, real: Dataset, size: tuple[int, int]) -> None:
    from synthmed.registry import create_policy, get_entry
    from synthmed.train.settings import TrainSettings, check_image_size, check_settings

    used = set(study.axes["classifier"]) | ({study.selective["classifier"]} if study.selective else set())
    for name in study.classifiers:
        if name not in used and not study.quick:  # --quick may leave a classifier out
            raise study.fail(("classifiers", name), "options for a classifier no axis uses")
    for i, name in enumerate(study.axes["classifier"]):
        with at(study, ("axes", "classifier", i)):
            check_image_size(get_entry("classifier", name), size, channels=real.channels, where=str(real.root))
    for i, policy in enumerate(study.axes["augment"]):
        with at(study, ("axes", "augment", i)):
            create_policy(policy, channels=real.channels)
    for name in sorted(used | set(study.classifiers)):
        path = ("classifiers", name) if name in study.classifiers else ("train",)
        with at(study, path):
            settings = TrainSettings(**settings_for(study, name, "none"))
            check_settings(settings, repeats=study.repeats)
            if settings.weights and not Path(settings.weights).is_file():
                raise UsageError(f"weights {settings.weights}: no such file")


def _check_sources(study: Study, real: Dataset) -> None:
    from synthmed.mix.plan import check_compatible
    from synthmed.registry import create_policy, get_entry

    for name, spec in study.sources.items():
        path = ("sources", name, spec.kind)
        with at(study, path):
            if spec.kind == "path":
                if not Path(spec.target).is_dir():
                    raise UsageError(f"{spec.target}: no such dataset folder")
                check_compatible(real, [Dataset.open(spec.target)])
            elif spec.kind == "generator":
                from synthmed.generate.plan import generator_entry, make_generator

                entry = generator_entry(spec.target)
                if entry.info.conditioning != "class":
                    raise UsageError(f"generator {spec.target!r} makes variations of given images; make them with "
                                     "`synthmed generate` first and name the folder as a `path` source")
                probe = make_generator(entry, spec.args)
                if spec.select_by is not None or spec.check_every is not None or spec.patience is not None:
                    from synthmed.generate.selection import check_selection, val_rows

                    check_selection(spec.select_by, spec.check_every, spec.patience)
                    if not getattr(probe, "selects_checkpoint", False):
                        raise UsageError(f"select_by: generator {spec.target!r} cannot keep the best checkpoint of its fit")
                    val_rows(real, real.classes)
                if hasattr(probe, "check_size"):
                    try:
                        probe.check_size(real.require_uniform_size(), real.channels)
                    except ValueError as exc:
                        raise UsageError(f"generator {spec.target}: {exc}") from None
            elif spec.kind == "augment":
                create_policy(spec.target, channels=real.channels)
            else:
                get_entry("autoencoder", spec.target)


def val_warnings(study: Study, real: Dataset) -> list[str]:
    """Early stopping on a val split that may share patients with train is optimistic: say so."""
    val = real.select("val")
    if val:
        missing = sum(1 for row in val if not row["subject"])
        if missing:
            return [f"{missing} of {len(val)} val images have no subject id, so the val split may share patients "
                    "with train (carved by image): early stopping on it is optimistic"]
        return []
    train = real.select("train", source="real")
    missing = sum(1 for row in train if not row["subject"])
    if missing:
        return [f"the val split is carved from train by image for {missing} of {len(train)} images without a "
                "subject id, so it may share patients with train: early stopping on it is optimistic"]
    return []
