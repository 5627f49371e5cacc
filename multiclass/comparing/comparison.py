"""What a comparison says (multiclass-report --compare, sides.py picks the two sides): the same
tables on the console and in compare-A-vs-B.md (the config keys that differ, the figures with
their difference, per-class F1), and both sides' learning curves in compare-A-vs-B.png."""

from collections.abc import Sequence
from pathlib import Path

from multiclass.comparing.groups import CONFIDENCE, Estimate
from multiclass.comparing.sides import SIDES, SideBySide, side_by_side
from multiclass.comparing.sweep_jobs import format_figure, is_figure, target_name
from multiclass.errors import UserError, describe_os_error
from multiclass.records.artifacts import shown_path, write_atomic

INTERVAL = f"{CONFIDENCE:.0%} interval"
# A table: its title, its header and its rows, written aligned to the console, as markdown to
# the file.
Table = tuple[str, list[str], list[list[str]]]


def compare(
    values: Sequence[str], paths: Sequence[Path], out: Path | None, plots: bool = True
) -> list[str]:
    """Compare two runs or groups (see side_by_side), write compare-A-vs-B.md and, with
    `plots`, .png into `out` (by default the folder that holds every run compared); the lines
    for the console."""
    sbs = side_by_side(values, paths)
    blocks = [*heading(sbs), config_table(sbs), *shared_line(sbs)]
    blocks += [*figure_tables(sbs), class_table(sbs)]
    if not sbs.of_runs:
        blocks.append(assumption(sbs))
    written = write_comparison(sbs, blocks, out or sbs.report.root, plots)
    return [*console_text(blocks), f"Written: {', '.join(map(shown_path, written))}"]


def heading(sbs: SideBySide) -> list[str]:
    """Each side in a line, and the data set they share."""
    lines = []
    for letter, side in zip(SIDES, sbs.sides, strict=True):
        if sbs.of_runs:
            (record,) = side.records
            lines.append(f"{letter}: {shown_path(record.path)} ({record.status})")
        else:
            done = len(side.group.finished)
            lines.append(f"{letter}: {side.name}, {len(side.records)} jobs ({done} completed)")
    first = sbs.a.records[0]
    classes = first.summary.get("num_classes")
    data = target_name(first.config.get("dataset"))
    lines.append(f"Data set: {data}" + (f", {classes} classes" if classes else ""))
    return lines


def config_table(sbs: SideBySide) -> Table:
    """The keys whose values differ between the sides (not those that vary alike within
    each, such as the seed: shared_line says those)."""
    rows = [[key, *(sbs.values(side, key) for side in sbs.sides)] for key in sbs.report.swept]
    return ("Config that differs", ["key", *SIDES], [row for row in rows if row[1] != row[2]])


def shared_line(sbs: SideBySide) -> list[str]:
    """`Both sides ran: seed 0, 1, 2`: what varies within each side alike, which pairs them."""
    rows = [[key, *(sbs.values(side, key) for side in sbs.sides)] for key in sbs.report.swept]
    shared = [f"{key} {a}" for key, a, b in rows if a == b]
    return [f"Both sides ran: {', '.join(shared)}"] if shared else []


def figure_tables(sbs: SideBySide) -> list[Table]:
    """Runs: one table of A, B and B - A. Groups: each side's estimates, then the differences
    of the means with their interval and test."""
    if sbs.of_runs:
        rows = [[name, *run_cells(sbs, name)] for name in sbs.figures]
        return [("Figures", ["figure", *SIDES, "B - A"], rows)]
    estimates = [
        [
            name,
            *(estimate_cell(side.group.estimate(name), sbs.integral(name)) for side in sbs.sides),
        ]
        for name in sbs.figures
    ]
    differences = [[name, *difference_cells(sbs, name)] for name in sbs.figures]
    return [
        (f"Figures, mean ± sd [{INTERVAL} of the mean]", ["figure", *SIDES], estimates),
        (
            "B - A, the difference of the means",
            ["figure", "B - A", INTERVAL, "p", "test"],
            differences,
        ),
    ]


def run_cells(sbs: SideBySide, figure: str) -> list[str]:
    """A run's figure whatever its status (a killed run's best so far), and B's less A's."""
    values = [record.summary.get(figure) for side in sbs.sides for record in side.records]
    cells = [format_figure(value if is_figure(value) else None) for value in values]
    both = all(is_figure(value) for value in values)
    return [*cells, signed(values[1] - values[0] if both else None, sbs.integral(figure))]


def estimate_cell(estimate: Estimate, integral: bool) -> str:
    """`0.9123 ± 0.0100 [0.8874, 0.9372]`, and `n=2 of 3` where runs lack the figure; one
    run's figure says it has no interval, one that every run shares (num_params) says so."""
    if estimate.mean is None:
        return "-"
    mean = number(estimate.mean, integral)
    if estimate.sd is None or estimate.low is None or estimate.high is None:
        text = f"{mean} (one run: no interval)"
    elif estimate.sd == 0:
        text = f"{mean} (every run)"
    else:
        spread = f"{number(estimate.sd, integral)} [{number(estimate.low, integral)},"
        text = f"{mean} ± {spread} {number(estimate.high, integral)}]"
    return text if estimate.n == estimate.total else f"{text} n={estimate.n} of {estimate.total}"


