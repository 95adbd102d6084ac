"""The embedded sample dataset: procedurally drawn brain-like MRI phantoms.

Four severity classes named as in the MRI Alzheimer thesis, in its class proportions
(2566 / 1781 / 724 / 49 train images at scale 1). Severity shows as ventricle
enlargement and cortical thinning (a wider CSF gap and deeper sulci). Each subject has
its own anatomy (head shape, rotation, tissue contrast) and its own atrophy, drawn
around its class's mean with a spread that makes neighbouring classes overlap, so the
task is learnable but not trivial. Several axial slices are drawn per subject, and the
train/val/test split is made by subject.

Nothing here is real patient data; it exists so that `make demo` and the tests run
anywhere without downloads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed

CLASSES = ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented")
THESIS_COUNTS = (2566, 1781, 724, 49)
SLICES_PER_SUBJECT = 4
# Every class needs a subject in each of train, val and test.
MIN_IMAGES_PER_CLASS = 3 * SLICES_PER_SUBJECT
ATROPHY_SPREAD = 0.55  # std of a subject's severity around its class, in class units
GENERATOR_TAG = "sample-data@1"


@dataclass(frozen=True)
class Subject:
    id: str
    label_index: int
    split: str
    slices: int


def class_counts(scale: float) -> list[int]:
    """Images per class at `scale` (each at least MIN_IMAGES_PER_CLASS)."""
    return [max(MIN_IMAGES_PER_CLASS, round(count * scale)) for count in THESIS_COUNTS]


def plan_subjects(scale: float, seed: int) -> list[Subject]:
    """Subjects per class with their slice counts, split 70/15/15 by subject."""
    subjects: list[Subject] = []
    number = 0
    for label_index, count in enumerate(class_counts(scale)):
        n_subjects = math.ceil(count / SLICES_PER_SUBJECT)
        slices = [SLICES_PER_SUBJECT] * n_subjects
        slices[-1] = count - SLICES_PER_SUBJECT * (n_subjects - 1)
        rng = np.random.default_rng(derive_seed(seed, "split", label_index))
        order = rng.permutation(n_subjects)
        n_val = max(1, round(0.15 * n_subjects))
        n_test = max(1, round(0.15 * n_subjects))
        split_of = {}
        for rank, k in enumerate(order):
            split_of[int(k)] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
        for k in range(n_subjects):
            number += 1
            subjects.append(Subject(f"sub-{number:05d}", label_index, split_of[k], slices[k]))
    return subjects


def draw_subject(subject: Subject, size: int, seed: int) -> list[np.ndarray]:
    """The (size, size) uint8 slices of one subject."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(derive_seed(seed, "anatomy", subject.id))
    # Subject anatomy.
    semi_x, semi_y = rng.uniform(0.74, 0.84), rng.uniform(0.86, 0.95)
    angle = rng.normal(0.0, 0.12)
    centre = rng.normal(0.0, 0.03, size=2)
    contrast = rng.uniform(0.85, 1.15)
    atrophy = float(np.clip((subject.label_index + rng.normal(0.0, ATROPHY_SPREAD)) / 3.0, -0.1, 1.25))
    sulcus_count = int(rng.integers(7, 12))
    sulcus_phase = rng.uniform(0, 2 * math.pi)
    ventricle_asym = rng.normal(0.0, 0.1)
    noise_sigma = rng.uniform(0.03, 0.06)

    coords = (np.arange(size) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    x = (xx - centre[0]) * cos + (yy - centre[1]) * sin
    y = -(xx - centre[0]) * sin + (yy - centre[1]) * cos
    radius = np.sqrt((x / semi_x) ** 2 + (y / semi_y) ** 2)
    theta = np.arctan2(y, x)

    slices = []
    for z in np.linspace(-0.55, 0.55, subject.slices) + rng.normal(0, 0.05, subject.slices):
        extent = math.sqrt(max(0.2, 1 - 0.7 * z * z))  # the head narrows away from the middle
        r = radius / extent
        gap = 0.03 + 0.10 * atrophy
        sulci = (0.02 + 0.09 * atrophy) * np.abs(np.sin(sulcus_count * theta / 2 + sulcus_phase)) ** 3
        brain_edge = 0.9 - gap - sulci
        image = np.zeros_like(r)
        image[(r >= 0.9) & (r < 1.0)] = 0.92  # skull
        image[r < 0.9] = 0.12  # CSF between skull and brain
        image[r < brain_edge] = 0.55 * contrast  # grey matter
        white = r < brain_edge * (0.74 - 0.06 * atrophy)
        image[white] = 0.78 * contrast
        # Lateral ventricles: two ellipses that grow with atrophy and shrink away from mid-slice.
        v = (0.07 + 0.16 * atrophy) * max(0.0, 1 - 1.3 * abs(z)) * extent
        if v > 0.01:
            for side in (-1, 1):
                vx = x / extent - side * (0.06 + 0.35 * v) * (1 + side * ventricle_asym)
                vy = y / extent + 0.05
                image[(vx / (0.45 * v)) ** 2 + (vy / (1.6 * v)) ** 2 < 1] = 0.1
        # Smooth tissue texture, blur and Rician noise as in magnitude MRI.
        texture = gaussian_filter(rng.normal(0, 1, image.shape), sigma=size / 16)
        image = image * (1 + 0.25 * texture * (image > 0.3))
        image = gaussian_filter(image, sigma=size / 128)
        real = image + rng.normal(0, noise_sigma, image.shape)
        imaginary = rng.normal(0, noise_sigma, image.shape)
        magnitude = np.sqrt(real**2 + imaginary**2)
        slices.append(np.clip(magnitude * 255, 0, 255).astype(np.uint8))
    return slices


def write_sample_dataset(
    out: Path,
    *,
    size: int = 64,
    scale: float = 1.0,
    seed: int = 0,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> Path:
    """Write the sample dataset to `out` and return its path (reported as one task)."""
    from synthmed.data.writing import DatasetWriter
    from synthmed.errors import UsageError

    if not 16 <= size <= 512:
        raise UsageError(f"--size {size}: choose between 16 and 512 pixels")
    if not 0 < scale <= 10:
        raise UsageError(f"--scale {scale}: choose a value in (0, 10]")
    subjects = plan_subjects(scale, seed)
    info = {"description": "synthmed sample data: procedural brain MRI phantoms (not patient data)", "seed": seed}
    with DatasetWriter(out, classes=CLASSES, command="sample-data", overwrite=overwrite, info=info) as writer:
        task = start_task(progress, "drawing phantoms", total=sum(s.slices for s in subjects), unit="img")
        for subject in subjects:
            for index, pixels in enumerate(draw_subject(subject, size, seed)):
                writer.add_image(
                    pixels,
                    id=f"{subject.id}_slice-{index:02d}",
                    label=CLASSES[subject.label_index],
                    split=subject.split,
                    subject=subject.id,
                    seed=seed,
                )
            task(subject.slices)
        task.finish()
    return Path(out)


def total_images(scale: float) -> int:
    return sum(class_counts(scale))
