"""layers.csv's rows, and layers.png drawn from them: the part of the layer statistics that
needs no torch, so that a process drawing pictures never imports it (reporting/painter.py).
reporting/layers.py measures the rows."""

import math
from dataclasses import dataclass, fields
from pathlib import Path

from multiclass.records.artifacts import read_csv_rows
from multiclass.reporting.plots import kept, new_figure, rescale, save

LAYERS_CSV = "layers.csv"
LAYERS_PNG = "layers.png"
PROBE_SAMPLES = 256  # the first training samples, the same every epoch: epochs compare alike
STATISTICS = ("grad_norm", "weight_norm", "act_mean", "act_std", "saturated", "dead")


@dataclass(frozen=True)
class LayerRow:
    """One row of layers.csv: one layer after one epoch. A weight layer fills the norms, an
    activation the rest; what does not apply stays empty."""

    epoch: int
    position: int
    layer: str
    grad_norm: float | None = None
    weight_norm: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    saturated: float | None = None
    dead: float | None = None


def read_rows(path: Path, last_epoch: float = math.inf) -> list[LayerRow]:
    """The rows of layers.csv up to `last_epoch`, as written (floats round-trip exactly)."""
    return [parse(row) for row in read_csv_rows(path) if int(row["epoch"]) <= last_epoch]


def parse(row: dict[str, str]) -> LayerRow:
    values = {f.name: row[f.name] for f in fields(LayerRow)}
    statistics = {k: None if values[k] == "" else float(values[k]) for k in STATISTICS}
    return LayerRow(int(values["epoch"]), int(values["position"]), values["layer"], **statistics)


def draw(run_dir: Path) -> None:
    """layers.png from the run's layers.csv."""
    figure(read_rows(run_dir / LAYERS_CSV), run_dir / LAYERS_PNG)


def figure(rows: list[LayerRow], path: Path) -> None:
    """Gradient norm per weight layer over the epochs (log scale: vanishing gradients sit
    orders of magnitude below the rest) and, where the network has sigmoid, tanh or ReLU
    units, the fraction saturated or dead; colours run from the input (dark) to the output."""
    gradients = series(rows, "grad_norm")
    stuck = {**series(rows, "saturated"), **series(rows, "dead")}
    last = max((row.position for row in rows), default=1)
    marked = max((len(epochs) for epochs, _ in gradients.values()), default=0) <= 30
    layout = ("layers", tuple(gradients), tuple(stuck), last, marked)
    figure, panels, note = kept(layout, lambda: layout_figure(gradients, stuck, last, marked))
    for lines, found in zip(panels, (gradients, stuck), strict=False):
        for line, (epochs, values) in zip(lines, found.values(), strict=True):
            line.set_data(epochs, values)
        if lines:
            rescale(lines[0].axes)
    note.set_visible(any(0 in values for _, values in gradients.values()))
    save(figure, path)


def layout_figure(gradients: dict, stuck: dict, last: int, marked: bool):
    """The panels' lines (empty), their legends, and the note for gradients of exactly 0."""
    panels = 2 if stuck else 1
    width = 6.3 * panels  # inches; each panel's legend stands to its right, 1.6 inches wide
    margins = {"left": 0.9 / width, "right": 1 - 1.6 / width, "wspace": 0.5}
    figure, axes = new_figure(width, 4.5, cols=panels, margins=margins)
    lines = [empty_lines(axes[0], gradients, last, marked)]
    log_scale(axes[0])
    note = axes[0].text(0.98, 0.97, "points missing: gradient exactly 0", ha="right", va="top")
    note.set(fontsize=8, transform=axes[0].transAxes)
    axes[0].set_ylabel("gradient norm (L2, weights)")
    axes[0].set_title(f"gradient norm per layer, on {PROBE_SAMPLES} fixed training samples")
    if stuck:
        lines.append(empty_lines(axes[1], stuck, last, marked))
        axes[1].set_ylim(-0.03, 1.03)
        axes[1].set_ylabel("fraction of units")
        axes[1].set_title("saturated (sigmoid, tanh) or dead (ReLU) units")
    return figure, lines, note


def log_scale(ax) -> None:
    """A log y axis labelled in plain numbers (0.06, 1e-5): matplotlib's default labels are
    typeset formulas, which took a fifth of the picture's time."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:  # its subclasses'
            return plain_number(x)  # hook, as in matplotlib's LogFormatterExponent

    ax.set_yscale("log", nonpositive="mask")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))


def plain_number(x: float) -> str:
    """0.001 to 9999 as written (0.06, 20), the rest as 1e-5 or 3e6."""
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:g}"
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def series(rows: list[LayerRow], statistic: str) -> dict[tuple[int, str], tuple[list, list]]:
    """Per layer with `statistic`, keyed by (position, label): its epochs and values."""
    found: dict[tuple[int, str], tuple[list, list]] = {}
    for row in rows:
        value = getattr(row, statistic)
        if value is not None:
            label = row.layer if statistic == "grad_norm" else f"{row.layer} {statistic}"
            epochs, values = found.setdefault((row.position, label), ([], []))
            epochs.append(row.epoch)
            values.append(value)
    return dict(sorted(found.items()))


def empty_lines(ax, found: dict[tuple[int, str], tuple[list, list]], last: int, marked: bool):
    """A line for each series, coloured by its layer's position, and the panel's legend."""
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    colours = colormaps["viridis"]
    marker = "o" if marked else None
    lines = []
    for position, label in found:
        colour = colours(0.9 * (position - 1) / max(1, last - 1))
        lines += ax.plot([], [], marker=marker, markersize=3, color=colour, label=label)
    ax.set_xlabel("epoch (0: the initial weights)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return lines
