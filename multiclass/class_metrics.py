"""The figures beyond accuracy: macro F1 and balanced accuracy (each epoch on the validation
split, and on the test split), and per class precision, recall, F1 and support
(per_class.csv), all from one confusion matrix. Every class of the data set counts, with 0
where a class has no sample or no prediction, so every class gets a row: scikit-learn's
`f1_score(labels=range(k), average="macro", zero_division=0)`, `balanced_accuracy_score` and
`precision_recall_fscore_support`, which tests/test_class_metrics.py checks these against.

Not scikit-learn's own functions: importing sklearn.metrics costs a fresh process 0.9 s (it
brings SciPy and pandas), which every run would pay before its first epoch, for a few lines
of arithmetic on a k x k matrix."""

from dataclasses import dataclass

import numpy as np

PER_CLASS_CSV = "per_class.csv"


@dataclass(frozen=True)
class ClassRow:
    """One row of per_class.csv."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of true (rows) against predicted (columns) classes, k x k."""
    cells = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(cells, minlength=num_classes**2).reshape(num_classes, num_classes)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class precision, recall, F1 and support of a confusion matrix."""
    hits = np.diag(counts).astype(np.float64)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    return (
        ratio(hits, predicted),
        ratio(hits, support),
        ratio(2 * hits, support + predicted),
        support,
    )


def balanced_scores(
    labels: np.ndarray, predictions: np.ndarray, num_classes: int
) -> tuple[float, float]:
    """(macro F1 over every class, balanced accuracy: the mean recall of the classes present)."""
    _, recall, f1, support = scores(confusion_counts(labels, predictions, num_classes))
    present = support > 0
    return float(f1.mean()), float(recall[present].mean()) if present.any() else 0.0


def per_class(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str]
) -> list[ClassRow]:
    """Precision, recall, F1 and support of each class, in the data set's class order."""
    precision, recall, f1, support = scores(confusion_counts(labels, predictions, len(class_names)))
    return [
        ClassRow(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]
