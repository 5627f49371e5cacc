"""The pictures of a run: learning curves, confusion matrix, decision boundary (2-D inputs) and
a grid of test predictions (images). Each takes plain arrays and writes one PNG atomically."""

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multiclass.lifecycle.artifacts import write_atomic


def new_figure(width: float, height: float, cols: int = 1, margins: dict | None = None):
    """A figure with fixed margins: a layout engine would double the time a plot takes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(**(margins or {}))
    return figure, figure.subplots(1, cols, squeeze=False)[0]


PNG_OPTIONS = {"compress_level": 1}  # zlib's fastest: about 15 ms less a picture than its default


def save(figure, path: Path) -> None:
    write_atomic(path, render(figure))


def render(figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, pil_kwargs=PNG_OPTIONS)
    return buffer.getvalue()


def curves(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, from metrics.csv's rows as dicts."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = new_figure(10, 4, cols=2, margins={"left": 0.07, "right": 0.98, "wspace": 0.25})
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        ax.plot(epochs, [row[f"train_{metric}"] for row in history], label="train")
        val = [row[f"val_{metric}"] for row in history]
        if val and val[0] is not None:
            ax.plot(epochs, val, label="validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if metric == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    save(figure, path)


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str], title: str, path: Path
) -> None:
    """Counts of true (rows) against predicted (columns) classes."""
    k = len(class_names)
    # scikit-learn's confusion_matrix, without its import (1.5 s of a run's start-up)
    counts = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    size = 2.5 + 0.4 * k
    margin = 1.3 / size  # room for the class names
    figure, (ax,) = new_figure(
        size, size, margins={"left": margin, "bottom": margin, "right": 0.97, "top": 1 - 0.5 / size}
    )
    ax.imshow(counts, cmap="Blues")
    dark = counts > counts.max() / 2
    for (row, col), value in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            str(value),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark[row, col] else "black",
        )
    ax.set_xticks(range(k), class_names, rotation=90)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    save(figure, path)


def plane(points: np.ndarray, steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Where a decision boundary is sampled: `steps` positions along each of the two axes,
    over the points' range and a 10% margin."""
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-3)
    x0, x1 = (np.linspace(low[i] - margin[i], high[i] + margin[i], steps) for i in range(2))
    return x0, x1


def plane_points(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Every (x0, x1) position of the plane, row by row (x1 fixed along a row), as float32."""
    grid0, grid1 = np.meshgrid(x0, x1)
    return np.column_stack([grid0.ravel(), grid1.ravel()]).astype(np.float32)


def decision_boundary(
    points: np.ndarray,
    labels: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    response: np.ndarray,
    class_names: list[str],
    path: Path,
) -> None:
    """Seed 000's picture: the class predicted at each of `plane_points(x0, x1)` (`response`,
    one row per x1), with the training points on top. One image, not a mesh of quads: the
    mesh took most of the picture's time."""
    figure, (ax,) = new_figure(6, 6, margins={"left": 0.1, "right": 0.97, "top": 0.94})
    colours = {"cmap": "tab10", "vmin": 0, "vmax": 9}
    ax.imshow(
        response.reshape(len(x1), len(x0)),
        extent=(x0[0], x0[-1], x1[0], x1[-1]),
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        alpha=0.25,
        **colours,
    )
    scatter = ax.scatter(
        points[:, 0], points[:, 1], c=labels, edgecolors="k", linewidths=0.5, s=25, **colours
    )
    handles, _ = scatter.legend_elements()
    ax.legend(handles, [class_names[int(c)] for c in np.unique(labels)], title="class")
    ax.set_title("decision boundary (training points)")
    save(figure, path)


def prediction_grid(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: list[str],
    path: Path,
    cells: int = 24,
    cols: int = 8,
) -> None:
    """Test images labelled with their predicted class; mistakes (up to half the grid) come
    first, in red, with the true class below. One mosaic image, so it draws fast."""
    wrong = np.flatnonzero(predictions != labels)[: cells // 2]
    right = np.flatnonzero(predictions == labels)[: cells - len(wrong)]
    chosen = np.concatenate([wrong, right])
    tiles = images[chosen].astype(np.float32) / (255 if images.dtype == np.uint8 else 1)
    _, channels, height, width = tiles.shape
    cell_h, cell_w = height + round(0.7 * height), width + width // 5  # room for two lines
    rows = max(1, -(-len(chosen) // cols))
    mosaic = np.ones((rows * cell_h, cols * cell_w, channels), dtype=np.float32)
    figure, (ax,) = new_figure(
        cols * 1.4,
        rows * 1.4 * cell_h / cell_w + 0.4,
        margins={
            "left": 0.01,
            "right": 0.99,
            "bottom": 0.01,
            "top": 1 - 0.4 / (rows * 1.4 * cell_h / cell_w + 0.4),
        },
    )
    for slot, (tile, index) in enumerate(zip(tiles, chosen, strict=True)):
        top, left = (slot // cols) * cell_h, (slot % cols) * cell_w
        mosaic[top : top + height, left : left + width] = tile.transpose(1, 2, 0)
        mistaken = predictions[index] != labels[index]
        text = class_names[predictions[index]]
        if mistaken:
            text += f"\n(true {class_names[labels[index]]})"
        ax.text(
            left + width / 2,
            top + height,
            text,
            ha="center",
            va="top",
            fontsize=7,
            color="red" if mistaken else "black",
        )
    ax.imshow(
        mosaic.squeeze(-1) if channels == 1 else mosaic,
        cmap="gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.axis("off")
    ax.set_title(
        f"test predictions: {len(wrong)} mistakes shown in red"
        f" ({int((predictions != labels).sum())} of {len(labels)} in all)"
    )
    save(figure, path)
