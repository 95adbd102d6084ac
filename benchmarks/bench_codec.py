"""Learned codecs against the classical codecs a user would pick: BD-rate at equal PSNR and at
equal MS-SSIM, with encode/decode images/s beside them.

What a careful user would otherwise run: JPEG (libjpeg, optimised Huffman tables), WebP
(method 6), JPEG 2000 (OpenJPEG), JPEG XL (libjxl), AVIF (libaom, speed 6) for lossy storage,
and PNG, JPEG XL lossless and JPEG-LS (CharLS) for archives. Every codec goes through the same
`synthmed compress` code (synthmed.compress.job.compress_dataset) on the same test images, so
the terms are equal: bpp is the real `.smb` file size with its header for every codec, quality
is measured on the decoded pixels, every encoder runs on one thread, and times are wall-clock
per image on this process. The learned codecs are fitted on each dataset's train split first
(fit time printed; nothing downloaded).

BD-rate (synthmed.compress.bd_rate): the mean bitrate difference at equal quality over the
quality range both curves cover, cubic fit in log rate (Bjontegaard). Negative = the learned
codec needs fewer bits. Target: <= -20 % against JPEG and WebP.

Seeds (`--seeds N`): a learned codec's BD-rate moves with the seed of its fit (two seeds of one
short fit were 11 % apart), so one fit cannot tell differences of ~10 % apart. With N > 1 every
learned codec is fitted N times (seeds 0..N-1, each into its own output folder; the classical
codecs are deterministic and coded once) and each BD-rate is printed as the median over the
seeds with its range (min..max) beside it: a difference smaller than the ranges is noise. The
target is judged on the median, and the line says how many seeds meet it; a seed whose curves
cannot be compared (n/a) is left out of the median and counted as not meeting it. Encode/decode
images/s of a learned codec: the median over the seeds.

Cases: the sample phantoms at 128 and 256 px, and the chest X-rays of ../shared/data at
224 px (skipped with a reason when absent), all grey.

    python benchmarks/bench_codec.py                 # every case (over an hour on 2 cores)
    python benchmarks/bench_codec.py --quick         # 128 px sample only, small and short: checks
                                                     # the pipeline; its learned figures mean little
    python benchmarks/bench_codec.py --cases chest224 --device cuda
    python benchmarks/bench_codec.py --distortion ms-ssim   # learned codecs fitted for MS-SSIM
    python benchmarks/bench_codec.py --seeds 3       # median and range over 3 fits per learned codec
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import add_threads_option, apply_threads, shared_data

CHEST = shared_data("chest-xray-kermany-224")
CLASSICAL = ["jpeg=10,20,30,50,75,90", "webp=10,30,50,75,90", "jpeg2000", "jpegxl", "avif"]
LOSSLESS = ["png", "jpegxl-lossless", "jpegls"]
TARGET = -20.0  # % BD-rate against JPEG and WebP
# (dataset, side, sample scale or chest (train, test) counts)
CASES = {
    "sample128": ("sample", 128, 0.12),
    "sample256": ("sample", 256, 0.06),
    "chest224": ("chest", 224, (480, 100)),
}


def sample_dataset(root: Path, *, size: int, scale: float) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(root / f"sample{size}", size=size, scale=scale, seed=0)


def chest_dataset(root: Path, *, size: int, train: int, test: int) -> Path | None:
    """An evenly spread grey subset of the chest X-rays (both classes) as a synthmed dataset."""
    from PIL import Image

    from synthmed.data import DatasetWriter

    out = root / f"chest{size}"
    classes = ["NORMAL", "PNEUMONIA"]
    with DatasetWriter(out, classes=classes, command="bench_codec") as writer:
        for split, count in (("train", train), ("test", test)):
            for label in classes:
                files = sorted((CHEST / split / label).glob("*.jp*g"))
                step = max(1, len(files) // (count // 2))
                for path in files[::step][: count // 2]:
                    with Image.open(path) as image:
                        image = image.convert("L")
                        if image.size != (size, size):
                            image = image.resize((size, size), Image.Resampling.LANCZOS)
                        writer.add_image(np.asarray(image), id=path.stem, label=label, split=split, subject=path.stem)
    return out


def curve(results: list[dict], codec: str, metric: str) -> list[tuple[float, float]]:
    from synthmed.compress.bd_rate import ms_ssim_db

    rows = [r for r in results if r["codec"] == codec and not r["lossless"]]
    if metric == "psnr":
        return [(r["bpp"], r["psnr"]) for r in rows]
    return [(r["bpp"], ms_ssim_db(r["ms_ssim"])) for r in rows]


def spread(percents: list[float | None], *, target: float = TARGET) -> dict:
    """One BD-rate over seeds: median, range (low..high), seeds, how many are n/a and how many meet `target`.

    A seed whose BD-rate is n/a (None: its curves cannot be compared) is left out of the median
    and the range, and counted as not meeting the target."""
    known = [p for p in percents if p is not None]
    return {"median": statistics.median(known) if known else None, "low": min(known, default=None),
            "high": max(known, default=None), "seeds": len(percents), "na": len(percents) - len(known),
            "met": sum(p <= target for p in known)}


def spread_text(stats: dict, *, target: float | None = None) -> str:
    """`median -21.3 % (range -25.0..-18.1, 2/3 seeds <= -20 %)`; the count only with `target`."""
    if stats["median"] is None:
        return f"n/a in all {stats['seeds']} seeds"
    notes = [f"range {stats['low']:+.1f}..{stats['high']:+.1f}"]
    if target is not None:
        notes.append(f"{stats['met']}/{stats['seeds']} seeds <= {target:.0f} %")
    if stats["na"]:
        notes.append(f"{stats['na']}/{stats['seeds']} n/a")
    return f"median {stats['median']:+.1f} % (" + ", ".join(notes) + ")"


def judged(percent: float | None) -> str:
    return "n/a" if percent is None else "met" if percent <= TARGET else "MISSED"


def print_sets(results: list[dict]) -> None:
    for r in results:
        psnr = "exact" if r["psnr"] is None else f"{r['psnr']:.2f}"
        ms = "-" if r["ms_ssim"] is None else f"{r['ms_ssim']:.4f}"
        fit = "-" if r["fit_s"] is None else f"{r['fit_s']:.0f}"
        print(f"{r['set']:24} {r['bpp']:7.3f} {psnr:>7} {ms:>8} {1 / r['encode_s']:10.1f} {1 / r['decode_s']:10.1f} {fit:>6}")


def run_case(name: str, dataset: Path, work: Path, args: argparse.Namespace) -> list[str]:
    from synthmed.compress.bd_rate import bd_rate
    from synthmed.compress.job import compress_dataset
    from synthmed.compress.report import MEASURES
    from synthmed.registry import list_codecs

    available = set(list_codecs())
    classical = [c for c in CLASSICAL if c.split("=")[0] in available]
    learned = [f"{codec}={','.join(map(str, args.qualities))}" for codec in args.learned]
    started = time.perf_counter()
    reports = []
    for seed in range(args.seeds):
        # Seed 0 codes the classical codecs too (deterministic: once); every seed has its own folder.
        out = work / (f"{name}.smc" if args.seeds == 1 else f"{name}-seed{seed}.smc")
        reports.append(compress_dataset(
            dataset, out, codecs=[*classical, *LOSSLESS, *learned] if seed == 0 else learned, splits=["test"],
            fit_epochs=None if args.steps else args.epochs, fit_steps=args.steps, refine_steps=args.refine_steps,
            distortion=args.distortion, device=args.device, seed=seed, overwrite=True,
        ))
    elapsed = time.perf_counter() - started
    # Rate and distortion are compared on the means over the images of each set.
    runs = [[{**r, **{key: r[key]["mean"] for key in MEASURES}} for r in report["results"]] for report in reports]
    results, report = runs[0], reports[0]
    side = report["image_size"][0]
    seeds = "" if args.seeds == 1 else f", learned codecs fitted with seeds 0..{args.seeds - 1}"
    print(f"\n== {name}: {report['images']} test images, {side} px grey{seeds}, {elapsed:.0f} s in all", flush=True)
    print(f"{'set':24} {'bpp':>7} {'PSNR':>7} {'MS-SSIM':>8} {'enc img/s':>10} {'dec img/s':>10} {'fit s':>6}")
    print_sets(results)
    for seed, rows in enumerate(runs[1:], 1):
        print(f"-- seed {seed}: the learned sets fitted again")
        print_sets(rows)

    over = "" if args.seeds == 1 else f"; median and range (min..max) over {args.seeds} seeds"
    lines = [f"{name} ({side} px, {report['images']} test images): BD-rate of each learned codec, % "
             f"(negative = fewer bits at equal quality; range = the quality both curves cover{over})"]
    lossy = list(dict.fromkeys(r["codec"] for r in results if not r["lossless"] and r["fit_s"] is None))
    for codec in args.learned:
        shown = f"{codec} ({args.distortion})"  # what its models were fitted to lower
        for anchor in lossy:
            cells, verdicts = [], []
            for metric, unit in (("psnr", "PSNR"), ("ms_ssim", "MS-SSIM")):
                per_seed = [bd_rate(curve(results, anchor, metric), curve(rows, codec, metric)) for rows in runs]
                if args.seeds == 1:
                    result = per_seed[0]
                    if result.percent is None:
                        cells.append(f"at equal {unit}: n/a ({result.reason})")
                    else:
                        cells.append(f"at equal {unit}: {result.percent:+6.1f} % ({result.low:.1f}-{result.high:.1f} dB)")
                    verdicts.append(f"{unit} {judged(result.percent)}")
                    continue
                stats = spread([r.percent for r in per_seed])
                reason = next((r.reason for r in per_seed if r.percent is None), "")
                cells.append(f"at equal {unit}: {spread_text(stats)}" + (f" [n/a: {reason}]" if reason else ""))
                verdicts.append(f"{unit} {judged(stats['median'])}: {spread_text(stats, target=TARGET)}")
            verdict = ""
            if anchor in ("jpeg", "webp"):
                # The target is judged at each metric on its own: an MSE-fitted codec may meet it
                # at equal PSNR and miss it at equal MS-SSIM, and the line says which. Over seeds:
                # on the median, with how many seeds meet it.
                verdict = "  [target <= -20 %: " + ", ".join(verdicts) + "]"
            lines.append(f"  {shown} vs {anchor:9} " + "; ".join(cells) + verdict)
    best = {r["codec"]: r for r in results if r["lossless"]}
    raw_bits = 8 * (2 if report["bit_depth"] == 16 else 1)
    lines.append("  lossless: " + ", ".join(f"{c} {r['bpp']:.3f} bpp ({raw_bits / r['bpp']:.2f}x)" for c, r in best.items()))
    if any(r["fit_s"] is not None for r in results):
        def rate(codec: str, key: str) -> float:  # median over qualities, then over the seeds that coded it
            return float(np.median([np.median([1 / r[key] for r in rows if r["codec"] == codec])
                                    for rows in runs if any(r["codec"] == codec for r in rows)]))

        over = "" if args.seeds == 1 else f"; learned codecs: median of that over {args.seeds} seeds"
        lines.append(f"  encode/decode images/s (median over qualities{over}): " + ", ".join(
            f"{c} {rate(c, 'encode_s'):.0f}/{rate(c, 'decode_s'):.0f}" for c in dict.fromkeys(r["codec"] for r in results)))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="128 px sample only, fewer images and epochs")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=None)
    parser.add_argument("--epochs", type=int, default=None, help="fit epochs per learned quality (instead of --steps)")
    parser.add_argument("--steps", type=int, nargs=2, metavar=("TOP", "WARM"), default=None,
                        help="fit optimiser steps: TOP for the highest quality (from scratch), WARM for each lower "
                             "one (warm-started from the one above)")
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="per-image latent refinement steps when encoding (default: the codec's own)")
    parser.add_argument("--distortion", choices=["mse", "ms-ssim"], default="mse",
                        help="what the learned codecs are fitted (and refined) to lower (default mse)")
    parser.add_argument("--device", default="cpu", help="where the learned codecs are fitted (coding runs on the CPU)")
    parser.add_argument("--learned", nargs="+", default=["learned-hyperprior", "learned-checkerboard"],
                        help="learned codecs to fit (add learned-factorized to compare; doubles the fit time)")
    parser.add_argument("--qualities", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=1,
                        help="fit every learned codec this many times (seeds 0..N-1) and print the median and "
                             "range of each BD-rate over them (default 1: one fit, seed 0)")
    parser.add_argument("--chest-images", type=int, nargs=2, metavar=("TRAIN", "TEST"), default=None,
                        help=f"chest X-rays to fit on and to code (default {CASES['chest224'][2][0]} "
                             f"{CASES['chest224'][2][1]}; fewer for a shorter run)")
    add_threads_option(parser)
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    from synthmed.devices import resolve_device

    threads = apply_threads(args.threads)
    args.device = resolve_device(args.device)
    # 40 epochs of the 431 sample images = 2160 steps per quality: the fitted curve reaches 36 dB
    # (12 epochs stopped at 28.7). Five points: a cubic BD fit takes four, and the top one,
    # fitted from scratch, can fall off the Pareto front (the lower ones start from it).
    args.epochs = args.epochs or (3 if args.quick else 40)
    args.qualities = args.qualities or [3, 4, 5, 6, 7]
    cases = args.cases or (["sample128"] if args.quick else list(CASES))
    budget = (f"{args.steps[0]} steps from scratch, {args.steps[1]} warm-started" if args.steps
              else f"{args.epochs} epochs each")
    refine = "codec default" if args.refine_steps is None else args.refine_steps
    seeds = "" if args.seeds == 1 else f", {args.seeds} seeds each"
    print(f"bench_codec: learned {args.learned} fitted for {args.distortion} at qualities {args.qualities}, {budget}{seeds}, {refine} refinement steps, "
          f"fitted on {args.device} with {threads} torch threads; classical: {', '.join(CLASSICAL + LOSSLESS)}", flush=True)
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in cases:
            kind, side, counts = CASES[name]
            if kind == "sample":
                dataset = sample_dataset(work, size=side, scale=0.03 if args.quick else counts)
            elif not CHEST.is_dir():
                summary.append(f"{name}: skipped: {CHEST} is absent (see ../shared/data/README.md)")
                continue
            else:
                train, test = args.chest_images or counts
                dataset = chest_dataset(work, size=side, train=train, test=test)
            summary += run_case(name, dataset, work, args)
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
