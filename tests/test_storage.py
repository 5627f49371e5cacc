"""dataset.storage=disk: splits decoded once into a cache file and read batch by batch give the
weights memory storage gives, for images and tables; a cache is keyed by its sources, checked
on every open, and never left half written (multiclass/datasets/storage.py)."""

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from multiclass.datasets import storage, table_file
from multiclass.datasets.image_folder import image_folder
from multiclass.datasets.splits import Splits
from multiclass.datasets.storage import Cache, DiskArray, choose_storage, prefetched
from multiclass.datasets.synthetic import write_idx_dataset
from multiclass.datasets.table_file import table
from multiclass.device.runtime import Runtime
from multiclass.engine import Examples, Task, evaluate
from multiclass.errors import UserError
from multiclass.heads import head_for
from tests.test_image_folder import corrupt, draw_folder
from tests.test_table_dataset import animals, with_gaps

TINY = ["trainer.epochs=2", "trainer.batch_size=16"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return draw_folder(tmp_path / "colours", per_class=12)


def folder_run(train, folder: Path, cache: Path, storage: str, *more: str):
    options = [f"dataset.root={folder}", f"dataset.cache_dir={cache}", "dataset.image_size=8"]
    return train(
        "dataset=image_folder", *options, f"dataset.storage={storage}", "model=cnn", *TINY, *more
    ).summary


def caches(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.iterdir())


def test_an_image_folder_on_disk_trains_to_the_weights_it_trains_to_in_memory(
    train, folder, tmp_path
):
    cache = tmp_path / "cache"
    augmented = ["augment=flip_crop", "augment.padding=1"]
    memory = folder_run(train, folder, cache, "memory", *augmented)
    assert not cache.exists()  # memory storage writes no cache
    built = folder_run(train, folder, cache, "disk", *augmented)
    (key,) = caches(cache)
    stamp = (cache / key / "inputs.npy").stat().st_mtime_ns
    reused = folder_run(train, folder, cache, "disk", *augmented)
    assert memory["status"] == built["status"] == reused["status"] == "completed"
    assert memory["weights_sha256"] == built["weights_sha256"] == reused["weights_sha256"]
    assert memory["test_acc"] == built["test_acc"] and memory["split_sizes"] == built["split_sizes"]
    assert caches(cache) == [key] and (cache / key / "inputs.npy").stat().st_mtime_ns == stamp


def test_mnist_on_disk_trains_to_the_weights_of_mnist_in_memory_and_reads_no_idx_file_again(
    train, tmp_path
):
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw", num_train=200, num_test=60)
    cache = tmp_path / "cache"
    options = ["dataset=mnist", f"dataset.root={tmp_path / 'data'}", "dataset.download=false"]
    runs = {
        storage: train(*options, f"dataset.cache_dir={cache}", f"dataset.storage={storage}", *TINY)
        for storage in ("memory", "disk")
    }
    assert runs["memory"].summary["weights_sha256"] == runs["disk"].summary["weights_sha256"]
    (key,) = caches(cache)
    assert key.startswith("mnist-")
    images = tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    stat = images.stat()
    images.write_bytes(b"\0" * stat.st_size)  # what a read of the file would now see
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the cache's key unchanged
    again = train(*options, f"dataset.cache_dir={cache}", "dataset.storage=disk", *TINY).summary
    assert again["weights_sha256"] == runs["disk"].summary["weights_sha256"]


def test_a_changed_folder_gets_a_new_cache_and_is_never_served_stale(folder, tmp_path):
    cache = tmp_path / "cache"
    before = image_folder(str(folder), storage="disk", cache_dir=str(cache), val_fraction=0)
    (folder / "red" / "0.png").unlink()
    after = image_folder(str(folder), storage="disk", cache_dir=str(cache), val_fraction=0)
    assert len(before.train) + len(before.test) == 36
    assert len(after.train) + len(after.test) == 35
    assert len(caches(cache)) == 2


def on_disk(kind: str, tmp_path: Path, cache: Path) -> Callable[[], Splits]:
    """Loads a small image folder or table, with storage=disk, anew at each call."""
    if kind == "image_folder":
        folder = draw_folder(tmp_path / "colours", per_class=12)
        return lambda: image_folder(str(folder), storage="disk", cache_dir=str(cache))
    path = tmp_path / "animals.csv"
    animals(90, seed=0).to_csv(path, index=False)
    return lambda: table(str(path), "label", storage="disk", cache_dir=str(cache))


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "drop meta.json"])
@pytest.mark.parametrize("kind", ["image_folder", "table"])
def test_a_damaged_cache_is_found_and_built_again(tmp_path, caplog, kind, damage):
    cache = tmp_path / "cache"
    load = on_disk(kind, tmp_path, cache)
    first = contents(load())
    (key,) = caches(cache)
    inputs = cache / key / "inputs.npy"
    if damage == "flip a byte":
        data = bytearray(inputs.read_bytes())
        data[-5] ^= 0xFF
        inputs.write_bytes(bytes(data))
    elif damage == "truncate":
        inputs.write_bytes(inputs.read_bytes()[:-100])
    else:
        (cache / key / "meta.json").unlink()
    with caplog.at_level(logging.WARNING, logger="multiclass"):
        second = load()
    expected = {"flip a byte": "corrupt", "truncate": "truncated", "drop meta.json": "unreadable"}
    assert f"warning: cache {cache / key} is {expected[damage]}" in caplog.text
    assert contents(second) == first  # every split: the flipped byte lies in one of them
    assert caches(cache) == [key]


