"""The samples behind the predictions, rebuilt from the run's config as multiclass-eval rebuilds
its test split (inference.evaluation): the test split for a run's test predictions; for a
k-fold sweep's out-of-fold ones, the samples the folds were cut from (the same data set with
no folds and no validation split: its training split, in the order the folds index). The
labels are checked against the predictions file's, so a picture never shows another sample."""

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
    the predictions file's rows `rows`."""

    split: Split
    index: np.ndarray  # each predictions row's sample in `split`
    input_shape: tuple[int, ...]
    feature_names: list[str]  # a table's columns as the model took them; none for images

    @property
    def images(self) -> bool:
        return len(self.input_shape) == 3 and self.input_shape[0] in (1, 3)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Inputs (len(rows), *input_shape): uint8 pixels as stored, or floats."""
        chosen = self.index[rows]
        x = self.split.x
        read = x.read(chosen) if isinstance(x, DiskArray) else x[torch.from_numpy(chosen)]
        return read.cpu().numpy()


def samples_of(subject: Subject) -> Samples:
    """The samples `subject`'s predictions were made on; one line where the rebuilt data set
    does not match them (another data set now at the config's path, say)."""
    run = load_run(subject.run_dir)
    overrides = () if subject.split == TEST else UNFOLDED
    splits = build_splits(dataset_config(run.config, overrides), run)
    split = splits.test if subject.split == TEST else splits.train
    predictions = subject.predictions
    config = shown_path(subject.run_dir / "config.yaml")
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
    return Samples(split, index, splits.input_shape, feature_names(run.table_transform))


def feature_names(transform: Any) -> list[str]:
    """A table's transformed columns (num__age, text__colour_red, ...); none without one."""
    if transform is None:
        return []
    try:
        return [str(name) for name in transform.get_feature_names_out()]
    except (AttributeError, ValueError):  # a transform that cannot name its outputs
        return []
