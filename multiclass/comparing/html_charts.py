"""sweep.html's charts as inline SVG, drawn from plain numbers and strings: lines over a shared
x axis (the validation curves), parallel coordinates (the swept keys against the objective),
and the colour scales they and the heatmap share. Hovering a line names it: an SVG <title>
inside each path, which the browser shows with no script. Every text is escaped here."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH, HEIGHT = 760, 360
MARGIN = {"left": 60, "right": 20, "top": 20, "bottom": 45}
# Tableau's ten colours (matplotlib's tab10): one a group, the same in every chart and legend.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# Viridis at five stops, dark to light: the heatmap's scale, readable in grey and by most
# colour-blind readers.
VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))


@dataclass(frozen=True)
class Line:
    """One job's line: what hovering it says, its colour, dashed where the job did not complete,
    and its points (x, y) in a line chart or its value on each axis in parallel coordinates."""

    title: str
    colour: str
    points: Sequence[Any]
    dashed: bool = False


def group_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def scale_colour(fraction: float) -> str:
    """Viridis at `fraction` (0: dark purple, 1: yellow), as #rrggbb."""
    where = min(max(fraction, 0.0), 1.0) * (len(VIRIDIS) - 1)
    low = min(int(where), len(VIRIDIS) - 2)
    part = where - low
    mixed = (round(a + (b - a) * part) for a, b in zip(VIRIDIS[low], VIRIDIS[low + 1], strict=True))
    return "#" + "".join(f"{channel:02x}" for channel in mixed)


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) from `low` to `high`."""
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def padded(values: Sequence[float], margin: float = 0.0) -> tuple[float, float]:
    """The range of `values`, widened by `margin` of it each side (lines clear of the frame),
    and where it is a single value, so that a scale divides."""
    low, high = min(values), max(values)
    if high > low:
        return low - margin * (high - low), high + margin * (high - low)
    pad = abs(low) * 0.05 or 1.0
    return low - pad, high + pad


def tick_label(value: float) -> str:
    return f"{value:.4g}"


def svg(body: list[str], label: str, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}"'
        f' width="{WIDTH}" height="{height}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def text(x: float, y: float, content: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(content)}</text>'


def path(points: Sequence[tuple[float, float]], line: Line) -> str:
    """A polyline whose <title> the browser shows on hover."""
    drawn = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dash = ' stroke-dasharray="5 3"' if line.dashed else ""
    return (
        f'<polyline class="line" points="{drawn}" stroke="{line.colour}"{dash}>'
        f"<title>{escape(line.title)}</title></polyline>"
    )


def line_chart(lines: Sequence[Line], x_label: str, y_label: str) -> str:
    """Every line's points (x, y) against shared axes, each axis over the values' range."""
    xs = [x for line in lines for x, _ in line.points]
    ys = [y for line in lines for _, y in line.points]
    (x0, x1), (y0, y1) = padded(xs), padded(ys, margin=0.05)
    left, right = MARGIN["left"], WIDTH - MARGIN["right"]
    top, bottom = MARGIN["top"], HEIGHT - MARGIN["bottom"]

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (
            bottom - top
        )

    body = [
        f'<rect class="frame" x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"/>'
    ]
    for y in ticks(y0, y1):
        _, at_y = at(x0, y)
        body.append(
            f'<line class="grid" x1="{left}" x2="{right}" y1="{at_y:.1f}" y2="{at_y:.1f}"/>'
        )
        body.append(text(left - 6, at_y + 4, tick_label(y), "end"))
    for x in [x for x in ticks(x0, x1) if x.is_integer()]:  # epochs
        at_x, _ = at(x, y0)
        body.append(text(at_x, bottom + 16, tick_label(x)))
    body.append(text((left + right) / 2, HEIGHT - 8, x_label))
    body.append(
        text(
            14,
            (top + bottom) / 2,
            y_label,
            extra=f' transform="rotate(-90 14 {(top + bottom) / 2:.1f})"',
        )
    )
    body += [path([at(x, y) for x, y in line.points], line) for line in lines]
    return svg(body, f"{y_label} by {x_label}")


@dataclass(frozen=True)
class Axis:
    """A vertical axis of parallel coordinates: numeric (its range) or categorical (its values
    in order, evenly spaced)."""

    name: str
    categories: tuple[str, ...] | None
    low: float = 0.0
    high: float = 1.0
    whole: bool = False  # every value an integer (a seed, a width): ticks at integers alone

    @classmethod
    def of(cls, name: str, values: Sequence[Any]) -> "Axis":
        if all(is_number(value) for value in values):
            whole = all(float(value).is_integer() for value in values)
            return cls(name, None, *padded([float(value) for value in values]), whole)
        return cls(name, tuple(sorted({str(value) for value in values}, key=in_order)))

    def fraction(self, value: Any) -> float:
        """Where `value` sits on the axis: 0 at the bottom, 1 at the top."""
        if self.categories is None:
            return (float(value) - self.low) / (self.high - self.low)
        if len(self.categories) == 1:
            return 0.5
        return self.categories.index(str(value)) / (len(self.categories) - 1)

    def labels(self) -> list[tuple[float, str]]:
        if self.categories is None:
            shown = [v for v in ticks(self.low, self.high, 4) if not self.whole or v.is_integer()]
            return [(self.fraction(v), tick_label(v)) for v in shown]
        return [(self.fraction(value), value) for value in self.categories]


def in_order(value: str) -> tuple:
    """Categories that read as numbers by their number (8 before 16), then the others."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parallel_chart(names: Sequence[str], lines: Sequence[Line]) -> str:
    """One vertical axis per name, one polyline per line through its value on each axis."""
    axes = [Axis.of(name, [line.points[i] for line in lines]) for i, name in enumerate(names)]
    left, right = MARGIN["left"] + 40, WIDTH - MARGIN["right"] - 60
    top, bottom = MARGIN["top"] + 10, HEIGHT - MARGIN["bottom"]
    step = (right - left) / max(len(axes) - 1, 1)
    body = []
    for i, axis in enumerate(axes):
        x = left + i * step
        body.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        body.append(text(x, HEIGHT - 20, axis.name, extra=' class="axis-name"'))
        for fraction, label in axis.labels():
            body.append(text(x - 5, bottom - fraction * (bottom - top) + 4, label, "end"))
    for line in lines:
        points = [
            (left + i * step, bottom - axis.fraction(value) * (bottom - top))
            for i, (axis, value) in enumerate(zip(axes, line.points, strict=True))
        ]
        body.append(path(points, line))
    return svg(body, f"parallel coordinates of {', '.join(names)}")