def contents(splits: Splits) -> dict[str, tuple[bytes, bytes]]:
    """Each split's inputs and labels as bytes, read from the cache: what training sees."""
    named = {"train": splits.train, "val": splits.val, "test": splits.test}
    return {
        name: (split.x.read().numpy().tobytes(), split.y.numpy().tobytes())
        for name, split in named.items()
        if split is not None
    }


@pytest.fixture
def animals_files(tmp_path: Path) -> tuple[Path, Path]:
    """A training table and a test table holding a colour training never saw."""
    path, test_path = tmp_path / "animals.csv", tmp_path / "animals_test.csv"
    animals(90, seed=0).to_csv(path, index=False)
    test_rows = animals(30, seed=1)
    test_rows.loc[0, "colour"] = "purple"
    test_rows.to_csv(test_path, index=False)
    return path, test_path


def test_a_table_on_disk_trains_to_the_weights_it_trains_to_in_memory(
    train, animals_files, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(table_file, "CHUNK_BYTES", 7 * 5 * 8)  # 120 rows in 18 chunks of 7
    path, test_path = animals_files
    cache = tmp_path / "cache"
    options = ["dataset=table", f"dataset.path={path}", f"dataset.test_path={test_path}"]
    options += ["dataset.target=label", f"dataset.cache_dir={cache}", *TINY]
    memory = train(*options, "dataset.storage=memory").summary
    assert not cache.exists()  # memory storage writes no cache
    built = train(*options, "dataset.storage=disk").summary
    (key,) = caches(cache)
    stamp = (cache / key / "inputs.npy").stat().st_mtime_ns
    caplog.clear()  # the reuse's lines alone (a test before may have left INFO on)
    with caplog.at_level(logging.INFO, logger="multiclass"):
        reused = train(*options, "dataset.storage=disk").summary
    assert memory["status"] == built["status"] == reused["status"] == "completed"
    assert memory["weights_sha256"] == built["weights_sha256"] == reused["weights_sha256"]
    assert memory["test_acc"] == built["test_acc"] and memory["split_sizes"] == built["split_sizes"]
    assert key.startswith("table-") and np.load(cache / key / "inputs.npy").shape == (120, 5)
    assert caches(cache) == [key] and (cache / key / "inputs.npy").stat().st_mtime_ns == stamp
    assert f"on disk in {cache / key}" in caplog.text and "writing" not in caplog.text  # reused


def same_on_disk_as_in_memory(path: Path, cache: Path, **options) -> None:
    """The table read with storage=disk holds, split by split, what storage=memory holds."""
    disk = table(str(path), "label", storage="disk", cache_dir=str(cache), **options)
    memory = table(str(path), "label", storage="memory", **options)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(disk, split).x.read(), getattr(memory, split).x), options
        assert torch.equal(getattr(disk, split).y, getattr(memory, split).y), options


