"""A sweep as one result: sweep.csv (a row per job, every swept key its own typed column),
sweep.md (the same rows ranked by the objective, best first, unfinished jobs last), sweep.png
and the best rows for the console. Built from run directories alone (sweep_jobs.py), so it
serves a sweep that just ended, one still running, one interrupted, jobs run on a cluster,
several sweeps."""

import csv
import io
from pathlib import Path

from multiclass.lifecycle.artifacts import write_atomic
from multiclass.reporting.runs import RunRecord
from multiclass.reporting.sweep_jobs import SweepReport, format_value


def write_report(report: SweepReport, out_dir: Path, plots: bool = True) -> list[Path]:
    """sweep.csv, sweep.md and (with `plots`) sweep.png in `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "sweep.csv", out_dir / "sweep.md"]
    write_atomic(written[0], to_csv(report))
    write_atomic(written[1], to_markdown(report))
    if plots:
        from multiclass.reporting.sweep_figure import draw_sweep

        written.append(out_dir / "sweep.png")
        draw_sweep(report, written[-1])
    return written


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
        f"# Sweep report: {len(report.records)} jobs ({tally})",
        "",
        f"Ranked by `{report.objective}`, {direction} first; jobs that did not complete last.",
        "",
        best_line(report),
        "",
        *markdown_table(report, report.ranked()),
    ]
    return "\n".join(lines) + "\n"


def best_line(report: SweepReport) -> str:
    best = report.best
    if best is None:
        return f"No completed job has a `{report.objective}`."
    params = " ".join(f"`{key}={format_value(best.value(key))}`" for key in report.swept)
    return (
        f"Best: job {best.job} ({best.path}), {report.objective}"
        f" {format_value(report.score(best))}" + (f", with {params}" if params else "")
    )


def markdown_table(report: SweepReport, records: list[RunRecord]) -> list[str]:
    rows = [report.row(record) for record in records]
    header = [key for key in rows[0] if key not in ("error", "run_dir")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [format_value(row[key]) for key in header]
        if row["error"]:
            cells[header.index("status")] += f": {row['error']}"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def console_lines(report: SweepReport, top: int = 5) -> list[str]:
    """The best `top` jobs as an aligned text table."""
    figures = [report.objective, "test_acc", "test_loss", "num_params"]
    names = ["job", *report.swept, "status", *dict.fromkeys(figures)]
    rows = [
        {**report.row(record), report.objective: record.summary.get(report.objective)}
        for record in report.ranked()[:top]
    ]
    table = [[name.rsplit(".", 1)[-1] for name in names]]
    table += [[format_value(row.get(name)) for name in names] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(names))]
    return [
        "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in table
    ]
