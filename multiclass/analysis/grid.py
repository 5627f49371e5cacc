"""A grid of images with a caption under each, in the layout of a run's predictions.png
(reporting.plots): the top losses and the label-issue candidates of image data."""

from pathlib import Path

import numpy as np

from multiclass.reporting.plots import grid_cell, grid_layout, save

COLUMNS = 8


def image_grid(tiles: np.ndarray, captions: list[str], title: str, path: Path) -> None:
    """`tiles` (N, C, H, W), uint8 or floats in [0, 1], row by row with `captions[i]` under
    tile i, and `title` above, as one PNG."""
    tiles = tiles.astype(np.float32) / (255 if tiles.dtype == np.uint8 else 1)
    count, channels, height, width = tiles.shape
    rows = max(1, -(-count // COLUMNS))
    figure, image, texts = grid_layout(rows, COLUMNS, channels, height, width)
    cell_h, cell_w = grid_cell(height, width)
    mosaic = np.ones((rows * cell_h, COLUMNS * cell_w, channels), dtype=np.float32)
    for slot, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        top, left = (slot // COLUMNS) * cell_h, (slot % COLUMNS) * cell_w
        mosaic[top : top + height, left : left + width] = tile.transpose(1, 2, 0).clip(0, 1)
        texts[slot].set_text(caption)
    image.set_data(mosaic.squeeze(-1) if channels == 1 else mosaic)
    image.axes.set_title(title, fontsize=9)
    save(figure, path)
