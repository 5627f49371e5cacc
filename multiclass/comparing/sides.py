"""The two sides of multiclass-report --compare A B: two runs, or two groups of jobs picked by
a KEY=VALUE filter each, with a report of their runs together whose swept keys are the config
keys that differ (those that describe the experiment, as the sweep report decides); for groups,
the difference of the means with its interval and test (groups.py). Runs of different data
sets, without metrics, or no runs at all are refused here, before anything is written
(comparison.py says and writes the rest)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from multiclass.comparing.groups import Difference, Group, compared
from multiclass.comparing.runs import RUN_MARKERS, RunRecord, find_runs, read_run
from multiclass.comparing.sweep_jobs import (
    DEFAULT_OBJECTIVE,
    SweepReport,
    format_value,
    in_order,
    is_figure,
    swept_keys,
    target_name,
)
from multiclass.errors import UserError

FIGURES = ("best_val_acc", "test_acc", "test_loss", "test_macro_f1", "num_params", "train_time_s")
SIDES = ("A", "B")


@dataclass(frozen=True)
class Side:
    """`name`: the side in file names and the picture (`cmpA`, `model.width=32`); `group`: its
    runs, each known by its values of the keys that vary within the side (its seed), which pair
    it with the run of the other side that has the same."""

    name: str
    group: Group

    @property
    def records(self) -> tuple[RunRecord, ...]:
        return self.group.records


@dataclass(frozen=True)
class SideBySide:
    """Two sides, and a report of their runs together: the keys that differ, values as shown."""

    report: SweepReport
    a: Side
    b: Side
    of_runs: bool  # two runs; else two groups

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.a, self.b)

    @cached_property
    def figures(self) -> list[str]:
        """The FIGURES that some run of either side has."""
        runs = [record for side in self.sides for record in side.records]
        return [name for name in FIGURES if any(is_figure(r.summary.get(name)) for r in runs)]

    def integral(self, figure: str) -> bool:
        """Whether `figure` counts (num_params): its mean and difference show no decimals."""
        values = [r.summary.get(figure) for side in self.sides for r in side.records]
        return all(isinstance(value, int) for value in values if is_figure(value))

    def values(self, side: Side, key: str) -> str:
        """The side's values of `key`: `32`, or `0, 1, 2`."""
        return values_shown(self.report, side.records, key)

    def difference(self, figure: str) -> Difference | None:
        """B's mean less A's: paired over the runs matched by their seed, else Welch's."""
        return compared(self.b.group, self.a.group, figure)


def shown_value(report: SweepReport, record: RunRecord, key: str) -> Any:
    """A key's value as the report shows it; a config group that no run varies by its option."""
    value = report.value(record, key)
    return target_name(value) if isinstance(value, dict) else value


def values_shown(report: SweepReport, records: Sequence[RunRecord], key: str) -> str:
    """The values of `key` in `records`, each once, numbers in their order: `8, 16`."""
    values = {
        format_value(shown_value(report, r, key)): shown_value(report, r, key) for r in records
    }
    return ", ".join(sorted(values, key=lambda text: in_order(values[text])))


def report_of(records: Sequence[RunRecord], first: Sequence[str] = ()) -> SweepReport:
    """The runs as one report, whose swept keys are those that differ in their configs (`first`
    first): every config key compared, not only the overrides typed, which two runs made apart
    need not share."""
    keys = swept_keys(list(records), whole_config=True)
    ordered = [key for key in dict.fromkeys(first) if key in keys]
    ordered += [key for key in keys if key not in ordered]
    return SweepReport(list(records), ordered, DEFAULT_OBJECTIVE)


# What `--compare` was given: two run directories, or two KEY=VALUE filters.


def side_by_side(values: Sequence[str], paths: Sequence[Path]) -> SideBySide:
    """Two runs (`values` are their directories, with no PATH), or two groups of the jobs under
    `paths` (`values` are filters: KEY=VALUE and no directory)."""
    if len(values) != 2:
        raise UserError(
            f"--compare takes two values, got {len(values)}: two run directories, or two"
            " KEY=VALUE filters after the sweep directories (multiclass-report PATH --compare"
            " model.width=32 model.width=128)"
        )
    filters = [is_filter(value) for value in values]
    if not any(filters):
        if paths:
            raise UserError(
                f"--compare of two runs takes no PATH ({', '.join(map(str, paths))}): to compare"
                " groups of the jobs under PATH, give --compare two KEY=VALUE filters"
            )
        return compare_runs(*(Path(value) for value in values))
    if not all(filters):
        raise UserError(
            f"--compare {' '.join(values)}: give two run directories or two KEY=VALUE filters,"
            " not one of each"
        )
    if not paths:
        raise UserError(
            f"--compare {' '.join(values)}: filters pick jobs under a sweep directory: name it,"
            f" multiclass-report PATH --compare {' '.join(values)}"
        )
    return compare_groups(paths, values)


def is_filter(value: str) -> bool:
    """KEY=VALUE that names no directory (a run's folder may have `=` in its name)."""
    return "=" in value and not Path(value).is_dir()


def compare_runs(a: Path, b: Path) -> SideBySide:
    records = [run_at(path, side) for path, side in zip((a, b), SIDES, strict=True)]
    if a.resolve() == b.resolve():
        raise UserError(f"--compare {a} {b}: one run on both sides; name two runs")
    one_data_set(records)
    report = report_of(records)
    a_side, b_side = (Side(file_name(report.name(r)), Group((), (r,), ())) for r in records)
    return SideBySide(report, a_side, b_side, of_runs=True)