def test_a_changed_table_or_option_gets_a_new_cache_and_is_never_served_stale(tmp_path):
    path, cache = with_gaps(tmp_path / "gaps.csv", whole_sizes=True), tmp_path / "cache"
    first = {"impute": "mean"}
    same_on_disk_as_in_memory(path, cache, **first)
    changes = [
        {"impute": "most_frequent"},  # another fill value for the gaps
        {**first, "features": ["size", "colour"]},
        {**first, "seed": 1},  # other training rows: other statistics
        {**first, "val_fraction": 0.2},
        {**first, "classes": ["cat", "dog"]},
        {**first, "limit": 40},
    ]
    for count, options in enumerate(changes, start=2):
        same_on_disk_as_in_memory(path, cache, **options)
        assert len(caches(cache)) == count, options
    same_on_disk_as_in_memory(path, cache, **first)  # its cache is still there, and still right
    assert len(caches(cache)) == len(changes) + 1
    path.write_text(path.read_text().replace("red", "ash"))  # as many bytes, ash sorts first
    same_on_disk_as_in_memory(path, cache, **first)
    assert len(caches(cache)) == len(changes) + 2


def test_auto_keeps_a_table_on_disk_above_a_quarter_of_the_memory(tmp_path, monkeypatch):
    path, cache = tmp_path / "animals.csv", tmp_path / "cache"
    animals(90, seed=0).to_csv(path, index=False)  # 90 rows of 5 float32 features: 1,800 bytes
    for memory, kept in ((4 * 1800, torch.Tensor), (4 * 1800 - 1, DiskArray)):
        monkeypatch.setattr(storage, "physical_memory", lambda memory=memory: memory)
        splits = table(str(path), "label", storage="auto", cache_dir=str(cache))
        assert isinstance(splits.train.x, kept), memory


def test_a_build_stopped_part_way_leaves_no_cache_and_a_killed_ones_leftovers_go(folder, tmp_path):
    cache = tmp_path / "cache"
    bad = corrupt(folder)
    with pytest.raises(UserError, match=str(bad)):
        image_folder(str(folder), storage="disk", cache_dir=str(cache), on_bad_image="error")
    assert caches(cache) == []  # neither a cache nor a partial one
    skipped = image_folder(str(folder), storage="disk", cache_dir=str(cache))
    (key,) = caches(cache)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    leftover = cache / f"{key}.partial-{os.uname().nodename}-{dead}"
    leftover.mkdir()
    (cache / key / "meta.json").unlink()  # so that the next open builds again
    image_folder(str(folder), storage="disk", cache_dir=str(cache))
    assert caches(cache) == [key]  # the dead process's partial build is gone
    assert len(skipped.train) + len(skipped.val) + len(skipped.test) == 36  # 37 files, 1 bad
    with pytest.raises(UserError, match=str(bad)):  # the cache remembers it was left out
        image_folder(str(folder), storage="disk", cache_dir=str(cache), on_bad_image="error")


