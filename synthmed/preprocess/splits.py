"""Split assignment and exact duplicates.

Generated splits are stratified by class and grouped: images that share a subject, or that
are pixel-identical, form one group and land in one split. scikit-learn's
StratifiedGroupKFold only makes k equal folds and GroupShuffleSplit does not stratify, so
groups are assigned here by a small seeded greedy rule: per class, groups in a seeded order go
to the split furthest below its target count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from synthmed.seeding import derive_seed

SPLIT_ORDER = ("train", "val", "test")
# When a duplicate crosses input splits, the copy in the first of these is kept: evaluation
# sets stay as published and the train copy (which would leak) is dropped.
KEEP_PRIORITY = ("test", "val", "train")


@dataclass
class Item:
    """One processed image, as the split logic sees it."""

    id: str
    label: str
    digest: str  # sha256 of the stored PNG: equal exactly for pixel-identical images
    subject: str | None
    split: str | None


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def parse_fractions(spec: str) -> tuple[float, float, float]:
    from synthmed.errors import UsageError
    from synthmed.parsing import number_list

    try:
        values = number_list(spec, "--split", example="0.8,0.1,0.1") or []
    except UsageError:
        values = []
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0 or abs(sum(values) - 1.0) > 1e-6:
        raise UsageError(f"--split-fractions {spec!r}: expected three fractions train,val,test that sum to 1, e.g. 0.8,0.1,0.1")
    return values[0], values[1], values[2]


def groups_of(items: list[Item]) -> dict[str, str]:
    """item id -> group key: items sharing a subject or identical pixels are one group."""
    union = _UnionFind()
    for item in items:
        union.find(f"item:{item.id}")
        if item.subject:
            union.union(f"item:{item.id}", f"subject:{item.subject}")
        union.union(f"item:{item.id}", f"pixels:{item.digest}")
    return {item.id: union.find(f"item:{item.id}") for item in items}


def assign_splits(items: list[Item], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """item id -> split, stratified by class and grouped by subject and duplicates."""
    group_of = groups_of(items)
    members: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        members[group_of[item.id]].append(item)
    by_label: dict[str, list[str]] = defaultdict(list)
    for group, group_items in members.items():
        # A group is stratified under its most common label (ties: the first in name order).
        counts = Counter(item.label for item in group_items)
        label = min(counts, key=lambda name: (-counts[name], name))
        by_label[label].append(group)
    split_of_group: dict[str, str] = {}
    for label in sorted(by_label):
        groups = sorted(by_label[label])
        order = np.random.default_rng(derive_seed(seed, "split", label)).permutation(len(groups))
        total = sum(len(members[g]) for g in groups)
        targets = [f * total for f in fractions]
        have = [0, 0, 0]
        for index in order:
            group = groups[int(index)]
            open_splits = [k for k in range(3) if fractions[k] > 0]
            k = max(open_splits, key=lambda k: (targets[k] - have[k], -k))
            split_of_group[group] = SPLIT_ORDER[k]
            have[k] += len(members[group])
    return {item.id: split_of_group[group_of[item.id]] for item in items}


@dataclass
class DuplicateReport:
    groups: list[list[str]]  # ids of identical images, one list per digest with more than one image
    dropped: dict[str, str]  # id -> the split whose copy was kept instead


def resolve_duplicates(items: list[Item], split_of: dict[str, str]) -> DuplicateReport:
    """Find pixel-identical images; where copies sit in different splits keep only the held-out ones."""
    by_digest: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_digest[item.digest].append(item)
    groups, dropped = [], {}
    for same in by_digest.values():
        if len(same) < 2:
            continue
        groups.append([item.id for item in same])
        splits = {split_of[item.id] for item in same}
        if len(splits) > 1:
            keep = next(s for s in KEEP_PRIORITY if s in splits)
            for item in same:
                if split_of[item.id] != keep:
                    dropped[item.id] = keep
    return DuplicateReport(groups, dropped)
