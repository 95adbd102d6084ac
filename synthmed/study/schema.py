"""The study file: TOML (tomllib), every key and type checked before anything runs; an error
names the file, the line and the key. What the values mean for a dataset is checked in
validate.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthmed.errors import UsageError
from synthmed.study.values import (
    as_list,
    canonical_classes,
    canonical_real,
    canonical_synthetic,
    check_keys,
    int_of,
    names_of,
    number_of,
    string_of,
    table_of,
)

CONTROLS = ("without", "oversample", "reference", "steps")
SOURCE_KINDS = ("path", "generator", "augment", "interpolate")
AXES = ("real", "synthetic", "synthetic_classes", "source", "augment", "classifier")
# Options of `synthmed train` a study may set, with their TOML types.
TRAIN_KEYS: dict[str, tuple[type, ...]] = {
    "epochs": (int,), "batch_size": (int,), "lr": (int, float), "weight_decay": (int, float), "patience": (int,),
    "class_weights": (bool,), "weights": (str,), "freeze_backbone": (bool,), "amp": (str,),
    "val_fraction": (int, float), "max_steps": (int,), "classifier_args": (dict,),
}
TOP_KEYS = ("name", "extends", "seed", "repeats", "split", "primary", "alpha", "minority", "controls", "device", "dataset",
            "sources", "axes", "train", "classifiers", "selective", "quick", "published")
_KIND = {int: "a whole number", float: "a number", bool: "true or false", str: "a string", dict: "a table"}
SELECTIVE_KEYS = ("real", "synthetic", "source", "augment", "classifier", "candidates")
Path_ = tuple  # a key path: ("axes", "real", 0)


class Located:
    """Line numbers of the keys of a TOML text. tomllib gives values without positions, so the
    lines are found by reading table headers and `key =` lines (enough for error messages)."""

    def __init__(self, file: Path, text: str, parent: "Located | None" = None) -> None:
        self.file = file
        self.parent = parent  # the file this one extends
        self.lines: dict[Path_, int] = {}
        self.quick: set[Path_] = set()  # paths whose value --quick replaced
        table: Path_ = ()
        arrays: dict[Path_, int] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            header = re.fullmatch(r"\[\[\s*([^\]]+?)\s*\]\](\s*#.*)?", line) or re.fullmatch(r"\[\s*([^\]]+?)\s*\](\s*#.*)?", line)
            if header:
                table = _dotted(header.group(1))
                if line.startswith("[["):
                    index = arrays.get(table, -1) + 1
                    arrays[table] = index
                    table = (*table, index)
                self.lines.setdefault(table, number)
                continue
            key = re.match(r"""((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""", line)
            if key:
                self.lines.setdefault((*table, *_dotted(key.group(1))), number)

    def line(self, path: Path_) -> int | None:
        return self.where(path)[1]

    def where(self, path: Path_) -> tuple[Path, int | None]:
        """(file, line) of the key, or of the nearest table above it that a file names."""
        files = [self] + ([self.parent] if self.parent else [])
        for candidate in ([("quick", *path)] if self._from_quick(path) else []) + [path]:
            probe = tuple(candidate)
            while probe:
                for located in files:
                    if probe in located.lines:
                        return located.file, located.lines[probe]
                probe = probe[:-1]
        return self.file, None

    def _from_quick(self, path: Path_) -> bool:
        return any(tuple(path[: len(q)]) == q for q in self.quick)

    def error(self, path: Path_, message: str) -> UsageError:
        file, line = self.where(path)
        where = f"{file} line {line}" if line else str(file)
        return UsageError(f"{where}: {dotted(path)}: {message}")


def _dotted(text: str) -> Path_:
    return tuple(part.strip().strip("\"'") for part in re.findall(r"""(?:"[^"]*"|'[^']*'|[^.]+)""", text))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class SourceSpec:
    name: str
    kind: str  # one of SOURCE_KINDS
    target: str  # folder, generator, policy or autoencoder name
    args: dict[str, Any] = field(default_factory=dict)
    fit_epochs: int | None = None
    pool: float = 1.0  # images made = pool x the most any cell asks for
    select_by: str | None = None  # generator sources: `generate --select-by`, `--check-every`, `--patience`
    check_every: int | None = None
    patience: int | None = None


