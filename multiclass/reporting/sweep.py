"""A sweep as one result: sweep.csv (a row per job, every swept key its own typed column),
sweep.md (the same rows ranked by the objective, best first, unfinished jobs last), sweep.png
and the best rows for the console. Built from run directories alone (sweep_jobs.py), so it
serves a sweep that just ended, one still running, one interrupted, jobs run on a cluster,
several sweeps."""

import csv
import io
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from multiclass.records.artifacts import write_atomic
from multiclass.reporting.runs import RunRecord
from multiclass.reporting.sweep_jobs import SweepReport, format_figure, format_value

CONSOLE_FIGURES = ("status", "test_acc", "test_loss", "num_params")  # beside the objective
DEFAULT_WIDTH = 100  # the console table's width when the output is no terminal
NARROWEST = 10  # a swept column is shortened to no fewer characters than this
GAP = "  "  # between the console table's columns


def write_report(
    report: SweepReport, out_dir: Path, plots: bool = True, stem: str = "sweep"
) -> tuple[list[Path], Path | None]:
    """`stem`.csv, `stem`.md and (with `plots`) `stem`.png in `out_dir`: the paths written, and
    the picture an earlier report left under that name, removed (None: there was none) where
    none is drawn, so that the files by one name never disagree. The old picture goes first:
    a drawing that fails leaves none, not one of other figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, markdown_path, picture = (out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "png"))
    removed = picture if picture.exists() and not plots else None
    picture.unlink(missing_ok=True)
    write_atomic(csv_path, to_csv(report))
    write_atomic(markdown_path, to_markdown(report))
    if not plots:
        return [csv_path, markdown_path], removed
    from multiclass.reporting.sweep_figure import draw_sweep

    draw_sweep(report, picture)
    return [csv_path, markdown_path, picture], None


def to_csv(report: SweepReport) -> str:
    """One row per job in job order; numbers stay numbers, a missing value is empty."""
    rows = [report.row(record) for record in report.records]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: "" if value is None else value for key, value in row.items()} for row in rows
    )
    return text.getvalue()


def to_markdown(report: SweepReport) -> str:
    counts: dict[str, int] = {}
    for record in report.records:
        counts[record.status] = counts.get(record.status, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    direction = "lowest" if report.minimize else "highest"
    lines = [
        f"# Sweep report: {len(report.records)} {report.kind}s ({tally})",
        "",
        f"Ranked by `{report.objective_name}`, {direction} first;"
        f" {report.kind}s that did not complete last.",
        "",
        best_line(report),
        "",
        *markdown_table(report, report.ranked()),
    ]
    return "\n".join(lines) + "\n"


def best_line(report: SweepReport) -> str:
    best = report.best
    if best is None:
        return f"No completed job has a `{report.objective_name}`."
    params = " ".join(f"`{key}={format_value(report.value(best, key))}`" for key in report.swept)
    return (
        f"Best: {report.title(best)} ({best.path}), {report.objective_name}"
        f" {format_figure(report.score(best))}" + (f", with {params}" if params else "")
    )


def cell(report: SweepReport, key: str, value: Any) -> str:
    """A swept value as configured, any other figure in its kind's one format."""
    return format_value(value) if key in report.swept else format_figure(value)


def markdown_table(report: SweepReport, records: list[RunRecord]) -> list[str]:
    rows = [report.row(record) for record in records]
    keys = [key for key in rows[0] if key not in ("job", "error", "run_dir")]
    lines = ["| " + " | ".join([report.kind, *keys]) + " |", "|" + "---|" * (len(keys) + 1)]
    for record, row in zip(records, rows, strict=True):
        cells = [report.name(record), *(cell(report, key, row[key]) for key in keys)]
        if row["error"]:
            cells[keys.index("status") + 1] += f": {row['error']}"
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |")
    return lines


