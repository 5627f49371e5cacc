"""Data sets: class subsets, limits, seeded splits, the tiny tables, and the torchvision path
on synthetic IDX files (read from disk, and downloaded from a local server)."""

import functools
import hashlib
import http.server
import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from multiclass.datasets import as_float, images, tables
from multiclass.datasets.image_folder import image_folder
from multiclass.datasets.splits import split_indices
from multiclass.datasets.synthetic import IDX_FILES, write_idx_dataset
from multiclass.datasets.table_file import table
from multiclass.errors import UserError


def test_digits_default_split_is_stratified_and_disjoint():
    splits = tables.digits(val_fraction=0.1, test_fraction=0.2, seed=0)
    assert splits.input_shape == (1, 8, 8)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1293, 144, 360)
    assert splits.train.x.min() >= 0 and splits.train.x.max() <= 1
    test_counts = torch.bincount(splits.test.y, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # 20% of ~180 per class
    rows = {tuple(x.flatten().tolist()) for split in (splits.train, splits.val) for x in split.x}
    overlap = sum(tuple(x.flatten().tolist()) in rows for x in splits.test.x)
    assert overlap <= 3  # digits has a few duplicate images; the split itself shares none


def test_digits_are_scikit_learns_without_importing_it():
    images, labels = tables.bundled_digits()
    raw = load_digits()
    assert np.array_equal(images, raw.images) and np.array_equal(labels, raw.target)


def random_split_case(seed: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 300))
    labels = rng.integers(0, int(rng.integers(1, 12)), n)  # classes of every size, 1 included
    return labels, float(rng.choice([0.1, 0.2, 0.25, 1 / 3, 0.5, 0.9]))


EDGE_CASES = [
    (np.array([0, 0, 1, 1, 1]), 0.5),  # stratified
    (np.array([0, 0, 0, 1]), 0.5),  # class 1 has one sample: a plain shuffle
    (np.array([0, 1, 2, 0, 1, 2]), 0.2),  # 2 holdout samples for 3 classes: a plain shuffle
    (np.array([0, 1]), 0.9),  # nothing left to train on: an error
]


@pytest.mark.parametrize(
    "labels, fraction", [random_split_case(seed) for seed in range(40)] + EDGE_CASES
)
def test_splits_are_the_indices_scikit_learns_train_test_split_gives(labels, fraction):
    """Stratified where it can be, a plain shuffle where a class is too small: the same
    indices as scikit-learn's for the same seed, so every figure measured before stands."""
    from sklearn.model_selection import train_test_split

    seed, indices = len(labels), np.arange(len(labels))
    try:
        expected = train_test_split(indices, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:
        try:
            expected = train_test_split(indices, test_size=fraction, random_state=seed)
        except ValueError:
            with pytest.raises(UserError, match="cannot split"):
                split_indices(torch.from_numpy(labels), fraction, seed)
            return
    train, holdout = split_indices(torch.from_numpy(labels), fraction, seed)
    assert np.array_equal(train, expected[0]) and np.array_equal(holdout, expected[1])


def test_classes_keeps_a_subset_and_relabels_in_the_order_given():
    splits = tables.digits(classes=[5, 3], val_fraction=0.1, test_fraction=0.2, seed=0)
    assert splits.class_names == ["5", "3"]
    raw = load_digits()
    all_x = torch.cat([splits.train.x, splits.val.x, splits.test.x]).flatten(1)
    all_y = torch.cat([splits.train.y, splits.val.y, splits.test.y])
    assert len(all_y) == int(((raw.target == 5) | (raw.target == 3)).sum())
    fives = torch.from_numpy(raw.data[raw.target == 5]).float() / 16
    assert sorted(map(tuple, all_x[all_y == 0].tolist())) == sorted(map(tuple, fives.tolist()))


def test_limit_keeps_the_first_training_samples_and_the_whole_test_set():
    full = tables.digits(val_fraction=0, test_fraction=0.2, seed=0)
    limited = tables.digits(limit=100, val_fraction=0, test_fraction=0.2, seed=0)
    assert len(limited.train) == 100
    assert torch.equal(limited.train.x, full.train.x[:100])
    assert torch.equal(limited.test.y, full.test.y)


def test_val_fraction_zero_means_no_validation_split():
    splits = tables.moons(val_fraction=0, test_fraction=0.2, seed=0)
    assert splits.val is None
    assert len(splits.train) == 800


def test_splits_follow_the_seed():
    first, again, other = (tables.moons(seed=s) for s in (1, 1, 2))
    assert torch.equal(first.train.x, again.train.x)
    assert not torch.equal(first.train.x, other.train.x)


@pytest.mark.parametrize(("loader", "rows"), [(tables.xor, 4), (tables.toy, 8)])
def test_tiny_tables_evaluate_on_their_training_points(loader, rows):
    splits = loader(eval_on_train=True)
    assert splits.evaluated_on == "train"
    assert len(splits.train) == rows
    assert splits.val is splits.train and splits.test is splits.train


def test_toy_table_is_seed_003s():
    splits = tables.toy(eval_on_train=True)
    assert splits.train.x[0].tolist() == [1, 2, 1, 1]
    assert splits.train.y.tolist() == [2, 2, 2, 1, 1, 1, 0, 0]


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([0, 12], "no class 12"),
        ([3], "at least two classes"),
        ([1, 1], "names a class twice"),
        (["seven", 2], "no class 'seven'"),
    ],
)
def test_bad_class_subsets_are_refused(classes, message):
    with pytest.raises(UserError, match=message):
        tables.digits(classes=classes)


