"""Your own images in torchvision's ImageFolder layout, root/<class>/<image> (PNG, JPEG, ...),
or root/train/<class>/... and root/test/<class>/... for an official test set.

Images are decoded once, into uint8 tensors (N, C, H, W) as MNIST is stored (a quarter of
float32, made floats batch by batch). Which files go to which split is decided first, from
the file list alone, so `classes` and `limit` decode only what they keep, and the memory the
pixels will take is checked before the first image is opened."""

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from multiclass.datasets.splits import Split, Splits, row_splits
from multiclass.datasets.storage import Cache, cache_key, choose_storage, physical_memory
from multiclass.errors import UserError
from multiclass.settings import check_value

log = logging.getLogger("multiclass")

MEMORY_SHARE = 0.5  # the default dataset.max_bytes: this share of the machine's memory
MODES = {1: "L", 3: "RGB"}  # PIL's mode for a number of channels
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")  # PIL's modes with an alpha channel
BACKGROUND = (255, 255, 255, 255)  # what a transparent pixel shows: white, as viewers show it
T = TypeVar("T")


def image_folder(
    root: str | None = None,
    image_size: int | None = 28,
    grayscale: bool = False,
    max_bytes: int | None = None,
    on_bad_image: str = "skip",
    progress: bool = True,
    storage: str = "auto",
    cache_dir: str | None = None,
    **split_options: Any,
) -> Splits:
    """The images under `root`, classes named by their folders, resized to image_size x
    image_size (None: kept, when all have one size), grey (1 channel) or RGB (3), held in
    memory or decoded once into a cache on disk (`storage`, multiclass.datasets.storage)."""
    if root is None:
        raise UserError("dataset=image_folder needs dataset.root, the folder of class folders")
    check_value("dataset.on_bad_image", on_bad_image)  # by the keys' rules: from Python too
    check_value("dataset.image_size", image_size)
    folder = Path(root).expanduser()
    files, labels, class_names, test_labels = list_images(folder)
    origin = f"dataset.root {folder}"
    rows = row_splits(folder.name, labels, class_names, test_labels, origin, **split_options)
    channels = 1 if grayscale else 3
    reader = ImageReader(files, on_bad_image)
    splits = [split.x for split in (rows.train, rows.val, rows.test) if split is not None]
    wanted = sorted(set(torch.cat(splits).tolist()))  # the rows of the files to decode
    size = (image_size, image_size) if image_size else reader.common_size(wanted)
    decoding = ImageDecoding(MODES[channels], size)
    pixels = (len(wanted) - len(reader.bad)) * channels * size[0] * size[1]
    if choose_storage(storage, pixels) == "disk":
        files = [reader.files[row] for row in wanted]
        cache = Cache.under(cache_dir, cache_key("image_folder", files, decoding))
        decoded = reader.cache_splits(rows, decoding, wanted, cache, progress)
        where = f" on disk in {cache.folder}"
    else:
        check_memory(len(wanted) - len(reader.bad), channels, size, max_bytes)
        decoded = reader.decode_splits(rows, decoding, len(wanted), progress)
        where = ""
    kept = len(wanted) - len(reader.bad)
    log.info(
        "%s: %d images decoded, %dx%dx%d, %s as uint8%s",
        folder,
        kept,
        channels,
        *size,
        in_bytes(kept * channels * size[0] * size[1]),
        where,
    )
    if reader.bad:
        log.warning(
            "warning: %s: left out %d unreadable files (first: %s)",
            folder,
            len(reader.bad),
            reader.bad[0],
        )
    if len(decoded.train) == 0:
        raise UserError(f"{folder}: no readable image in the training split")
    return decoded


def list_images(
    root: Path,
) -> tuple[list[Path], torch.Tensor, list[str], torch.Tensor | None]:
    """Every image file with its class index and the class names (the training folders'); the
    files of root/test, when root holds train/ and test/, follow the training files."""
    from torchvision.datasets.folder import find_classes

    if not root.is_dir():
        raise UserError(f"dataset.root: {root}: no such directory")
    official = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if official else root
    try:
        class_names, class_to_idx = find_classes(str(train_root))
    except FileNotFoundError:
        raise UserError(
            f"{train_root}: no class folders (expected {train_root}/<class>/<image>)"
        ) from None
    train = class_files(train_root, class_to_idx, allow_empty=False)
    if not official:
        return [path for path, _ in train], labels_of(train), class_names, None
    unknown = sorted(set(subfolders(root / "test")) - set(class_names))
    if unknown:
        raise UserError(f"{root / 'test'}: classes {', '.join(unknown)} are not in {train_root}")
    test = class_files(root / "test", class_to_idx, allow_empty=True)
    if not test:
        raise UserError(f"{root / 'test'}: no images")
    return [path for path, _ in train + test], labels_of(train), class_names, labels_of(test)


