"""A sweep's jobs as one ranked result (SweepReport), built from run directories alone, and how
its figures read. Below both sweep.py (the tables) and sweep_figure.py (the picture), which each
import it, so that neither imports the other back."""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from multiclass.comparing.runs import RunRecord, find_runs
from multiclass.config import MONITORS
from multiclass.errors import UserError
from multiclass.records.outcome import SUMMARY_FIELDS

FIGURES = (
    "status",
    "error",
    "test_acc",
    "test_macro_f1",
    "test_balanced_acc",
    "best_val_acc",
    "best_epoch",
    "monitor",
    "best_score",
    "test_loss",
    "num_params",
    "train_time_s",
    "samples_per_s",
    "tries",
    "requeues",
)
MONITOR_FIGURES = ("monitor", "best_score")  # left out where every run monitors val_acc
TRY_FIGURES = ("tries", "requeues")  # left out where every run was started once
# What multiclass-train returns to a sweeper: best_val_acc under the default trainer.monitor,
# best_score (the best of the figure monitored) under another; the report ranks by the same.
DEFAULT_OBJECTIVE = "best_val_acc"
MONITORED_OBJECTIVE = "best_score"
MINIMIZED = ("loss", "error", "time_s")  # objectives whose best is the lowest
# Keys (and the keys below them) that say how a run was launched, resumed, shown or recorded,
# never what it trained: no column of a sweep's report or of loose runs', however they differ.
NOT_THE_EXPERIMENT = (
    "hydra",
    "resume",
    "sweep",
    "reproduces",
    "plots",
    "logger",
    "trainer.progress",
    "trainer.log_every",
    "trainer.checkpoint_every_s",
    "trainer.layer_stats",
    "dataset.progress",
    "dataset.download",
    "dataset.root",
    "dataset.cache_dir",
)
# Early stopping's settings change what is trained only where they stopped a run.
EARLY_STOPPING = "trainer.early_stopping"


@dataclass(frozen=True)
class SweepReport:
    """The jobs of one or more sweeps, or loose runs, ranked by `objective`."""

    records: list[RunRecord]
    swept: list[str]  # the keys whose values differ between jobs
    objective: str
    monitor: str = "val_acc"  # what every run monitors (trainer.monitor), where best_score ranks

    @property
    def minimize(self) -> bool:
        if self.objective == MONITORED_OBJECTIVE:
            return MONITORS.get(self.monitor) == "min"
        return self.objective.endswith(MINIMIZED)

    @property
    def objective_name(self) -> str:
        """The objective as the report names it: `best_score (val_loss)` says of what."""
        if self.objective == MONITORED_OBJECTIVE:
            return f"{self.objective} ({self.monitor})"
        return self.objective

    @cached_property
    def figures(self) -> tuple[str, ...]:
        """The summary's figures a row shows: the monitor's only where some run has another
        than val_acc, whose best_score would repeat best_val_acc; tries and requeues only
        where some run was started more than once (resumed, requeued, retried)."""
        left_out = set()
        if all(record.monitor == "val_acc" for record in self.records):
            left_out.update(MONITOR_FIGURES)
        if all((record.summary.get("tries") or 1) == 1 for record in self.records):
            left_out.update(TRY_FIGURES)
        return tuple(name for name in FIGURES if name not in left_out)

    @cached_property
    def kind(self) -> str:
        """`job` where Hydra numbered every run, once each (one sweep); else `run`: loose runs,
        or several sweeps side by side, whose job numbers repeat, go by their folders."""
        jobs = [record.job for record in self.records]
        return "job" if None not in jobs and len(set(jobs)) == len(jobs) else "run"

    @cached_property
    def root(self) -> Path:
        """The folder that holds every run, which their names need not repeat."""
        return Path(os.path.commonpath([record.path.resolve() for record in self.records]))

    def name(self, record: RunRecord) -> str:
        """A job by its number; a run by its folder below `root`."""
        if self.kind == "job":
            return str(record.job)
        below = record.path.resolve().relative_to(self.root)
        return str(below) if below.parts else record.path.name

    def title(self, record: RunRecord) -> str:
        return f"{self.kind} {self.name(record)}"

    @cached_property
    def named_groups(self) -> dict[str, dict[Path, str]]:
        """Each swept config group's name for every run (see group_names), by run directory."""
        named = {key: group_names(self.records, key, self.swept) for key in self.swept}
        return {
            key: {record.path: name for record, name in zip(self.records, names, strict=True)}
            for key, names in named.items()
            if names is not None
        }

    def value(self, record: RunRecord, key: str) -> Any:
        """A swept key's value for `record`: a config group by its name, so that every run names
        its model the same way; any other key as configured."""
        names = self.named_groups.get(key)
        return record.value(key) if names is None else names[record.path]

    def row(self, record: RunRecord) -> dict[str, Any]:
        row: dict[str, Any] = {"job": record.job}
        row.update({key: self.value(record, key) for key in self.swept})
        row.update({name: record.summary.get(name) for name in self.figures})
        row["status"] = record.status
        row["run_dir"] = str(record.path)
        return row

    def score(self, record: RunRecord) -> float | None:
        value = record.summary.get(self.objective)
        return float(value) if is_figure(value) and not math.isnan(value) else None

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
            f"{key.rsplit('.', 1)[-1]}={format_value(self.value(record, key))}"
            for key in self.swept
        ]
        return " ".join(parts) or self.title(record)


