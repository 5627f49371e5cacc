"""MNIST with rare classes, as two Parquet tables for `dataset=table` (docs/trust.md, class
balance): every training image of the digits 0-4 and every tenth of 5-9's (10:1), and the
official test set whole, so that each digit's test figures come from its usual 1,000 images.
One column per pixel (px0..px783, 0-255) and the class in `digit`.

    python docs/examples/lopsided_mnist.py DATA_ROOT [OUT_DIR]

DATA_ROOT holds MNIST/raw (torchvision's layout); nothing is downloaded. Writes
OUT_DIR/mnist_lopsided.parquet and OUT_DIR/mnist_test.parquet (OUT_DIR: here)."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from torchvision.datasets import MNIST

RARE = range(5, 10)  # the digits kept one in ten
KEEP_ONE_IN = 10


def table(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    pixels = images.reshape(len(images), -1)
    frame = pd.DataFrame(pixels, columns=[f"px{i}" for i in range(pixels.shape[1])])
    frame["digit"] = labels
    return frame


def lopsided(labels: np.ndarray) -> np.ndarray:
    """The rows kept: every row of a common digit, every tenth of a rare one's, in file order."""
    keep = ~np.isin(labels, RARE)
    for digit in RARE:
        keep[np.flatnonzero(labels == digit)[::KEEP_ONE_IN]] = True
    return np.flatnonzero(keep)


def main(root: str, out: str = ".") -> None:
    train = MNIST(root, train=True, download=False)
    test = MNIST(root, train=False, download=False)
    images, labels = train.data.numpy(), train.targets.numpy()
    rows = lopsided(labels)
    written = {
        "mnist_lopsided.parquet": table(images[rows], labels[rows]),
        "mnist_test.parquet": table(test.data.numpy(), test.targets.numpy()),
    }
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, frame in written.items():
        frame.to_parquet(Path(out) / name, index=False)
    counts = np.bincount(labels[rows], minlength=10)
    print(f"wrote {', '.join(written)}: {len(rows)} training rows, per digit {counts.tolist()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
