"""Seeded splits of sample indices into train and holdout: scikit-learn's `train_test_split`
with a float `test_size`, stratified or not, giving the same indices for the same seed without
importing scikit-learn, whose import (SciPy, pandas) costs a fresh process about 1 s of
start-up. tests/test_datasets.py checks these splits against scikit-learn's own."""

import math

import numpy as np


def holdout_sizes(num_samples: int, fraction: float) -> tuple[int, int]:
    """(train, holdout) sizes, as `train_test_split(test_size=fraction)` makes them."""
    if not 0 < fraction < 1:
        raise ValueError(f"test_size={fraction} should be a float in the (0, 1) range")
    holdout = math.ceil(fraction * num_samples)
    if holdout >= num_samples:
        raise ValueError(
            f"With n_samples={num_samples}, test_size={fraction} and train_size=None, the "
            "resulting train set will be empty. Adjust any of the aforementioned parameters."
        )
    return num_samples - holdout, holdout


def shuffle_split(num_samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and holdout indices of a seeded shuffle (scikit-learn's ShuffleSplit)."""
    train, holdout = holdout_sizes(num_samples, fraction)
    permutation = np.random.RandomState(seed).permutation(num_samples)
    return permutation[holdout : holdout + train], permutation[:holdout]


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and holdout indices that keep each class's share (StratifiedShuffleSplit);
    ValueError where a class has one sample or a side is smaller than the number of classes."""
    train_size, holdout_size = holdout_sizes(len(labels), fraction)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"classes {classes[counts < 2].tolist()} have only 1 member")
    if min(train_size, holdout_size) < len(classes):
        raise ValueError(f"each side needs at least one sample of each of {len(classes)} classes")
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = approximate_mode(counts, train_size, rng)
    holdout_counts = approximate_mode(counts - train_counts, holdout_size, rng)
    train: list[int] = []
    holdout: list[int] = []
    for indices, to_train, to_holdout in zip(members, train_counts, holdout_counts, strict=True):
        shuffled = indices.take(rng.permutation(len(indices)), mode="clip")
        train.extend(shuffled[:to_train])
        holdout.extend(shuffled[to_train : to_train + to_holdout])
    return rng.permutation(train), rng.permutation(holdout)


def approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of `draws` samples each class gives: its share rounded down, then one more for
    the classes with the largest remainders, ties broken at random (scikit-learn's
    `_approximate_mode`)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    missing = int(draws - floored.sum())
    if missing > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), missing)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            missing -= now
            if missing == 0:
                break
    return floored.astype(int)
