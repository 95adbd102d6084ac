"""Generation options: the generator, how many images per class, and fitted model folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from synthmed.data import Dataset
from synthmed.errors import UsageError
from synthmed.jsonio import read_json, write_json
from synthmed.parsing import comma_list
from synthmed.protocols import LoadsModel
from synthmed.registry import Entry, GeneratorInfo, get_entry

MODEL_FOLDER = "model"
FIT_STATE_FOLDER = "fit-state"
QUALITY_FILE = "quality.json"
SHEETS_FOLDER = "contact-sheets"


def generator_entry(name: str) -> Entry[GeneratorInfo]:
    return get_entry("generator", name)


def make_generator(entry: Entry, args: dict[str, Any]) -> Any:
    """`factory(**args)`; a rejected argument is a usage error naming the generator."""
    try:
        return entry.factory(**args)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"-g/--generator-arg: generator {entry.name!r}: {exc}") from None


def resolve_classes(dataset: Dataset, classes: Sequence[str] | None) -> list[str]:
    """The chosen classes in dataset order (all when none are given)."""
    wanted = comma_list(classes)
    if not wanted:
        return dataset.classes
    unknown = [c for c in wanted if c not in dataset.classes]
    if unknown:
        raise UsageError(f"--classes: {dataset.root} has no class {unknown[0]!r}; its classes are {', '.join(dataset.classes)}")
    return [c for c in dataset.classes if c in wanted]


def check_count_options(per_class: int | None, ratio: float | None, balance: bool, per_image: int | None = None) -> None:
    given = [name for name, value in (("--per-class", per_class), ("--ratio", ratio), ("--balance", balance or None),
                                      ("--per-image", per_image)) if value is not None]
    if len(given) > 1:
        raise UsageError(f"{given[0]} and {given[1]} cannot be used together; choose one way to say how many images")
    if per_class is not None and per_class < 1:
        raise UsageError("--per-class must be at least 1")
    if ratio is not None and ratio <= 0:
        raise UsageError("--ratio must be positive (0.2 = one synthetic image per five real train images)")
    if per_image is not None and per_image < 1:
        raise UsageError("--per-image must be at least 1")


def real_train_counts(dataset: Dataset) -> dict[str, int]:
    counts = {label: 0 for label in dataset.classes}
    for row in dataset.select(split="train", source="real"):
        counts[row["label"]] += 1
    return counts


def plan_counts(dataset: Dataset, classes: Sequence[str], *, per_class: int | None = None, ratio: float | None = None,
                balance: bool = False) -> dict[str, int]:
    """Images wanted per chosen class: N each, R x its real train count, or up to the largest class."""
    real = real_train_counts(dataset)
    if per_class is not None:
        return {label: per_class for label in classes}
    if ratio is not None:
        return {label: int(round(ratio * real[label])) for label in classes}
    if balance:
        largest = max(real.values())
        return {label: largest - real[label] for label in classes}
    raise UsageError("say how many images to make: --per-class N, --ratio R or --balance")




def find_model_folder(path: Path) -> Path:
    """`--model DIR`: a model folder, or a generate output holding one in `model/`."""
    path = Path(path)
    if not (path / "config.json").is_file() and (path / MODEL_FOLDER / "config.json").is_file():
        return path / MODEL_FOLDER
    return path


def check_model_config(config: dict[str, Any], folder: Path, entry: Entry, dataset: Dataset, classes: Sequence[str]) -> None:
    """Refuse a model folder fitted by another generator or on another class list, size or channel count."""
    if config.get("name") != entry.name:
        raise UsageError(f"--model {folder}: fitted by generator {config.get('name')!r}, not {entry.name!r}; "
                         f"pass --generator {config.get('name')}")
    if config.get("classes") != dataset.classes:
        raise UsageError(f"--model {folder}: fitted on classes {config.get('classes')}, but {dataset.root} has "
                         f"{dataset.classes}; fit a model on this dataset")
    size = dataset.require_uniform_size()
    if list(config.get("image_size") or []) != list(size) or config.get("channels") != dataset.channels:
        raise UsageError(f"--model {folder}: fitted on {config.get('image_size')} px x {config.get('channels')} channel(s), "
                         f"but {dataset.root} is {list(size)} x {dataset.channels}")
    fitted = config.get("fitted_classes")
    if fitted is not None:
        missing = [c for c in classes if c not in fitted]
        if missing:
            raise UsageError(f"--model {folder}: was not fitted on class {missing[0]!r}; fitted classes: {', '.join(fitted)}")


def load_model(entry: Entry, folder: Path, dataset: Dataset, classes: Sequence[str], args: dict[str, Any]) -> tuple[Any, dict]:
    """A fitted generator from its folder; `args` (from -g) override the saved factory arguments."""
    from synthmed.checkpoint import read_config

    config = read_config(folder, kind="generator")
    check_model_config(config, folder, entry, dataset, classes)
    generator = make_generator(entry, {**config.get("args", {}), **args})
    if not isinstance(generator, LoadsModel):
        raise UsageError(f"--model: generator {entry.name!r} cannot load a saved model (it has no load method)")
    generator.load(folder)
    return generator, config


def save_model(generator: Any, folder: Path, entry: Entry, dataset: Dataset, classes: Sequence[str],
               args: dict[str, Any], epochs: int) -> None:
    """`generator.save(folder)`, then the facts `--model` checks added to its config.json
    (and `selected_epoch`, the epoch whose weights were kept, for a generator that says)."""
    generator.save(folder)
    path = Path(folder) / "config.json"
    config = read_json(path, what="a model folder") if path.is_file() else {"format_version": 1}
    config.update(kind="generator", name=entry.name, plugin=entry.plugin, version=entry.version, args=args,
                  classes=dataset.classes, fitted_classes=list(classes), image_size=list(dataset.require_uniform_size()),
                  channels=dataset.channels, normalization=dataset.stats, fit_epochs=epochs)
    if getattr(generator, "selected_epoch", None) is not None:
        config["selected_epoch"] = int(generator.selected_epoch)
    write_json(path, config)
