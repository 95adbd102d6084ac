"""Learned codec vs JPEG: bpp of the learned codec at the PSNR JPEG reaches at quality 75, as a
ratio to JPEG's bpp (target <= 0.8), plus PNG's lossless ratio for reference.

Runs `synthmed.compress.job.compress_dataset` (the code behind `synthmed compress`)
on the test split of (a) the sample phantom dataset and (b) a subset of the chest X-ray
images in ../shared/data (skipped with a message when absent), both grayscale at --size px.
The learned codecs are fitted on each dataset's train split; every bpp is a real file size.

    python benchmarks/bench_codec.py            # a few minutes on 2 CPU cores
    python benchmarks/bench_codec.py --quick    # smaller data, 4 epochs: checks the pipeline,
                                                # its learned-codec ratios mean little
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# ../shared/data of the project root (or of the checkout holding this worktree)
CHEST = next(
    (p / "shared" / "data" / "chest-xray-kermany-224" for p in (REPO.parent, REPO.parent.parent)
     if (p / "shared" / "data" / "chest-xray-kermany-224").is_dir()),
    REPO.parent / "shared" / "data" / "chest-xray-kermany-224",
)
JPEG_QUALITIES = (30, 50, 75, 90)
REFERENCE_QUALITY = 75


def sample_dataset(root: Path, *, size: int, scale: float) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(root / "sample", size=size, scale=scale, seed=0)


def chest_dataset(root: Path, *, size: int, train: int, test: int) -> Path | None:
    """A grayscale subset of the chest X-rays, resized to size x size, as a synthmed dataset."""
    from PIL import Image

    from synthmed.data import DatasetWriter

    if not CHEST.is_dir():
        print(f"chest X-ray part skipped: {CHEST} is absent (see ../shared/data/README.md)")
        return None
    out = root / "chest"
    classes = ["NORMAL", "PNEUMONIA"]
    with DatasetWriter(out, classes=classes, command="bench_codec") as writer:
        for split, count in (("train", train), ("test", test)):
            for label in classes:
                files = sorted((CHEST / split / label).glob("*.jp*g"))
                step = max(1, len(files) // (count // 2))
                for path in files[::step][: count // 2]:
                    with Image.open(path) as image:
                        pixels = np.asarray(image.convert("L").resize((size, size), Image.Resampling.LANCZOS))
                    writer.add_image(pixels, id=path.stem, label=label, split=split, subject=path.stem)
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(bpp, psnr) points that no other point beats on both (less bpp and more PSNR), by bpp.

    A learned model fitted for fewer steps can land below its neighbours (for example the
    first model of a warm-start chain); a user would never pick it, so the curve skips it."""
    points = sorted((b, p) for b, p in points if p is not None)
    front: list[tuple[float, float]] = []
    for bpp, psnr in points:
        if not front or psnr > front[-1][1]:
            front.append((bpp, psnr))
    return front


def bpp_at_psnr(points: list[tuple[float, float]], target: float) -> tuple[float | None, str]:
    """Interpolate log(bpp) linearly in PSNR along the Pareto front of an RD curve."""
    front = pareto_front(points)
    if not front:
        return None, "no points"
    if target < front[0][1]:
        return front[0][0], "upper bound: its lowest-rate point already has a higher PSNR"
    if target > front[-1][1]:
        return None, f"not reached (best {front[-1][1]:.2f} dB at {front[-1][0]:.3f} bpp)"
    for (b0, p0), (b1, p1) in zip(front, front[1:]):
        if p0 <= target <= p1:
            t = 0.0 if p1 == p0 else (target - p0) / (p1 - p0)
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))), "interpolated"
    return front[-1][0], "at the last point"


def psnr_at_bpp(points: list[tuple[float, float]], target: float) -> float | None:
    """PSNR interpolated at a bpp (linear in log bpp) along the Pareto front; None outside it."""
    front = pareto_front(points)
    for (b0, p0), (b1, p1) in zip(front, front[1:]):
        if b0 <= target <= b1:
            t = 0.0 if b1 == b0 else (math.log(target) - math.log(b0)) / (math.log(b1) - math.log(b0))
            return p0 + t * (p1 - p0)
    return None