@dataclass
class Study:
    file: Path
    located: Located
    name: str
    seed: int = 0
    repeats: int = 5
    split: str = "test"
    primary: str = "cross_entropy"
    alpha: float = 0.05
    minority: list[str] | None = None
    controls: tuple[str, ...] = CONTROLS
    device: str = "auto"
    dataset: Path | None = None
    sample: dict[str, Any] | None = None
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)  # canonical values, see canonical_*
    train: dict[str, Any] = field(default_factory=dict)
    classifiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    selective: dict[str, Any] | None = None
    published: list[dict[str, Any]] = field(default_factory=list)
    quick: bool = False
    text: str = ""

    def fail(self, path: Path_, message: str) -> UsageError:
        return self.located.error(path, message)


def load_study(path: str | Path, *, quick: bool = False) -> Study:
    """Read and check a study file (structure and types; nothing about the dataset yet)."""
    import tomllib

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{file}: no such study file")
    text = file.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{file}: not valid TOML ({exc})") from None
    located = Located(file, text)
    if "extends" in raw:
        raw, located = _extend(raw, located)
    overrides = raw.pop("quick", None)
    if overrides is not None:
        overrides = table_of(located, overrides, ("quick",))
        check_keys(located, overrides, [k for k in TOP_KEYS if k not in ("name", "quick")], ("quick",))
    if quick:
        if not overrides:
            raise UsageError(f"{file}: --quick needs a [quick] table saying what a quick run changes")
        raw = _merge(raw, overrides, (), located.quick)
    check_keys(located, raw, TOP_KEYS, ())
    study = Study(file=file, located=located, name=string_of(located, raw.get("name", file.stem), ("name",)), quick=quick,
                  text=text)
    _scalars(study, raw)
    _dataset(study, raw.get("dataset"))
    for name, table in table_of(located, raw.get("sources", {}), ("sources",)).items():
        study.sources[name] = _source(located, name, table)
    _axes(study, table_of(located, raw.get("axes", {}), ("axes",)))
    study.train = train_options(located, raw.get("train", {}), ("train",))
    for name, table in table_of(located, raw.get("classifiers", {}), ("classifiers",)).items():
        study.classifiers[name] = train_options(located, table, ("classifiers", name))
    if "selective" in raw:
        study.selective = _selective(study, table_of(located, raw["selective"], ("selective",)))
    study.published = [_published(located, entry, ("published", i)) for i, entry in enumerate(as_list(raw.get("published", []), ("published",)))]
    return study


def _extend(raw: dict, located: Located) -> tuple[dict, Located]:
    """A study that extends another: the other's keys, with this file's replacing them
    (tables merge key by key). Relative paths are relative to this file's folder."""
    import tomllib

    base = raw.pop("extends")
    if not isinstance(base, str):
        raise located.error(("extends",), f"expected the path of a study file, got {base!r}")
    base_file = (located.file.parent / base).resolve()
    if not base_file.is_file():
        raise located.error(("extends",), f"{base_file}: no such study file")
    text = base_file.read_text(encoding="utf-8")
    try:
        base_raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{base_file}: not valid TOML ({exc})") from None
    if "extends" in base_raw:
        raise located.error(("extends",), f"{base_file} extends another study itself; extend one level only")
    extended = Located(located.file, "", Located(base_file, text))
    extended.lines = located.lines
    return _merge(base_raw, raw, (), set()), extended


def _merge(base: dict, over: dict, path: Path_, replaced: set) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value, (*path, key), replaced)
        else:
            merged[key] = value
            replaced.add((*path, key))
    return merged


def _scalars(study: Study, raw: dict) -> None:
    loc = study.located
    study.seed = int_of(loc, raw.get("seed", 0), ("seed",))
    study.repeats = int_of(loc, raw.get("repeats", 5), ("repeats",), minimum=1)
    study.split = string_of(loc, raw.get("split", "test"), ("split",))
    study.primary = string_of(loc, raw.get("primary", "cross_entropy"), ("primary",))
    study.alpha = number_of(loc, raw.get("alpha", 0.05), ("alpha",))
    if not 0 < study.alpha < 1:
        raise loc.error(("alpha",), f"{study.alpha} must be between 0 and 1")
    study.device = string_of(loc, raw.get("device", "auto"), ("device",))
    if "minority" in raw:
        study.minority = names_of(loc, raw["minority"], ("minority",))
    controls = raw.get("controls", True)
    if isinstance(controls, bool):
        study.controls = CONTROLS if controls else ()
    else:
        names = names_of(loc, controls, ("controls",))
        for i, name in enumerate(names):
            if name not in CONTROLS:
                raise loc.error(("controls", i), f"unknown control {name!r}; expected some of {', '.join(CONTROLS)}")
        study.controls = tuple(c for c in CONTROLS if c in names)


