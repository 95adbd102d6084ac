"""The built-in readers of `preprocess`: Pillow formats, DICOM (pydicom), NIfTI (nibabel), MedMNIST .npz.

`synthmed.default_plugins.readers` answers the `read_image` hook with `read_builtin`.

Each reader returns `RawImage`s whose pixels are not yet rescaled; `meta["range"]` says which
input values map to black and white (a window), `meta["invert"]` asks for MONOCHROME1 inversion.
Nothing that identifies a patient goes into a RawImage: DICOM subjects are a digest of the
PatientID that `preprocess` renumbers before writing.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from synthmed.data.imageio import RawImage
from synthmed.errors import UsageError
from synthmed.preprocess.reading import UnreadableFile

PILLOW_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".ima"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
SPLIT_NAMES = ("train", "val", "test")


def read_builtin(path: Path, options) -> list[RawImage] | None:
    """The images of a file in a format read here, or None for other files."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return read_nifti(path, options)
    suffix = path.suffix.lower()
    if suffix in PILLOW_SUFFIXES:
        return read_pillow(path)
    if suffix == ".npz":
        return read_npz(path)
    if suffix in DICOM_SUFFIXES or (suffix == "" and _has_dicom_preamble(path)):
        return read_dicom(path, options)
    return None


def _has_dicom_preamble(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(132)
    return head[128:132] == b"DICM"


# --------------------------------------------------------------------------- Pillow


def read_pillow(path: Path) -> list[RawImage]:
    """PNG/JPEG/TIFF/BMP, 8 or 16 bit, L/RGB/palette; every page of a multi-page TIFF."""
    from PIL import Image, ImageSequence

    images = []
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x its pixel limit; any image over the limit is refused.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnreadableFile(
                f"refused by Pillow's decompression bomb guard: more than {Image.MAX_IMAGE_PIXELS} pixels"
            ) from None
        with opened:
            frames = list(ImageSequence.Iterator(opened)) if getattr(opened, "n_frames", 1) > 1 else [opened]
            for index, frame in enumerate(frames):
                frame.load()
                images.append(RawImage(_pillow_pixels(frame), key=f"frame-{index:03d}" if len(frames) > 1 else ""))
    return images


def _pillow_pixels(image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode in ("I", "F"):
        return np.asarray(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("1", "LA", "La"):
        image = image.convert("L")
    elif mode not in ("L", "RGB"):
        image = image.convert("RGB")  # RGBA, CMYK, YCbCr, ...
    if image.mode == "RGB":
        # Grey saved as RGB (most X-ray JPEGs): one plane, found equal before the copy to numpy.
        red, green, blue = image.split()
        plane = red.tobytes()
        if plane == green.tobytes() == blue.tobytes():
            # the bytes in hand: np.asarray(red) would copy the plane out of Pillow once more
            return np.frombuffer(plane, dtype=np.uint8).reshape(image.height, image.width)
    return np.asarray(image)


# --------------------------------------------------------------------------- DICOM


def read_dicom(path: Path, options) -> list[RawImage]:
    """Modality LUT (rescale slope/intercept), VOI window, MONOCHROME1 inversion, one image per frame."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path)
    if "PixelData" not in dataset:
        sop_class = getattr(dataset.get("SOPClassUID"), "name", "unknown SOP class")
        raise UnreadableFile(f"DICOM file without pixel data ({sop_class})")
    pixels = dataset.pixel_array
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    colour = dataset.get("SamplesPerPixel", 1) > 1
    if frames == 1:
        pixels = pixels[None]
    subject = None
    if dataset.get("PatientID"):
        # A digest for grouping only; preprocess replaces it with a running number.
        subject = "dicom-" + hashlib.sha256(str(dataset.PatientID).encode()).hexdigest()[:16]
    images = []
    for index, frame in enumerate(pixels):
        meta: dict = {"format": "dicom", "photometric": photometric, "pseudonymise_subject": True}
        if colour:
            bits = int(dataset.get("BitsStored", 8))
            meta["range"] = (0.0, float(2**bits - 1))
            values = frame
        else:
            values = apply_modality_lut(frame, dataset).astype(np.float32)
            meta["range"] = _dicom_window(dataset, values, options)
            meta["invert"] = photometric == "MONOCHROME1"
        images.append(RawImage(values, key=f"frame-{index:03d}" if frames > 1 else "", subject=subject, meta=meta))
    return images


def _dicom_window(dataset, values: np.ndarray, options) -> tuple[float, float]:
    """(low, high) in modality units: --window, else the file's first VOI window, else percentiles."""
    if options.window is not None:
        centre, width = options.window
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        centre, width = (_first(dataset.WindowCenter), _first(dataset.WindowWidth))
    else:
        low, high = np.percentile(values, options.percentiles)
        return float(low), float(high)
    return float(centre) - float(width) / 2, float(centre) + float(width) / 2


def _first(value) -> float:
    try:
        return float(value[0])
    except TypeError:
        return float(value)


# --------------------------------------------------------------------------- NIfTI


def read_nifti(path: Path, options) -> list[RawImage]:
    """Slices along `options.axis` of the canonical volume; near-empty slices dropped."""
    import nibabel

    image = nibabel.as_closest_canonical(nibabel.load(path))
    shape = image.shape
    if len(shape) == 4 and shape[3] > 1:
        if options.volume_index is None:
            raise UsageError(f"{path}: 4-D NIfTI with {shape[3]} volumes; pass --volume-index K (0 to {shape[3] - 1})")
        if not 0 <= options.volume_index < shape[3]:
            raise UsageError(f"{path}: --volume-index {options.volume_index} is out of range (0 to {shape[3] - 1})")
        volume = np.asarray(image.dataobj[..., options.volume_index], dtype=np.float32)
    elif len(shape) in (3, 4):
        volume = np.asarray(image.dataobj, dtype=np.float32).reshape(shape[:3])
    else:
        raise ValueError(f"NIfTI image of shape {shape}: expected a 3-D or 4-D volume")
    if not 0 <= options.axis <= 2:
        raise UsageError(f"--axis {options.axis}: choose 0, 1 or 2")
    if options.window is not None:
        centre, width = options.window
        low, high = centre - width / 2, centre + width / 2
    else:
        low, high = (float(v) for v in np.percentile(volume, options.percentiles))
    stack = np.moveaxis(volume, options.axis, 0)
    start, stop = options.slices or (None, None)
    indices = range(stack.shape[0])[slice(start, stop)]
    threshold = low + 0.05 * (high - low)
    images = []
    for index in indices:
        # Display orientation: rows run anterior/superior to posterior/inferior.
        plane = np.rot90(stack[index])
        if high <= low or float(np.mean(plane > threshold)) < options.min_foreground:
            continue
        meta = {"format": "nifti", "slice": int(index), "axis": options.axis, "range": (low, high), "subject_is_file": True}
        images.append(RawImage(np.ascontiguousarray(plane), key=f"slice-{index:03d}", meta=meta))
    return images


# --------------------------------------------------------------------------- MedMNIST


def read_npz(path: Path) -> list[RawImage]:
    """MedMNIST-style arrays `<split>_images` / `<split>_labels`; splits and label indices kept."""
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        found = [s for s in SPLIT_NAMES if f"{s}_images" in keys]
        if not found:
            raise ValueError(f"no <split>_images arrays (found {', '.join(sorted(keys)) or 'none'}); expected MedMNIST keys")
        images = []
        for split in found:
            pixels = archive[f"{split}_images"]
            labels = archive[f"{split}_labels"] if f"{split}_labels" in keys else None
            if labels is not None:
                labels = labels.reshape(len(labels), -1)
                if labels.shape[1] != 1:
                    raise ValueError(f"{split}_labels has {labels.shape[1]} columns; multi-label arrays are not supported")
                labels = labels[:, 0]
            for index in range(len(pixels)):
                meta = {"format": "npz", "split": split}
                if pixels.dtype == np.uint8:
                    meta["range"] = (0.0, 255.0)
                if labels is not None:
                    meta["label_index"] = int(labels[index])
                images.append(RawImage(pixels[index], key=f"{split}-{index:05d}", meta=meta))
    return images