def build_report(paths: Sequence[Path], objective: str | None = None) -> SweepReport:
    """The runs under `paths`, ranked by `objective`; by default by what multiclass-train
    returned to the sweeper: best_score where every run monitors one figure other than
    val_acc, else best_val_acc."""
    records = find_runs(paths)
    if not records:
        raise UserError(f"no run directories under {', '.join(str(p) for p in paths)}")
    monitors = sorted({record.monitor for record in records})
    if objective is None:
        one_other = len(monitors) == 1 and monitors != ["val_acc"]
        objective = MONITORED_OBJECTIVE if one_other else DEFAULT_OBJECTIVE
    figures = {key for r in records for key, value in r.summary.items() if is_figure(value)}
    if objective not in figures | set(SUMMARY_FIELDS):  # a killed run's summary has fewer
        known = ", ".join(sorted(figures))
        raise UserError(f"--objective {objective} is no figure of a run; the figures: {known}")
    if objective == MONITORED_OBJECTIVE and len(monitors) > 1:
        raise UserError(
            f"--objective {objective} compares runs that monitor one figure; these monitor"
            f" {', '.join(monitors)} (trainer.monitor)"
        )
    return SweepReport(records, swept_keys(records), objective, monitors[0])


def is_figure(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def in_order(value: Any) -> tuple:
    """A sort key for a column of values: numbers by their value first, then the rest by text."""
    return (0, value, "") if is_figure(value) else (1, 0, str(value))


def swept_keys(records: list[RunRecord], whole_config: bool = False) -> list[str]:
    """The keys whose values differ between jobs: the override keys in the order typed; where
    some run had none (loose runs) or `whole_config` says so (to group jobs, which must not
    join runs that differ in a key no override names), also the config groups and values
    that differ, shallowest
    first, less the values inside a group that differs (its name shows them: group_names), less
    copies (`dataset.seed`, `${seed}` in the config, has the name and values of `seed`) and
    less the keys that do not describe the experiment (describes_experiment)."""
    typed = [key for record in records for key in record.overrides]
    typed_only = all(record.overrides for record in records) and not whole_config
    found = [] if typed_only else config_keys(records)
    keys: list[str] = []
    seen = set()
    for key in dict.fromkeys(typed + found):
        if key not in typed and any(key.startswith(f"{group}.") for group in keys):
            continue
        values = column_values(records, key)
        copy = (key.rsplit(".", 1)[-1], values)
        if not describes_experiment(key, records) or len(set(values or ())) < 2 or copy in seen:
            continue
        seen.add(copy)
        keys.append(key)
    return keys


def describes_experiment(key: str, records: list[RunRecord]) -> bool:
    """Whether `key` can set what the runs trained: not in NOT_THE_EXPERIMENT; early stopping's
    only where it stopped one of them (else each trained its epochs, whatever it said)."""
    if is_under(key, EARLY_STOPPING):
        return any(record.summary.get("stopped_early") for record in records)
    return not any(is_under(key, plumbing) for plumbing in NOT_THE_EXPERIMENT)


def is_under(key: str, node: str) -> bool:
    """`trainer.progress` is under `trainer.progress` and under `trainer`."""
    return key == node or key.startswith(f"{node}.")


def column_values(records: list[RunRecord], key: str) -> tuple[str, ...] | None:
    """What each run would show in a column for `key` (its group option, or its value), to
    compare; None for a mapping that is no config group, whose values are compared one by one."""
    options = group_options(records, key)
    if options is not None:
        return tuple(options)
    if any(isinstance(record.config.get(key), dict) for record in records):
        return None
    return tuple(repr(record.value(key)) for record in records)


def config_keys(records: list[RunRecord]) -> list[str]:
    """The runs' config groups (before the values inside them) and values, shallowest first."""
    groups = [key for record in records for key in record.choices]
    groups += [key for record in records for key, node in record.config.items() if is_target(node)]
    return sorted(dict.fromkeys(groups + values_under(records, "")), key=lambda k: k.count("."))


def values_under(records: list[RunRecord], prefix: str) -> list[str]:
    """The config keys below `prefix` that hold a value (not a mapping), in config order."""
    return list(
        dict.fromkeys(
            key
            for record in records
            for key, node in record.config.items()
            if key.startswith(prefix) and not isinstance(node, dict)
        )
    )


def is_target(node: Any) -> bool:
    return isinstance(node, dict) and "_target_" in node


def group_options(records: list[RunRecord], key: str) -> list[str] | None:
    """Each run's option of the config group `key` (None where `key` is no group): its name
    where Hydra recorded every run's choice, else for every run its `_target_`'s last part, so
    that runs with and without .hydra/ are named alike."""
    if all(key in record.choices for record in records):
        return [record.choices[key] for record in records]
    nodes = [record.config.get(key) for record in records]
    if not any(is_target(node) for node in nodes):
        return None
    return [target_name(node) for node in nodes]


def target_name(node: Any) -> str:
    """`cnn` for a node whose `_target_` is multiclass.models.cnn; `null` for a group left out."""
    if is_target(node):
        return str(node["_target_"]).rsplit(".", 1)[-1]
    return "null" if node is None else str(node)


def group_names(records: list[RunRecord], key: str, swept: list[str]) -> list[str] | None:
    """Each run's name for the config group `key`: its option, with the values inside that
    differ between the runs of that option and have no column of their own, those that are
    set: `cnn`, `mlp(depth=1)`, `mlp(depth=2)`. None where `key` is no group."""
    options = group_options(records, key)
    if options is None:
        return None
    differing = {}
    for option in set(options):
        peers = [record for record, mine in zip(records, options, strict=True) if mine == option]
        differing[option] = [
            inner
            for inner in values_under(peers, f"{key}.")
            if inner not in swept and len({repr(peer.value(inner)) for peer in peers}) > 1
        ]
    return [
        option_name(option, record, key, differing[option])
        for record, option in zip(records, options, strict=True)
    ]


def option_name(option: str, record: RunRecord, group: str, inner: list[str]) -> str:
    """`mlp(depth=1, width=8)`: the option, then the run's values of `inner` that are set."""
    values = {key.removeprefix(f"{group}."): record.value(key) for key in inner}
    shown = [f"{key}={format_value(value)}" for key, value in values.items() if value is not None]
    return f"{option}({', '.join(shown)})" if shown else option


def format_value(value: Any) -> str:
    """A configured value as the run saw it, a float to 4 significant digits (1e-05 stays
    itself); a null or missing one is `-`."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_figure(value: Any) -> str:
    """A result, in one format per kind so that a column reads alike: integers with thousands
    separators, floats to 4 decimals; a missing one is `-`."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4f}"