def run_case(name: str, dataset: Path, work: Path, args: argparse.Namespace) -> list[str]:
    from synthmed.compress.job import compress_dataset
    from synthmed.compress.report import MEASURES

    learned = [f"{codec}={','.join(map(str, args.qualities))}" for codec in args.learned]
    started = time.perf_counter()
    report = compress_dataset(
        dataset,
        work / f"{name}-streams",
        codecs=[f"jpeg={','.join(map(str, JPEG_QUALITIES))}", "png", *learned],
        splits=["test"],
        fit_epochs=args.epochs,
        device=args.device,
        seed=0,
        overwrite=True,
    )
    elapsed = time.perf_counter() - started
    # Rate and distortion are compared on the means over the images of each set.
    results = [{**r, **{key: r[key]["mean"] for key in MEASURES}} for r in report["results"]]
    print(f"\n== {name}: {report['images']} test images, {report['image_size'][0]} px, {elapsed:.0f} s in all")
    print(f"{'set':24} {'bpp':>7} {'PSNR':>7} {'SSIM':>7} {'MS-SSIM':>8} {'enc ms':>7} {'dec ms':>7} {'fit s':>6}")
    for r in results:
        psnr = "exact" if r["psnr"] is None else f"{r['psnr']:.2f}"
        ms = "-" if r["ms_ssim"] is None else f"{r['ms_ssim']:.4f}"
        fit = "-" if r["fit_s"] is None else f"{r['fit_s']:.0f}"
        print(f"{r['set']:24} {r['bpp']:7.3f} {psnr:>7} {r['ssim']:7.4f} {ms:>8} "
              f"{r['encode_s'] * 1e3:7.1f} {r['decode_s'] * 1e3:7.1f} {fit:>6}")
    jpeg = next(r for r in results if r["set"] == f"jpeg-q{REFERENCE_QUALITY}")
    png = next(r for r in results if r["set"] == "png")
    lines = [f"{name}: JPEG q{REFERENCE_QUALITY} = {jpeg['psnr']:.2f} dB at {jpeg['bpp']:.3f} bpp"]
    for codec in args.learned:
        points = [(r["bpp"], r["psnr"]) for r in results if r["codec"] == codec]
        # The whole curve: where along JPEG's qualities the learned codec wins or loses.
        for other in (r for r in results if r["codec"] == "jpeg"):
            bpp, how = bpp_at_psnr(points, other["psnr"])
            ratio = "n/a" if bpp is None else f"{bpp / other['bpp']:.2f}"
            lines.append(f"  {codec} vs {other['set']} ({other['psnr']:.2f} dB, {other['bpp']:.3f} bpp): "
                         f"bpp ratio {ratio} [{how}]")
        bpp, how = bpp_at_psnr(points, jpeg["psnr"])
        if bpp is None:
            lines.append(f"  {codec}: {how} -> loses to JPEG here (target ratio <= 0.8)")
        else:
            ratio = bpp / jpeg["bpp"]
            verdict = "meets" if ratio <= 0.8 else "misses"
            lines.append(f"  {codec}: {bpp:.3f} bpp at {jpeg['psnr']:.2f} dB ({how}) -> ratio to JPEG "
                         f"{ratio:.2f} ({verdict} target <= 0.8)")
        psnr = psnr_at_bpp(points, jpeg["bpp"])
        if psnr is not None:
            lines.append(f"  {codec}: at JPEG's {jpeg['bpp']:.3f} bpp it reaches {psnr:.2f} dB "
                         f"({psnr - jpeg['psnr']:+.2f} dB)")
    lines.append(f"  PNG lossless: {png['bpp']:.3f} bpp = {8 * (1 if report['bit_depth'] == 8 else 2) / png['bpp']:.2f}x "
                 f"smaller than raw; {png['bpp'] / jpeg['bpp']:.2f}x JPEG q{REFERENCE_QUALITY}'s bpp")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer epochs")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--learned", nargs="+", default=["learned-hyperprior"],
                        help="learned codecs to fit (add learned-factorized to compare; doubles the time)")
    parser.add_argument("--qualities", type=int, nargs="+", default=None)
    args = parser.parse_args()
    from synthmed.devices import resolve_device

    args.device = resolve_device(args.device)
    args.epochs = args.epochs or (4 if args.quick else 20)
    args.qualities = args.qualities or ([6, 8] if args.quick else [3, 4, 5, 6, 7, 8])
    scale = 0.05 if args.quick else 0.12
    chest_counts = (160, 40) if args.quick else (480, 120)
    print(f"bench_codec: {args.size} px grayscale, learned {args.learned} at qualities {args.qualities}, "
          f"{args.epochs} epochs, device {args.device}")
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        summary += run_case("sample phantoms", sample_dataset(work, size=args.size, scale=scale), work, args)
        chest = chest_dataset(work, size=args.size, train=chest_counts[0], test=chest_counts[1])
        if chest is not None:
            summary += run_case("chest X-ray", chest, work, args)
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
