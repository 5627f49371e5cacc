"""The class pairs a model confuses most, as fastai's `most_confused` lists them: how many of
true class A it predicted as B, and what share of A that is (a rare class's few mistakes can
be a large share of it)."""

from dataclasses import dataclass

import numpy as np

from multiclass.class_metrics import confusion_counts
from multiclass.records.predictions import Predictions

PAIR_COLUMNS = ("true", "predicted", "count", "of_true", "rate")


@dataclass(frozen=True)
class Pair:
    """`count` samples of class `true` (of `of` in all) predicted as `predicted`."""

    true: str
    predicted: str
    count: int
    of: int

    @property
    def rate(self) -> float:
        return self.count / self.of

    def row(self) -> dict[str, object]:
        values = (self.true, self.predicted, self.count, self.of, f"{self.rate:.4f}")
        return dict(zip(PAIR_COLUMNS, values, strict=True))

    def line(self) -> str:
        return f"{self.true} -> {self.predicted}: {self.count} of {self.of} ({self.rate:.1%})"


def confused_pairs(predictions: Predictions) -> list[Pair]:
    """Every pair of distinct classes with a mistake, most mistakes first, then highest rate."""
    names = predictions.class_names
    counts = confusion_counts(predictions.labels, predictions.predicted, len(names))
    totals = counts.sum(axis=1)
    pairs = [
        Pair(names[a], names[b], int(counts[a, b]), int(totals[a]))
        for a, b in zip(*np.nonzero(counts), strict=True)
        if a != b
    ]
    return sorted(pairs, key=lambda pair: (-pair.count, -pair.rate, pair.true, pair.predicted))
