"""The pictures of a run: learning curves, confusion matrix, decision boundary (2-D inputs) and
a grid of test predictions (images). Each takes plain arrays and writes one PNG atomically.
A process keeps the figure of each layout it drew and fills it with the next run's data: a
sweep's jobs share layouts, and most of a picture's cost is building its axes and texts."""

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from multiclass.class_metrics import confusion_counts
from multiclass.records.artifacts import write_atomic

T = TypeVar("T")


def new_figure(width: float, height: float, cols: int = 1, margins: dict | None = None):
    """A figure with fixed margins: a layout engine would double the time a plot takes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(**(margins or {}))
    return figure, figure.subplots(1, cols, squeeze=False)[0]


PNG_OPTIONS = {"compress_level": 1}  # zlib's fastest: about 15 ms less a picture than its default
KEEP_AT_MOST = 8  # layouts kept per process: a sweep's jobs share a handful


def save(figure, path: Path) -> None:
    write_atomic(path, render(figure))


def render(figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, pil_kwargs=PNG_OPTIONS)
    return buffer.getvalue()


_kept: dict[tuple, Any] = {}


def kept(layout: tuple, build: Callable[[], T]) -> T:
    """The figure and artists that `build` made for `layout` in this thread, made now if new.
    A sweep's jobs share their layouts, and filling in a kept figure's data costs about half
    of building it afresh: its axes, ticks and texts exist, their sizes are known. (Per thread:
    runs started from two threads of one program must not draw into one figure.)"""
    key = (threading.get_ident(), layout)
    if key not in _kept:
        if len(_kept) >= KEEP_AT_MOST:
            del _kept[next(iter(_kept))]
        _kept[key] = build()
    return _kept[key]


def rescale(ax) -> None:
    """Limits fitted to the axes' new data, as plotting it afresh would fit them."""
    ax.relim()
    ax.autoscale_view()


