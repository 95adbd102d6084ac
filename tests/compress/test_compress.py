"""`synthmed compress`: bitstream files, codecs, report, decoding, and every Bad input case."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthmed.compress import bitstream
from synthmed.data import Dataset, DatasetWriter, partial_path
from synthmed.data.imageio import decode_png
from tiny import textured_images


def _stream_rows(out: Path, set_name: str | None = None) -> list[dict[str, str]]:
    with open(out / "streams.csv", newline="", encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if set_name is None or r["set"] == set_name]


def _assert_usage_error(result, *words: str) -> None:
    assert result.code == 2, result.err
    # stderr may hold a progress bar before the error; the error itself is one line, the last.
    lines = result.err.strip().splitlines()
    assert [line for line in lines if "error" in line] == lines[-1:], result.err
    assert lines[-1].startswith("synthmed: error: "), result.err
    for word in words:
        assert word in lines[-1], lines[-1]
    assert result.out == ""


@pytest.fixture(scope="module")
def classical_output(sample_dataset, tmp_path_factory) -> Path:
    """png + jpeg at quality 50 over every split of the sample dataset (read only)."""
    from synthmed.cli import main

    out = tmp_path_factory.mktemp("compress") / "streams"
    code = main(["compress", str(sample_dataset), "-o", str(out), "--codec", "png", "--codec", "jpeg=50", "-q"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_images() -> np.ndarray:
    return textured_images(16)


# --------------------------------------------------------------------------- bitstream format


def _header(**overrides) -> bitstream.Header:
    fields = dict(codec="jpeg", codec_version=1, quality=75, channels=1, bit_depth=8, height=4, width=5)
    return bitstream.Header(**{**fields, **overrides})


def test_bitstream_round_trip_and_checks():
    data = bitstream.pack(_header(), b"payload-bytes")
    header, payload = bitstream.unpack(data)
    assert header == _header() and payload == b"payload-bytes"
    assert header.shape == (4, 5) and header.dtype == np.uint8

    with pytest.raises(bitstream.BitstreamError, match="truncated"):
        bitstream.unpack(data[:-3])
    with pytest.raises(bitstream.BitstreamError, match="truncated"):
        bitstream.unpack(data[:12])
    altered = bytearray(data)
    altered[-1] ^= 0x01
    with pytest.raises(bitstream.BitstreamError, match="checksum"):
        bitstream.unpack(bytes(altered))
    newer = bytearray(data)
    newer[4] = bitstream.FORMAT_VERSION + 1
    with pytest.raises(bitstream.BitstreamError, match="format version 2 is not supported"):
        bitstream.unpack(bytes(newer))
    with pytest.raises(bitstream.BitstreamError, match="not a synthmed bitstream"):
        bitstream.unpack(b"\x89PNG\r\n\x1a\n" + data)
    with pytest.raises(bitstream.BitstreamError, match="written by codec 'jpeg', not 'webp'"):
        bitstream.check_codec(header, codec="webp", codec_version=1, where="x")
    with pytest.raises(bitstream.BitstreamError, match="stream version 1 is not supported"):
        bitstream.check_codec(header, codec="jpeg", codec_version=2, where="x")


# --------------------------------------------------------------------------- learned codecs


@pytest.mark.parametrize("name", ["learned-factorized", "learned-hyperprior", "learned-checkerboard"])
def test_learned_codec_decodes_exactly_what_the_encoder_reconstructed(name, tiny_images, tmp_path):
    from synthmed.registry import create_codec

    codec = create_codec(name, hidden=8, latent=8) if name == "learned-factorized" else create_codec(name, hidden=8, latent=8, hyper=4)
    codec.fit(tiny_images, quality=8, epochs=2, device="cpu", seed=0)
    image = tiny_images[0, 0]
    payload = codec.encode(image, quality=8)
    decoded = codec.decode(payload, quality=8, shape=image.shape, dtype=image.dtype)
    assert decoded.dtype == np.uint8 and decoded.shape == (16, 16)
    assert np.array_equal(decoded, codec.reconstruct(image, quality=8))
    assert codec.encode(image, quality=8) == payload  # deterministic

    # A model read back from safetensors decodes the same stream to the same pixels.
    codec.save(tmp_path / "model", quality=8)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["kind"] == "codec" and config["name"] == name and config["quality"] == 8
    fresh = create_codec(name)
    fresh.load(tmp_path / "model", quality=8)
    assert fresh.model_tag(8) == codec.model_tag(8)
    assert np.array_equal(fresh.decode(payload, quality=8, shape=image.shape, dtype=image.dtype), decoded)

    # 16-bit images go through the same model and come back as 16-bit.
    deep = image.astype(np.uint16) * 257
    deep_payload = codec.encode(deep, quality=8)
    deep_decoded = codec.decode(deep_payload, quality=8, shape=deep.shape, dtype=np.uint16)
    assert deep_decoded.dtype == np.uint16
    assert np.array_equal(deep_decoded, codec.reconstruct(deep, quality=8))


def test_learned_models_centre_pixels_and_fit_from_scratch_starts_with_noisy_latents(tiny_images, tmp_path):
    import torch

    from synthmed.compress.models import INPUT_OFFSET, _quantised
    from synthmed.registry import create_codec

    # Noise during the first steps of a fit from scratch, rounding (straight-through) afterwards.
    y = torch.linspace(-3, 3, 101)
    assert torch.equal(_quantised(y, 0.25, False), torch.round(y - 0.25) + 0.25)
    noisy = _quantised(y, 0.25, True)
    assert not torch.equal(noisy, torch.round(noisy)) and (noisy - y).abs().max() <= 0.5

    codec = create_codec("learned-hyperprior", hidden=8, latent=8, hyper=4)
    codec.fit(tiny_images, quality=8, epochs=5, device="cpu", seed=0)
    assert codec.fit_records[8]["steps"] == 5 and codec.fit_records[8]["noisy_steps"] == 1
    codec.fit(tiny_images, quality=7, epochs=5, device="cpu", seed=0, warm_start=8)
    assert codec.fit_records[7]["noisy_steps"] == 0

    # The analysis sees centred pixels; the synthesis adds the offset back.
    model = codec.models[8]
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.encode_latent(x), model.analysis(x - INPUT_OFFSET))
        assert torch.equal(model.decode_latent(torch.zeros(1, 8, 4, 4)), model.synthesis(torch.zeros(1, 8, 4, 4)) + 0.5)

    # A model of the uncentred stream version 2 is refused: it would decode to other pixels.
    codec.save(tmp_path / "model", quality=8)
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    assert config["stream_version"] == 3
    config_path.write_text(json.dumps({**config, "stream_version": 2}))
    from synthmed.errors import UsageError

    with pytest.raises(UsageError, match="stream version 2"):
        create_codec("learned-hyperprior").load(tmp_path / "model", quality=8)


def test_learned_codec_compress_decode_and_reuse_model(sample_dataset, run, tmp_path):
    out = tmp_path / "learned"
    args = ["--codec", "learned-factorized=8", "--splits", "test", "--fit-epochs", "1", "--device", "cpu", "-q"]
    result = run("compress", sample_dataset, "-o", out, *args)
    assert result.code == 0, result.err
    assert result.out.strip() == str(out)
    assert (out / "models" / "learned-factorized-q8" / "model.safetensors").is_file()
    rows = _stream_rows(out)
    assert len(rows) == len(Dataset.open(sample_dataset).select(split="test"))

    # --model reuses the fitted model: byte-identical streams.
    again = tmp_path / "again"
    assert run("compress", sample_dataset, "-o", again, *args, "--model", out).code == 0
    for row in rows:
        assert (again / row["stream"]).read_bytes() == (out / row["stream"]).read_bytes()

    restored = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", restored, "-q")
    assert result.code == 0, result.err
    dataset = Dataset.open(restored)
    dataset.verify()
    by_id = {r["id"]: r for r in dataset.rows}
    assert set(by_id) == {r["id"] for r in rows}
    from synthmed import __version__

    assert {r["codec"] for r in dataset.rows} == {f"learned-factorized@{__version__}"}
    assert {r["codec_quality"] for r in dataset.rows} == {"8"}

    from synthmed.compress.learned import factorized_codec

    codec = factorized_codec()
    codec.load(out / "models" / "learned-factorized-q8", quality=8)
    original_root = Dataset.open(sample_dataset)
    for row in rows[:5]:
        original = decode_png(original_root.root / f"{row['split']}/{row['label']}/{row['id']}.png")
        expected = codec.reconstruct(original, quality=8)
        assert np.array_equal(decode_png(restored / by_id[row["id"]]["file_name"]), expected)


# --------------------------------------------------------------------------- classical codecs and report


def test_classical_compress_report_and_lossless_decode(classical_output, sample_dataset, run, tmp_path):
    out = classical_output
    report = json.loads((out / "report.json").read_text())
    results = {r["set"]: r for r in report["results"]}
    assert set(results) == {"png", "jpeg-q50"}
    assert report["split"] == "test"
    test_rows = Dataset.open(sample_dataset).select(split="test")
    assert results["png"]["images"] == len(test_rows)
    assert results["png"]["exact_images"] == len(test_rows) and results["png"]["psnr"]["mean"] is None
    assert results["png"]["ssim"]["mean"] == pytest.approx(1.0)
    assert 15 < results["jpeg-q50"]["psnr"]["mean"] < 60 and results["jpeg-q50"]["exact_images"] == 0
    assert 0 < results["jpeg-q50"]["ssim"]["mean"] < 1
    assert results["jpeg-q50"]["ms_ssim_scales"] == 2  # 32 px: only two MS-SSIM scales fit
    assert results["jpeg-q50"]["bpp"]["mean"] < results["png"]["bpp"]["mean"]
    assert (out / "rate_distortion.png").stat().st_size > 1000

    # bpp comes from the real file sizes, header included.
    rows = _stream_rows(out, "jpeg-q50")
    assert len(rows) == 265
    for row in rows[:20]:
        size = (out / row["stream"]).stat().st_size
        assert int(row["bytes"]) == size
        assert float(row["bpp"]) == pytest.approx(8 * size / (32 * 32), rel=1e-5)
        header, _ = bitstream.unpack((out / row["stream"]).read_bytes())
        assert (header.codec, header.quality, header.height, header.width, header.bit_depth) == ("jpeg", 50, 32, 32, 8)
    test_bpp = [float(r["bpp"]) for r in rows if r["split"] == "test"]
    assert results["jpeg-q50"]["bpp"]["mean"] == pytest.approx(np.mean(test_bpp), rel=1e-4)
    assert results["jpeg-q50"]["bpp"]["values"] == pytest.approx(test_bpp, rel=1e-5)
    # synthmed.stats.summarize, as every report, with the mean that rate-distortion compares
    assert set(results["jpeg-q50"]["psnr"]) == {"median", "q1", "q3", "n", "values", "mean"}

    # PNG decodes back to the very pixels, with the rows carried through.
    restored = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", restored, "--codec", "png", "-q")
    assert result.code == 0, result.err
    assert result.out.strip() == str(restored)
    original = Dataset.open(sample_dataset)
    decoded = Dataset.open(restored)
    assert decoded.classes == original.classes
    restored_rows = {r["id"]: r for r in decoded.rows}
    for row in original.rows:
        twin = restored_rows[row["id"]]
        assert (twin["split"], twin["label"], twin["subject"], twin["source"]) == (
            row["split"], row["label"], row["subject"], row["source"])
        assert np.array_equal(decode_png(restored / twin["file_name"]), decode_png(sample_dataset / row["file_name"]))


def test_jpeg_stream_decodes_like_pillow(classical_output):
    from PIL import Image
    import io

    row = _stream_rows(classical_output, "jpeg-q50")[0]
    _, payload = bitstream.unpack((classical_output / row["stream"]).read_bytes())
    with Image.open(io.BytesIO(payload)) as image:
        assert image.format == "JPEG" and image.size == (32, 32)


def test_sixteen_bit_png_round_trip(tmp_path, run):
    source = _sixteen_bit_dataset(tmp_path / "deep")
    out = tmp_path / "out"
    assert run("compress", source, "-o", out, "--codec", "png", "-q").code == 0
    restored = tmp_path / "restored"
    assert run("compress", "--decode", out, "-o", restored, "-q").code == 0
    assert Dataset.open(restored).bit_depth == 16
    for row in Dataset.open(source).rows:
        restored_pixels = decode_png(restored / row["file_name"])
        assert restored_pixels.dtype == np.uint16
        assert np.array_equal(restored_pixels, decode_png(source / row["file_name"]))


def _sixteen_bit_dataset(path: Path) -> Path:
    rng = np.random.default_rng(1)
    with DatasetWriter(path, classes=["a"], command="test") as writer:
        for i, split in enumerate(["train", "train", "test"]):
            writer.add_image(rng.integers(0, 65535, (16, 16), dtype=np.uint16), id=f"x{i}", label="a", split=split)
    return path


# --------------------------------------------------------------------------- Bad input


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "streams-copy"
    shutil.copytree(folder, target)
    return target


def _first_stream(out: Path, set_name: str) -> Path:
    return out / _stream_rows(out, set_name)[0]["stream"]


def test_truncated_stream_is_refused(classical_output, run, tmp_path):
    out = _copy(classical_output, tmp_path)
    stream = _first_stream(out, "jpeg-q50")
    stream.write_bytes(stream.read_bytes()[:-10])
    target = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", target, "--codec", "jpeg=50")
    _assert_usage_error(result, str(stream), "truncated")
    assert not target.exists() and not partial_path(target).exists()


def test_altered_stream_is_refused(classical_output, run, tmp_path):
    out = _copy(classical_output, tmp_path)
    stream = _first_stream(out, "png")
    data = bytearray(stream.read_bytes())
    data[len(data) // 2] ^= 0x40
    stream.write_bytes(bytes(data))
    target = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", target, "--codec", "png")
    _assert_usage_error(result, str(stream), "checksum mismatch")
    assert not target.exists() and not partial_path(target).exists()


def test_stream_of_another_codec_is_refused(classical_output, run, tmp_path):
    out = _copy(classical_output, tmp_path)
    png_stream = _first_stream(out, "png")
    jpeg_row = next(r for r in _stream_rows(out, "jpeg-q50") if png_stream.name in r["stream"])
    png_stream.write_bytes((out / jpeg_row["stream"]).read_bytes())
    target = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", target, "--codec", "png")
    _assert_usage_error(result, str(png_stream), "written by codec 'jpeg', not 'png'")
    assert not target.exists() and not partial_path(target).exists()


def test_stream_of_another_format_version_is_refused(classical_output, run, tmp_path):
    out = _copy(classical_output, tmp_path)
    stream = _first_stream(out, "png")
    data = bytearray(stream.read_bytes())
    data[4] = 9
    stream.write_bytes(bytes(data))
    target = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", target, "--codec", "png")
    _assert_usage_error(result, str(stream), "format version 9 is not supported")
    assert not target.exists()


def test_stream_of_another_learned_model_is_refused(sample_dataset, run, tmp_path):
    args = ["--codec", "learned-factorized=8", "--splits", "test", "--fit-epochs", "1", "--device", "cpu", "-q"]
    first, second = tmp_path / "a", tmp_path / "b"
    assert run("compress", sample_dataset, "-o", first, *args).code == 0
    assert run("compress", sample_dataset, "-o", second, *args, "--seed", "1").code == 0
    stream = _first_stream(first, "learned-factorized-q8")
    stream.write_bytes(_first_stream(second, "learned-factorized-q8").read_bytes())
    target = tmp_path / "restored"
    result = run("compress", "--decode", first, "-o", target)
    _assert_usage_error(result, str(stream), "another learned-factorized model")
    assert not target.exists()


def test_stream_of_another_codec_version_is_refused(classical_output, run, tmp_path):
    from dataclasses import replace

    out = _copy(classical_output, tmp_path)
    stream = _first_stream(out, "png")
    header, payload = bitstream.unpack(stream.read_bytes())
    stream.write_bytes(bitstream.pack(replace(header, codec_version=2), payload))  # valid checksum
    target = tmp_path / "restored"
    result = run("compress", "--decode", out, "-o", target, "--codec", "png")
    _assert_usage_error(result, str(stream), "png stream version 2 is not supported")
    assert not target.exists() and not partial_path(target).exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--codec", "jpeg", "--quality", "200"], ["--quality 200", "jpeg", "1 to 95"]),
        (["--codec", "learned-hyperprior", "--quality", "0"], ["--quality 0", "learned-hyperprior", "1 to 8"]),
        (["--codec", "jpeg=50,101"], ["--quality 101"]),
        (["--codec", "png", "--quality", "5"], ["png", "lossless"]),
        (["--codec", "jpeg", "--quality", "high"], ["--quality 'high'"]),
        (["--codec", "nope"], ["unknown codec 'nope'"]),
        (["--codec", "jpeg", "--splits", "holdout"], ["--splits", "holdout"]),
    ],
)
def test_bad_options_are_refused_before_any_work(sample_dataset, run, tmp_path, args, words):
    out = tmp_path / "out"
    result = run("compress", sample_dataset, "-o", out, *args)
    _assert_usage_error(result, *words)
    assert not out.exists() and not partial_path(out).exists()


def test_image_larger_than_the_codec_supports_is_refused(tmp_path, run):
    wide = tmp_path / "wide"
    with DatasetWriter(wide, classes=["a"], command="test") as writer:
        writer.add_image(np.zeros((8, 16400), dtype=np.uint8), id="w0", label="a", split="test")
    out = tmp_path / "out"
    result = run("compress", wide, "-o", out, "--codec", "webp=50")
    _assert_usage_error(result, "8x16400", "webp", "16383")
    assert not out.exists() and not partial_path(out).exists()


def test_sixteen_bit_input_is_refused_by_eight_bit_codecs(tmp_path, run):
    source = _sixteen_bit_dataset(tmp_path / "deep")
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--codec", "jpeg=75")
    _assert_usage_error(result, "16-bit", "jpeg", "png")
    assert not out.exists() and not partial_path(out).exists()


def test_decoding_into_an_existing_folder_is_refused(classical_output, run, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = run("compress", "--decode", classical_output, "-o", existing, "--codec", "png")
    _assert_usage_error(result, str(existing), "exists")
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert not partial_path(existing).exists()


def test_decode_needs_a_set_when_several_are_present(classical_output, run, tmp_path):
    target = tmp_path / "restored"
    result = run("compress", "--decode", classical_output, "-o", target)
    _assert_usage_error(result, "png, jpeg-q50", "--codec")
    assert not target.exists()


def test_decode_of_a_folder_that_is_not_a_compress_output(sample_dataset, run, tmp_path):
    target = tmp_path / "restored"
    result = run("compress", "--decode", sample_dataset, "-o", target)
    _assert_usage_error(result, "not a compress output")


def test_dataset_and_decode_together_are_refused(sample_dataset, classical_output, run, tmp_path):
    result = run("compress", sample_dataset, "--decode", classical_output, "-o", tmp_path / "x")
    _assert_usage_error(result, "either")


def test_compressing_into_an_existing_folder_is_refused(sample_dataset, run, tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    result = run("compress", sample_dataset, "-o", existing, "--codec", "png")
    _assert_usage_error(result, str(existing), "exists")
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_jpeg2000_keeps_sixteen_bits(tmp_path, run):
    from synthmed.compress.pillow import jpeg2000_available

    if not jpeg2000_available():
        pytest.skip("this Pillow has no OpenJPEG (JPEG 2000)")
    source = _sixteen_bit_dataset(tmp_path / "deep")
    out = tmp_path / "out"
    assert run("compress", source, "-o", out, "--codec", "jpeg2000=60", "-q").code == 0
    result = json.loads((out / "report.json").read_text())["results"][0]
    assert result["set"] == "jpeg2000-q60" and result["images"] == 1
    restored = tmp_path / "restored"
    assert run("compress", "--decode", out, "-o", restored, "-q").code == 0
    assert Dataset.open(restored).bit_depth == 16
    row = Dataset.open(source).rows[0]
    assert decode_png(restored / row["file_name"]).dtype == np.uint16


def test_codecs_are_registered(fresh_plugins):
    from synthmed.registry import list_codecs

    names = list_codecs()
    assert {"learned-factorized", "learned-hyperprior", "png", "jpeg"} <= set(names)


def test_an_inline_codec_plugin_runs_through_compress(sample_dataset, run, tmp_path):
    """A third-party codec only implements the interface; compress, report and decode follow."""
    import synthmed.plugins
    from synthmed.hookspecs import hookimpl

    class InvertCodec:
        name = "invert"
        stream_version = 1
        lossless = True
        quality_range = None
        default_qualities = (0,)
        max_side = 1024
        bit_depths = (8,)

        def encode(self, pixels, *, quality):
            return (255 - pixels).tobytes()

        def decode(self, payload, *, quality, shape, dtype):
            return 255 - np.frombuffer(payload, dtype=dtype).reshape(shape)

        def model_tag(self, quality):
            return bytes(8)

    class Plugin:
        @hookimpl
        def register_codecs(self, register):
            register("invert", InvertCodec)

    pm = synthmed.plugins.get_plugin_manager()
    pm.register(Plugin(), name="invert-plugin")
    try:
        out = tmp_path / "out"
        assert run("compress", sample_dataset, "-o", out, "--codec", "invert", "--splits", "test", "-q").code == 0
        result = json.loads((out / "report.json").read_text())["results"][0]
        assert result["exact_images"] == result["images"]
        header_bytes = len(bitstream.pack(_header(codec="invert", quality=None), b""))
        assert result["bpp"]["mean"] == pytest.approx(8 + 8 * header_bytes / (32 * 32))
        restored = tmp_path / "restored"
        assert run("compress", "--decode", out, "-o", restored, "-q").code == 0
    finally:
        pm.unregister(name="invert-plugin")


def test_learned_fit_for_a_steps_budget_takes_exactly_that_many_steps_and_repeats(tiny_images, monkeypatch):
    import torch

    from synthmed.errors import UsageError
    from synthmed.registry import create_codec

    taken = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: (taken.append(1), original(self, *a, **k))[1])
    reported = []
    # 8 images in batches of 3: 3 steps an epoch, so a budget of 5 ends inside the second epoch.
    codec = create_codec("learned-hyperprior", hidden=8, latent=8, hyper=4, batch_size=3)
    codec.fit(tiny_images, quality=8, steps=5, device="cpu", seed=0, progress=reported.append)
    assert len(taken) == 5 and sum(reported) == 5
    record = codec.fit_records[8]
    assert record["steps"] == 5 and record["budget"] == "steps" and record["epochs"] == round(5 / 3, 3)
    assert record["noisy_steps"] == 1  # NOISY_FRACTION of the budget, from scratch

    # The same seed gives the same weights; an epochs budget still counts whole epochs.
    again = create_codec("learned-hyperprior", hidden=8, latent=8, hyper=4, batch_size=3)
    again.fit(tiny_images, quality=8, steps=5, device="cpu", seed=0)
    assert again.model_tag(8) == codec.model_tag(8)
    taken.clear()
    again.fit(tiny_images, quality=7, epochs=2, device="cpu", seed=0, warm_start=8)
    assert len(taken) == 6 and again.fit_records[7]["budget"] == "epochs" and again.fit_records[7]["epochs"] == 2
    for budget in ({}, {"epochs": 1, "steps": 1}, {"steps": 0}):
        with pytest.raises(UsageError):
            codec.fit(tiny_images, quality=8, device="cpu", seed=0, **budget)


def test_latent_refinement_lowers_the_coded_cost_and_still_decodes_exactly(tiny_images):
    import torch

    from synthmed.compress.learned import LAMBDAS
    from synthmed.compress.refine import refine_latents
    from synthmed.registry import create_codec

    codec = create_codec("learned-hyperprior", hidden=8, latent=8, hyper=4)
    codec.fit(tiny_images, quality=6, steps=20, device="cpu", seed=0)
    model = codec.models[6]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = codec._pad(torch.from_numpy(tiny_images[:1].astype(np.float32) / 255))
    _, _, record = refine_latents(model, x, lmbda=LAMBDAS[6], steps=30)
    assert record["cost_after"] < record["cost_before"]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # the decoder is unchanged

    image = tiny_images[0, 0]

    def coded_cost(payload: bytes) -> float:
        decoded = codec.decode(payload, quality=6, shape=image.shape, dtype=image.dtype)
        return 8 * len(payload) / image.size + LAMBDAS[6] * float(np.mean((decoded - image.astype(float)) ** 2))

    plain = codec.encode(image, quality=6)
    codec.refine_steps = 30
    refined = codec.encode(image, quality=6)
    assert refined != plain and coded_cost(refined) < coded_cost(plain)
    assert np.array_equal(codec.decode(refined, quality=6, shape=image.shape, dtype=image.dtype),
                          codec.reconstruct(image, quality=6))
    assert codec.encode(image, quality=6) == refined  # deterministic


def test_compress_fit_steps_and_refine_steps_options(sample_dataset, run, tmp_path):
    out = tmp_path / "steps"
    args = ["--codec", "learned-factorized=7,8", "--splits", "test", "--fit-steps", "3,2", "--refine-steps", "2",
            "--device", "cpu", "-q"]
    result = run("compress", sample_dataset, "-o", out, *args)
    assert result.code == 0, result.err
    fits = {q: json.loads((out / "models" / f"learned-factorized-q{q}" / "config.json").read_text())["fit"] for q in (7, 8)}
    assert fits[8]["steps"] == 3 and fits[8]["warm_start"] is None
    assert fits[7]["steps"] == 2 and fits[7]["warm_start"] == 8
    report = json.loads((out / "report.json").read_text())
    assert report["images"] > 0
    _assert_usage_error(run("compress", sample_dataset, "-o", tmp_path / "bad", *args, "--fit-epochs", "1"),
                        "--fit-epochs", "--fit-steps")
    _assert_usage_error(run("compress", sample_dataset, "-o", tmp_path / "bad", *args[:4], "--fit-steps", "3,2,1"),
                        "--fit-steps")
