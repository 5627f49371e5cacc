"""MNIST and Fashion-MNIST through torchvision, read straight from its IDX files into uint8
tensors (no per-sample transforms), or with dataset.storage=disk into a cache that later runs
map without reading the IDX files; with a one-line error that names the folder when files
are missing and the file when one is cut short or is no IDX file."""

import contextlib
import io
import logging
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multiclass.datasets.splits import Source, Splits, make_splits
from multiclass.datasets.storage import Cache, Cached, cache_key, choose_storage
from multiclass.errors import UserError

log = logging.getLogger("multiclass")


def mnist(
    root: str = "data",
    download: bool = True,
    storage: str = "auto",
    cache_dir: str | None = None,
    **split_options: Any,
) -> Splits:
    """MNIST: 60,000 training and 10,000 test images of handwritten digits, 28x28, 10 classes."""
    from torchvision.datasets import MNIST

    return make_splits(stored_idx(MNIST, root, download, storage, cache_dir), **split_options)


def fashion_mnist(
    root: str = "data",
    download: bool = True,
    storage: str = "auto",
    cache_dir: str | None = None,
    **split_options: Any,
) -> Splits:
    """Fashion-MNIST: MNIST's shape and sizes, 10 classes of clothing."""
    from torchvision.datasets import FashionMNIST

    return make_splits(
        stored_idx(FashionMNIST, root, download, storage, cache_dir), **split_options
    )


def stored_idx(
    dataset_class: type, root: str, download: bool, storage: str, cache_dir: str | None
) -> Source:
    """`load_idx`'s data set in memory, or on disk (multiclass.datasets.storage): from its
    cache when there is one for these files, which then are not read at all."""
    files = raw_files(dataset_class, root)
    present = [path for path in files if path.is_file()]
    if choose_storage(storage, sum(path.stat().st_size for path in present)) == "memory":
        return load_idx(dataset_class, root, download)
    name = dataset_class.__name__.lower()

    def cache() -> Cache:  # keyed by the files, once they are there
        return Cache.under(cache_dir, cache_key(name, files, "idx"))

    if len(present) == len(files) and (cached := cache().open()) is not None:
        return on_disk(cached, dataset_class)
    source = load_idx(dataset_class, root, download)
    assert source.test_x is not None and source.test_y is not None
    x = np.concatenate([source.x.numpy(), source.test_x.numpy()])
    labels = np.concatenate([source.y.numpy(), source.test_y.numpy()])
    arrays = {"labels": labels, "train_size": np.array([len(source.x)])}
    return on_disk(cache().build(x.shape, x.dtype, iter(x), arrays), dataset_class)


def raw_files(dataset_class: type, root: str) -> list[Path]:
    """The uncompressed IDX files torchvision reads: images and labels, train and test."""
    raw_folder = Path(root).expanduser().resolve() / dataset_class.__name__ / "raw"
    return [raw_folder / Path(file_name).stem for file_name, _ in dataset_class.resources]


def on_disk(cached: Cached, dataset_class: type) -> Source:
    """A Source whose images are rows of the cache: training images first, then test."""
    train_size = int(cached.arrays["train_size"][0])
    labels = torch.from_numpy(cached.arrays["labels"])
    log.info("%s: %d images on disk in %s", dataset_class.__name__, len(labels), cached.folder)
    return Source(
        name=dataset_class.__name__.lower(),
        x=cached.whole(0, train_size),
        y=labels[:train_size],
        class_names=list(dataset_class.classes),
        test_x=cached.whole(train_size),
        test_y=labels[train_size:],
    )


def load_idx(dataset_class: type, root: str, download: bool) -> Source:
    """Both official splits of a torchvision MNIST-like data set, images as uint8 (N, 1, H, W).
    torchvision downloads only missing files; its chatter is kept for the one-line error."""
    root_path = Path(root).expanduser().resolve()
    name = dataset_class.__name__
    raw_folder = root_path / name / "raw"
    for path in raw_files(dataset_class, root):
        check_idx_file(path, download)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            train = dataset_class(str(root_path), train=True, download=download)
        test = dataset_class(str(root_path), train=False, download=False)
    except (RuntimeError, OSError) as error:
        if not download:
            raise UserError(
                f"{name} not found in {raw_folder}: put its IDX files there, point dataset.root"
                f" at the folder that holds {name}/raw, or set dataset.download=true"
            ) from None
        told = [line.strip() for line in f"{chatter.getvalue()}\n{error}".splitlines()]
        raise UserError(
            f"could not download {name} into {raw_folder} ({[t for t in told if t][-1]}):"
            " copy its IDX files there by hand, or set dataset.download=false and dataset.root"
        ) from None
    return Source(
        name=name.lower(),
        x=train.data.unsqueeze(1),
        y=train.targets.long(),
        class_names=list(dataset_class.classes),
        test_x=test.data.unsqueeze(1),
        test_y=test.targets.long(),
    )


def check_idx_file(path: Path, download: bool) -> None:
    """A UserError naming `path` when its size is not what its own header declares (a copy or
    download cut short) or it is no IDX file of bytes; torchvision would call it "not found",
    or a failed download. A file that is not there is torchvision's to report or download."""
    if not path.is_file():
        return
    problem = idx_problem(path)
    if problem:
        again = "run again to download it" if download else "set dataset.download=true"
        raise UserError(f"{path} is {problem}: delete it and {again}, or replace it")


def idx_problem(path: Path) -> str | None:
    """What is wrong with an IDX file of unsigned bytes, judged by its header and size."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        magic = file.read(4)
        if not magic:
            return "empty"
        if len(magic) < 4 or magic[:3] != b"\0\0\x08" or not 1 <= magic[3] <= 3:
            return f"not an IDX file of bytes (it starts {magic.hex()})"
        dims = file.read(4 * magic[3])
    if len(dims) < 4 * magic[3]:
        return f"truncated: {size} bytes, less than its header"
    shape = struct.unpack(f">{magic[3]}I", dims)
    expected = 4 + len(dims) + math.prod(shape)
    if size == expected:
        return None
    state = "truncated" if size < expected else "corrupt"
    declared = "x".join(map(str, shape))
    return (
        f"{state}: {size:,} bytes where its header declares {declared} values ({expected:,} bytes)"
    )
