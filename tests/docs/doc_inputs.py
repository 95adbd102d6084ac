"""The inputs each documentation page names, made tiny in the page's folder before its blocks
run: sample datasets, raw image folders, NIfTI volumes, a MedMNIST array, a trained run, and a
local stand-in for the OpenAI images API (OPENAI_BASE_URL points at it)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

RNG = np.random.default_rng(0)


def _sample(path: Path) -> Path:
    from synthmed.data.sample import write_sample_dataset

    return write_sample_dataset(path, size=16, scale=0.03, seed=0)


def _synthmed(work: Path, env: dict, *args: str) -> None:
    subprocess.run(["synthmed", *args, "--quiet"], cwd=work, env=env, check=True)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _grey(side: int = 24) -> np.ndarray:
    image = np.zeros((side, side), dtype=np.uint8)
    image[4:-4, 4:-4] = RNG.integers(60, 255, (side - 8, side - 8), dtype=np.uint8)
    return image


def _chest_files(root: Path, patients: int = 8, views: int = 2) -> None:
    """Kermany-like names: personN_bacteria|virus_M.jpeg and IM-NNNN-0001.jpeg, NORMAL2-IM-..."""
    for p in range(patients):
        for v in range(views):
            kind = "bacteria" if p % 2 else "virus"
            _png(root / "PNEUMONIA" / f"person{p}_{kind}_{p * 10 + v}.jpeg", _grey())
            _png(root / "NORMAL" / f"IM-{p:04d}-{v + 1:04d}.jpeg", _grey())
            _png(root / "NORMAL" / f"NORMAL2-IM-{p:04d}-{v + 1:04d}.jpeg", _grey())


@contextlib.contextmanager
def readme(work: Path, env: dict):
    _chest_files(work / "xrays")
    for folder in (".home/.zfunc", ".home/.config/fish/completions"):
        (work / folder).mkdir(parents=True)
    for folder in ("completions", "examples"):
        (work / folder).symlink_to(Path(__file__).resolve().parents[2] / folder)
    with openai_server(work, env):
        yield


@contextlib.contextmanager
def openai_server(work: Path, env: dict):
    from synthmed_openai.testing import FakeImagesServer

    key = env.setdefault("OPENAI_API_KEY", "sk-docs")
    with FakeImagesServer(api_key=key, lifetime=600) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        yield server


@contextlib.contextmanager
def plugins_openai(work: Path, env: dict):
    _sample(work / "DATA")
    env["OPENAI_API_KEY"] = "..."  # what the page's `export OPENAI_API_KEY=...` sets
    with openai_server(work, env):
        yield


@contextlib.contextmanager
def with_data(work: Path, env: dict):
    _sample(work / "data")
    yield


@contextlib.contextmanager
def interpolate(work: Path, env: dict):
    _sample(work / "DATA")
    yield


@contextlib.contextmanager
def mix(work: Path, env: dict):
    from training_helpers import derive_dataset

    _sample(work / "real")
    _synthmed(work, env, "interpolate", "real", "-o", "synth", "--autoencoder", "cnn-ae", "--ratio", "0.5")
    for name in ("synth-a", "synth-b"):  # two more synthetic sets, their ids distinct
        derive_dataset(work / "synth", work / name, lambda row, name=name: {**row, "id": f"{name}-{row['id']}"})
    yield


@contextlib.contextmanager
def gradcam(work: Path, env: dict):
    _sample(work / "data")
    (work / "runs").mkdir()
    _synthmed(work, env, "train", "data", "-o", "runs/resnet", "--classifier", "cnn-basic", "--epochs", "1")
    _synthmed(work, env, "interpolate", "data", "-o", "interp", "--autoencoder", "cnn-ae", "--ratio", "0.2")
    _synthmed(work, env, "mix", "data", "interp", "-o", "mixed", "--synthetic", "0.2")
    yield


@contextlib.contextmanager
def preprocess(work: Path, env: dict):
    import nibabel

    for split in ("train", "test"):
        _chest_files(work / "chest_xray" / split, patients=6)
    for split in ("train", "test"):
        _chest_files(work / "xrays" / split, patients=4)
    for label in ("healthy", "retinopathy"):
        for i in range(12):
            rgb = np.zeros((32, 40, 3), dtype=np.uint8)
            rgb[4:-4, 8:-8] = RNG.integers(40, 255, (24, 24, 3), dtype=np.uint8)
            _png(work / "idrid" / label / f"IDRiD_{label}_{i:02d}.jpg", rgb)
    for label in ("control", "lesion"):
        for i in range(6):
            volume = np.zeros((20, 20, 90), dtype=np.float32)
            volume[4:-4, 4:-4, 10:85] = RNG.random((12, 12, 75), dtype=np.float32)
            path = work / "volumes" / label / f"sub-{label}{i}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(path))
    arrays = {}
    for split, count in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = RNG.integers(0, 255, (count, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 2).reshape(-1, 1)
    np.savez(work / "pneumoniamnist.npz", **arrays)
    yield


@contextlib.contextmanager
def study(work: Path, env: dict):
    (work / "examples").symlink_to(Path(__file__).resolve().parents[2] / "examples")
    yield


INPUTS = {
    "study.md": study,
    "README.md": readme,
    "augment.md": with_data,
    "compress.md": with_data,
    "gradcam.md": gradcam,
    "interpolate.md": interpolate,
    "mix.md": mix,
    "preprocess.md": preprocess,
    "plugins-openai.md": plugins_openai,
    "generate.md": lambda work, env: contextlib.nullcontext(),
}