def curves(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation, from metrics.csv's rows as dicts."""
    validated = bool(history) and history[0]["val_loss"] is not None
    figure, lines = kept(("curves", validated), lambda: curves_layout(validated))
    epochs = [row["epoch"] for row in history]
    for metric, metric_lines in lines.items():
        for split, line in zip(("train", "val"), metric_lines, strict=False):
            line.set_data(epochs, [row[f"{split}_{metric}"] for row in history])
        rescale(metric_lines[0].axes)
    save(figure, path)


def curves_layout(validated: bool):
    """Two panels, loss and accuracy, each with a train line and maybe a validation line."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = new_figure(10, 4, cols=2, margins={"left": 0.07, "right": 0.98, "wspace": 0.25})
    lines = {}
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        labels = ("train", "validation") if validated else ("train",)
        lines[metric] = [ax.plot([], [], label=label)[0] for label in labels]
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if metric == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    return figure, lines


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str], title: str, path: Path
) -> None:
    """Counts of true (rows) against predicted (columns) classes; a cell never predicted stays
    blank, so the mistakes made stand out (and a good model's picture draws faster)."""
    counts = confusion_counts(labels, predictions, len(class_names))
    figure, image, cells = kept(("confusion", *class_names), lambda: confusion_layout(class_names))
    image.set_data(counts)
    image.set_clim(counts.min(), counts.max())
    dark = counts > counts.max() / 2
    for (row, col), value in np.ndenumerate(counts):
        cells[row][col].set_text(str(value) if value else "")
        cells[row][col].set_color("white" if dark[row, col] else "black")
    image.axes.set_title(title)
    save(figure, path)


def confusion_layout(class_names: list[str]):
    """A k x k image with a text in each cell and the class names along both axes."""
    k = len(class_names)
    size = 2.5 + 0.4 * k
    margin = 1.3 / size  # room for the class names
    figure, (ax,) = new_figure(
        size, size, margins={"left": margin, "bottom": margin, "right": 0.97, "top": 1 - 0.5 / size}
    )
    image = ax.imshow(np.zeros((k, k)), cmap="Blues")
    cells = [
        [ax.text(col, row, "", ha="center", va="center", fontsize=8) for col in range(k)]
        for row in range(k)
    ]
    ax.set_xticks(range(k), class_names, rotation=90)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return figure, image, cells


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
    classes = tuple(class_names[int(c)] for c in np.unique(labels))
    layout = ("boundary", len(x0), len(x1), classes)
    figure, image, scatter = kept(layout, lambda: boundary_layout(points, labels, x0, x1, classes))
    image.set_data(response.reshape(len(x1), len(x0)))
    image.set_extent((x0[0], x0[-1], x1[0], x1[-1]))
    scatter.set_offsets(points)
    scatter.set_array(labels)
    rescale(image.axes)
    save(figure, path)


def boundary_layout(
    points: np.ndarray, labels: np.ndarray, x0: np.ndarray, x1: np.ndarray, classes: tuple
):
    """The plane's image, the points' scatter and a legend with one entry per class shown."""
    figure, (ax,) = new_figure(6, 6, margins={"left": 0.1, "right": 0.97, "top": 0.94})
    colours = {"cmap": "tab10", "vmin": 0, "vmax": 9}
    image = ax.imshow(
        np.zeros((len(x1), len(x0))),
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
    ax.legend(handles, classes, title="class")
    ax.set_title("decision boundary (training points)")
    return figure, image, scatter


def grid_choice(labels: np.ndarray, predictions: np.ndarray, cells: int = 24) -> np.ndarray:
    """The test samples a prediction grid shows: mistakes first (up to half the grid), then
    right answers. Only their images go to the process drawing it, not the whole test set."""
    wrong = np.flatnonzero(predictions != labels)[: cells // 2]
    right = np.flatnonzero(predictions == labels)[: cells - len(wrong)]
    return np.concatenate([wrong, right])


def prediction_grid(
    tiles: np.ndarray,
    chosen: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: list[str],
    path: Path,
    cols: int = 8,
) -> None:
    """The test images `tiles` (of the samples `grid_choice` chose) labelled with their
    predicted class; mistakes in red, with the true class below."""
    mistaken = predictions[chosen] != labels[chosen]
    captions = [
        class_names[predictions[i]] + (f"\n(true {class_names[labels[i]]})" if wrong else "")
        for i, wrong in zip(chosen, mistaken, strict=True)
    ]
    shown, wrong = int(mistaken.sum()), int((predictions != labels).sum())
    title = f"test predictions: {shown} mistakes shown in red ({wrong} of {len(labels)} in all)"
    colors = ["red" if wrong else "black" for wrong in mistaken]
    captioned_grid(tiles, captions, title, path, colors, cols)


def captioned_grid(
    tiles: np.ndarray,
    captions: list[str],
    title: str,
    path: Path,
    colors: list[str] | None = None,
    cols: int = 8,
    title_size: float | None = None,
) -> None:
    """`tiles` (N, C, H, W; uint8, or floats in [0, 1]) row by row, `captions[i]` under tile
    i (in `colors[i]`, else black) and `title` above. One mosaic image, so it draws fast."""
    tiles = tiles.astype(np.float32) / (255 if tiles.dtype == np.uint8 else 1)
    count, channels, height, width = tiles.shape
    rows = max(1, -(-count // cols))
    layout = ("grid", rows, cols, channels, height, width)
    figure, image, texts = kept(layout, lambda: grid_layout(rows, cols, channels, height, width))
    cell_h, cell_w = grid_cell(height, width)
    mosaic = np.ones((rows * cell_h, cols * cell_w, channels), dtype=np.float32)
    for slot, text in enumerate(texts):
        if slot >= count:
            text.set_text("")
            continue
        top, left = (slot // cols) * cell_h, (slot % cols) * cell_w
        mosaic[top : top + height, left : left + width] = tiles[slot].transpose(1, 2, 0).clip(0, 1)
        text.set_text(captions[slot])
        text.set_color("black" if colors is None else colors[slot])
    image.set_data(mosaic.squeeze(-1) if channels == 1 else mosaic)
    image.axes.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    save(figure, path)


def grid_cell(height: int, width: int) -> tuple[int, int]:
    """A tile's cell in the mosaic: the image, and room below it for two lines of text."""
    return height + round(0.7 * height), width + width // 5


def grid_layout(rows: int, cols: int, channels: int, height: int, width: int):
    """The mosaic's image and a caption under each of its cells."""
    cell_h, cell_w = grid_cell(height, width)
    figure_height = rows * 1.4 * cell_h / cell_w + 0.4
    figure, (ax,) = new_figure(
        cols * 1.4,
        figure_height,
        margins={"left": 0.01, "right": 0.99, "bottom": 0.01, "top": 1 - 0.4 / figure_height},
    )
    shape = (rows * cell_h, cols * cell_w) + ((channels,) if channels > 1 else ())
    image = ax.imshow(np.ones(shape), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    captions = [
        ax.text(
            (slot % cols) * cell_w + width / 2,
            (slot // cols) * cell_h + height,
            "",
            ha="center",
            va="top",
            fontsize=7,
        )
        for slot in range(rows * cols)
    ]
    ax.axis("off")
    return figure, image, captions


def reliability_diagram(
    counts: np.ndarray, accuracy: np.ndarray, confidence: np.ndarray, title: str, path: Path
) -> None:
    """Accuracy against confidence per bin (multiclass.calibration.Reliability's arrays: equal
    bins of [0, 1), then confidence exactly 1, drawn as a narrow bar right of 1), each bar's
    mean confidence marked, the diagonal a calibrated model follows, and the samples per bin
    below. An empty bin draws nothing."""
    bins = len(counts) - 1
    figure, bars, marks, count_bars, labels = kept(
        ("reliability", bins), lambda: reliability_layout(bins)
    )
    seen = counts > 0
    for bar, count_bar, label, value, count in zip(
        bars, count_bars, labels, accuracy, counts, strict=True
    ):
        bar.set_height(value if count else 0)
        count_bar.set_height(count)
        label.set_text(str(count) if count else "")
        label.set_y(count)
    centres = np.array([bar.get_x() + bar.get_width() / 2 for bar in bars])
    marks.set_data(centres[seen], confidence[seen])
    count_axes = count_bars[0].axes
    count_axes.set_ylim(0, max(int(counts.max()), 1) * 1.25)
    bars[0].axes.set_title(title)
    save(figure, path)


def reliability_layout(bins: int):
    """Two panels sharing the confidence axis: accuracy bars over the diagonal, and counts."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 6.5))
    figure.subplots_adjust(left=0.12, right=0.97, top=0.94, bottom=0.08, hspace=0.08)
    top, bottom = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, squeeze=True
    )
    width = 1 / bins
    lefts = [j * width for j in range(bins)] + [1.0]  # the last: confidence exactly 1
    widths = [width] * bins + [width / 3]
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    bars = top.bar(
        lefts,
        [0] * (bins + 1),
        widths,
        align="edge",
        color="tab:blue",
        edgecolor="white",
        label="accuracy",
    )
    (marks,) = top.plot([], [], "_", color="tab:red", markersize=12, mew=2, label="confidence")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8, framealpha=0.9)
    count_bars = bottom.bar(lefts, [0] * (bins + 1), widths, align="edge", color="tab:grey")
    labels = [
        bottom.text(left + w / 2, 0, "", ha="center", va="bottom", fontsize=7)
        for left, w in zip(lefts, widths, strict=True)
    ]
    bottom.set_xlim(0, 1 + width / 2)
    bottom.set_xlabel("confidence (top-label probability; the narrow bar: exactly 1)")
    bottom.set_ylabel("samples")
    return figure, bars, marks, count_bars, labels
