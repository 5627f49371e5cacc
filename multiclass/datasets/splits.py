"""What every data set shares: a class subset, a limit, and seeded validation and test splits."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from multiclass.datasets.shuffle_split import shuffle_split, stratified_split
from multiclass.datasets.storage import Inputs
from multiclass.errors import UserError
from multiclass.settings import check_folds, check_value


@dataclass(frozen=True)
class Source:
    """A data set as loaded: inputs, integer labels, class names and an official test set if any."""

    name: str
    x: Inputs
    y: torch.Tensor
    class_names: list[str]
    test_x: Inputs | None = None
    test_y: torch.Tensor | None = None
    # Where the classes come from, for the one-line error when there is only one
    # (e.g. "dataset.root shapes"); None: the data set's name.
    origin: str | None = None


@dataclass(frozen=True)
class Split:
    """One split: inputs of shape (N, *input_shape), a tensor or rows on disk (DiskArray),
    and int64 labels (N,). Images are stored as uint8, a quarter of float32, and become
    floats batch by batch (`as_float`)."""

    x: Inputs
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Splits:
    """Train, validation (None when val_fraction is 0) and test splits of one data set."""

    name: str
    train: Split
    val: Split | None
    test: Split
    class_names: list[str]
    evaluated_on: str  # "test": a held-out split; "train": the tiny tables, as their seeds do
    # A table's fitted input transform (scikit-learn), saved with the model so that prediction
    # applies it too; None where the inputs need none.
    preprocess: Any = None
    # Under k-fold (dataset.folds), each validation sample's position among the samples the
    # folds were cut from (all but the test split): the index of its out-of-fold prediction.
    val_rows: np.ndarray | None = None
    sampler: str = "shuffle"  # dataset.sampler: how training batches are drawn (engine)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def map(self, change: Callable[[Split], Split]) -> "Splits":
        """These splits with each one changed by `change`; a split that is reused (train as
        test) is changed once and stays shared."""
        changed: dict[int, Split] = {}
        for split in (self.train, self.val, self.test):
            if split is not None and id(split) not in changed:
                changed[id(split)] = change(split)
        return replace(
            self,
            train=changed[id(self.train)],
            val=None if self.val is None else changed[id(self.val)],
            test=changed[id(self.test)],
        )

    def to(self, device: torch.device) -> "Splits":
        """Move every split to `device` once."""
        return self.map(lambda split: split.to(device))


def make_splits(
    source: Source,
    classes: Sequence[int | str] | None = None,
    limit: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    eval_on_train: bool = False,
    seed: int = 0,
    folds: int | None = None,
    fold: int | None = None,
    sampler: str = "shuffle",
) -> Splits:
    """Keep `classes` (relabelled 0..k-1 in the order given), the first `limit` training samples,
    and split off seeded, stratified validation and test sets. A source with an official test
    set keeps it; `eval_on_train` evaluates on the training set itself (the tiny tables).
    With `folds` set, fold number `fold` of a seeded stratified k-fold validates instead of
    `val_fraction`: a sweep over `fold` is cross-validation, the test split held out."""
    check_value("dataset.sampler", sampler)
    check_value("dataset.val_fraction", val_fraction)  # by the keys' rules: from Python too
    check_value("dataset.test_fraction", test_fraction)
    wanted = class_indices(classes, source.class_names)
    names = [source.class_names[c] for c in wanted]
    origin = source.origin or f"dataset {source.name}"
    check_classes(names, origin if classes is None else f"dataset.classes={list(classes)}")
    x, y = keep_classes(source.x, source.y, wanted, len(source.class_names))
    check_folds(folds, fold, eval_on_train)
    if eval_on_train:
        train = Split(x, y)
        return Splits(
            source.name, train, train, train, names, evaluated_on="train", sampler=sampler
        )
    if source.test_x is None:
        train_idx, test_idx = split_indices(y, test_fraction, seed)
        test = Split(x[test_idx], y[test_idx])
        x, y = x[train_idx], y[train_idx]
    else:
        test = Split(*keep_classes(source.test_x, source.test_y, wanted, len(source.class_names)))
    check_value("dataset.limit", limit)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    val_rows = None
    if folds is not None or fold is not None:
        train_idx, val_idx = fold_indices(y, folds, fold, seed, names)
        val_rows = val_idx
    elif val_fraction == 0:
        return Splits(
            source.name, Split(x, y), None, test, names, evaluated_on="test", sampler=sampler
        )
    else:
        train_idx, val_idx = split_indices(y, val_fraction, seed)
    train, val = Split(x[train_idx], y[train_idx]), Split(x[val_idx], y[val_idx])
    return Splits(source.name, train, val, test, names, "test", val_rows=val_rows, sampler=sampler)


def fold_indices(
    y: torch.Tensor,
    folds: int | None,
    fold: int | None,
    seed: int,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices of fold `fold` of scikit-learn's seeded
    StratifiedKFold: over folds 0..K-1, every sample validates exactly once. A class of
    fewer than K samples (which scikit-learn only warns of) is refused, by its name in
    `names` (by default its number)."""
    check_folds(folds, fold)
    labels = y.numpy()
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < folds:
        small = [str(c) if names is None else names[c] for c in classes[counts < folds]]
        raise UserError(
            f"dataset.folds={folds}: class(es) {', '.join(map(repr, small))} have fewer than"
            f" {folds} training samples ({counts.min()} the fewest); lower dataset.folds"
        )
    from sklearn.model_selection import StratifiedKFold  # only for k-fold: its import costs ~1 s

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    train_idx, val_idx = list(splitter.split(np.zeros(len(labels)), labels))[fold]
    return train_idx, val_idx