@dataclass(frozen=True, eq=False)
class Column:
    """A column of the console table. `role` says what fitting it to the terminal may do:
    `name` and `objective` stay whole; a `swept` column may be shortened; `swept` and `figure`
    columns may be said once above the table (one value for every run) or left out."""

    header: str
    cells: list[str]
    role: str

    @property
    def width(self) -> int:
        return max(len(text) for text in [self.header, *self.cells])

    def narrowed(self, width: int) -> "Column":
        if self.role != "swept" or self.width <= width:
            return self
        return replace(
            self, header=clip(self.header, width), cells=[clip(c, width) for c in self.cells]
        )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def console_lines(
    report: SweepReport, top: int = 5, width: int | None = None, markdown: str = "sweep.md"
) -> list[str]:
    """The best `top` runs as an aligned text table that fits the terminal (DEFAULT_WIDTH where
    the output is none): what every row shares is said once above it, long swept values are
    shortened, and if that is not enough the last columns are left out (sweep.md has them)."""
    width = width or shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    records = report.ranked()[:top]
    shared, columns = split_shared(console_columns(report, records))
    columns, left_out = fit(columns, width)
    lines = [shared_line(report, shared, len(records))] if shared else []
    lines.append(GAP.join(column.header.rjust(column.width) for column in columns))
    lines += [
        GAP.join(column.cells[row].rjust(column.width) for column in columns)
        for row in range(len(records))
    ]
    if left_out:
        lines.append(f"Left out: {', '.join(column.header for column in left_out)} (in {markdown})")
    return [clip(line, width) for line in lines] + failure_lines(report)


def failure_lines(report: SweepReport) -> list[str]:
    """`jobs 1, 3 failed: model.width must be ...`: why runs did not complete, each reason
    once with the runs it stopped, whole (wherever they rank: the table may not show them)."""
    stopped: dict[tuple[str, str], list[str]] = {}
    for record in report.records:
        error = record.summary.get("error")
        if record.status != "completed" and error:
            reason = (record.status, " ".join(str(error).split()))
            stopped.setdefault(reason, []).append(report.name(record))
    return [
        f"{report.kind}{'s' if len(names) > 1 else ''} {', '.join(names)} {status}: {error}"
        for (status, error), names in stopped.items()
    ]


def shared_line(report: SweepReport, shared: list[Column], shown: int) -> str:
    """`All 3 runs: status completed, num_params 8,970`: the values every row shows alike."""
    whom = f"{shown} shown" if shown < len(report.records) else f"{shown} {report.kind}s"
    return f"All {whom}: " + ", ".join(f"{column.header} {column.cells[0]}" for column in shared)


def console_columns(report: SweepReport, records: list[RunRecord]) -> list[Column]:
    """The runs' names, swept values (each by the last part of its key, unless that repeats)
    and figures: the status, the objective, then the others."""
    rows = [{**report.row(r), report.objective: r.summary.get(report.objective)} for r in records]
    lasts = [key.rsplit(".", 1)[-1] for key in report.swept]
    headers = [
        last if lasts.count(last) == 1 else key
        for key, last in zip(report.swept, lasts, strict=True)
    ]
    columns = [Column(report.kind, [report.name(record) for record in records], "name")]
    columns += [
        Column(header, [format_value(row[key]) for row in rows], "swept")
        for header, key in zip(headers, report.swept, strict=True)
    ]
    figures = dict.fromkeys([CONSOLE_FIGURES[0], report.objective, *CONSOLE_FIGURES[1:]])
    columns += [
        Column(
            name,
            [format_figure(row.get(name)) for row in rows],
            "objective" if name == report.objective else "figure",
        )
        for name in figures
    ]
    return columns


def split_shared(columns: list[Column]) -> tuple[list[Column], list[Column]]:
    """The columns with one value in every row of several (said once), and the others."""
    shared: list[Column] = []
    kept: list[Column] = []
    for column in columns:
        one = len(column.cells) > 1 and len(set(column.cells)) == 1
        (shared if one and column.role in ("swept", "figure") else kept).append(column)
    return shared, kept


def fit(columns: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns shortened to `width` in all (the widest swept values first, to no fewer than
    NARROWEST characters), and those left out where that was not enough (leave_out)."""
    narrowed = columns
    for widest in range(max(column.width for column in columns), NARROWEST - 1, -1):
        narrowed = [column.narrowed(widest) for column in columns]
        if table_width(narrowed) <= width:
            return narrowed, []
    return leave_out(narrowed, width)


def leave_out(columns: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """The columns kept and those left out, from the right, until the rest fit `width`: the
    figures before the swept values; the name and the objective always stay."""
    kept = list(columns)
    for column in reversed(columns):
        if table_width(kept) <= width:
            break
        if column.role in ("swept", "figure"):
            kept.remove(column)
    return kept, [column for column in columns if column not in kept]


def table_width(columns: list[Column]) -> int:
    return sum(column.width for column in columns) + len(GAP) * (len(columns) - 1)
