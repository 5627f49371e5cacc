"""Files a person has, as the inputs a model was trained on: images (PNG, JPEG) for image
models (for a run on a folder of images, decoded as training decoded its own), CSV rows of
features for models with 1-D inputs (for a run on a table, its columns by name, transformed
as in training)."""

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from multiclass.datasets.image_folder import (
    MODES,
    ImageDecoding,
    UnreadableImage,
    as_viewed,
    open_image,
)
from multiclass.datasets.storage import as_float
from multiclass.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Inputs:
    """Inputs (N, *input_shape) as floats, each named by its file (file:line for CSV rows)."""

    names: list[str]
    x: torch.Tensor


def read_inputs(
    paths: list[Path], input_shape: tuple[int, ...], invert: str = "auto", preprocess: Any = None
) -> Inputs:
    """Every file read whole before anything is predicted: a bad one stops all, with one line.
    `preprocess`, how the run prepared its own inputs (`TrainedRun.preprocess`): a table's
    fitted transform, which reads CSV columns by name, or an image folder's ImageDecoding."""
    from multiclass.datasets.table_file import read_rows

    decoding = preprocess if isinstance(preprocess, ImageDecoding) else None
    transform = None if decoding is not None else preprocess
    names: list[str] = []
    batches: list[torch.Tensor] = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if path.suffix.lower() == ".csv" and transform is not None:
            file_names, x = read_rows(path, transform)
        elif path.suffix.lower() == ".csv":
            file_names, x = read_csv(path, input_shape)
        else:
            image = read_image(path, input_shape, invert, decoding)
            file_names, x = [str(path)], image.unsqueeze(0)
        names += file_names
        batches.append(x)
    return Inputs(names, torch.cat(batches))


def read_csv(path: Path, input_shape: tuple[int, ...]) -> tuple[list[str], torch.Tensor]:
    """Rows of features, one sample each, named path:line; a first row that is not all
    numbers is a header."""
    if len(input_shape) != 1:
        raise UserError(
            f"{path}: CSV rows are for models with 1-D inputs; this one takes images of shape"
            f" {input_shape}: give PNG or JPEG files"
        )
    try:
        with open(path, newline="") as file:
            reader = csv.reader(file)
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable CSV file ({error})") from None
    if rows and not all(is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise UserError(f"{path}: no rows of features")
    return [f"{path}:{line}" for line, _ in rows], torch.tensor(
        [features(path, line, row, input_shape[0]) for line, row in rows]
    )


def features(path: Path, line: int, row: list[str], expected: int) -> list[float]:
    if len(row) != expected:
        raise UserError(
            f"{path}:{line}: {len(row)} columns, but the model takes {expected} features per row"
        )
    if not all(is_number(cell) for cell in row):
        raise UserError(f"{path}:{line}: not all numbers: {','.join(row)}")
    return [float(cell) for cell in row]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_image(
    path: Path, input_shape: tuple[int, ...], invert: str, decoding: ImageDecoding | None = None
) -> torch.Tensor:
    """An image as the model's input (C, H, W), floats in [0, 1]. With `decoding` (a run on a
    folder of images), exactly as training decoded its files, inverted only if asked (yes).
    Without, as the training sets here are drawn, light strokes on a dark background: grey or
    colour by the model's channels, inverted if asked (auto: when its border is mostly light,
    as paper is), padded square with background so that its shape is kept, resized, and
    stretched to the full range."""
    if len(input_shape) != 3 or input_shape[0] not in MODES:
        raise UserError(
            f"{path}: an image, but this model takes inputs of shape {input_shape}: give CSV"
            " files of feature rows"
        )
    if decoding is not None:
        pixels = as_float(opened(path, decoding.pixels))
        return 1 - pixels if invert == "yes" else pixels
    channels, height, width = input_shape
    pixels = decode(path, MODES[channels])
    if invert == "yes" or (invert == "auto" and light_border(pixels)):
        pixels = 1 - pixels
    square = pad_square(torch.from_numpy(pixels).reshape(*pixels.shape[:2], -1).permute(2, 0, 1))
    resized = torch.nn.functional.interpolate(
        square.unsqueeze(0), size=(height, width), mode="bilinear", antialias=True
    )[0].clamp(0, 1)
    low, high = resized.min(), resized.max()
    return (resized - low) / (high - low) if high > low else resized


def decode(path: Path, mode: str) -> np.ndarray:
    """The pixels of an image file, upright by its EXIF orientation and its transparent parts
    on white (as_viewed), (H, W) or (H, W, 3), floats in [0, 1]."""
    from PIL import ImageOps

    converted = opened(path, lambda image: as_viewed(ImageOps.exif_transpose(image), mode))
    return np.asarray(converted, dtype=np.float32) / 255


def opened(path: Path, use: Callable[[Any], T]) -> T:
    """`use` applied to the open image file, by the rule training reads images with; a file
    that is none is one line."""
    try:
        return open_image(path, use)
    except UnreadableImage:
        raise UserError(f"{path}: not a readable PNG or JPEG image") from None


def light_border(pixels: np.ndarray) -> bool:
    """Whether most of the outermost pixels are light: a dark drawing on light paper."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(border)) > 0.5


def pad_square(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) padded with dark background on both sides of its shorter edge."""
    _, height, width = image.shape
    extra = abs(height - width)
    before, after = extra // 2, extra - extra // 2
    padding = (before, after, 0, 0) if height > width else (0, 0, before, after)
    return torch.nn.functional.pad(image, padding)