def _dataset(study: Study, value: Any) -> None:
    loc = study.located
    if value is None:
        raise UsageError(f"{study.file}: no [dataset]: give `dataset = \"FOLDER\"` or `[dataset] sample = {{ size = 32 }}`")
    if isinstance(value, str):
        value = {"path": value}
    table = table_of(loc, value, ("dataset",))
    check_keys(loc, table, ("path", "sample"), ("dataset",))
    if ("path" in table) == ("sample" in table):
        raise loc.error(("dataset",), "give exactly one of path (a dataset folder) or sample (the embedded sample data)")
    if "path" in table:
        study.dataset = (study.file.parent / string_of(loc, table["path"], ("dataset", "path"))).resolve()
        return
    sample = table_of(loc, table["sample"], ("dataset", "sample"))
    check_keys(loc, sample, ("size", "scale", "seed"), ("dataset", "sample"))
    study.sample = {"size": int_of(loc, sample.get("size", 32), ("dataset", "sample", "size"), minimum=16),
                    "scale": number_of(loc, sample.get("scale", 0.2), ("dataset", "sample", "scale")),
                    "seed": int_of(loc, sample.get("seed", 0), ("dataset", "sample", "seed"))}


SELECTION_KEYS = ("select_by", "check_every", "patience")


def _source(loc: Located, name: str, value: Any) -> SourceSpec:
    path = ("sources", name)
    table = table_of(loc, value, path)
    check_keys(loc, table, (*SOURCE_KINDS, "args", "fit_epochs", "pool", *SELECTION_KEYS), path)
    kinds = [k for k in SOURCE_KINDS if k in table]
    if len(kinds) != 1:
        raise loc.error(path, f"give exactly one of {', '.join(SOURCE_KINDS)} (found {len(kinds)})")
    kind = kinds[0]
    target = string_of(loc, table[kind], (*path, kind))
    if kind == "path":
        target = str((loc.file.parent / target).resolve())
    for key in ("args", "fit_epochs") if kind in ("path", "augment") else ():
        if key in table:
            raise loc.error((*path, key), f"a {kind} source takes no {key}")
    spec = SourceSpec(name, kind, target, dict(table_of(loc, table.get("args", {}), (*path, "args"))))
    if "fit_epochs" in table:
        spec.fit_epochs = int_of(loc, table["fit_epochs"], (*path, "fit_epochs"), minimum=1)
    for key in SELECTION_KEYS if kind != "generator" else ():
        if key in table:
            raise loc.error((*path, key), f"a {kind} source takes no {key} (it is for generator sources)")
    if "select_by" in table:
        spec.select_by = string_of(loc, table["select_by"], (*path, "select_by"))
    for key in ("check_every", "patience"):
        if key in table:
            setattr(spec, key, int_of(loc, table[key], (*path, key), minimum=1))
    spec.pool = number_of(loc, table.get("pool", 1.0), (*path, "pool"))
    if spec.pool < 1:
        raise loc.error((*path, "pool"), f"{spec.pool} must be at least 1 (a multiple of the most any cell asks for)")
    return spec