def row_splits(
    name: str,
    y: torch.Tensor,
    class_names: list[str],
    test_y: torch.Tensor | None = None,
    origin: str | None = None,
    **split_options: Any,
) -> Splits:
    """`make_splits` over row numbers (x[i] = i; an official test set's rows follow the
    training rows): which rows go where, decided before any input is decoded or any statistic
    fitted. `Splits.map` then fills in the inputs."""
    rows = torch.arange(len(y) + (0 if test_y is None else len(test_y)))
    test_rows = None if test_y is None else rows[len(y) :]
    source = Source(name, rows[: len(y)], y, class_names, test_rows, test_y, origin)
    return make_splits(source, **split_options)


def class_indices(classes: Sequence[int | str] | None, names: list[str]) -> list[int]:
    """Resolve `dataset.classes` (indices or names) against the data set's classes."""
    if classes is None:
        return list(range(len(names)))
    wanted = []
    for c in classes:
        index = names.index(c) if isinstance(c, str) and c in names else c
        if not isinstance(index, int) or not 0 <= index < len(names):
            raise UserError(
                f"dataset.classes: no class {c!r}; this data set has classes 0..{len(names) - 1}"
                f" ({', '.join(names)})"
            )
        wanted.append(index)
    if len(set(wanted)) != len(wanted):
        raise UserError(f"dataset.classes names a class twice: {list(classes)}")
    return wanted


def check_classes(names: list[str], origin: str) -> None:
    """The one check, for every data set and after `dataset.classes`, that there are two
    classes or more: a model of one class scores a perfect and meaningless accuracy."""
    if len(names) < 2:
        found = f"one class ({names[0]!r})" if names else "no class"
        raise UserError(f"{origin} has {found}: a classifier needs at least two classes")


def keep_classes(
    x: Inputs, y: torch.Tensor, wanted: list[int], num_classes: int
) -> tuple[Inputs, torch.Tensor]:
    """The samples of the wanted classes, relabelled by their position in `wanted`."""
    if wanted == list(range(num_classes)):
        return x, y
    relabel = torch.full((num_classes,), -1, dtype=torch.int64)
    relabel[torch.tensor(wanted)] = torch.arange(len(wanted))
    new_y = relabel[y]
    keep = new_y >= 0
    return x[keep], new_y[keep]


def split_indices(y: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of 0..N-1, stratified by label when every class has enough samples."""
    labels = y.numpy()
    try:
        return stratified_split(labels, fraction, seed)
    except ValueError:  # a class too small to stratify: fall back to a plain shuffle split
        pass
    try:
        return shuffle_split(len(labels), fraction, seed)
    except ValueError as error:
        raise UserError(f"dataset: cannot split {len(y)} samples: {error}") from None
