"""MNIST and Fashion-MNIST through torchvision, read straight from its IDX files into uint8
tensors (no per-sample transforms), with a one-line error that names the folder when files
are missing."""

import contextlib
import io
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
