"""sweep.png: the objective against the swept values (one swept number: a line; one swept
choice: bars; two swept keys: an annotated heatmap; more: the best jobs as bars) beside every
job's validation curve."""

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from multiclass.reporting.plots import new_figure, save
from multiclass.reporting.sweep_jobs import SweepReport, format_figure, format_value

BEST_SHOWN = 12  # bars in the "best jobs" panel
LEGEND_LIMIT = 12  # label every curve up to this many jobs


def draw_sweep(report: SweepReport, path: Path) -> None:
    figure, (left, right) = new_figure(
        13, 5.5, cols=2, margins={"left": 0.08, "right": 0.98, "bottom": 0.12, "wspace": 0.3}
    )
    if len(report.swept) == 1:
        draw_one_key(report, left)
    elif len(report.swept) == 2:
        draw_heatmap(report, left)
    else:
        draw_best(report, left)
    draw_curves(report, right)
    completed = sum(record.status == "completed" for record in report.records)
    figure.suptitle(
        f"{len(report.records)} jobs, {completed} completed; objective {report.objective_name}"
    )
    save(figure, path)


def scores_by(report: SweepReport, *keys: str) -> dict[tuple, list[float]]:
    """The objective of every completed job, grouped by its values of `keys`."""
    groups: dict[tuple, list[float]] = {}
    for record in report.records:
        score = report.score(record)
        if record.status == "completed" and score is not None:
            groups.setdefault(tuple(report.value(record, key) for key in keys), []).append(score)
    return groups


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sort_values(values: set) -> list:
    return sorted(values, key=lambda v: (not is_number(v), v if is_number(v) else str(v)))


def draw_one_key(report: SweepReport, ax) -> None:
    """A line over a numeric key (means, each job a dot), bars over a choice."""
    (key,) = report.swept
    groups = scores_by(report, key)
    values = sort_values({value for (value,) in groups})
    means = [statistics.fmean(groups[(value,)]) for value in values]
    if values and all(is_number(v) for v in values):
        ax.plot(values, means, marker="o")
        for value in values:
            ax.scatter([value] * len(groups[(value,)]), groups[(value,)], color="k", s=10)
        if min(values) > 0 and max(values) / min(values) >= 100:
            ax.set_xscale("log")
    else:
        ax.bar([format_value(v) for v in values], means)
    ax.set_xlabel(key)
    ax.set_ylabel(report.objective_name)
    ax.grid(alpha=0.3)
    ax.set_title(f"{report.objective_name} by {key}")


def draw_heatmap(report: SweepReport, ax) -> None:
    """Rows: the first swept key; columns: the second; each cell its mean, or why it has none."""
    rows_key, cols_key = report.swept
    groups = scores_by(report, rows_key, cols_key)
    rows = sort_values({report.value(record, rows_key) for record in report.records})
    cols = sort_values({report.value(record, cols_key) for record in report.records})
    grid = np.full((len(rows), len(cols)), np.nan)
    for (row, col), scores in groups.items():
        grid[rows.index(row), cols.index(col)] = statistics.fmean(scores)
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")  # cells without a figure
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    unfinished = {
        (rows.index(report.value(r, rows_key)), cols.index(report.value(r, cols_key))): r.status
        for r in report.records
        if r.status != "completed"
    }
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(grid):
        text = format_figure(float(value)) if math.isfinite(value) else unfinished.get((i, j), "-")
        dark = math.isfinite(value) and value < middle
        ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), [format_value(v) for v in cols])
    ax.set_yticks(range(len(rows)), [format_value(v) for v in rows])
    ax.set_xlabel(cols_key)
    ax.set_ylabel(rows_key)
    ax.set_title(f"{report.objective_name} by {rows_key} and {cols_key}")
    ax.figure.colorbar(image, ax=ax)


def draw_best(report: SweepReport, ax) -> None:
    """The best completed jobs as horizontal bars, each labelled inside with its swept values;
    the axis starts near the lowest shown, so close results stay apart."""
    best = [r for r in report.ranked() if r.status == "completed" and report.score(r) is not None]
    best = best[:BEST_SHOWN][::-1]
    scores = [report.score(r) or 0.0 for r in best]
    ax.barh(range(len(best)), scores, color="tab:blue", alpha=0.35)
    if scores:
        low, high = min(scores), max(scores)
        ax.set_xlim(max(0.0, low - 0.5 * (high - low or abs(high) or 1)), None)
    for row, (record, score) in enumerate(zip(best, scores, strict=True)):
        text = f"{report.title(record)}: {report.label(record)}   {format_figure(score)}"
        ax.text(0.01, row, text, transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel(report.objective_name)
    ax.set_title(f"best {len(best)} jobs by {report.objective_name}")
    ax.grid(axis="x", alpha=0.3)


def draw_curves(report: SweepReport, ax) -> None:
    """Validation accuracy per epoch of every job, the best one drawn thick."""
    best = report.best
    curves = [record for record in report.records if record.val_acc]
    for record in curves:
        epochs = range(1, len(record.val_acc) + 1)
        thick = record is best
        label = f"{report.name(record)}: {report.label(record)}"
        shown = label if len(curves) <= LEGEND_LIMIT else None
        ax.plot(epochs, record.val_acc, linewidth=2.5 if thick else 1, label=shown)
    if not curves:
        ax.text(0.5, 0.5, "no validation curves", ha="center", transform=ax.transAxes)
    elif len(curves) <= LEGEND_LIMIT:
        ax.legend(fontsize=7)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.set_title("validation accuracy per epoch (best job thick)")
    ax.grid(alpha=0.3)
