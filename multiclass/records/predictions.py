"""Predictions files: test_predictions.csv (each test sample) and oof.csv (under k-fold, each
validation sample, by its position among the samples the folds were cut from; a k-fold
sweep's report joins the folds' into one). One format, written and read here alone:

    index,label,predicted,p_<class name>,... (as multiclass-predict names them)

`label` and `predicted` are class names (a reader needs no other file to know the classes), the
probabilities follow the data set's class order, in the head's rule (a softmax head's sum to 1,
the BCE heads' independent units need not), each written with the fewest digits that read back
the same float (float32: 9 significant digits; float64, as a file read back holds them:
Python's shortest repr, so a joined file keeps the folds' text)."""

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multiclass.errors import UserError
from multiclass.records.artifacts import shown_path, write_atomic

TEST_PREDICTIONS = "test_predictions.csv"
OOF = "oof.csv"
COLUMNS = ("index", "label", "predicted")
PROBABILITY = "p_"  # the prefix of each class's probability column


@dataclass(frozen=True)
class Predictions:
    """A predictions file read back: row `i` is sample `index[i]`, of class `labels[i]`
    (an index into `class_names`), predicted `predicted[i]`, with `probabilities[i]` (k,)."""

    index: np.ndarray  # int64 (N,)
    labels: np.ndarray  # int64 (N,)
    predicted: np.ndarray  # int64 (N,)
    probabilities: np.ndarray  # float64 (N, k)
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.index)


def write_predictions(
    path: Path,
    index: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
) -> None:
    """`path` (written whole or not at all), a row per sample. One format string per row,
    not csv.writer per value: 10,000 rows of 10 classes take ~30 ms."""
    probabilities = np.asarray(probabilities)
    k = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape[1] != k:
        raise ValueError(f"probabilities of shape {probabilities.shape} for {k} classes")
    value = ",%.9g" if probabilities.dtype == np.float32 else ",%r"  # reads back the same float
    names = [quoted(name) for name in class_names]
    header = [*COLUMNS, *(PROBABILITY + name for name in class_names)]
    row = "%d,%s,%s" + value * k + "\n"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(header)
    rows = zip(
        np.asarray(index).tolist(),
        np.asarray(labels).tolist(),
        np.asarray(predicted).tolist(),
        probabilities.tolist(),
        strict=True,
    )
    text.writelines(row % (i, names[y], names[p], *probs) for i, y, p, probs in rows)
    write_atomic(path, text.getvalue())


def quoted(name: str) -> str:
    """A class name as one CSV field (quoted where it holds a comma, a quote or a newline)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow([name])
    return text.getvalue()


def read_predictions(path: Path) -> Predictions:
    """A predictions file as written by `write_predictions`; a file that is missing or not in
    that format is a UserError naming it."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.reader(file))
    except OSError as error:
        raise UserError(f"{shown_path(path)}: cannot read predictions: {error.strerror}") from None
    header = rows[0] if rows else []
    if tuple(header[:3]) != COLUMNS or not all(h.startswith(PROBABILITY) for h in header[3:]):
        raise UserError(
            f"{shown_path(path)} is no predictions file: its columns must be"
            f" {','.join(COLUMNS)},{PROBABILITY}<class>..."
        )
    class_names = [column[len(PROBABILITY) :] for column in header[3:]]
    by_name = {name: number for number, name in enumerate(class_names)}
    body = rows[1:]
    try:
        index = np.array([int(r[0]) for r in body], dtype=np.int64)
        labels = np.array([by_name[r[1]] for r in body], dtype=np.int64)
        predicted = np.array([by_name[r[2]] for r in body], dtype=np.int64)
        probabilities = np.array([[float(v) for v in r[3:]] for r in body], dtype=np.float64)
    except (ValueError, KeyError, IndexError) as error:
        raise UserError(
            f"{shown_path(path)}: a row is not in its columns' format: {error!r}"
        ) from None
    probabilities = probabilities.reshape(len(body), len(class_names))
    return Predictions(index, labels, predicted, probabilities, class_names)
