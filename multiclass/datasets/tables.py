"""Small data sets that need no download: scikit-learn's digits, blobs and moons, and the seeds'
XOR points and 8x4 toy table. Each returns `Splits`; `split_options` go to `make_splits`."""

import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multiclass.datasets.splits import Source, Splits, make_splits

DIGITS_FILE = Path("datasets", "data", "digits.csv.gz")  # in scikit-learn's package folder
# Seed 003's table: four features, three classes, eight rows.
TOY_X = [
    [1, 2, 1, 1],
    [2, 1, 3, 2],
    [3, 1, 3, 4],
    [4, 1, 5, 5],
    [1, 7, 5, 5],
    [1, 2, 5, 6],
    [1, 6, 6, 6],
    [1, 7, 7, 7],
]
TOY_Y = [2, 2, 2, 1, 1, 1, 0, 0]
XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]]
XOR_Y = [0, 1, 1, 0]


def class_names(k: int) -> list[str]:
    return [str(c) for c in range(k)]


def digits(**split_options: Any) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits: 1797 images, 10 classes, scaled to [0, 1]."""
    images, target = bundled_digits()
    x = torch.from_numpy(images).float().div_(16).unsqueeze(1)
    source = Source("digits", x, torch.from_numpy(target).long(), class_names(10))
    return make_splits(source, **split_options)


def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """The (1797, 8, 8) images and the labels, read from the file scikit-learn ships, as its
    `load_digits` reads it, but without importing scikit-learn: that import is 1.5 s of the
    default run's start-up. `load_digits` itself where a scikit-learn keeps the file elsewhere."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / DIGITS_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt", encoding="utf-8") as file:
        data = np.loadtxt(file, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def blobs(
    n_samples: int = 100,
    centers: Sequence[Sequence[float]] = ((-10, -4), (-7, -8), (-6, -3), (-2, 4)),
    cluster_std: float = 0.5,
    seed: int = 0,
    **split_options: Any,
) -> Splits:
    """Gaussian blobs in 2-D, one class per centre (seed 000's four centres by default)."""
    from sklearn.datasets import make_blobs

    centers = [list(c) for c in centers]
    x, y = make_blobs(
        n_samples=n_samples, centers=centers, cluster_std=cluster_std, random_state=seed
    )
    source = Source(
        "blobs", torch.from_numpy(x).float(), torch.from_numpy(y).long(), class_names(len(centers))
    )
    return make_splits(source, seed=seed, **split_options)


def moons(n_samples: int = 1000, noise: float = 0.2, seed: int = 0, **split_options: Any) -> Splits:
    """scikit-learn's two interleaving half circles: two classes, not linearly separable."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    source = Source(
        "moons", torch.from_numpy(x).float(), torch.from_numpy(y).long(), class_names(2)
    )
    return make_splits(source, seed=seed, **split_options)


def xor(**split_options: Any) -> Splits:
    """The four XOR points (seed 001): two classes no linear model separates."""
    source = Source(
        "xor", torch.tensor(XOR_X, dtype=torch.float32), torch.tensor(XOR_Y), class_names(2)
    )
    return make_splits(source, **split_options)


def toy(**split_options: Any) -> Splits:
    """Seed 003's 8x4 table with three classes."""
    source = Source(
        "toy", torch.tensor(TOY_X, dtype=torch.float32), torch.tensor(TOY_Y), class_names(3)
    )
    return make_splits(source, **split_options)
