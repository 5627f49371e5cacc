"""compare-A-vs-B.png: the learning curves of two runs, or of two groups of jobs, in one picture:
validation accuracy and loss per epoch, one colour per side. A side of several jobs draws each
thin and their mean (over the jobs that reached an epoch) thick."""

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.ticker import MaxNLocator

from multiclass.records.artifacts import read_csv_rows
from multiclass.reporting.plots import new_figure, save

PANELS = (("val_acc", "validation accuracy"), ("val_loss", "validation loss"))
COLOURS = ("tab:blue", "tab:orange")
FEW_EPOCHS = 12  # up to this many, every epoch has its tick

Curve = dict[int, float]  # epoch -> value


def read_curves(run_dir: Path) -> dict[str, Curve]:
    """Each panel's column of the run's metrics.csv by epoch; none where it kept none."""
    rows = read_csv_rows(run_dir / "metrics.csv")
    return {
        column: {int(row["epoch"]): float(row[column]) for row in rows if row.get(column)}
        for column, _ in PANELS
    }


def mean_curve(curves: Sequence[Curve]) -> Curve:
    epochs = sorted({epoch for curve in curves for epoch in curve})
    return {
        epoch: math.fsum(c[epoch] for c in curves if epoch in c) / sum(epoch in c for c in curves)
        for epoch in epochs
    }


def draw_side_by_side(sides: Sequence[tuple[str, Sequence[Path]]], title: str, path: Path) -> None:
    """`sides`: each side's label and its runs' directories, drawn in COLOURS' order."""
    figure, axes = new_figure(
        12, 4.8, cols=2, margins={"left": 0.07, "right": 0.98, "top": 0.88, "wspace": 0.22}
    )
    runs = [[read_curves(run_dir) for run_dir in run_dirs] for _, run_dirs in sides]
    for ax, (column, name) in zip(axes, PANELS, strict=True):
        for (label, _), curves, colour in zip(sides, runs, COLOURS, strict=False):
            draw_side(ax, [curve[column] for curve in curves if curve[column]], label, colour)
        ax.set_xlabel("epoch")
        epochs = sorted({epoch for side in runs for run in side for epoch in run[column]})
        if len(epochs) <= FEW_EPOCHS:  # each its tick: one epoch alone gets no fractions
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    save(figure, path)


def draw_side(ax, curves: list[Curve], label: str, colour: str) -> None:
    """One run as a line with dots; several as thin lines and their mean."""
    if len(curves) > 1:
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=colour, alpha=0.3, linewidth=0.8)
        label = f"{label} (mean of {len(curves)})"
    if curves:
        mean = mean_curve(curves)
        ax.plot(list(mean), list(mean.values()), color=colour, marker="o", label=label)