def run_at(path: Path, side: str) -> RunRecord:
    """The run in `path`, which has metrics to compare; else one line that says what it is."""
    if not path.is_dir():
        raise UserError(f"--compare {side}: {path}: no such directory")
    if not any((path / marker).exists() for marker in RUN_MARKERS):
        held = len(find_runs([path]))
        hint = (
            f"; it holds {held} runs: compare groups of them with multiclass-report {path}"
            " --compare KEY=VALUE KEY=VALUE"
            if held
            else ""
        )
        raise UserError(
            f"--compare {side}: {path} is no run directory (no config.yaml, summary.json or"
            f" .hydra/){hint}"
        )
    record = read_run(path)
    if not has_metrics(record):
        error = record.summary.get("error")
        why = f"it failed: {error}" if error else "it stopped before its first epoch"
        raise UserError(
            f"--compare {side}: {path} has no metrics (no summary.json, no metrics.csv): {why}"
        )
    return record


def has_metrics(record: RunRecord) -> bool:
    return any((record.path / name).is_file() for name in ("summary.json", "metrics.csv"))


def compare_groups(paths: Sequence[Path], filters: Sequence[str]) -> SideBySide:
    """The jobs under `paths` that each filter selects, paired by the keys that vary within a
    side (all that vary but the filters' keys)."""
    records = find_runs(paths)
    if not records:
        raise UserError(f"no run directories under {', '.join(map(str, paths))}")
    whole = report_of(records)
    chosen = [selected(whole, text) for text in filters]
    disjoint(filters, [found for _, found in chosen])
    compared_runs = [record for _, found in chosen for record in found]
    one_data_set(compared_runs)
    keys = [key for key, _ in chosen]
    report = report_of(compared_runs, keys)
    over = tuple(key for key in report.swept if key not in keys)
    a_side, b_side = (
        Side(file_name(f"{key}={value}"), Group(((key, value),), tuple(found), over))
        for (key, found), value in zip(chosen, values_of(filters), strict=True)
    )
    return SideBySide(report, a_side, b_side, of_runs=False)


def values_of(filters: Sequence[str]) -> list[str]:
    return [text.partition("=")[2] for text in filters]


def selected(report: SweepReport, text: str) -> tuple[str, list[RunRecord]]:
    """The key a filter names (a swept key also by its last part: `width`) and the jobs whose
    value of it reads as the filter's, as the report shows it or as the job's override typed
    it; the jobs must have metrics to compare."""
    typed, _, value = text.partition("=")
    key = filter_key(report, typed.strip(), text)
    found = [r for r in report.records if value in shown_as(report, r, key)]
    if not found:
        there = values_shown(report, report.records, key)
        raise UserError(f"--compare {text}: no job has {key}={value}; its values: {there}")
    if not any(has_metrics(record) for record in found):
        raise UserError(
            f"--compare {text}: none of its {len(found)} jobs has metrics (summary.json or"
            " metrics.csv)"
        )
    return key, found


def filter_key(report: SweepReport, key: str, text: str) -> str:
    """`key` where some job has it; a swept key whose last part it is, where only one is."""
    if any(key in record.config or key in record.overrides for record in report.records):
        return key
    ends = [swept for swept in report.swept if swept.rsplit(".", 1)[-1] == key]
    if len(ends) == 1:
        return ends[0]
    varied = ", ".join(report.swept) or "none"
    raise UserError(f"--compare {text}: no job has the key {key}; the keys that vary: {varied}")


def shown_as(report: SweepReport, record: RunRecord, key: str) -> set[str]:
    """How a filter may write the job's value: as shown, as typed, `true` for True."""
    shown = format_value(shown_value(report, record, key))
    return {shown, shown.lower(), record.overrides.get(key, shown)}


def disjoint(filters: Sequence[str], found: Sequence[list[RunRecord]]) -> None:
    """No job on both sides: a job compared with itself tells nothing."""
    both = [record for record in found[0] if record in found[1]]
    if not both:
        return
    which = "the same jobs" if len(both) == len(found[0]) == len(found[1]) else "shared jobs"
    raise UserError(
        f"--compare {' '.join(filters)}: both sides select {which} ({len(both)} on both):"
        " filter by values that split the jobs in two"
    )


def one_data_set(records: Sequence[RunRecord]) -> None:
    """Every run on one data set (dataset._target_), of the same classes where they say."""
    first = records[0]
    for other in records[1:]:
        differs = data_set_difference(first, other)
        if differs:
            raise UserError(
                f"{first.path} and {other.path} ran on different data sets, {differs}:"
                " compare runs of one data set"
            )


def data_set_difference(a: RunRecord, b: RunRecord) -> str | None:
    """`mnist then digits (dataset._target_)`; None where both ran on the same data."""
    names = [target_name(r.config.get("dataset")) for r in (a, b)]
    if names[0] != names[1]:
        return f"{names[0]} then {names[1]} (dataset._target_)"
    counts = [r.summary.get("num_classes") for r in (a, b)]
    if None not in counts and counts[0] != counts[1]:
        return f"{counts[0]} then {counts[1]} classes (dataset.classes)"
    classes = [list(r.class_f1) for r in (a, b)]
    if all(classes) and classes[0] != classes[1]:
        return f"classes {', '.join(classes[0])} then {', '.join(classes[1])} (dataset.classes)"
    return None


def file_name(name: str) -> str:
    """A side's name as part of a file name: `2026-12-07/10-00-00` -> `2026-12-07_10-00-00`."""
    return re.sub(r"[^\w.=,+-]", "_", name)
