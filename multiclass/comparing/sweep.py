"""A sweep as one result: sweep.csv (a row per job, every swept key its own typed column),
sweep.md (the same rows ranked by the objective, best first, unfinished jobs last), sweep.png
and the best rows for the console. Built from run directories alone (sweep_jobs.py), so it
serves a sweep that just ended, one still running, one interrupted, jobs run on a cluster,
several sweeps."""

import csv
import io
from pathlib import Path
from typing import Any

from multiclass.comparing.group_tables import best_group_line, markdown_group_table
from multiclass.comparing.groups import GroupReport
from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep_html import write_html
from multiclass.comparing.sweep_jobs import SweepReport, format_figure, format_value
from multiclass.comparing.text_table import Column, fitted_lines
from multiclass.records.artifacts import write_atomic

CONSOLE_FIGURES = ("status", "test_acc", "test_loss", "num_params")  # beside the objective


def write_report(
    groups: GroupReport,
    out_dir: Path,
    plots: bool = True,
    stem: str = "sweep",
    by_job: bool = False,
) -> tuple[list[Path], Path | None]:
    """`stem`.csv, `stem`.md, `stem`.html and (with `plots`) `stem`.png in `out_dir`: the paths
    written, and the picture an earlier report left under that name, removed (None: there was
    none) where none is drawn, so that the files by one name never disagree. The old picture
    goes first: a drawing that fails leaves none, not one of other figures. `by_job`: sweep.md
    ranks the jobs alone, not their groups."""
    report = groups.report
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, markdown_path, picture = (out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "png"))
    removed = picture if picture.exists() and not plots else None
    picture.unlink(missing_ok=True)
    write_atomic(csv_path, to_csv(report))
    write_atomic(markdown_path, to_markdown(groups, by_job))
    html = out_dir / f"{stem}.html"  # text, written with or without `plots`
    write_html(groups, html)
    if not plots:
        return [csv_path, markdown_path, html], removed
    from multiclass.comparing.sweep_figure import draw_sweep

    draw_sweep(groups, picture)
    return [csv_path, markdown_path, html, picture], None


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


def to_markdown(groups: GroupReport, by_job: bool = False) -> str:
    """The jobs ranked, after their groups where some jobs differ only in their seed."""
    report = groups.report
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
    ]
    if groups.collapses and not by_job:
        lines += [
            f"## Groups over {', '.join(groups.over)}",
            "",
            f"{groups.explanation} {groups.assumption}",
            "",
            best_group_line(groups),
            "",
            *markdown_group_table(groups),
            "",
            f"## {report.kind.capitalize()}s",
            "",
        ]
    lines += [best_line(report), "", *markdown_table(report, report.ranked())]
    return "\n".join(lines) + "\n"


def best_line(report: SweepReport) -> str:
    """`Best: job 7 (DIR), best_val_acc 0.9760, with model.depth=3`: the keys the best one
    sets (a key its config has not, such as an MLP's depth for a CNN, left out)."""
    best = report.best
    if best is None:
        return f"No completed job has a `{report.objective_name}`."
    values = {key: report.value(best, key) for key in report.swept}
    params = " ".join(f"`{key}={format_value(v)}`" for key, v in values.items() if v is not None)
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


def console_lines(
    report: SweepReport, top: int = 5, width: int | None = None, markdown: str = "sweep.md"
) -> list[str]:
    """The best `top` jobs as a table that fits the terminal (text_table), then why any job
    did not complete."""
    records = report.ranked()[:top]
    shown = len(records)
    rows = f"{shown} shown" if shown < len(report.records) else f"{shown} {report.kind}s"
    columns = console_columns(report, records)
    return fitted_lines(columns, rows, markdown, width) + failure_lines(report)


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
