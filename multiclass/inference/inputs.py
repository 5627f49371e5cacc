"""Files a person has, as the inputs a model was trained on: images (PNG, JPEG) for image
models, CSV rows of features for models with 1-D inputs (for a run on a table, its columns
by name, transformed as in training)."""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multiclass.errors import UserError

IMAGE_MODES = {1: "L", 3: "RGB"}  # PIL's mode for a model's input channels


@dataclass(frozen=True)
class Inputs:
    """Inputs (N, *input_shape) as floats, each named by its file (file:line for CSV rows)."""

    names: list[str]
    x: torch.Tensor


def read_inputs(
    paths: list[Path], input_shape: tuple[int, ...], invert: str = "auto", preprocess: Any = None
) -> Inputs:
    """Every file read whole before anything is predicted: a bad one stops all, with one line.
    `preprocess`: a table run's fitted transform, which reads CSV columns by name."""
    from multiclass.datasets.table_file import read_rows

    names: list[str] = []
    batches: list[torch.Tensor] = []
    for path in paths:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if path.suffix.lower() == ".csv" and preprocess is not None:
            file_names, x = read_rows(path, preprocess)
        elif path.suffix.lower() == ".csv":
            file_names, x = read_csv(path, input_shape)
        else:
            file_names, x = [str(path)], read_image(path, input_shape, invert).unsqueeze(0)
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


def read_image(path: Path, input_shape: tuple[int, ...], invert: str) -> torch.Tensor:
    """An image as the model's input (C, H, W), floats in [0, 1] with light strokes on a dark
    background as in every training set here: grey or colour by the model's channels,
    inverted if asked (auto: when its border is mostly light, as paper is), padded square
    with background so that its shape is kept, resized, and stretched to the full range."""
    if len(input_shape) != 3 or input_shape[0] not in IMAGE_MODES:
        raise UserError(
            f"{path}: an image, but this model takes inputs of shape {input_shape}: give CSV"
            " files of feature rows"
        )
    channels, height, width = input_shape
    pixels = decode(path, IMAGE_MODES[channels])
    if invert == "yes" or (invert == "auto" and light_border(pixels)):
        pixels = 1 - pixels
    square = pad_square(torch.from_numpy(pixels).reshape(*pixels.shape[:2], -1).permute(2, 0, 1))
    resized = torch.nn.functional.interpolate(
        square.unsqueeze(0), size=(height, width), mode="bilinear", antialias=True
    )[0].clamp(0, 1)
    low, high = resized.min(), resized.max()
    return (resized - low) / (high - low) if high > low else resized


def decode(path: Path, mode: str) -> np.ndarray:
    """The pixels of an image file, (H, W) or (H, W, 3), floats in [0, 1]."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            converted = ImageOps.exif_transpose(image).convert(mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{path}: not a readable PNG or JPEG image") from None
    return np.asarray(converted, dtype=np.float32) / 255


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
