"""The pictures of a run: learning curves, confusion matrix, decision boundary (2-D inputs) and
a grid of test predictions (images). Each takes plain arrays and writes one PNG atomically."""

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from multiclass.artifacts import write_atomic
from multiclass.engine import EpochMetrics


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, layout="constrained"):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout=layout)
    return figure, figure.subplots(rows, cols, squeeze=False)


def save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomic(path, buffer.getvalue())


def curves(history: Sequence[EpochMetrics], path: Path) -> None:
    """Loss and accuracy per epoch, train and validation."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = new_figure(10, 4, cols=2)
    epochs = [row.epoch for row in history]
    for ax, metric in zip(axes[0], ("loss", "acc"), strict=True):
        ax.plot(epochs, [getattr(row, f"train_{metric}") for row in history], label="train")
        val = [getattr(row, f"val_{metric}") for row in history]
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
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 2.5 + 0.4 * len(class_names)
    figure, axes = new_figure(size, size)
    ConfusionMatrixDisplay.from_predictions(
        labels,
        predictions,
        labels=range(len(class_names)),
        display_labels=class_names,
        ax=axes[0, 0],
        colorbar=False,
        xticks_rotation="vertical",
        cmap="Blues",
    )
    axes[0, 0].set_title(title)
    save(figure, path)


def decision_boundary(
    points: np.ndarray,
    labels: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    class_names: list[str],
    path: Path,
) -> None:
    """Seed 000's picture: the predicted class over a grid, with the training points on top."""
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-3)
    axes_ranges = (np.linspace(low[i] - margin[i], high[i] + margin[i], 200) for i in range(2))
    xx0, xx1 = np.meshgrid(*axes_ranges)
    grid = np.column_stack([xx0.ravel(), xx1.ravel()]).astype(np.float32)
    response = predict(grid).reshape(xx0.shape)
    figure, axes = new_figure(6, 6)
    ax = axes[0, 0]
    cmap = "tab10"
    ax.pcolormesh(xx0, xx1, response, cmap=cmap, vmin=0, vmax=9, alpha=0.25, shading="auto")
    scatter = ax.scatter(
        points[:, 0],
        points[:, 1],
        c=labels,
        cmap=cmap,
        vmin=0,
        vmax=9,
        edgecolors="k",
        linewidths=0.5,
        s=25,
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
) -> None:
    """Test images titled with their predicted class; mistakes (up to half the grid) come first,
    in red, with the true class beside."""
    wrong = np.flatnonzero(predictions != labels)[: cells // 2]
    right = np.flatnonzero(predictions == labels)[: cells - len(wrong)]
    chosen = np.concatenate([wrong, right])
    cols = 8
    rows = max(1, -(-len(chosen) // cols))
    # A fixed layout: constrained layout costs about a second on a grid this size.
    figure, axes = new_figure(cols * 1.4, rows * 1.6 + 0.6, rows=rows, cols=cols, layout=None)
    figure.subplots_adjust(
        left=0.02,
        right=0.98,
        bottom=0.02,
        top=1 - 0.6 / (rows * 1.6 + 0.6),
        wspace=0.1,
        hspace=0.45,
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, chosen, strict=False):
        ax.imshow(
            images[index].squeeze(0) if images.shape[1] == 1 else images[index].transpose(1, 2, 0),
            cmap="gray",
        )
        predicted, true = class_names[predictions[index]], class_names[labels[index]]
        mistaken = predictions[index] != labels[index]
        ax.set_title(
            f"{predicted}\n(true {true})" if mistaken else predicted,
            color="red" if mistaken else "black",
            fontsize=8,
        )
    figure.suptitle(
        f"test predictions: {len(wrong)} mistakes shown in red"
        f" ({int((predictions != labels).sum())} of {len(labels)} in all)"
    )
    save(figure, path)
