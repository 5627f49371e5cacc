"""The samples behind the predictions, rebuilt from the run's config as multiclass-eval rebuilds
its test split (inference.evaluation): the test split for a run's test predictions; for a
k-fold sweep's out-of-fold ones, the samples the folds were cut from (the same data set with
no folds and no validation split: its training split, in the order the folds index). The
labels are checked against the predictions file's, so a picture never shows another sample."""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from multiclass.analysis.source import TEST, Subject
from multiclass.datasets import Split
from multiclass.datasets.storage import DiskArray
from multiclass.errors import UserError
from multiclass.inference import load_run
from multiclass.inference.evaluation import build_splits, dataset_config
from multiclass.records.artifacts import shown_path

# The same data set with nothing split off for validation: what remains besides the test split.
UNFOLDED = ("dataset.folds=null", "dataset.fold=null", "dataset.val_fraction=0")


@dataclass(frozen=True)
class Samples:
    """The analysed samples' inputs as the model took them; `take(rows)` reads the inputs of
    the predictions file's rows `rows`, `columns(rows)` a table's as its file holds them."""

    split: Split
    index: np.ndarray  # each predictions row's sample in `split`
    input_shape: tuple[int, ...]
    transform: Any = None  # a table run's fitted transform (preprocess.pkl)

    @property
    def images(self) -> bool:
        return len(self.input_shape) == 3 and self.input_shape[0] in (1, 3)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Inputs (len(rows), *input_shape): uint8 pixels as stored, or floats."""
        chosen = self.index[rows]
        x = self.split.x
        read = x.read(chosen) if isinstance(x, DiskArray) else x[torch.from_numpy(chosen)]
        return read.cpu().numpy()

    def columns(self, rows: np.ndarray) -> dict[str, list[str]]:
        """Feature rows by column: a table file's own columns and values (its transform
        undone: a number unstandardised, a one-hot text its category), or where there is no
        transform, or it cannot be undone, the features as the model took them."""
        x = self.take(rows).reshape(len(rows), -1)
        try:
            return file_columns(self.transform, x)
        except (AttributeError, KeyError, TypeError, ValueError):  # no transform, or not ours
            return {f"x{i}": [f"{v:.6g}" for v in x[:, i].tolist()] for i in range(x.shape[1])}


def file_columns(transform: Any, x: np.ndarray) -> dict[str, list[str]]:
    """`x` (transformed rows) as the columns of the file the transform was fitted on, each
    part (datasets.table_file.build_transformer: numbers standardised, text one-hot) undone by
    its last step; the imputing before it is not undone (a filled value shows as filled)."""
    columns: dict[str, list[str]] = {}
    for name, part, names in transform.transformers_:
        if name == "remainder":
            continue
        last = part.steps[-1][1] if hasattr(part, "steps") else part
        values = last.inverse_transform(x[:, transform.output_indices_[name]].astype(np.float64))
        for i, column in enumerate(names):
            column_values = values[:, i]
            if hasattr(last, "scale_"):  # a standardised number: float32's error rounded off
                column_values = rounded(column_values, last.mean_[i], last.scale_[i])
            columns[str(column)] = [shown(value) for value in column_values.tolist()]
    return columns


def rounded(values: np.ndarray, mean: float, scale: float) -> np.ndarray:
    """Unstandardised values to six digits of their column's magnitude: features are stored
    as float32, so a 0 comes back as 4.8e-07 and a 1 as 0.999999 without it."""
    magnitude = max(abs(mean), scale, np.finfo(np.float64).tiny)
    return np.round(values, 5 - math.floor(math.log10(magnitude))) + 0.0  # + 0.0: no -0


def shown(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else "" if value is None else str(value)


def samples_of(subject: Subject) -> Samples:
    """The samples `subject`'s predictions were made on; one line where the rebuilt data set
    does not match them (another data set now at the config's path, say)."""
    run = load_run(subject.run_dir)
    overrides = () if subject.split == TEST else UNFOLDED
    config = shown_path(subject.run_dir / "config.yaml")
    try:
        splits = build_splits(dataset_config(run.config, overrides), run)
    except UserError as error:  # a data file gone, or named relative to another folder
        raise UserError(
            f"cannot rebuild the {subject.split} samples from {config}: {error}"
        ) from None
    split = splits.test if subject.split == TEST else splits.train
    predictions = subject.predictions
    index = predictions.index
    if (
        splits.class_names != predictions.class_names
        or (len(index) and (index.min() < 0 or index.max() >= len(split)))
        or not np.array_equal(split.y.cpu().numpy()[index], predictions.labels)
    ):
        raise UserError(
            f"{shown_path(subject.file)} does not match the {subject.split} samples rebuilt from"
            f" {config} (other classes, labels or samples): was the data set changed since?"
        )
    return Samples(split, index, splits.input_shape, run.table_transform)
