"""JPEG XL, AVIF and JPEG-LS in `synthmed compress`: round trips, real payloads, 16 bits, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthmed.compress import bitstream
from synthmed.data import Dataset, DatasetWriter
from synthmed.data.imageio import decode_png

imagecodecs = pytest.importorskip("imagecodecs")

LOSSY = {"jpegxl": 75, "avif": 60}
LOSSLESS = ("jpegxl-lossless", "jpegls")


def _grey_dataset(path: Path, *, dtype=np.uint8, size: int = 24) -> Path:
    """Smooth gradients plus noise (what a codec meets in an X-ray), train and test rows."""
    rng = np.random.default_rng(3)
    peak = np.iinfo(dtype).max
    yy, xx = np.mgrid[0:size, 0:size] / size
    with DatasetWriter(path, classes=["a", "b"], command="test") as writer:
        for i in range(6):
            base = 0.5 + 0.3 * np.sin(3 * xx + i) * np.cos(2 * yy) + rng.normal(0, 0.03, (size, size))
            pixels = (base.clip(0, 1) * peak).astype(dtype)
            writer.add_image(pixels, id=f"x{i}", label="ab"[i % 2], split="test" if i % 3 == 0 else "train")
    return path


def _restore(run, source: Path, tmp_path: Path, codec: str) -> tuple[dict, Path, Path]:
    out, restored = tmp_path / f"{codec}.smc", tmp_path / f"{codec}-restored"
    result = run("compress", source, "-o", out, "--codec", codec, "-q")
    assert result.code == 0, result.err
    result = run("compress", "--decode", out, "-o", restored, "-q")
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())["results"]
    assert len(report) == 1
    return report[0], out, restored


def _pairs(source: Path, restored: Path):
    twins = {r["id"]: r for r in Dataset.open(restored).rows}
    for row in Dataset.open(source).rows:
        yield decode_png(source / row["file_name"]), decode_png(restored / twins[row["id"]]["file_name"])


@pytest.mark.parametrize("codec", LOSSLESS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_codecs_round_trip_bit_exact(codec, dtype, run, tmp_path):
    source = _grey_dataset(tmp_path / "data", dtype=dtype)
    result, _, restored = _restore(run, source, tmp_path, codec)
    assert result["lossless"] and result["exact_images"] == result["images"] == 2 and result["psnr"]["mean"] is None
    assert Dataset.open(restored).bit_depth == (16 if dtype == np.uint16 else 8)
    for original, decoded in _pairs(source, restored):
        assert decoded.dtype == original.dtype and np.array_equal(decoded, original)


@pytest.mark.parametrize("codec", sorted(LOSSY))
def test_lossy_codecs_round_trip_through_decode(codec, run, tmp_path):
    source = _grey_dataset(tmp_path / "data")
    quality = LOSSY[codec]
    out, restored = tmp_path / "out", tmp_path / "restored"
    assert run("compress", source, "-o", out, "--codec", f"{codec}={quality}", "-q").code == 0
    result = json.loads((out / "report.json").read_text())["results"][0]
    assert result["set"] == f"{codec}-q{quality}" and not result["lossless"]
    assert 25 < result["psnr"]["mean"] < 60 and result["exact_images"] == 0
    assert run("compress", "--decode", out, "-o", restored, "-q").code == 0
    rows = {r["id"]: r for r in Dataset.open(restored).rows}
    assert {r["codec_quality"] for r in rows.values()} == {str(quality)}
    # What --decode wrote is what the library decodes from the payload inside the stream file.
    for stream in sorted((out / "streams").rglob("*.smb")):
        header, payload = bitstream.unpack(stream.read_bytes())
        assert (header.codec, header.quality, header.channels) == (codec, quality, 1)
        library = (imagecodecs.jpegxl_decode if codec == "jpegxl" else imagecodecs.avif_decode)(payload)
        restored_pixels = decode_png(restored / rows[stream.stem]["file_name"])
        assert np.array_equal(np.squeeze(library), restored_pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_codecs_store_pure_noise(dtype):
    """Incompressible images grow a little; JPEG-LS once failed on them (output buffer too small)."""
    from synthmed.compress.imagecodecs_codecs import jpegls_codec, jpegxl_lossless_codec

    noise = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (224, 224), dtype=dtype)
    for codec in (jpegls_codec(), jpegxl_lossless_codec()):
        payload = codec.encode(noise, quality=None)
        assert np.array_equal(codec.decode(payload, quality=None, shape=noise.shape, dtype=noise.dtype), noise)


def test_payloads_are_the_real_formats(run, tmp_path):
    source = _grey_dataset(tmp_path / "data")
    out = tmp_path / "out"
    codecs = ["jpegxl=50", "jpegxl-lossless", "avif=50", "jpegls"]
    assert run("compress", source, "-o", out, "--splits", "test", *[a for c in codecs for a in ("--codec", c)], "-q").code == 0
    checks = {
        "jpegxl-q50": imagecodecs.jpegxl_check,
        "jpegxl-lossless": imagecodecs.jpegxl_check,
        "avif-q50": imagecodecs.avif_check,
        "jpegls": lambda data: data[:2] == b"\xff\xd8" and b"\xff\xf7" in data,  # SOI, and SOF55 (JPEG-LS)
    }
    for set_name, check in checks.items():
        stream = next((out / "streams" / set_name).rglob("*.smb"))
        _, payload = bitstream.unpack(stream.read_bytes())
        assert check(payload), set_name


def test_jpegxl_keeps_sixteen_bits_lossy(run, tmp_path):
    source = _grey_dataset(tmp_path / "deep", dtype=np.uint16)
    out, restored = tmp_path / "out", tmp_path / "restored"
    assert run("compress", source, "-o", out, "--codec", "jpegxl=90", "-q").code == 0
    assert run("compress", "--decode", out, "-o", restored, "-q").code == 0
    for original, decoded in _pairs(source, restored):
        assert decoded.dtype == np.uint16
        assert 0 < np.abs(decoded.astype(int) - original).mean() < 0.05 * 65535


def test_avif_refuses_sixteen_bits_naming_the_codecs_that_take_them(run, tmp_path):
    source = _grey_dataset(tmp_path / "deep", dtype=np.uint16)
    result = run("compress", source, "-o", tmp_path / "out", "--codec", "avif", "--codec", "jpegls", "-q")
    assert result.code == 2
    assert "codec avif stores only 8-bit" in result.err and "jpegls" in result.err
    assert not (tmp_path / "out").exists()


def test_quality_out_of_range_and_lossless_quality_are_refused(run, tmp_path):
    source = _grey_dataset(tmp_path / "data")
    result = run("compress", source, "-o", tmp_path / "a", "--codec", "jpegxl=100", "-q")
    assert result.code == 2 and "out of range for codec jpegxl (1 to 99)" in result.err
    result = run("compress", source, "-o", tmp_path / "b", "--codec", "jpegls=5", "-q")
    assert result.code == 2 and "lossless" in result.err


def test_new_codecs_sit_in_the_rate_distortion_report(run, tmp_path):
    source = _grey_dataset(tmp_path / "data", size=48)
    out = tmp_path / "out"
    codecs = ["jpeg=30,75", "jpegxl=30,75", "avif=30,75", "jpegls", "png"]
    assert run("compress", source, "-o", out, *[a for c in codecs for a in ("--codec", c)], "-q").code == 0
    results = {r["set"]: r for r in json.loads((out / "report.json").read_text())["results"]}
    assert {"jpegxl-q30", "jpegxl-q75", "avif-q30", "avif-q75", "jpegls"} <= set(results)
    for codec in ("jpegxl", "avif"):
        low, high = results[f"{codec}-q30"], results[f"{codec}-q75"]
        assert low["bpp"]["mean"] < high["bpp"]["mean"] and low["psnr"]["mean"] < high["psnr"]["mean"]  # quality means quality
    assert results["jpegls"]["exact_images"] == results["jpegls"]["images"] > 0
    assert (out / "rate_distortion.png").stat().st_size > 1000


def test_codecs_are_registered(fresh_plugins):
    from synthmed.registry import get_entry, list_codecs

    assert {"jpegxl", "jpegxl-lossless", "avif", "jpegls"} <= set(list_codecs())
    entry = get_entry("codec", "jpegxl")
    assert entry.info.learned is False and entry.factory().needs_fit is False