def subfolders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def class_files(
    folder: Path, class_to_idx: dict[str, int], allow_empty: bool
) -> list[tuple[Path, int]]:
    """The image files of each class folder (torchvision's extensions), with class indices."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    try:
        found = make_dataset(str(folder), class_to_idx, IMG_EXTENSIONS, allow_empty=allow_empty)
    except FileNotFoundError as error:  # a class folder without a single image
        raise UserError(f"{folder}: {' '.join(str(error).split())}") from None
    return [(Path(path), label) for path, label in found]


def labels_of(files: list[tuple[Path, int]]) -> torch.Tensor:
    return torch.tensor([label for _, label in files], dtype=torch.int64)


def check_memory(count: int, channels: int, size: tuple[int, int], max_bytes: int | None) -> None:
    """Refuse before decoding when the pixels would not fit: N x C x H x W bytes as uint8."""
    needed = count * channels * size[0] * size[1]
    limit, whose = max_bytes, "dataset.max_bytes"
    if limit is None:
        memory = physical_memory()
        if memory is None:
            return
        limit, whose = int(memory * MEMORY_SHARE), "half of this machine's memory"
    if needed > limit:
        raise UserError(
            f"{count:,} images of {channels}x{size[0]}x{size[1]} need {in_bytes(needed)} as uint8,"
            f" more than {whose} ({in_bytes(limit)}): lower dataset.image_size, set"
            " dataset.grayscale=true or dataset.limit, or raise dataset.max_bytes"
        )


def in_bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


@dataclass(frozen=True)
class ImageDecoding:
    """How an image file becomes a model's input: PIL's mode (L or RGB) and the (height,
    width) it is resized to. Training decodes a folder with it, and prediction new files, so
    that a model sees a new image as it saw its own."""

    mode: str
    size: tuple[int, int]

    @classmethod
    def of_shape(cls, input_shape: tuple[int, ...]) -> "ImageDecoding":
        """The decoding that gives inputs of shape (C, H, W)."""
        channels, height, width = input_shape
        return cls(MODES[channels], (height, width))

    @property
    def channels(self) -> int:
        return len(self.mode)  # L: 1, RGB: 3

    def pixels(self, image: Any) -> torch.Tensor:
        """An open PIL image as uint8 (C, H, W)."""
        return pixels_of(image, self.mode, self.size)


class UnreadableImage(Exception):
    """A file PIL cannot read as an image; its cause is PIL's error."""


