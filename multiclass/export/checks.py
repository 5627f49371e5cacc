"""Does the exported model compute what the run's model computes? Both on the run's own test
split, rebuilt from its config.yaml as multiclass-eval rebuilds it: the largest absolute
difference of the outputs, and whether every predicted class is the same."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from multiclass.datasets.storage import as_float, gather
from multiclass.errors import UserError
from multiclass.export.bundle import applied
from multiclass.inference.evaluation import build_splits, dataset_config
from multiclass.inference.trained import TrainedRun

TOLERANCE = 1e-4  # the largest absolute difference of an output allowed


@dataclass(frozen=True)
class HeldOut:
    """The run's test split as the model takes it (float32), and how it is stored."""

    x: torch.Tensor
    split: str  # "test", or "train" for the tiny tables tested on their training rows
    stored_dtype: str  # uint8 for pixels, float32 for features


def held_out(run: TrainedRun) -> HeldOut:
    splits = build_splits(dataset_config(run.config, []), run)
    if splits.input_shape != run.input_shape:
        raise UserError(
            f"{run.run_dir}: its data set now gives inputs of shape {splits.input_shape}; the"
            f" model takes {run.input_shape}"
        )
    stored = gather(splits.test.x, slice(None))
    dtype = str(stored.dtype).removeprefix("torch.")
    return HeldOut(as_float(stored).contiguous(), splits.evaluated_on, dtype)


@dataclass(frozen=True)
class Reference:
    """What the run itself computes on the test inputs: outputs, classes, probabilities (its
    temperature applied, by load_run's model)."""

    outputs: torch.Tensor
    predicted: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def of(cls, run: TrainedRun, x: torch.Tensor) -> "Reference":
        outputs = run.outputs(x)  # as predict_proba computes them, once
        return cls(
            outputs, run.head.predict(outputs).numpy(), run.task.probabilities(outputs).numpy()
        )


@dataclass(frozen=True)
class Agreement:
    """The exported model's outputs, run by `runtime` and turned into classes and
    probabilities by bundle.json's rule, against the run's own."""

    fmt: str
    runtime: str
    split: str
    samples: int
    max_difference: float  # of the outputs
    probability_difference: float  # of the probabilities, by the bundle's rule
    same_predictions: int

    @property
    def holds(self) -> bool:
        differences = (self.max_difference, self.probability_difference)
        close = all(bool(d <= TOLERANCE) for d in differences)  # False for NaN
        return close and self.same_predictions == self.samples

    def line(self) -> str:
        verdict = "ok" if self.holds else "FAILED"
        return (
            f"{self.fmt} check {verdict} ({self.runtime}, {self.split} split, {self.samples}"
            f" samples): max abs difference of outputs {self.max_difference:.2e}, of"
            f" probabilities {self.probability_difference:.2e} (limit {TOLERANCE:.0e}); same"
            f" predictions {self.same_predictions}/{self.samples}"
        )


def agreement(
    fmt: str,
    runtime: str,
    split: str,
    reference: Reference,
    exported: np.ndarray,
    rule: dict[str, Any],
    temperature: float,
) -> Agreement:
    """How far `exported` (outputs of the exported model) and what bundle.json's `rule` makes
    of them lie from the run's own `reference`."""
    exported = np.asarray(exported, dtype=np.float32)
    expected = reference.outputs.numpy()
    if exported.shape != expected.shape:
        raise UserError(
            f"{fmt}: the exported model gives outputs of shape {exported.shape}; torch's are"
            f" {expected.shape}"
        )
    by_rule = applied(rule, exported, temperature)
    return Agreement(
        fmt,
        runtime,
        split,
        len(exported),
        largest(exported - expected),
        largest(by_rule["probabilities"] - reference.probabilities),
        int((by_rule["predicted"] == reference.predicted).sum()),
    )


def largest(difference: np.ndarray) -> float:
    """The largest absolute value (NaN where any is NaN); 0 for none."""
    return float(np.abs(difference).max()) if difference.size else 0.0
