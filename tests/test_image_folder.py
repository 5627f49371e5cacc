"""dataset=image_folder: root/<class>/<image> decoded once to uint8, class names from the
folders, unreadable files skipped or named, and too many pixels refused before decoding."""

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import multiclass
from multiclass.datasets import as_float
from multiclass.datasets import image_folder as module
from multiclass.datasets.image_folder import ImageDecoding, image_folder
from multiclass.errors import UserError
from multiclass.inference.inputs import read_inputs

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def draw_folder(root: Path, per_class: int = 10, size: tuple[int, int] = (12, 10)) -> Path:
    """PNGs (width x height = `size`) of one bright colour per class, on a noisy background."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
            pixels[2:-2, 2:-2] = colour
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return draw_folder(tmp_path / "colours")


def test_a_png_folder_trains_with_folder_names_as_classes(train, folder, tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["dataset=image_folder", f"dataset.root={folder}", "dataset.image_size=8"]
    outcome = train(*overrides, "model=cnn", "trainer.epochs=2", run_dir=run_dir)

    assert outcome.status == "completed"
    assert outcome.summary["input_shape"] == [3, 8, 8]
    assert outcome.summary["split_sizes"] == {"train": 21, "val": 3, "test": 6}
    assert multiclass.load_run(run_dir).class_names == ["blue", "green", "red"]


def test_a_folder_of_one_class_is_refused(train, folder):
    for name in ("blue", "green"):
        shutil.rmtree(folder / name)

    outcome = train("dataset=image_folder", f"dataset.root={folder}", "trainer.epochs=1")
    assert outcome.status == "failed"
    assert outcome.summary["error"] == (
        f"dataset.root {folder} has one class ('red'): a classifier needs at least two classes"
    )


@pytest.mark.parametrize("grayscale", [False, True])
def test_prediction_decodes_images_as_training_did(train, folder, tmp_path, grayscale):
    overrides = ["dataset=image_folder", f"dataset.root={folder}", "dataset.image_size=8"]
    grey = f"dataset.grayscale={str(grayscale).lower()}"
    train(*overrides, grey, "model=cnn", "trainer.epochs=1", run_dir=tmp_path / "run")
    run = multiclass.load_run(tmp_path / "run")

    files = sorted(folder.rglob("*.png"))  # 12x10, not square: the MNIST way would pad them
    inputs = read_inputs(files, run.input_shape, "auto", run.preprocess)  # as multiclass-predict
    splits = image_folder(str(folder), image_size=8, grayscale=grayscale, val_fraction=0)
    decoded = as_float(torch.cat([splits.train.x, splits.test.x]))
    assert inputs.x.shape == decoded.shape == (30, 1 if grayscale else 3, 8, 8)
    assert sorted(x.numpy().tobytes() for x in inputs.x) == sorted(
        x.numpy().tobytes() for x in decoded
    )


def test_pixels_are_uint8_resized_grey_or_colour(folder):
    colour = image_folder(str(folder), image_size=8, seed=0)
    grey = image_folder(str(folder), image_size=8, grayscale=True, seed=0)
    kept = image_folder(str(folder), image_size=None, seed=0)

    assert colour.train.x.dtype == torch.uint8 and colour.train.x.shape[1:] == (3, 8, 8)
    assert grey.train.x.shape[1:] == (1, 8, 8)
    assert kept.train.x.shape[1:] == (3, 10, 12)  # height 10, width 12, as drawn
    red = kept.class_names.index("red")
    centre = kept.train.x[kept.train.y == red][:, :, 5, 6]
    assert (centre == torch.tensor([255, 0, 0], dtype=torch.uint8)).all()


def test_images_of_different_sizes_need_an_image_size(folder):
    Image.new("RGB", (30, 20)).save(folder / "red" / "big.png")

    with pytest.raises(UserError, match=r"images differ in size .*set dataset.image_size"):
        image_folder(str(folder), image_size=None)
    assert image_folder(str(folder), image_size=16).train.x.shape[1:] == (3, 16, 16)


def test_the_split_is_seeded_and_stratified_and_classes_go_by_name(folder):
    splits = image_folder(str(folder), classes=["red", "blue"], val_fraction=0, test_fraction=0.5)

    assert splits.class_names == ["red", "blue"]
    assert torch.bincount(splits.test.y).tolist() == [5, 5]
    assert torch.equal(splits.test.x, image_folder(str(folder), seed=0, **subset()).test.x)
    assert not torch.equal(splits.test.x, image_folder(str(folder), seed=1, **subset()).test.x)


def subset() -> dict:
    return {"classes": ["red", "blue"], "val_fraction": 0, "test_fraction": 0.5}


def test_train_and_test_folders_are_the_official_split(tmp_path):
    draw_folder(tmp_path / "root" / "train", per_class=6)
    draw_folder(tmp_path / "root" / "test", per_class=2)

    splits = image_folder(str(tmp_path / "root"), val_fraction=0)
    assert (len(splits.train), len(splits.test)) == (18, 6)
    assert splits.class_names == ["blue", "green", "red"]


def test_only_the_kept_images_are_decoded(folder, monkeypatch):
    decoded = []
    real = module.pixels_of
    monkeypatch.setattr(module, "pixels_of", lambda *a: decoded.append(1) or real(*a))

    splits = image_folder(str(folder), limit=10, val_fraction=0.2)
    assert len(decoded) == len(splits.train) + len(splits.val) + len(splits.test) == 16


def corrupt(folder: Path) -> Path:
    path = folder / "green" / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nnot an image at all")
    return path


def test_an_unreadable_image_is_skipped_and_counted(folder, caplog):
    bad = corrupt(folder)

    with caplog.at_level(logging.INFO, logger="multiclass"):
        splits = image_folder(str(folder), val_fraction=0, test_fraction=0.5)
    assert len(splits.train) + len(splits.test) == 30  # 31 files, one unreadable
    assert f"left out 1 unreadable files (first: {bad})" in caplog.text
    assert "30 images decoded, 3x28x28" in caplog.text


def test_an_unreadable_image_is_named_when_asked_to_stop(folder, train):
    bad = corrupt(folder)

    with pytest.raises(UserError, match=rf"{bad}: not a readable image \(UnidentifiedImage"):
        image_folder(str(folder), on_bad_image="error")
    outcome = train("dataset=image_folder", f"dataset.root={folder}", "dataset.on_bad_image=error")
    assert outcome.status == "failed" and str(bad) in outcome.summary["error"]


def test_too_many_pixels_are_refused_before_decoding(folder, monkeypatch):
    monkeypatch.setattr(module, "pixels_of", lambda *a: pytest.fail("decoded"))

    with pytest.raises(UserError) as refused:
        image_folder(str(folder), image_size=100, max_bytes=100_000)
    assert str(refused.value) == (
        "30 images of 3x100x100 need 900.0 kB as uint8, more than dataset.max_bytes (100.0 kB):"
        " lower dataset.image_size, set dataset.grayscale=true or dataset.limit, or raise"
        " dataset.max_bytes"
    )
    monkeypatch.setattr(module, "physical_memory", lambda: 1_000_000)
    with pytest.raises(UserError, match=r"more than half of this machine's memory \(500.0 kB\)"):
        image_folder(str(folder), image_size=100)


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (lambda root: None, {}, r"no such directory"),
        (lambda root: root.mkdir(), {}, r"no class folders"),
        (lambda root: (root / "cat").mkdir(parents=True), {}, r"Found no valid file"),
        (draw_folder, {"on_bad_image": "ignore"}, r"on_bad_image must be one of skip, error"),
        (draw_folder, {"image_size": 0}, r"image_size must be an integer >= 1, or null"),
        (draw_folder, {"classes": ["red", "pink"]}, r"no class 'pink'"),
    ],
)
def test_bad_folders_and_options_get_one_line(tmp_path, make, options, message):
    root = tmp_path / "images"
    make(root)
    with pytest.raises(UserError, match=message) as refused:
        image_folder(str(root), **options)
    assert "\n" not in str(refused.value)


STROKE = (40, 40, 40)  # a dark pen


def ring(size: tuple[int, int] = (12, 10)) -> Image.Image:
    """Where the pen drew: a mask (255 on the stroke)."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((2, 1, size[0] - 3, size[1] - 2), outline=255, width=2)
    return mask


