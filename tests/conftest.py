"""Shared helpers: compose a config as the CLI would, run it in-process, write IDX files."""

import gzip
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import multiclass.config  # noqa: F401  (registers the schema conf/train.yaml extends)
from multiclass.run import Outcome, execute

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "conf"
QUIET = ["trainer.progress=false", "plots=false"]
# What a run on image data writes itself; the CLI adds Hydra's .hydra/ and train.log.
RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "summary.json",
    "model.pt",
    "curves.png",
    "confusion_matrix.png",
    "predictions.png",
)


def compose_config(*overrides: str) -> DictConfig:
    """The config `multiclass-train <overrides>` would run, without Hydra's own node."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.fixture
def train(tmp_path: Path) -> Callable[..., Outcome]:
    """Run a configuration in-process into a fresh directory; plots and progress off by default."""
    counter = iter(range(1_000_000))

    def run(*overrides: str, run_dir: Path | None = None) -> Outcome:
        cfg = compose_config(*QUIET, *overrides)
        return execute(cfg, run_dir or tmp_path / f"run{next(counter)}")

    return run


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m multiclass <args>` in `cwd`, as a user would type it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "multiclass", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def synthetic_images(count: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 images whose class is a bright 6x6 square at a class-specific place."""
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


IDX_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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
