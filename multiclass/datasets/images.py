"""MNIST and Fashion-MNIST through torchvision, read straight from its IDX files into uint8
tensors (no per-sample transforms), with a one-line error that names the folder when files
are missing and the file when one is cut short or is no IDX file."""

import contextlib
import io
import math
import struct
from pathlib import Path
from typing import Any

from multiclass.datasets.splits import Source, Splits, make_splits
from multiclass.errors import UserError


def mnist(root: str = "data", download: bool = True, **split_options: Any) -> Splits:
    """MNIST: 60,000 training and 10,000 test images of handwritten digits, 28x28, 10 classes."""
    from torchvision.datasets import MNIST

    return make_splits(load_idx(MNIST, root, download), **split_options)


def fashion_mnist(root: str = "data", download: bool = True, **split_options: Any) -> Splits:
    """Fashion-MNIST: MNIST's shape and sizes, 10 classes of clothing."""
    from torchvision.datasets import FashionMNIST

    return make_splits(load_idx(FashionMNIST, root, download), **split_options)


def load_idx(dataset_class: type, root: str, download: bool) -> Source:
    """Both official splits of a torchvision MNIST-like data set, images as uint8 (N, 1, H, W).
    torchvision downloads only missing files; its chatter is kept for the one-line error."""
    root_path = Path(root).expanduser().resolve()
    name = dataset_class.__name__
    raw_folder = root_path / name / "raw"
    for file_name, _ in dataset_class.resources:
        check_idx_file(raw_folder / Path(file_name).stem, download)
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