def one_class_folder(tmp_path) -> tuple[Callable[[], object], str]:
    circles = tmp_path / "shapes" / "circle"
    circles.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (6, 6), (60 * i, 0, 0)).save(circles / f"{i}.png")
    root = tmp_path / "shapes"
    return lambda: image_folder(str(root)), f"dataset.root {root} has one class ('circle')"


def one_class_table(tmp_path) -> tuple[Callable[[], object], str]:
    path = tmp_path / "one.csv"
    path.write_text("a,b\n1,x\n2,x\n3,x\n")
    return lambda: table(str(path), "b"), f"dataset.target 'b' in {path} has one class ('x')"


@pytest.mark.parametrize(
    "case",
    [
        one_class_folder,
        one_class_table,
        lambda _: (lambda: tables.digits(classes=[3]), "dataset.classes=[3] has one class ('3')"),
        lambda _: (lambda: tables.moons(classes=[]), "dataset.classes=[] has no class"),
    ],
    ids=["image folder", "table", "classes", "no classes"],
)
def test_a_single_class_is_refused_the_same_way_by_every_data_set(tmp_path, case):
    build, origin = case(tmp_path)
    with pytest.raises(UserError) as refused:
        build()
    assert str(refused.value) == f"{origin}: a classifier needs at least two classes"


@pytest.mark.parametrize("options", [{"val_fraction": 1.0}, {"test_fraction": -0.1}, {"limit": 0}])
def test_bad_split_options_are_refused(options):
    with pytest.raises(UserError, match="dataset"):
        tables.digits(**options)


def test_mnist_keeps_idx_pixels_as_uint8_and_feeds_floats(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw", num_train=300, num_test=100)
    splits = images.mnist(root=str(tmp_path), download=False, val_fraction=0.1, seed=0)
    assert splits.input_shape == (1, 28, 28)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (270, 30, 100)
    assert splits.train.x.dtype == torch.uint8 and splits.train.x.max() == 255
    inputs = as_float(splits.train.x[:5])
    assert inputs.dtype == torch.float32 and inputs.max() == 1.0 and inputs.min() >= 0
    assert torch.equal(inputs * 255, splits.train.x[:5].float())
    assert splits.class_names[0] == "0 - zero"


def test_fashion_mnist_keeps_classes_by_name(tmp_path):
    write_idx_dataset(tmp_path / "FashionMNIST" / "raw", num_train=200, num_test=50)
    splits = images.fashion_mnist(
        root=str(tmp_path), download=False, classes=["Sneaker", "Bag"], val_fraction=0
    )
    assert splits.class_names == ["Sneaker", "Bag"]
    assert set(splits.test.y.tolist()) == {0, 1}
    assert len(splits.train) == 40  # 200 images, classes cycle through 0..9


def test_missing_files_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(UserError) as failure:
        images.mnist(root=str(tmp_path), download=False)
    message = str(failure.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "dataset.download=true" in message
    assert "\n" not in message


@pytest.fixture
def idx_server(tmp_path, monkeypatch):
    """A local HTTP server holding gzipped IDX files, set as MNIST's only download mirror."""
    served = write_idx_dataset(tmp_path / "served", num_train=120, num_test=40, compress=True)
    names = [f"{name}.gz" for pair in IDX_FILES.values() for name in pair]
    resources = [(name, hashlib.md5((served / name).read_bytes()).hexdigest()) for name in names]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(MNIST, "resources", resources)
    yield
    server.shutdown()


def test_mnist_downloads_when_asked(idx_server, tmp_path):
    root = tmp_path / "downloaded"
    splits = images.mnist(root=str(root), download=True, val_fraction=0)
    assert (len(splits.train), len(splits.test)) == (120, 40)
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert (root / "MNIST" / "raw" / name).is_file()


def test_a_failed_download_is_one_line_naming_the_folder(idx_server, tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "resources", [("missing-file.gz", None)])
    with pytest.raises(UserError) as failure:
        images.mnist(root=str(tmp_path / "nowhere"), download=True)
    message = str(failure.value)
    assert message.startswith("could not download MNIST into")
    assert "404" in message and "\n" not in message


def test_synthetic_idx_round_trips_through_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_image_file

    write_idx_dataset(tmp_path, num_train=12, num_test=4)
    read = read_image_file(str(tmp_path / "train-images-idx3-ubyte"))
    assert read.shape == (12, 28, 28)
    assert np.array_equal(read[0].numpy().max(), 255)
