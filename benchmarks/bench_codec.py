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

Cases: the sample phantoms at 128 and 256 px, and the chest X-rays of ../shared/data at
224 px (skipped with a reason when absent), all grey.

    python benchmarks/bench_codec.py                 # every case (over an hour on 2 cores)
    python benchmarks/bench_codec.py --quick         # 128 px sample only, small and short: checks
                                                     # the pipeline; its learned figures mean little
    python benchmarks/bench_codec.py --cases chest224 --device cuda
    python benchmarks/bench_codec.py --distortion ms-ssim   # learned codecs fitted for MS-SSIM
"""

from __future__ import annotations

import argparse
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


def run_case(name: str, dataset: Path, work: Path, args: argparse.Namespace) -> list[str]:
    from synthmed.compress.bd_rate import bd_rate
    from synthmed.compress.job import compress_dataset
    from synthmed.compress.report import MEASURES
    from synthmed.registry import list_codecs

    available = set(list_codecs())
    classical = [c for c in CLASSICAL if c.split("=")[0] in available]
    learned = [f"{codec}={','.join(map(str, args.qualities))}" for codec in args.learned]
    started = time.perf_counter()
    report = compress_dataset(
        dataset, work / f"{name}.smc", codecs=[*classical, *LOSSLESS, *learned], splits=["test"],
        fit_epochs=None if args.steps else args.epochs, fit_steps=args.steps, refine_steps=args.refine_steps,
        distortion=args.distortion, device=args.device, seed=0, overwrite=True,
    )
    elapsed = time.perf_counter() - started
    # Rate and distortion are compared on the means over the images of each set.
    results = [{**r, **{key: r[key]["mean"] for key in MEASURES}} for r in report["results"]]
    side = report["image_size"][0]
    print(f"\n== {name}: {report['images']} test images, {side} px grey, {elapsed:.0f} s in all", flush=True)
    print(f"{'set':24} {'bpp':>7} {'PSNR':>7} {'MS-SSIM':>8} {'enc img/s':>10} {'dec img/s':>10} {'fit s':>6}")
    for r in results:
        psnr = "exact" if r["psnr"] is None else f"{r['psnr']:.2f}"
        ms = "-" if r["ms_ssim"] is None else f"{r['ms_ssim']:.4f}"
        fit = "-" if r["fit_s"] is None else f"{r['fit_s']:.0f}"
        print(f"{r['set']:24} {r['bpp']:7.3f} {psnr:>7} {ms:>8} {1 / r['encode_s']:10.1f} {1 / r['decode_s']:10.1f} {fit:>6}")

    lines = [f"{name} ({side} px, {report['images']} test images): BD-rate of each learned codec, % "
             f"(negative = fewer bits at equal quality; range = the quality both curves cover)"]
    lossy = list(dict.fromkeys(r["codec"] for r in results if not r["lossless"] and r["fit_s"] is None))
    for codec in args.learned:
        shown = f"{codec} ({args.distortion})"  # what its models were fitted to lower
        for anchor in lossy:
            cells = []
            for metric, unit in (("psnr", "PSNR"), ("ms_ssim", "MS-SSIM")):
                result = bd_rate(curve(results, anchor, metric), curve(results, codec, metric))
                if result.percent is None:
                    cells.append(f"at equal {unit}: n/a ({result.reason})")
                else:
                    cells.append(f"at equal {unit}: {result.percent:+6.1f} % ({result.low:.1f}-{result.high:.1f} dB)")
            verdict = ""
            if anchor in ("jpeg", "webp"):
                # The target is judged at each metric on its own: an MSE-fitted codec may meet it
                # at equal PSNR and miss it at equal MS-SSIM, and the line says which.
                judged = []
                for metric, unit in (("psnr", "PSNR"), ("ms_ssim", "MS-SSIM")):
                    percent = bd_rate(curve(results, anchor, metric), curve(results, codec, metric)).percent
                    judged.append(f"{unit} " + ("n/a" if percent is None else "met" if percent <= TARGET else "MISSED"))
                verdict = "  [target <= -20 %: " + ", ".join(judged) + "]"
            lines.append(f"  {shown} vs {anchor:9} " + "; ".join(cells) + verdict)
    best = {r["codec"]: r for r in results if r["lossless"]}
    raw_bits = 8 * (2 if report["bit_depth"] == 16 else 1)
    lines.append("  lossless: " + ", ".join(f"{c} {r['bpp']:.3f} bpp ({raw_bits / r['bpp']:.2f}x)" for c, r in best.items()))
    learned_rows = [r for r in results if r["fit_s"] is not None]
    if learned_rows:
        speeds = {c: [r for r in results if r["codec"] == c] for c in dict.fromkeys(r["codec"] for r in results)}
        lines.append("  encode/decode images/s (median over qualities): " + ", ".join(
            f"{c} {np.median([1 / r['encode_s'] for r in rs]):.0f}/{np.median([1 / r['decode_s'] for r in rs]):.0f}"
            for c, rs in speeds.items()))
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
    parser.add_argument("--chest-images", type=int, nargs=2, metavar=("TRAIN", "TEST"), default=None,
                        help=f"chest X-rays to fit on and to code (default {CASES['chest224'][2][0]} "
                             f"{CASES['chest224'][2][1]}; fewer for a shorter run)")
    add_threads_option(parser)
    args = parser.parse_args()
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
    print(f"bench_codec: learned {args.learned} fitted for {args.distortion} at qualities {args.qualities}, {budget}, {refine} refinement steps, "
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