def drawn_on(background: str, mask: Image.Image) -> Image.Image:
    """The pen's stroke on white paper, or on a transparent background as drawing programs
    save it (its colour black, as most leave it): RGBA, LA, or a palette with a transparent
    entry (P)."""
    if background == "white":
        return Image.composite(
            Image.new("RGB", mask.size, STROKE), Image.new("RGB", mask.size, "white"), mask
        )
    if background == "P":
        image = Image.new("P", mask.size, 0)
        image.putpalette([0, 0, 0, *STROKE])
        image.paste(1, mask=mask)
        image.info["transparency"] = 0
        return image
    pen = STROKE if background == "RGBA" else STROKE[0]
    image = Image.new(background, mask.size, 0)  # black, and transparent
    image.paste(Image.new(background[:-1], mask.size, pen), mask=mask)
    image.putalpha(mask)
    return image


@pytest.mark.parametrize("transparent", ["RGBA", "LA", "P"])
def test_a_transparent_image_is_read_on_white_as_a_viewer_shows_it(tmp_path, transparent):
    """By image_folder (grey and colour) and by multiclass-predict, both through as_viewed."""
    folders = {}
    for background in ("white", transparent):
        root = tmp_path / background
        for name, size in (("ring", (12, 10)), ("wide", (16, 10))):
            (root / name).mkdir(parents=True)
            for i in range(3):
                drawn_on(background, ring(size)).save(root / name / f"{i}.png")
        folders[background] = root
    for grayscale in (True, False):
        white, seen = (
            image_folder(str(folders[b]), image_size=8, grayscale=grayscale, val_fraction=0)
            for b in ("white", transparent)
        )
        assert torch.equal(seen.train.x, white.train.x) and torch.equal(seen.test.x, white.test.x)
    files = {b: sorted(folders[b].rglob("*.png")) for b in folders}
    for decoding in (None, ImageDecoding.of_shape((1, 8, 8))):  # as MNIST, as an image folder
        white, seen = (read_inputs(files[b], (1, 8, 8), "auto", decoding).x for b in folders)
        assert torch.equal(seen, white)
        assert white.std() > 0.1  # a ring, not a blank


def test_an_image_changed_in_place_gets_a_new_cache(folder, tmp_path):
    """Same name, same byte size (uncompressed PNGs), only its pixels and its time changed."""
    path, cache = folder / "red" / "0.png", tmp_path / "cache"
    options = {"storage": "disk", "cache_dir": str(cache), "val_fraction": 0}
    Image.new("RGB", (12, 10), "red").save(path, compress_level=0)
    before = image_folder(str(folder), **options)
    size, stamp = path.stat().st_size, path.stat().st_mtime_ns
    Image.new("RGB", (12, 10), "blue").save(path, compress_level=0)  # edited, in place
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))  # a second later, as an edit comes
    assert path.stat().st_size == size
    after = image_folder(str(folder), **options)
    in_memory = image_folder(str(folder), storage="memory", val_fraction=0)
    pixels = [torch.cat([s.train.x.read(), s.test.x.read()]) for s in (before, after)]
    assert torch.equal(pixels[1], torch.cat([in_memory.train.x, in_memory.test.x]))
    assert not torch.equal(pixels[1], pixels[0])
    assert len(list(cache.iterdir())) == 2
