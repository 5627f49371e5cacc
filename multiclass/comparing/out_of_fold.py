"""A k-fold sweep's out-of-fold predictions joined: the oof.csv of each fold's job (its
validation fold, predicted by a model that never trained on it) into one oof.csv at the
sweep root that predicts every sample the folds were cut from exactly once, in index order.

The jobs that differ only in `dataset.fold` are one cross-validation; a sweep of several
configs (or seeds: each seed cuts its own folds) joins each into its own file,
`oof-<the group's label>.csv` (`oof-lr=0.01-seed=1.csv`), and a sweep of one into `oof.csv`.
A cross-validation with a fold missing (a job failed or was not run), a fold twice, or rows
that do not cover the samples once is one warning line and no file: a join with holes would
pass for a whole one."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multiclass.comparing.groups import FOLD, Group, grouped
from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep_jobs import SweepReport, swept_keys
from multiclass.errors import UserError, one_line
from multiclass.records.predictions import OOF, Predictions, read_predictions, write_predictions

FOLDS = "dataset.folds"


@dataclass(frozen=True)
class Joined:
    """One cross-validation's joined file: where, how many rows, of how many folds."""

    path: Path
    rows: int
    folds: int


def join_out_of_fold(report: SweepReport, out_dir: Path) -> tuple[list[Joined], list[str]]:
    """Each cross-validation among `report`'s jobs (those run with dataset.folds) joined into
    `out_dir`: the files written, and a warning line for each that could not be (its earlier
    file, if any, removed so that it is not taken for this sweep's). A report written into a
    run's own directory (`multiclass-report RUN_DIR`) joins nothing: its oof.csv is the run's."""
    records = [record for record in report.records if record.value(FOLDS) is not None]
    if not records or any(same_folder(record.path, out_dir) for record in report.records):
        return [], []
    varied = swept_keys(records, whole_config=True)
    groups = grouped(records, varied, (FOLD,), report.value)
    joined, warnings = [], []
    for group in groups:
        path = out_dir / file_name(group, len(groups))
        try:
            predictions = joined_predictions(group)
            write_joined(path, predictions)
        except (UserError, OSError) as refused:
            stale = path.exists()
            path.unlink(missing_ok=True)
            removed = f" (the earlier {path.name} removed)" if stale else ""
            warnings.append(f"warning: no {path.name}: {one_line(refused)}{removed}")
            continue
        joined.append(Joined(path, len(predictions), int(group.records[0].value(FOLDS))))
    return joined, warnings


def same_folder(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


def write_joined(path: Path, predictions: Predictions) -> None:
    write_predictions(
        path,
        predictions.index,
        predictions.labels,
        predictions.predicted,
        predictions.probabilities,
        predictions.class_names,
    )


def file_name(group: Group, groups: int) -> str:
    """`oof.csv` for a sweep's one cross-validation; `oof-<label>.csv` for each of several,
    the label's characters that a file name would not keep as typed replaced by `_`."""
    if groups == 1:
        return OOF
    label = "-".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in group.values)
    return f"oof-{re.sub(r'[^A-Za-z0-9=.,_+-]', '_', label)}.csv"


def joined_predictions(group: Group) -> Predictions:
    """The group's folds' oof.csv in one, sorted by index; a UserError where a fold is missing
    or there twice, the files' classes differ, or their rows do not cover 0..N-1 once."""
    by_fold = folds_of(group)
    parts = [read_predictions(record.path / OOF) for _, record in sorted(by_fold.items())]
    names = parts[0].class_names
    if any(part.class_names != names for part in parts):
        raise UserError("the folds' oof.csv name different classes")
    index = np.concatenate([part.index for part in parts])
    order = np.argsort(index, kind="stable")
    if not np.array_equal(index[order], np.arange(len(index))):
        raise UserError(
            f"the folds' {len(index)} rows do not cover the samples 0..{len(index) - 1} once"
            " each: were the folds cut from the same data?"
        )
    return Predictions(
        index[order],
        np.concatenate([part.labels for part in parts])[order],
        np.concatenate([part.predicted for part in parts])[order],
        np.concatenate([part.probabilities for part in parts])[order],
        names,
    )


def folds_of(group: Group) -> dict[int, RunRecord]:
    """The group's completed job of each fold 0..K-1; a UserError naming the folds that are
    missing (not run, not completed, or without oof.csv) or run twice."""
    total = int(group.records[0].value(FOLDS))
    done: dict[int, list[RunRecord]] = {}
    for record in group.records:
        if record.status == "completed" and (record.path / OOF).is_file():
            done.setdefault(int(record.value(FOLD)), []).append(record)
    twice = [fold for fold, records in done.items() if len(records) > 1]
    if twice:
        paths = ", ".join(str(record.path) for record in done[twice[0]])
        raise UserError(f"fold {twice[0]} of {total} ran twice ({paths})")
    missing = [fold for fold in range(total) if fold not in done]
    if missing:
        listed = ", ".join(map(str, missing))
        which = (
            f"fold {listed} of {total} has"
            if len(missing) == 1
            else f"folds {listed} of {total} have"
        )
        raise UserError(
            f"{which} no completed job with {OOF}: every fold must predict its samples once"
        )
    return {fold: records[0] for fold, records in done.items()}