def test_an_unwritable_cache_folder_is_one_line(folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(
        UserError, match=r"cannot write the data cache in .*file.*dataset\.cache_dir"
    ):
        image_folder(str(folder), storage="disk", cache_dir=str(blocker / "cache"))


def test_auto_goes_to_disk_above_a_quarter_of_the_memory(monkeypatch):
    monkeypatch.setattr(storage, "physical_memory", lambda: 1000)
    assert choose_storage("auto", 250) == "memory"
    assert choose_storage("auto", 251) == "disk"
    assert choose_storage("memory", 10**9) == "memory" and choose_storage("disk", 1) == "disk"
    with pytest.raises(UserError, match=r"dataset\.storage must be one of memory, disk, auto"):
        choose_storage("ssd", 1)


def test_rows_on_disk_select_and_read_as_a_tensor_does(tmp_path):
    rows = np.arange(10 * 6, dtype=np.uint8).reshape(10, 2, 3)
    whole = Cache(tmp_path, "key").build(rows.shape, rows.dtype, iter(rows)).whole()
    tensor = torch.from_numpy(rows)
    view = whole[torch.tensor([7, 2, 5, 9])][1:]  # a view of a view: nothing read yet
    assert view.shape == torch.Size([3, 2, 3]) and view.dtype == torch.uint8
    assert torch.equal(view.read(), tensor[[2, 5, 9]])
    mask = torch.tensor([True, False] * 5)
    assert torch.equal(whole[mask].index_select(0, torch.tensor([4, 0])), tensor[mask][[4, 0]])
    assert isinstance(whole.to(torch.device("cpu")), DiskArray)


@pytest.mark.parametrize("mapped_bytes", [100, 10**6])  # the file: 188 bytes
def test_a_large_file_is_read_without_its_map_and_a_small_one_from_it_to_the_same_rows(
    tmp_path, monkeypatch, mapped_bytes
):
    monkeypatch.setattr(storage, "MAPPED_BYTES", mapped_bytes)
    rows = np.arange(10 * 6, dtype=np.uint8).reshape(10, 2, 3)
    whole = Cache(tmp_path, "key").build(rows.shape, rows.dtype, iter(rows)).whole()
    if mapped_bytes < 188:  # a page of the map touched would count towards the process
        monkeypatch.setattr(whole.mapping, "array", Untouchable(whole.mapping.array))
    out = torch.full((5, 2, 3), 255, dtype=torch.uint8)
    for batch in ([7, 1], [2], [3, 9, 0]):
        assert torch.equal(whole.read(torch.tensor(batch)), torch.from_numpy(rows[batch]))
        read = whole.read(torch.tensor(batch), out)
        assert read.data_ptr() == out.data_ptr() and torch.equal(
            read, torch.from_numpy(rows[batch])
        )


class Untouchable:
    """A mapped array whose rows must not be read, only its shape and dtype."""

    def __init__(self, array: np.ndarray) -> None:
        self.shape, self.dtype = array.shape, array.dtype

    def take(self, *args, **kwargs):
        raise AssertionError("a large cache's map was read")


def test_evaluating_a_split_on_disk_reads_and_converts_each_batch_into_the_same_buffers(
    tmp_path, monkeypatch
):
    """A pass holds one batch: never more rows read than a batch, every batch read into one
    buffer and made floats in another (not in memory made afresh for each), the outputs those
    of the split in memory."""
    rows = np.random.default_rng(0).integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    whole = Cache(tmp_path, "key").build(rows.shape, rows.dtype, iter(rows)).whole()
    reads = []
    mapping_rows = whole.mapping.rows
    monkeypatch.setattr(
        whole.mapping,
        "rows",
        lambda p, out=None: reads.append((len(p), out)) or mapping_rows(p, out),
    )
    seen = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
    model.register_forward_pre_hook(lambda _, args: seen.append(args[0].data_ptr()))
    criterion = torch.nn.CrossEntropyLoss()
    task = Task(model, criterion, head_for(criterion, 3), None, Runtime(torch.device("cpu")))
    labels = torch.arange(10) % 3
    on_disk = evaluate(task, Examples(whole, labels, labels), batch_size=4)
    assert [count for count, _ in reads] == [4, 4, 2]
    assert len({out.ctypes.data for _, out in reads}) == 1 and len(set(seen)) == 1
    in_memory = evaluate(task, Examples(torch.from_numpy(rows), labels, labels), batch_size=4)
    assert (on_disk.loss, on_disk.acc) == (in_memory.loss, in_memory.acc)
    assert torch.equal(on_disk.predictions, in_memory.predictions)


def test_disk_batches_read_a_few_at_a_time_are_the_batches_memory_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "READ_BYTES", 3 * 6 * 2)  # 3 batches of 2 rows a read
    rows = np.arange(11 * 6, dtype=np.uint8).reshape(11, 2, 3)
    whole = Cache(tmp_path, "key").build(rows.shape, rows.dtype, iter(rows)).whole()
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    batches = list(order.split(2))  # the last batch of one row
    reads = []
    monkeypatch.setattr(
        whole.mapping,
        "rows",
        lambda p, out=None, rows=whole.mapping.rows: reads.append(len(p)) or rows(p, out),
    )
    cpu = torch.device("cpu")
    on_disk = list(storage.training_batches(whole, batches, cpu))
    in_memory = list(storage.training_batches(torch.from_numpy(rows), batches, cpu))
    assert len(on_disk) == len(in_memory) == 6
    assert all(torch.equal(a, b) for a, b in zip(on_disk, in_memory, strict=True))
    assert reads == [6, 5]


def test_prefetching_keeps_the_order_and_raises_a_reads_error_where_it_is_taken():
    assert list(prefetched(lambda key: key * 2, [1, 2, 3])) == [2, 4, 6]
    assert list(prefetched(lambda key: key, [])) == []

    def read(key: int) -> int:
        if key == 2:
            raise OSError("disk gone")
        return key

    batches = prefetched(read, [1, 2, 3])
    assert next(batches) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(batches)
