"""A sweep's jobs as one ranked result (SweepReport), built from run directories alone, and how
its figures read. Below both sweep.py (the tables) and sweep_figure.py (the picture), which each
import it, so that neither imports the other back."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiclass.errors import UserError
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


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)
