"""sweep.png: the objective of each group of jobs (those that differ only in their seed)
against the keys that vary (one number: a line through the means; two keys: an annotated
heatmap; otherwise the best groups as dots) with its 95% interval and every job's own figure,
beside every job's validation curve."""

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from multiclass.comparing.groups import Estimate, Group, GroupReport
from multiclass.comparing.sweep_jobs import (
    SweepReport,
    describes_experiment,
    format_figure,
    format_value,
    in_order,
    is_figure,
)
from multiclass.reporting.plots import new_figure, save

BEST_SHOWN = 12  # groups in the "best groups" panel
LEGEND_LIMIT = 12  # label every curve up to this many jobs


def draw_sweep(groups: GroupReport, path: Path) -> None:
    """The objective of each group (its mean, 95% interval and every job's own figure) by the
    keys that vary, beside every job's validation curve; what every job shares in the title."""
    report = groups.report
    keys = [key for key, _ in groups.groups[0].values]
    line = len(keys) == 1 and all(is_figure(value) for value in key_values(groups, keys[0]))
    dots = len(keys) != 2 and not line
    margins = {"left": 0.2 if dots else 0.08, "right": 0.98, "bottom": 0.12, "wspace": 0.3}
    figure, (left, right) = new_figure(13, 5.5, cols=2, margins=margins)
    if dots:
        draw_dots(groups, left)
    elif line:
        draw_line(groups, keys[0], left)
    else:
        draw_heatmap(groups, keys, left)
    draw_curves(report, right)
    completed = sum(record.status == "completed" for record in report.records)
    title = f"{len(report.records)} jobs, {completed} completed; objective {report.objective_name}"
    shared = " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in constants(report))
    figure.suptitle(title + (f"; every job: {shared}" if shared else ""))
    save(figure, path)


def constants(report: SweepReport) -> list[tuple[str, str]]:
    """The overrides every job was given alike (`epochs=2`), said once in the title, not in
    every label; how a run was shown or launched (trainer.progress) left out."""
    typed = [record.overrides for record in report.records]
    common = dict.fromkeys(key for key in typed[0] if all(key in other for other in typed))
    return [
        (key, typed[0][key])
        for key in common
        if len({other[key] for other in typed}) == 1 and describes_experiment(key, report.records)
    ]


def key_values(groups: GroupReport, key: str) -> list:
    """The values of `key` across the groups, as configured (numbers stay numbers), sorted."""
    report = groups.report
    return sort_values({report.value(group.records[0], key) for group in groups.groups})


def sort_values(values: set) -> list:
    return sorted(values, key=in_order)


def spread(estimate: Estimate) -> tuple[float, float]:
    """How far the interval reaches below and above the mean (none for one run)."""
    if estimate.mean is None or estimate.low is None or estimate.high is None:
        return 0.0, 0.0
    return estimate.mean - estimate.low, estimate.high - estimate.mean


def draw_estimates(ax, positions: list, estimates: list[Estimate], horizontal: bool) -> None:
    """Each mean as a dot with its 95% interval as a bar (none for one run)."""
    shown = [(at, e) for at, e in zip(positions, estimates, strict=True) if e.mean is not None]
    if not shown:
        return
    at, means = [p for p, _ in shown], [e.mean for _, e in shown]
    reach = np.array([spread(e) for _, e in shown]).T
    options = {"fmt": "o", "color": "tab:blue", "capsize": 4}
    if horizontal:
        ax.errorbar(means, at, xerr=reach, **options)
    else:
        ax.errorbar(at, means, yerr=reach, **options)


def draw_groups(ax, shown: list[Group], objective: str, positions: list, horizontal: bool) -> None:
    """Each group's mean with its interval (draw_estimates), and every completed job's own
    figure as a small dot at its group's position."""
    draw_estimates(ax, positions, [group.estimate(objective) for group in shown], horizontal)
    for at, group in zip(positions, shown, strict=True):
        scores = list(group.figures(objective).values())
        spots = [at] * len(scores)
        x, y = (scores, spots) if horizontal else (spots, scores)
        ax.scatter(x, y, color="k", s=10, zorder=3)


def draw_line(groups: GroupReport, key: str, ax) -> None:
    """Over a numeric key: the groups' means joined by a line, their intervals and the jobs."""
    report = groups.report
    ordered = sorted(groups.groups, key=lambda g: report.value(g.records[0], key))
    values = [report.value(group.records[0], key) for group in ordered]
    estimates = [group.estimate(report.objective) for group in ordered]
    line = [(v, e.mean) for v, e in zip(values, estimates, strict=True) if e.mean is not None]
    ax.plot([v for v, _ in line], [m for _, m in line], color="tab:blue", alpha=0.5)
    draw_groups(ax, ordered, report.objective, values, horizontal=False)
    if min(values) > 0 and max(values) / min(values) >= 100:
        ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(report.objective_name)
    ax.grid(alpha=0.3)
    shown = ": mean, 95% interval, jobs" if groups.collapses else ""
    ax.set_title(f"{report.objective_name} by {key}{shown}")


def draw_dots(groups: GroupReport, ax) -> None:
    """The best groups, best on top, each a dot at its mean with its interval, its jobs as
    small dots, labelled by the values that vary: no bar whose length would mislead."""
    report = groups.report
    best = groups.groups[:BEST_SHOWN][::-1]
    rows = list(range(len(best)))
    draw_groups(ax, best, report.objective, rows, horizontal=True)
    ax.set_yticks(rows, [group.label for group in best], fontsize=7)
    ax.set_xlabel(report.objective_name)
    what = "groups" if groups.collapses else "jobs"
    shown = ": mean, 95% interval, jobs" if groups.collapses else ""
    ax.set_title(f"best {len(rows)} {what} by {report.objective_name}{shown}")
    ax.grid(axis="x", alpha=0.3)


def draw_heatmap(groups: GroupReport, keys: list[str], ax) -> None:
    """Rows: the first key; columns: the second; each cell its group's mean (with how many
    runs it averages where some did not complete), or why it has none."""
    report = groups.report
    rows_key, cols_key = keys
    rows, cols = key_values(groups, rows_key), key_values(groups, cols_key)
    grid = np.full((len(rows), len(cols)), np.nan)
    texts: dict[tuple[int, int], str] = {}
    for group in groups.groups:
        first = group.records[0]
        at = (rows.index(report.value(first, rows_key)), cols.index(report.value(first, cols_key)))
        estimate = group.estimate(report.objective)
        if estimate.mean is None:
            texts[at] = ", ".join(sorted({record.status for record in group.records}))
            continue
        grid[at] = estimate.mean
        partial = f"\n({estimate.n} of {estimate.total})" if estimate.n < estimate.total else ""
        texts[at] = format_figure(estimate.mean) + partial
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")  # cells without a figure
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), value in np.ndenumerate(grid):
        dark = math.isfinite(value) and value < middle
        text = texts.get((i, j), "-")
        ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), [format_value(v) for v in cols])
    ax.set_yticks(range(len(rows)), [format_value(v) for v in rows])
    ax.set_xlabel(cols_key)
    ax.set_ylabel(rows_key)
    over = f", mean over {', '.join(groups.over)}" if groups.collapses else ""
    ax.set_title(f"{report.objective_name} by {rows_key} and {cols_key}{over}")
    ax.figure.colorbar(image, ax=ax)


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
