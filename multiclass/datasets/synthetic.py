"""MNIST-shaped synthetic data in torchvision's IDX layout, for benchmarks without the real
data and for tests: each class is a bright square at its own place on a noisy background."""

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def synthetic_images(count: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class (< 12) is a 6x6 square at a class-specific place."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % num_classes).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 4)
        images[index, 2 + 6 * row : 8 + 6 * row, 2 + 6 * col : 8 + 6 * col] = 255
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding torchvision reads: magic (type 0x08 = uint8, ndim), big-endian dims."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(
    folder: Path, num_train: int = 300, num_test: int = 100, compress: bool = False
) -> Path:
    """Write an MNIST-layout data set (10 classes) of synthetic images into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for train, (images_name, labels_name) in IDX_FILES.items():
        images, labels = synthetic_images(num_train if train else num_test, 10, seed=int(train))
        for name, array in ((images_name, images), (labels_name, labels)):
            data = idx_bytes(array)
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder
