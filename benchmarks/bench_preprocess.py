"""Throughput of `synthmed preprocess --workers 2` against a plain single-process Pillow loop.

The alternative a user would otherwise write: open each JPEG, convert to grey, resize to
SIZE px with Lanczos and save a PNG. synthmed does that plus what the loop does not
(labels from file names, duplicate detection, split bookkeeping, metadata.csv, the train
statistics in dataset.json), over 2 worker processes.

    python benchmarks/bench_preprocess.py            # 2000 chest X-rays
    python benchmarks/bench_preprocess.py --quick    # 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "chest-xray-kermany-224"


def pick_files(data: Path, limit: int) -> list[Path]:
    """`limit` files spread evenly over the whole folder (all splits and classes)."""
    files = sorted(p for p in data.rglob("*.jpeg") if p.is_file())
    if limit and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def link_subset(files: list[Path], data: Path, root: Path) -> Path:
    for path in files:
        target = root / path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, target)
    return root


def pillow_loop(files: list[Path], out: Path, size: int) -> float:
    from PIL import Image

    out.mkdir()
    start = time.perf_counter()
    for index, path in enumerate(files):
        with Image.open(path) as image:
            image.convert("L").resize((size, size), Image.Resampling.LANCZOS).save(out / f"{index:06d}.png")
    return time.perf_counter() - start


def synthmed_run(root: Path, out: Path, size: int, workers: int) -> float:
    from synthmed.preprocess.plan import PreprocessConfig
    from synthmed.preprocess.job import preprocess
    from synthmed.preprocess.labels import LabelRules, compile_regex
    from synthmed.preprocess.steps import Steps

    config = PreprocessConfig(
        steps=Steps(size=(size, size)),
        rules=LabelRules(regex=compile_regex("bacteria|virus", "--label-regex"), default_label="NORMAL"),
        workers=workers,
    )
    start = time.perf_counter()
    preprocess([root], out, config)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=2000, help="number of images (0 = all)")
    parser.add_argument("--quick", action="store_true", help="300 images")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent (see ../shared/data/README.md)", file=sys.stderr)
        return 0
    files = pick_files(args.data, 300 if args.quick else args.limit)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = link_subset(files, args.data, scratch / "input")
        baseline = pillow_loop(files, scratch / "pillow", args.size)
        single = synthmed_run(root, scratch / "synthmed-1", args.size, workers=1)
        parallel = synthmed_run(root, scratch / "synthmed-n", args.size, workers=args.workers)
        shutil.rmtree(scratch / "pillow")
    n = len(files)
    print(f"images: {n} chest X-rays (224 px JPEG) -> {args.size} px grey PNG; {os.cpu_count()} CPU cores")
    print(f"plain Pillow loop, 1 process     : {n / baseline:8.1f} images/s")
    print(f"synthmed preprocess --workers 1  : {n / single:8.1f} images/s")
    print(f"synthmed preprocess --workers {args.workers}  : {n / parallel:8.1f} images/s")
    print(f"ratio (synthmed --workers {args.workers} / Pillow loop): {baseline / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
