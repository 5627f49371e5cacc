"""What a user must do to an input before the exported model takes it, as the run prepared its
own: an image's channels, size and scaling, a table's fitted transform (its numbers, so that it
can be applied without scikit-learn, and preprocess.pkl shipped beside), or nothing.

The exported model takes float32 (N, *input_shape) in NCHW order for images; channels_last is a
speed setting of training on the CPU (Runtime.layout), never what a user must give."""

from typing import Any

from omegaconf import DictConfig

from multiclass.datasets.image_folder import ImageDecoding
from multiclass.datasets.table_file import NUMERIC, TEXT
from multiclass.inference.trained import TrainedRun
from multiclass.records.preprocess import PREPROCESS

# Data sets stored as uint8 pixels (0..255) and scaled batch by batch (datasets.storage.as_float).
IDX_IMAGES = {
    "multiclass.datasets.images.mnist": "MNIST's IDX files",
    "multiclass.datasets.images.fashion_mnist": "Fashion-MNIST's IDX files",
}
DIGITS = "multiclass.datasets.tables.digits"
RAW_FEATURES = {f"multiclass.datasets.tables.{name}" for name in ("blobs", "moons", "xor", "toy")}


def preprocessing(run: TrainedRun, stored_dtype: str) -> dict[str, Any]:
    """How to turn a raw input into the model's float32 input; `stored_dtype`, the dtype the
    run's data set holds its inputs in (uint8 pixels are divided by 255 in training)."""
    target = str(run.config.dataset.get("_target_"))
    if isinstance(run.preprocess, ImageDecoding):
        return image_folder_steps(run.preprocess)
    if run.table_transform is not None:
        return table_steps(run.table_transform)
    if target in IDX_IMAGES:
        return image_steps(run.input_shape, 255, f"{IDX_IMAGES[target]}: light strokes on black")
    if target == DIGITS:
        return image_steps(run.input_shape, 16, "scikit-learn's load_digits images (0..16)")
    if target in RAW_FEATURES:
        return {"kind": "features", "steps": ["none: the features as they are, as float32"]}
    return unknown_steps(run.config.dataset, stored_dtype, run.input_shape)


def image_steps(shape: tuple[int, ...], divide_by: int, source: str) -> dict[str, Any]:
    channels, height, width = shape
    return {
        "kind": "image",
        "source": source,
        "channels": channels,
        "color": "grayscale" if channels == 1 else "RGB",
        "size": [height, width],
        "divide_by": divide_by,
        "normalize": None,
        "steps": [
            f"pixels as (C, H, W) = ({channels}, {height}, {width}), channels first",
            f"float32(pixels) / {divide_by}: values in [0, 1]; no mean or std subtracted",
        ],
    }


def image_folder_steps(decoding: ImageDecoding) -> dict[str, Any]:
    """An image folder run's decoding (datasets.image_folder.pixels_of), then / 255."""
    described = image_steps((decoding.channels, *decoding.size), 255, "image files")
    height, width = decoding.size
    described["steps"] = [
        "transparent parts composited on white",
        f"PIL: image.convert({decoding.mode!r})",
        f"resized to {width}x{height} (width x height) with PIL's BILINEAR, if not that size",
        *described["steps"],
    ]
    return described


def table_steps(transform: Any) -> dict[str, Any]:
    """A table run's fitted ColumnTransformer in numbers: each numeric column standardised by
    the training split's mean and scale, each text column one-hot by its known categories (an
    unknown one: all zeros), missing values filled where the run imputed; numeric first."""
    parts = dict((name, pipeline) for name, pipeline, _ in transform.transformers_)
    columns = {name: list(cols) for name, _, cols in transform.transformers_ if name in parts}
    numeric, text = [], []
    if NUMERIC in parts:
        scaler = parts[NUMERIC][-1]
        fills = filled(parts[NUMERIC], len(columns[NUMERIC]))
        for column, mean, scale, fill in zip(
            columns[NUMERIC], scaler.mean_, scaler.scale_, fills, strict=True
        ):
            numeric.append(
                {"column": column, "mean": float(mean), "scale": float(scale), "fill": fill}
            )
    if TEXT in parts:
        encoder = parts[TEXT][-1]
        fills = filled(parts[TEXT], len(columns[TEXT]))
        for column, categories, fill in zip(columns[TEXT], encoder.categories_, fills, strict=True):
            text.append(
                {"column": column, "categories": [str(c) for c in categories], "fill": fill}
            )
    names = [str(entry["column"]) for entry in numeric + text]
    return {
        "kind": "table",
        "file": PREPROCESS,
        "numeric": numeric,
        "text": text,
        "features": [str(name) for name in transform.get_feature_names_out()],
        "steps": [
            f"{PREPROCESS}, scikit-learn's fitted ColumnTransformer (a pickle: load only one you"
            f" trust): transform(a DataFrame with columns {', '.join(names)}), as float32",
            "or, without scikit-learn, by bundle.json's numbers: missing cells filled with each"
            " column's fill (null: the run refused them), each numeric column (value - mean) /"
            " scale, then each text column one-hot over its categories (unknown: all zeros)",
        ],
    }


def filled(pipeline: Any, count: int) -> list[Any]:
    """The value a pipeline's imputer fills each column's missing cells with; None without
    one (the run refused missing values)."""
    from sklearn.impute import SimpleImputer

    imputers = [step for step in pipeline if isinstance(step, SimpleImputer)]
    if not imputers:
        return [None] * count
    return [value.item() if hasattr(value, "item") else value for value in imputers[0].statistics_]


def unknown_steps(node: DictConfig, stored_dtype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """A data set builder of the user's own: only what its stored inputs tell."""
    target = node.get("_target_")
    if stored_dtype == "uint8" and len(shape) == 3:
        return image_steps(shape, 255, f"{target}'s uint8 pixels")
    return {
        "kind": "features" if len(shape) == 1 else "array",
        "source": str(target),
        "steps": [f"as {target} gives its inputs, as float32: nothing scaled after it"],
    }
