"""The shared figure module: each shape is written and holds what it was given."""

import numpy as np
from PIL import Image

from synthmed import figures


def _png(path):
    image = np.asarray(Image.open(path).convert("L"))
    assert image.shape[0] > 50 and image.shape[1] > 50
    return image


def test_median_band_and_box_strip_write_nontrivial_pngs(tmp_path):
    fig, (left, right) = figures.figure(ncols=2)
    figures.median_band(left, [1, 2, 3], [[1.0, 0.5, 0.4], [1.2, 0.6], [0.9, 0.7, None]], label="val loss")
    figures.box_strip(right, {"real": [0.7, 0.71, 0.69], "real+synthetic": [0.6, 0.65, 0.62]}, ylabel="loss")
    image = _png(figures.save(fig, tmp_path / "a.png"))
    assert image.std() > 10  # not a blank canvas
    assert len(left.lines) == 1 and len(left.collections) == 1  # the median line and its IQR band
    assert len(right.collections) == 2  # one strip of points per group


def test_image_grid_upscales_small_tiles_and_labels_rows(tmp_path):
    tiles = [[np.full((1, 16, 16), 40 * k, np.uint8) for k in range(3)], [np.zeros((16, 16), np.uint16) + 7]]
    fig = figures.image_grid(tiles, row_labels=["a", "b"], titles=[["x", "y", "z"]])
    axes = fig.axes
    assert axes[0].get_ylabel() == "a" and axes[0].get_title() == "x"
    assert axes[0].images[0].get_array().shape == (96, 96)
    _png(figures.save(fig, tmp_path / "g.png"))
