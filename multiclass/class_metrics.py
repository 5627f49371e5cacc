"""The figures beyond accuracy, by scikit-learn: macro F1 and balanced accuracy (each epoch on
the validation split, and on the test split), and per class precision, recall, F1 and support
(per_class.csv). Every class of the data set counts (`labels=range(num_classes)`), with 0
where a class has no sample or no prediction (`zero_division=0`), so every class gets a row.

sklearn.metrics is imported by the functions, not here: it costs about 1.7 s (SciPy comes with
it), which a process pays only once it has something to score (a run: before its first epoch,
`load`)."""

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def load() -> None:
    """Import sklearn.metrics now: a run does before it trains, so that the import falls in its
    start-up and not in its first epoch's `epoch_seconds`."""
    import sklearn.metrics  # noqa: F401


def balanced_scores(
    labels: "np.ndarray", predictions: "np.ndarray", num_classes: int
) -> tuple[float, float]:
    """(macro F1 over every class, balanced accuracy: the mean recall of the classes present)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    classes = list(range(num_classes))
    macro_f1 = f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)
    with warnings.catch_warnings():  # a class predicted but absent from a small split
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(labels, predictions)
    return float(macro_f1), float(balanced)


def per_class(
    labels: "np.ndarray", predictions: "np.ndarray", class_names: list[str]
) -> list[ClassRow]:
    """Precision, recall, F1 and support of each class, in the data set's class order."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=list(range(len(class_names))), zero_division=0
    )
    return [
        ClassRow(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]
