"""Splits without subject ids: the warning, and a `--subject-regex` guessed from file names.

Without subject ids, images are split one by one, so slices or views of one patient can sit
in train and test: the classifier is then scored on patients it has seen. Many datasets
name files after the patient (`person123_bacteria_456.jpeg`, `IM-0115-0001.jpeg`,
`sub-01_slice-023.png`); when the names share such prefixes, the warning suggests the regex.

The guess: a file name's candidate subject is its start up to the k-th run of digits
(`person123`, `IM-0115`, `NORMAL2-IM-1427`), never the whole name. Names with the same shape
(letters kept, digit runs as \\d+) form a family; a family takes the shortest k at which its
candidates take at least two values (`NORMAL2` alone names a folder, not a patient). The
guess is made only when candidates repeat (some patient has several files) and cover at least
half of the files. No library guesses subject ids from names; this is a hint, never applied.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

MAX_DIGIT_RUNS = 3
_PARTS = re.compile(r"[A-Za-z]+|\d+|[^A-Za-z\d]+")


@dataclass(frozen=True)
class Suggestion:
    regex: str
    subjects: int  # distinct subjects the regex finds among the names
    files: int  # names it matches
    examples: tuple[str, ...]  # a few names that share a subject


def _candidates(stem: str) -> list[str | None]:
    """The stem up to the end of its 1st, 2nd, ... MAX_DIGIT_RUNS-th digit run; None where there
    is no such run or it ends the stem."""
    found: list[str | None] = []
    length = 0
    for part in _PARTS.findall(stem):
        length += len(part)
        if part.isdigit():
            found.append(stem[:length] if length < len(stem) else None)
            if len(found) == MAX_DIGIT_RUNS:
                break
    return found + [None] * (MAX_DIGIT_RUNS - len(found))


def _shape(text: str) -> str:
    return "".join(r"\d+" if part.isdigit() else re.escape(part).replace("\\-", "-") for part in _PARTS.findall(text))


def suggest_subject_regex(names: Sequence[str]) -> Suggestion | None:
    """A `--subject-regex` for file names (with or without folders and extension), or None."""
    stems = [name.rsplit("/", 1)[-1].split(".", 1)[0] for name in names]
    candidates = [_candidates(stem) for stem in stems]  # once per name: the loops below look often
    shapes_of: dict[str, str] = {}
    pending = list(range(len(stems)))
    key_of: dict[int, str] = {}
    shape_of: dict[int, str] = {}
    for k in range(MAX_DIGIT_RUNS):
        families: dict[str, list[int]] = defaultdict(list)
        for i in pending:
            candidate = candidates[i][k]
            if candidate is not None:
                if candidate not in shapes_of:
                    shapes_of[candidate] = _shape(candidate)
                families[shapes_of[candidate]].append(i)
        still = []
        for shape, members in families.items():
            if len({candidates[i][k] for i in members}) >= 2:
                for i in members:
                    key_of[i], shape_of[i] = candidates[i][k], shape
            else:
                still.extend(members)
        pending = still
    if len(key_of) < max(2, len(stems) / 2):
        return None
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in key_of.items():
        groups[key].append(i)
    if len(groups) == len(key_of):
        return None  # every candidate is unique: names do not share a prefix
    shapes = sorted(set(shape_of.values()), key=lambda s: -sum(1 for v in shape_of.values() if v == s))
    shared = max(groups.values(), key=len)
    return Suggestion(f"^({'|'.join(shapes)})", len(groups), len(key_of),
                      tuple(names[i].rsplit("/", 1)[-1] for i in shared[:2]))


def split_warning(without: int, total: int, *, kept: bool, suggestion: Suggestion | None) -> str:
    """The one-line warning of a split made (or kept) without subject ids for some images."""
    share = "no image has" if without == total else f"{without} of {total} images have"
    how = "the input's splits are kept as given" if kept else "split by image"
    message = (f"{how}: {share} a subject id, so slices or views of one patient may sit in train and test")
    if suggestion is not None:
        message += (f"; the file names share prefixes ({', '.join(suggestion.examples)}): try --subject-regex "
                    f"'{suggestion.regex}' ({suggestion.subjects} subjects in {suggestion.files} files)")
    else:
        message += "; give subjects with --subject-regex or a subject column in --labels-csv"
    return message


def subject_grouping(names: Sequence[str], subjects: Sequence[str | None], splits: Sequence[str], *,
                     kept: bool, suggest: bool = True) -> dict:
    """What dataset.json records about how the splits were grouped: `grouped_by_subject`
    (every image has a subject id), the counts, and the warning (None when grouped or when
    there is only one split)."""
    without = [name for name, subject in zip(names, subjects) if not subject]
    several = len(set(splits)) > 1
    warning = None
    if without and several:
        guess = suggest_subject_regex(without) if suggest else None
        warning = split_warning(len(without), len(names), kept=kept, suggestion=guess)
    return {"grouped_by_subject": not without, "subjects": len({s for s in subjects if s}),
            "images_without_subject": len(without), "warning": warning}
