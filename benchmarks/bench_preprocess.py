"""Throughput of `synthmed preprocess --workers N` against an N-process Pillow pool doing the
same per-image steps.

What a careful user would otherwise run, on equal terms: a `multiprocessing.Pool(N)` whose
workers open each JPEG with Pillow, convert it to grey, optionally crop it to the largest
bright region (Otsu threshold, opening, largest connected component: the scikit-image and
scipy calls `--crop` makes, so the work is the same), resize it to SIZE x SIZE with Lanczos and write a PNG
at the same zlib level synthmed uses. Same process count, same images, same output size,
decode and encode counted on both sides, and both read the same input folder (hard links to
the chosen images where the filesystem allows) and list its files inside their timing, as a
user's script must find its images as `preprocess` does. synthmed also does what the pool does not: labels
from file names, duplicate detection, split bookkeeping, metadata.csv, sha256 of every file
and the train statistics in dataset.json.

Two cases, `resize` (decode, grey, resize, encode) and `crop` (plus the foreground crop),
timed by the wall clock; the runs take turns so a change in the machine's load hits both alike,
and the medians are compared. Target: synthmed's rate >= 0.95x the pool's.

Every run writes into a folder of its own and nothing is deleted before the benchmark ends,
and the turns alternate (pool, synthmed, synthmed, pool, ...; `interleaved(alternate=True)`).
An earlier version removed each run's output right before the next run, so synthmed always ran
just after 2000 files were deleted. On ext4 without a journal (this machine's /tmp) the inode
allocator then skips inodes freed in the last seconds, reading their inode blocks to find out;
one profile put 35-48 % of the perf samples there and synthmed's workers at 15-25 % more CPU
per image than the pool's: a cost of the benchmark's clean-up, charged to one side only.

On a machine other jobs share, wall clocks swing more than the difference measured, so each
case also prints the CPU time per image of one process on each side (the pool's task in a
loop; `preprocess --workers 1`, whose main-process work then counts too) on up to 500 of the
images: what the two cost, whatever the load.

    python benchmarks/bench_preprocess.py            # 2000 chest X-rays, 3 rounds
    python benchmarks/bench_preprocess.py --quick    # 300, 2 rounds
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from common import interleaved, shared_data

DEFAULT_DATA = shared_data("chest-xray-kermany-224")
PNG_LEVEL = 6  # the zlib level of synthmed.data.imageio.encode_png (libspng); the pool keeps Pillow's writer, what a script calls
TARGET = 0.95


def pick_files(data: Path, limit: int) -> list[Path]:
    """`limit` files spread evenly over the whole folder (all splits and classes)."""
    files = sorted(p for p in data.rglob("*.jpeg") if p.is_file())
    if limit and limit < len(files):
        step = len(files) / limit
        files = [files[int(i * step)] for i in range(limit)]
    return files


def link_subset(files: list[Path], data: Path, root: Path) -> Path:
    """The files linked under `root` with their folders: the input folder both sides read. Hard
    links where the filesystem allows (plain files, as a user's folder holds; a symbolic link
    costs every open a second path lookup), else symbolic links."""
    for path in files:
        target = root / path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(os.path.realpath(path), target)
        except OSError:  # another filesystem
            os.symlink(path, target)
    return root


def list_images(root: Path) -> list[Path]:
    """What the user's script starts with, as `preprocess` starts by finding its input files."""
    return sorted(path for path in root.rglob("*.jpeg") if path.is_file())