def _axes(study: Study, table: dict) -> None:
    loc = study.located
    check_keys(loc, table, AXES, ("axes",))
    axes: dict[str, list[Any]] = {}
    axes["real"] = [canonical_real(loc, v, ("axes", "real", i)) for i, v in enumerate(as_list(table.get("real", [1.0]), ("axes", "real")))]
    axes["synthetic"] = [canonical_synthetic(loc, v, ("axes", "synthetic", i))
                         for i, v in enumerate(as_list(table.get("synthetic", [0]), ("axes", "synthetic")))]
    axes["synthetic_classes"] = [canonical_classes(loc, v, ("axes", "synthetic_classes", i))
                                 for i, v in enumerate(as_list(table.get("synthetic_classes", ["all"]), ("axes", "synthetic_classes")))]
    axes["source"] = names_of(loc, table.get("source", list(study.sources)), ("axes", "source"))
    axes["augment"] = names_of(loc, table.get("augment", ["none"]), ("axes", "augment"))
    axes["classifier"] = names_of(loc, table.get("classifier", ["cnn-basic"]), ("axes", "classifier"))
    for key, values in axes.items():
        if not values and not (key == "source" and not any(axes["synthetic"])):
            raise loc.error(("axes", key), "is empty; give at least one value")
        seen = [repr(v) for v in values]
        for i, text in enumerate(seen):
            if text in seen[:i]:
                raise loc.error(("axes", key, i), "is given twice")
    for i, name in enumerate(axes["source"]):
        if name not in study.sources:
            raise loc.error(("axes", "source", i), f"no source named {name!r}; sources are {', '.join(study.sources) or 'none'}")
    if any(axes["synthetic"]) and not axes["source"]:
        raise loc.error(("axes", "synthetic"), "asks for synthetic images but no [sources.NAME] is declared")
    study.axes = axes


def _selective(study: Study, table: dict) -> dict[str, Any]:
    loc, axes = study.located, study.axes
    check_keys(loc, table, SELECTIVE_KEYS, ("selective",))
    amounts = [a for a in axes["synthetic"] if a]
    chosen = {
        "real": canonical_real(loc, table["real"], ("selective", "real")) if "real" in table else axes["real"][0],
        "synthetic": canonical_synthetic(loc, table["synthetic"], ("selective", "synthetic")) if "synthetic" in table
        else (amounts[0] if amounts else None),
        "source": string_of(loc, table["source"], ("selective", "source")) if "source" in table else (axes["source"] or [None])[0],
        "augment": string_of(loc, table.get("augment", axes["augment"][0]), ("selective", "augment")),
        "classifier": string_of(loc, table.get("classifier", axes["classifier"][0]), ("selective", "classifier")),
        "candidates": names_of(loc, table["candidates"], ("selective", "candidates")) if "candidates" in table else None,
    }
    if not chosen["synthetic"] or chosen["synthetic"] == "balance":
        raise loc.error(("selective", "synthetic"), "needs an amount per class (e.g. 0.2): tried one class at a time")
    if chosen["source"] not in study.sources:
        raise loc.error(("selective", "source"), f"no source named {chosen['source']!r}")
    return chosen


def _published(loc: Located, value: Any, path: Path_) -> dict[str, Any]:
    table = table_of(loc, value, path)
    check_keys(loc, table, ("label", "metric", "values"), path)
    for key in ("label", "metric", "values"):
        if key not in table:
            raise loc.error(path, f"needs {key!r}")
    entries = []
    for i, item in enumerate(as_list(table["values"], (*path, "values"))):
        item = table_of(loc, item, (*path, "values", i))
        where = {k: v for k, v in item.items() if k != "value"}
        check_keys(loc, where, AXES, (*path, "values", i))
        canonical = {"real": canonical_real, "synthetic": canonical_synthetic, "synthetic_classes": canonical_classes}
        where = {k: canonical[k](loc, v, (*path, "values", i, k)) if k in canonical else v for k, v in where.items()}
        entries.append({"where": where, "value": number_of(loc, item.get("value"), (*path, "values", i, "value"))})
    return {"label": string_of(loc, table["label"], (*path, "label")), "metric": string_of(loc, table["metric"], (*path, "metric")),
            "values": entries}


def train_options(loc: Located, value: Any, path: Path_) -> dict[str, Any]:
    table = table_of(loc, value, path)
    check_keys(loc, table, tuple(TRAIN_KEYS), path)
    for key, item in table.items():
        types = TRAIN_KEYS[key]
        if isinstance(item, bool) != (bool in types) or not isinstance(item, types):
            raise loc.error((*path, key), f"{item!r}: expected {_KIND[types[-1]]}")
    if "weights" in table:
        table = {**table, "weights": str((loc.file.parent / table["weights"]).resolve())}
    return dict(table)