def difference_cells(sbs: SideBySide, figure: str) -> list[str]:
    """B - A, its interval, p and the test; no test where a side has under two runs, nor
    where every pair differs alike (num_params): no noise to test against."""
    difference = sbs.difference(figure)
    if difference is None:
        return ["-", "-", "-", "a side has none"]
    integral = sbs.integral(figure)
    if difference.p is None:
        return [signed(difference.mean, integral), "-", "-", "too few runs to test"]
    if difference.low is None or difference.high is None or difference.low == difference.high:
        return [signed(difference.mean, integral), "-", "-", "no spread to test"]
    interval = f"[{signed(difference.low, integral)}, {signed(difference.high, integral)}]"
    return [
        signed(difference.mean, integral),
        interval,
        f"{difference.p:.3g}",
        difference.test or "-",
    ]


def class_table(sbs: SideBySide) -> Table:
    """Each class's test F1 per side (a group's mean ± sd over its completed runs), and B's
    less A's."""
    if sbs.of_runs:
        a, b = (
            {k: Estimate.of([f1], 1) for k, f1 in s.records[0].class_f1.items()} for s in sbs.sides
        )
    else:
        a, b = (side.group.class_f1() for side in sbs.sides)
    rows = [
        [name, f1_cell(a.get(name)), f1_cell(b.get(name)), signed(mean_change(a, b, name))]
        for name in dict.fromkeys([*a, *b])
    ]
    return ("Per-class test F1", ["class", *SIDES, "B - A"], rows)


def mean_change(a: dict[str, Estimate], b: dict[str, Estimate], name: str) -> float | None:
    means = [side[name].mean if name in side else None for side in (a, b)]
    return None if None in means else means[1] - means[0]


def f1_cell(estimate: Estimate | None) -> str:
    if estimate is None or estimate.mean is None:
        return "-"
    if estimate.sd is None:
        return number(estimate.mean)
    return f"{number(estimate.mean)} ± {number(estimate.sd)}"


def assumption(sbs: SideBySide) -> str:
    """The one line that says what the tests assume."""
    over = ", ".join(sbs.a.group.over)
    paired = f"pairs of runs of the same {over}" if over else "pairs of runs"
    return (
        f"Tests: a paired t-test over {paired} where the sides' runs match one to one, else"
        " Welch's t-test; both assume a figure varies about normally from run to run."
    )


def number(value: float, integral: bool = False) -> str:
    return f"{value:,.0f}" if integral else f"{value:,.4f}"


def signed(value: float | None, integral: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+,.0f}" if integral else f"{value:+,.4f}"


def console_text(blocks: Sequence[str | Table]) -> list[str]:
    """Lines as they are; a table under its title, its columns aligned."""
    lines = []
    for block in blocks:
        if isinstance(block, str):
            lines.append(block)
            continue
        title, header, rows = block
        if not rows:
            lines.append(f"{title}: none")
            continue
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines.append(f"{title}:")
        lines += [
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in [header, *rows]
        ]
    return [line.rstrip() for line in lines]


def markdown_text(sbs: SideBySide, blocks: Sequence[str | Table]) -> str:
    lines = [f"# Comparison: A {sbs.a.name} and B {sbs.b.name}", ""]
    for block in blocks:
        if isinstance(block, str):
            lines += [block, ""]
            continue
        title, header, rows = block
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        cells = [[cell.replace("|", "\\|") for cell in row] for row in [header, *rows]]
        lines += ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells[1:]] + [""]
    return "\n".join(lines)


def write_comparison(
    sbs: SideBySide, blocks: Sequence[str | Table], folder: Path, plots: bool
) -> list[Path]:
    """compare-A-vs-B.md and .png in `folder`: an older picture by that name goes first, so
    that the two files never disagree where none is drawn."""
    stem = f"compare-{sbs.a.name}-vs-{sbs.b.name}"
    markdown, picture = folder / f"{stem}.md", folder / f"{stem}.png"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        picture.unlink(missing_ok=True)
        write_atomic(markdown, markdown_text(sbs, blocks))
        if not plots:
            return [markdown]
        draw(sbs, picture)
    except OSError as error:
        raise UserError(
            f"{describe_os_error(error)}: write the comparison elsewhere with --out DIR"
        ) from None
    return [markdown, picture]


def draw(sbs: SideBySide, path: Path) -> None:
    from multiclass.comparing.comparison_figure import draw_side_by_side

    sides = [
        (f"{letter}: {side.name}", [record.path for record in side.records])
        for letter, side in zip(SIDES, sbs.sides, strict=True)
    ]
    draw_side_by_side(sides, f"{sides[0][0]}   vs   {sides[1][0]}", path)
