"""One figure style for every PNG the tool writes, and the few figure shapes reports share.

matplotlib's object API on the Agg canvas (no pyplot): no global figure state, no display,
safe in worker threads. Every figure goes through `figure()` and `save()` so sizes, fonts and
colours are the same everywhere.

    fig, axes = figure(ncols=2, width=9, height=3.5)
    median_band(axes[0], epochs, runs, label="val loss")   # median over repeats, IQR band
    box_strip(axes[1], {"real": [...], "real+syn": [...]}) # one box + points per group
    save(fig, folder / "curves.png")

`image_grid` draws stored images (uint8/uint16, (N, C, H, W)) as a labelled grid, upscaled
with nearest neighbours so that 28-32 px images stay readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

# Colour-blind safe (Okabe-Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 120,
}
MIN_TILE_PX = 96  # image tiles are upscaled to at least this many pixels on their short side


def figure(*, nrows: int = 1, ncols: int = 1, width: float = 6.0, height: float = 4.0, squeeze: bool = True,
           **subplot_kw: Any) -> tuple[Any, Any]:
    """A new figure in the house style and its axes (an array unless 1x1 and `squeeze`)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, subplot_kw=subplot_kw or None)
    for ax in (axes.ravel() if hasattr(axes, "ravel") else [axes]):
        ax.set_prop_cycle(color=PALETTE)
    return fig, axes


def save(fig: Any, path: str | Path, *, dpi: int | None = None) -> Path:
    """Write the figure as PNG (written to a temporary name, then renamed into place)."""
    import os

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    FigureCanvasAgg(fig)
    with matplotlib.rc_context(STYLE):
        fig.savefig(scratch, format="png", dpi=dpi or STYLE["savefig.dpi"])
    os.replace(scratch, path)
    return path


def colours(n: int) -> list[str]:
    """`n` colours of the palette, in drawing order (repeating past its length)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def integer_ticks(ax: Any) -> None:
    """Whole-number ticks on the x axis (epochs, steps)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def median_band(ax: Any, x: Sequence[float], runs: Sequence[Sequence[float | None]], *, label: str,
                color: str | None = None, count_in_label: bool = True, **line: Any) -> None:
    """The median over repeats as a line, the interquartile range as a band.

    `runs` holds one sequence per repeat, aligned on `x`; shorter runs (early stopping) and
    None entries simply leave that point out of the statistics. The label says how many
    repeats the median is of, unless `count_in_label` is false (the title says it); `line`
    goes to matplotlib's `plot` (marker, linestyle)."""
    import numpy as np

    table = np.full((len(runs), len(x)), np.nan)
    for i, run in enumerate(runs):
        values = [np.nan if v is None else float(v) for v in run][: len(x)]
        table[i, : len(values)] = values
    keep = ~np.all(np.isnan(table), axis=0)
    if not keep.any():
        return
    xs = np.asarray(x, dtype=float)[keep]
    q1, median, q3 = np.nanpercentile(table[:, keep], [25, 50, 75], axis=0)
    shown = f"{label} (median of {len(runs)})" if len(runs) > 1 and count_in_label else label
    (drawn,) = ax.plot(xs, median, label=shown, color=color, **line)
    if len(runs) > 1:
        ax.fill_between(xs, q1, q3, alpha=0.25, color=drawn.get_color(), linewidth=0)


def heatmap(ax: Any, values: Any, *, rows: Sequence[str], columns: Sequence[str], text: Any = None,
            vmin: float = 0.0, vmax: float = 1.0, cmap: str = "Blues", colorbar: str = "") -> None:
    """A matrix as coloured cells with row and column names, each cell annotated with `text`
    (same shape; default the value), in white on dark cells."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.grid(False)
    ax.set_xticks(range(len(columns)), columns, rotation=45 if max(map(len, columns), default=0) > 4 else 0,
                  ha="right" if max(map(len, columns), default=0) > 4 else "center")
    ax.set_yticks(range(len(rows)), rows)
    text = values if text is None else np.asarray(text)
    middle = vmin + (vmax - vmin) / 2
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, str(text[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > middle else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=colorbar)


def box_strip(ax: Any, groups: Mapping[str, Sequence[float]], *, ylabel: str = "", seed: int = 0) -> None:
    """One box (median, quartiles) per group with every value drawn as a point beside it."""
    import numpy as np

    names = list(groups)
    data = [np.asarray([v for v in groups[n] if v is not None], dtype=float) for n in names]
    ax.boxplot(data, positions=range(len(names)), widths=0.5, showfliers=False,
               medianprops={"color": "#000000"})
    jitter = np.random.default_rng(seed)
    for i, values in enumerate(data):
        ax.scatter(i + jitter.uniform(-0.12, 0.12, len(values)), values, s=12, alpha=0.7,
                   color=PALETTE[i % len(PALETTE)], zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=20 if max(map(len, names), default=0) > 12 else 0,
                  ha="right" if max(map(len, names), default=0) > 12 else "center")
    if ylabel:
        ax.set_ylabel(ylabel)


def image_grid(rows: Sequence[Sequence[Any]], *, row_labels: Sequence[str] = (),
               titles: Sequence[Sequence[str]] | None = None, title: str = "") -> Any:
    """A figure of image tiles: `rows[r][c]` is one stored image ((H, W), (H, W, C) or (C, H, W)).

    Tiles are upscaled (nearest neighbour) to at least MIN_TILE_PX on their short side; grey
    images are drawn in grey, 16-bit ones scaled to their range. Returns the figure."""
    import numpy as np

    ncols = max((len(r) for r in rows), default=1)
    side = 1.1
    fig, axes = figure(nrows=max(len(rows), 1), ncols=max(ncols, 1), width=side * ncols + (1.2 if row_labels else 0.2),
                       height=side * len(rows) + (0.4 if title else 0.1), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(row):
                continue
            tile = _display(np.asarray(row[c]))
            ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            if titles is not None and r < len(titles) and c < len(titles[r]):
                ax.set_title(titles[r][c], fontsize=7)
        if r < len(row_labels):
            axes[r][0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _display(image: Any) -> Any:
    """(H, W) uint8 or (H, W, 3) uint8, upscaled to MIN_TILE_PX, from any stored layout."""
    import numpy as np

    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        low, high = float(image.min()), float(image.max())
        image = np.zeros_like(image) if high <= low else (image - low) / (high - low) * 255.0
        image = image.round().astype(np.uint8)
    short = min(image.shape[:2])
    factor = max(1, -(-MIN_TILE_PX // max(short, 1)))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
