"""A sweep as one result: sweep.csv (a row per job, every swept key its own typed column),
sweep.md (the same rows ranked by the objective, best first, unfinished jobs last), sweep.png
and the best rows for the console. Built from run directories alone, so it serves a sweep
that just ended, one still running, one interrupted, jobs run on a cluster, several sweeps."""

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiclass.errors import UserError
from multiclass.lifecycle.artifacts import write_atomic
from multiclass.reporting.runs import RunRecord, find_runs

FIGURES = (
    "status",
    "error",
    "test_acc",
    "best_val_acc",
    "best_epoch",
    "test_loss",
    "num_params",
    "train_time_s",
    "samples_per_s",
)
DEFAULT_OBJECTIVE = "best_val_acc"  # what multiclass-train returns to a sweeper
MINIMIZED = ("loss", "error", "time_s")  # objectives whose best is the lowest


@dataclass(frozen=True)
class SweepReport:
    """The jobs of one or more sweeps, ranked by `objective`."""

    records: list[RunRecord]
    swept: list[str]  # the keys whose values differ between jobs
    objective: str

    @property
    def minimize(self) -> bool:
        return self.objective.endswith(MINIMIZED)

    def row(self, record: RunRecord) -> dict[str, Any]:
        row: dict[str, Any] = {"job": record.job}
        row.update({key: record.value(key) for key in self.swept})
        row.update({name: record.summary.get(name) for name in FIGURES})
        row["status"] = record.status
        row["run_dir"] = str(record.path)
        return row

    def score(self, record: RunRecord) -> float | None:
        value = record.summary.get(self.objective)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return None
        return float(value)

    def ranked(self) -> list[RunRecord]:
        """Completed jobs best first, then jobs without the objective, then unfinished jobs."""

        def order(record: RunRecord) -> tuple:
            score = self.score(record)
            signed = 0.0 if score is None else (score if self.minimize else -score)
            return (record.status != "completed", score is None, signed, record.job or 0)

        return sorted(self.records, key=order)

    @property
    def best(self) -> RunRecord | None:
        ranked = self.ranked()
        if ranked and ranked[0].status == "completed" and self.score(ranked[0]) is not None:
            return ranked[0]
        return None

    def label(self, record: RunRecord) -> str:
        """`depth=2 width=64`: a job by its swept values (the last part of each key)."""
        parts = [
            f"{key.rsplit('.', 1)[-1]}={format_value(record.value(key))}" for key in self.swept
        ]
        return " ".join(parts) or f"job {record.job}"


def build_report(paths: Sequence[Path], objective: str = DEFAULT_OBJECTIVE) -> SweepReport:
    records = find_runs(paths)
    if not records:
        raise UserError(f"no run directories under {', '.join(str(p) for p in paths)}")
    return SweepReport(records, swept_keys(records), objective)


def swept_keys(records: list[RunRecord]) -> list[str]:
    """The override keys whose values differ between jobs, in the order typed. For runs that
    Hydra did not launch (no .hydra/), the config values that differ, shallowest first, less
    copies: `dataset.seed` (`${seed}` in the config) has the name and values of `seed`."""
    with_overrides = [r.overrides for r in records if r.overrides]
    candidates = [key for overrides in with_overrides for key in overrides]
    if not with_overrides:
        leaves = [key for r in records for key, v in r.config.items() if not isinstance(v, dict)]
        candidates = sorted(dict.fromkeys(leaves), key=lambda key: key.count("."))
    keys, seen = [], set()
    for key in dict.fromkeys(candidates):
        values = tuple(repr(record.value(key)) for record in records)
        copy = (key.rsplit(".", 1)[-1], values)
        if key.startswith("reproduces.") or len(set(values)) < 2 or copy in seen:
            continue
        seen.add(copy)
        keys.append(key)
    return keys


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


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)