def _pool_task(task: tuple[Path, Path, int, bool]) -> None:
    import numpy as np
    from PIL import Image

    path, target, size, crop = task
    with Image.open(path) as image:
        grey = image.convert("L")
    if crop:
        # the same skimage/scipy calls a user would write for it (synthmed's, so the work is equal)
        from synthmed.preprocess.steps import foreground_box

        box = foreground_box(np.asarray(grey), threshold=None, margin=0.02)
        if box is not None:
            rows, cols = box
            grey = grey.crop((cols.start, rows.start, cols.stop, rows.stop))
    # Keep the aspect ratio and pad with black, as `preprocess --size` does.
    scale = min(size / grey.width, size / grey.height)
    resized = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                          Image.Resampling.LANCZOS)
    canvas = Image.new("L", (size, size))
    canvas.paste(resized, ((size - resized.width) // 2, (size - resized.height) // 2))
    canvas.save(target, format="PNG", compress_level=PNG_LEVEL)


def pillow_pool(root: Path, out: Path, size: int, workers: int, crop: bool) -> float:
    out.mkdir()
    start = time.perf_counter()
    # The files are listed and the pool started inside the timing: synthmed does both too.
    tasks = [(path, out / f"{index:06d}.png", size, crop) for index, path in enumerate(list_images(root))]
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(_pool_task, tasks, chunksize=16):
            pass
    return time.perf_counter() - start


def synthmed_run(root: Path, out: Path, size: int, workers: int, crop: bool) -> float:
    from synthmed.preprocess.job import preprocess
    from synthmed.preprocess.labels import LabelRules, compile_regex
    from synthmed.preprocess.plan import PreprocessConfig
    from synthmed.preprocess.steps import Steps

    config = PreprocessConfig(
        steps=Steps(size=(size, size), crop=crop),
        rules=LabelRules(regex=compile_regex("bacteria|virus", "--label-regex"), default_label="NORMAL"),
        workers=workers,
    )
    start = time.perf_counter()
    preprocess([root], out, config)
    return time.perf_counter() - start


def cpu_per_image(root: Path, out: Path, size: int, crop: bool, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per image of one process on each side, in turns."""
    folders = fresh_folders(out)
    count = len(list_images(root))

    def pool_loop() -> float:
        target = next(folders)
        target.mkdir()
        start = time.process_time()
        for index, path in enumerate(list_images(root)):
            _pool_task((path, target / f"{index:06d}.png", size, crop))
        return (time.process_time() - start) / count

    def synthmed_inline() -> float:
        start = time.process_time()
        synthmed_run(root, next(folders), size, 1, crop)
        return (time.process_time() - start) / count

    return interleaved({"pool": pool_loop, "synthmed": synthmed_inline}, rounds, alternate=True)


def fresh_folders(parent: Path):
    """parent/run-1, parent/run-2, ...: a new output folder for every run, none removed before
    the end (see the module's docstring for why)."""
    parent.mkdir(exist_ok=True)
    return (parent / f"run-{number}" for number in itertools.count(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=2000, help="number of images (0 = all)")
    parser.add_argument("--quick", action="store_true", help="300 images, 2 rounds")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="processes on both sides")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", choices=["resize", "crop"], default=["resize", "crop"])
    parser.add_argument("--device", default="cpu", help="accepted for gpu.sh; preprocess runs on the CPU")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent (see ../shared/data/README.md)")
        return 0
    files = pick_files(args.data, 300 if args.quick else args.limit)
    rounds = 2 if args.quick else args.rounds
    n = len(files)
    print(f"images: {n} chest X-rays (224 px JPEG) -> {args.size} px grey PNG; {os.cpu_count()} CPU cores; "
          f"{args.workers} processes each side; {rounds} interleaved rounds, wall clock")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = link_subset(files, args.data, scratch / "input")
        for case in args.cases:
            crop = case == "crop"

            folders = fresh_folders(scratch / f"out-{case}")

            def pool_round() -> float:
                return pillow_pool(root, next(folders), args.size, args.workers, crop)

            def synthmed_round() -> float:
                return synthmed_run(root, next(folders), args.size, args.workers, crop)

            times = interleaved({"pool": pool_round, "synthmed": synthmed_round}, rounds, alternate=True)
            pool_times, ours = times["pool"], times["synthmed"]
            pool_s, ours_s = statistics.median(pool_times), statistics.median(ours)
            ratio = pool_s / ours_s
            spread = lambda times: f"{n / max(times):.0f}-{n / min(times):.0f}"  # noqa: E731
            print(f"[{case}] Pillow pool ({args.workers} processes)        : {n / pool_s:7.1f} images/s "
                  f"(range {spread(pool_times)})")
            print(f"[{case}] synthmed preprocess --workers {args.workers}     : {n / ours_s:7.1f} images/s "
                  f"(range {spread(ours)})")
            verdict = "met" if ratio >= TARGET else "MISSED"
            print(f"[{case}] ratio synthmed / pool = {ratio:.2f}x  (target >= {TARGET}x: {verdict})", flush=True)
            few = files[:: max(1, len(files) // 500)][:500]
            few_root = link_subset(few, args.data, scratch / f"few-{case}")
            cpu = cpu_per_image(few_root, scratch / f"cpu-{case}", args.size, crop, rounds)
            pool_ms, ours_ms = (1000 * statistics.median(cpu[k]) for k in ("pool", "synthmed"))
            print(f"[{case}] CPU per image, one process each ({len(few)} images): pool {pool_ms:.2f} ms, "
                  f"synthmed {ours_ms:.2f} ms; ratio {pool_ms / ours_ms:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
