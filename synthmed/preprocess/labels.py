"""Where labels, subjects and input splits come from: class folders, a regular expression on the
file name, or a CSV (file,label[,subject][,split]). Everything here works on paths only, so
problems (missing labels, a CSV naming absent files) are found before any image is read."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from synthmed.errors import UsageError

SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


@dataclass(frozen=True)
class InputFile:
    path: Path  # where to read it
    rel: str  # POSIX path relative to its input (prefixed by the input's name when there are several)
    label: str | None = None
    subject: str | None = None
    split: str | None = None


@dataclass
class CsvEntry:
    label: str
    subject: str | None
    split: str | None


@dataclass
class LabelRules:
    """How to label a file from its path; `csv` wins over `regex`, which wins over class folders."""

    regex: re.Pattern[str] | None = None
    default_label: str | None = None
    subject_regex: re.Pattern[str] | None = None
    subjects_per_split: bool = False  # subject ids restart in each input split folder (Kermany chest X-rays)
    csv: dict[Path, CsvEntry] | None = None
    csv_path: Path | None = None

    def describe(self) -> dict:
        if self.csv is not None:
            return {"source": "csv", "file": self.csv_path.name if self.csv_path else None}
        if self.regex is not None:
            return {"source": "regex", "pattern": self.regex.pattern, "default": self.default_label}
        return {"source": "folders"}

    def describe_subjects(self) -> dict:
        return {
            "regex": self.subject_regex.pattern if self.subject_regex else None,
            "per_split": self.subjects_per_split,
        }


def compile_regex(pattern: str | None, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{option} {pattern!r}: not a valid regular expression ({exc})") from None


def _regex_value(pattern: re.Pattern[str], text: str, group: str) -> str | None:
    match = pattern.search(text)
    if match is None:
        return None
    if group in pattern.groupindex:
        return match.group(group)
    return match.group(1) if pattern.groups else match.group(0)


def discover(inputs: list[Path], *, skip: set[Path] = frozenset(), skip_under: Path | None = None) -> list[tuple[Path, str]]:
    """(path, relative name) of every non-hidden file under the inputs, in a stable order.

    Files under `skip_under` (the output folder, when it sits inside an input) are left out."""
    out_dir = skip_under.resolve() if skip_under is not None else None
    # A file found here is real (is_file), so it can only resolve into the output folder when that exists.
    check = bool(skip) or (out_dir is not None and out_dir.exists())
    found: list[tuple[Path, str]] = []
    several = len(inputs) > 1
    for root in inputs:
        if not root.exists():
            raise UsageError(f"input {root} does not exist")
        if root.is_file():
            found.append((root, root.name))
            continue
        prefix = f"{root.resolve().name}/" if several else ""
        for path in sorted(root.rglob("*"), key=lambda path: path.parts):  # what Path ordering compares, faster
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts) or not path.is_file():
                continue
            # Resolving every file costs more than reading a small one; only do it when something could match.
            if check and (path.resolve() in skip or (out_dir is not None and path.resolve().is_relative_to(out_dir))):
                continue
            found.append((path, printable(prefix + relative.as_posix())))
    return found


def printable(name: str) -> str:
    """A file name as text every output can hold: bytes that are not UTF-8 (which Python keeps
    as lone surrogates, unwritable to CSV or JSON) become backslash escapes such as `\\xff`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def split_from_path(rel: str) -> str | None:
    for part in reversed(rel.split("/")[:-1]):
        if part.lower() in SPLIT_ALIASES:
            return SPLIT_ALIASES[part.lower()]
    return None


def label_from_folder(rel: str) -> str | None:
    """The nearest enclosing folder that is not a split folder."""
    for part in reversed(rel.split("/")[:-1]):
        if part.lower() not in SPLIT_ALIASES:
            return part
    return None


def plan_file(path: Path, rel: str, rules: LabelRules) -> InputFile:
    name = rel.rsplit("/", 1)[-1]
    split = split_from_path(rel)
    subject = _regex_value(rules.subject_regex, name, "subject") if rules.subject_regex else None
    if subject and split and rules.subjects_per_split:
        subject = f"{split}-{subject}"
    if rules.csv is not None:
        entry = rules.csv.get(path.resolve())
        if entry is None:
            return InputFile(path, rel, None, subject, split)
        return InputFile(path, rel, entry.label, entry.subject or subject, entry.split or split)
    if rules.regex is not None:
        label = _regex_value(rules.regex, name, "label") or rules.default_label
        return InputFile(path, rel, label, subject, split)
    return InputFile(path, rel, label_from_folder(rel), subject, split)


def read_labels_csv(csv_path: Path, roots: list[Path]) -> dict[Path, CsvEntry]:
    """file,label[,subject][,split] -> {resolved path: entry}; paths relative to an input folder or the CSV."""
    if not csv_path.is_file():
        raise UsageError(f"--labels-csv {csv_path}: no such file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            file_column = next((c for c in ("file", "file_name", "path", "filename") if c in columns), None)
            if file_column is None or "label" not in columns:
                raise UsageError(f"--labels-csv {csv_path}: needs a header with columns file,label[,subject][,split]")
            rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--labels-csv {csv_path}: not readable CSV ({exc})") from None
    bases = [root if root.is_dir() else root.parent for root in roots] + [csv_path.parent]
    entries: dict[Path, CsvEntry] = {}
    missing: list[tuple[int, str]] = []
    for line, row in enumerate(rows, start=2):
        name = row.get(file_column, "")
        if not name:
            raise UsageError(f"--labels-csv {csv_path} line {line}: empty {file_column}")
        if not row.get("label"):
            raise UsageError(f"--labels-csv {csv_path} line {line}: empty label for {name!r}")
        split = row.get("split") or None
        if split is not None and split.lower() not in SPLIT_ALIASES:
            raise UsageError(f"--labels-csv {csv_path} line {line}: split {split!r} is not train, val or test")
        candidates = [Path(name)] if Path(name).is_absolute() else [base / name for base in bases]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            missing.append((line, name))
            continue
        entries[path.resolve()] = CsvEntry(row["label"], row.get("subject") or None, SPLIT_ALIASES[split.lower()] if split else None)
    if missing:
        line, name = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UsageError(
            f"--labels-csv {csv_path} line {line}: file {name!r} does not exist{more} "
            f"(paths are relative to the input folder or to the CSV's folder)"
        )
    if not entries:
        raise UsageError(f"--labels-csv {csv_path}: no rows")
    return entries
