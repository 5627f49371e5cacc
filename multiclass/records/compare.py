"""Whether two runs of one config came out the same: their weights' digests, every metrics.csv
column but the times, epoch by epoch, and a calibrated run's temperature; and where their
provenance differs (source commit, uncommitted changes, library versions, device, threads),
which may explain it.
A run without metrics.csv (callbacks.metrics=null) is compared by its weights alone, and the
verdict says so."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiclass.records.artifacts import read_csv_rows, read_json

TIMES = ("train_seconds", "epoch_seconds")
PROVENANCE = ("git_commit", "git_dirty", "versions", "device", "num_threads")
NO_METRICS = "no metrics compared: neither run kept a metrics.csv (callbacks.metrics=null)"


@dataclass
class Comparison:
    identical_weights: bool
    first_difference: str | None  # "epoch 3 val_loss: 0.2311 then 0.2312 (+1e-04)"
    provenance: list[str] = field(default_factory=list)  # "device: cuda then cpu"
    metrics_compared: bool = True  # False: neither run kept metrics.csv

    @property
    def reproduced(self) -> bool:
        return self.identical_weights and self.first_difference is None

    def verdict(self) -> str:
        weights = "identical weights" if self.identical_weights else "different weights"
        if not self.metrics_compared:
            outcome = "reproduced" if self.reproduced else "not reproduced"
            return f"{outcome}: {weights}; {NO_METRICS}"
        if self.reproduced:
            return "reproduced: identical weights and metrics"
        return f"not reproduced: {self.first_difference or 'identical metrics'}; {weights}"


def compare_runs(original: Path, rerun: Path) -> Comparison:
    before = read_json(original / "summary.json") or {}
    after = read_json(rerun / "summary.json") or {}
    digest = after.get("weights_sha256")
    same_weights = digest is not None and before.get("weights_sha256") == digest
    kept = [(run / "metrics.csv").is_file() for run in (original, rerun)]
    return Comparison(
        identical_weights=same_weights,
        first_difference=first_metric_difference(original, rerun) or temperature(before, after),
        provenance=provenance_differences(before, after),
        metrics_compared=any(kept),
    )


def first_metric_difference(original: Path, rerun: Path) -> str | None:
    before, after = read_csv_rows(original / "metrics.csv"), read_csv_rows(rerun / "metrics.csv")
    for row_before, row_after in zip(before, after, strict=False):
        for column, value in row_before.items():
            if column in TIMES or row_after.get(column) == value:
                continue
            change = describe_change(value, row_after.get(column))
            return f"epoch {row_before['epoch']} {column}: {change}"
    if len(before) != len(after):
        return f"{len(before)} epochs then {len(after)}"
    return None


def temperature(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """trainer.calibrate's fitted temperature, where the two runs' differ."""
    if before.get("temperature") == after.get("temperature"):
        return None
    return f"temperature: {describe_change(before.get('temperature'), after.get('temperature'))}"


def describe_change(before: str | None, after: str | None) -> str:
    try:
        delta = float(after) - float(before)
    except (TypeError, ValueError):
        return f"{before} then {after}"
    return f"{before} then {after} ({delta:+.1e})"


def provenance_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    notes = []
    for key in PROVENANCE:
        if before.get(key) != after.get(key):
            notes.append(f"{key}: {before.get(key)} then {after.get(key)}")
    return notes
