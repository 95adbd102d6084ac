"""Pictures of class activation maps: an overlay per map, a figure per real/synthetic pair.

matplotlib's object API with the Agg canvas (no pyplot): no global figure state, no display.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

COLORMAP = "jet"
HEAT_ALPHA = 0.45


def grayscale(pixels: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8/uint16 -> (H, W) float in [0, 1] (channel mean for colour images)."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    return pixels.astype(np.float32).mean(axis=0) / scale


def _draw(ax, gray: np.ndarray, heat: np.ndarray, title: str):  # noqa: ANN001, ANN202 - matplotlib Axes
    ax.imshow(gray, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    image = ax.imshow(heat, cmap=COLORMAP, alpha=HEAT_ALPHA, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_axis_off()
    return image


def _png(figure) -> bytes:  # noqa: ANN001
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def overlay_png(pixels: np.ndarray, heat: np.ndarray, title: str) -> bytes:
    """The map over the grayscale image, with a colour bar; PNG bytes."""
    from matplotlib.figure import Figure

    # Fixed axes positions: automatic layout costs more than the drawing itself.
    figure = Figure(figsize=(3.6, 3.4), dpi=100)
    ax = figure.add_axes((0.03, 0.02, 0.74, 0.76))
    image = _draw(ax, grayscale(pixels), heat, title)
    figure.colorbar(image, cax=figure.add_axes((0.8, 0.06, 0.04, 0.68)))
    return _png(figure)


def pair_png(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_maps: Sequence[np.ndarray],
    synthetic_maps: Sequence[np.ndarray],
    real_titles: Sequence[str],
    synthetic_titles: Sequence[str],
) -> bytes:
    """Rows = targets, columns = real | synthetic; one shared colour bar; PNG bytes."""
    from matplotlib.figure import Figure

    rows = len(real_titles)
    figure = Figure(figsize=(5.6, 3.0 * rows), dpi=100)
    figure.subplots_adjust(left=0.02, right=0.84, bottom=0.02, top=1 - 0.55 / (3.0 * rows), wspace=0.05, hspace=0.35)
    axes = figure.subplots(rows, 2, squeeze=False)
    image = None
    real_gray, synthetic_gray = grayscale(real), grayscale(synthetic)
    for i in range(rows):
        image = _draw(axes[i][0], real_gray, real_maps[i], real_titles[i])
        _draw(axes[i][1], synthetic_gray, synthetic_maps[i], synthetic_titles[i])
    figure.colorbar(image, cax=figure.add_axes((0.87, 0.1, 0.03, 0.8)))
    return _png(figure)


GRID_IMAGES = 6  # images per class in cam_grid.png


def blend(pixels: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The map coloured and laid over the grayscale image, as one (H, W, 3) uint8 picture."""
    from matplotlib import colormaps

    gray = grayscale(pixels)[..., None]
    colour = colormaps[COLORMAP](np.clip(heat, 0.0, 1.0))[..., :3]
    return np.round(255 * ((1 - HEAT_ALPHA) * gray + HEAT_ALPHA * colour)).astype(np.uint8)


def write_cam_grid(path, dataset, records: Sequence[dict], tmp) -> None:  # noqa: ANN001 - Path, Dataset, Path
    """cam_grid.png: per class, the maps of up to GRID_IMAGES images for the first target."""
    from safetensors.numpy import load_file

    from synthmed import figures
    from synthmed.data.imageio import decode_png, to_chw

    rows_by_id = {row["id"]: row for row in dataset.rows}
    first_target = records[0]["target"] if records else None
    tiles, labels, titles = [], [], []
    for label in dataset.classes:
        chosen = [r for r in records if r["label"] == label and r["target"] == first_target][:GRID_IMAGES]
        if not chosen:
            continue
        tiles.append([blend(to_chw(decode_png(dataset.path_of(rows_by_id[r["id"]]))),
                            load_file(str(tmp / r["maps"]))[r["key"]]) for r in chosen])
        labels.append(label)
        titles.append([f"pred {r['predicted']}" for r in chosen])
    if tiles:
        title = f"{records[0]['method']} for the {first_target} class, per true class"
        figures.save(figures.image_grid(tiles, row_labels=labels, titles=titles, title=title), path)