def open_image(path: Path, use: Callable[[Any], T]) -> T:
    """`use` applied to the open image file at `path`: the one rule by which training and
    prediction tell a readable image from a file that is none (UnreadableImage)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return use(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"{path}: not a readable image ({type(error).__name__})") from error


class ImageReader:
    """Opens the image files of one data set by row number, and keeps the unreadable ones
    aside (on_bad_image=skip) or stops at the first (error)."""

    def __init__(self, files: list[Path], on_bad_image: str) -> None:
        self.files = files
        self.on_bad_image = on_bad_image
        self.bad: list[Path] = []

    def unreadable(self, row: int, error: UnreadableImage) -> None:
        path = self.files[row]
        if self.on_bad_image == "error":
            raise UserError(f"{error}; set dataset.on_bad_image=skip to leave such files out")
        if path not in self.bad:
            self.bad.append(path)

    def common_size(self, rows: list[int]) -> tuple[int, int]:
        """The (height, width) every readable image has, read from the files' headers; a
        one-line error when they differ."""
        sizes: dict[tuple[int, int], Path] = {}
        for row in rows:
            found = self.read(row, lambda image: (image.height, image.width))
            if found is not None:
                sizes.setdefault(found, self.files[row])
        if len(sizes) > 1:
            (a, first), (b, second) = list(sizes.items())[:2]
            raise UserError(
                f"images differ in size ({a[0]}x{a[1]} {first}, {b[0]}x{b[1]} {second}):"
                " set dataset.image_size to resize them all"
            )
        if not sizes:
            raise UserError(f"no readable image among {len(rows)} files")
        return next(iter(sizes))

    def decode_splits(
        self, rows: Splits, decoding: ImageDecoding, count: int, progress: bool
    ) -> Splits:
        """Each split of row numbers filled with its images (`count` in all, a bar that turns
        itself off where the output is not a terminal); unreadable ones are left out."""
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        bar = tqdm(total=count, unit="image", desc="decode", disable=None if progress else True)
        with bar, logging_redirect_tqdm():
            return rows.map(lambda split: self.decode_split(split, decoding, bar.update))

    def cache_splits(
        self, rows: Splits, decoding: ImageDecoding, wanted: list[int], cache: Cache, progress: bool
    ) -> Splits:
        """Each split of row numbers as rows of the cache of the `wanted` files' images,
        decoding them into it first unless it is there; unreadable files are left out."""
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        cached = cache.open()
        if cached is None:
            bar = tqdm(
                total=len(wanted), unit="image", desc="cache", disable=None if progress else True
            )
            with bar, logging_redirect_tqdm():
                images = (self.decoded(row, decoding, bar.update) for row in wanted)
                shape = (len(wanted), decoding.channels, *decoding.size)
                cached = cache.build(shape, np.uint8, images)
        left_out = cached.meta["left_out"]
        if left_out:
            self.read(wanted[left_out[0]], decoding.pixels)  # on_bad_image=error: its error
            self.bad.extend(self.files[wanted[index]] for index in left_out)
        kept = np.delete(np.array(wanted, dtype=np.int64), left_out)
        position = np.full(len(self.files), -1, dtype=np.int64)
        position[kept] = np.arange(len(kept))
        inputs = cached.whole()

        def on_disk(split: Split) -> Split:
            positions = position[split.x.numpy()]
            readable = positions >= 0
            return Split(inputs[positions[readable]], split.y[torch.from_numpy(readable)])

        return rows.map(on_disk)

    def decoded(
        self, row: int, decoding: ImageDecoding, advance: Callable[[int], Any]
    ) -> "np.ndarray | None":
        pixels = self.read(row, decoding.pixels)
        advance(1)
        return None if pixels is None else pixels.numpy()

    def decode_split(
        self, split: Split, decoding: ImageDecoding, advance: Callable[[int], Any]
    ) -> Split:
        x = torch.empty((len(split), decoding.channels, *decoding.size), dtype=torch.uint8)
        readable = torch.ones(len(split), dtype=torch.bool)
        for i, row in enumerate(split.x.tolist()):
            pixels = self.read(row, decoding.pixels)
            if pixels is None:
                readable[i] = False
            else:
                x[i] = pixels
            advance(1)
        return Split(x, split.y) if readable.all() else Split(x[readable], split.y[readable])

    def read(self, row: int, use: Callable[[Any], T]) -> T | None:
        """`use` applied to the open image of `row`, or None when it cannot be read."""
        try:
            return open_image(self.files[row], use)
        except UnreadableImage as error:
            self.unreadable(row, error)
            return None


def pixels_of(image: Any, mode: str, size: tuple[int, int]) -> torch.Tensor:
    """A PIL image as uint8 (C, H, W) in `mode`, resized (bilinear) to `size` if it differs."""
    from PIL import Image

    converted = as_viewed(image, mode)
    if (converted.height, converted.width) != size:
        converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(converted).copy())
    return pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)


def as_viewed(image: Any, mode: str) -> Any:
    """A PIL image in `mode` (L or RGB) as a viewer shows it: one with transparency (an alpha
    channel, or a transparent palette entry or colour) composited on white first. Converted
    directly, a dark digit drawn on a transparent background, as drawing programs save it,
    would lose its background's transparency and most often be black on black."""
    from PIL import Image

    if image.mode not in TRANSPARENT_MODES and "transparency" not in image.info:
        return image.convert(mode)
    drawn = image.convert("RGBA")
    paper = Image.new("RGBA", drawn.size, BACKGROUND)
    return Image.alpha_composite(paper, drawn).convert(mode)
