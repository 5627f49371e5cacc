"""Your own table: a CSV or Parquet file, one row per sample, the class in a `target` column.

Numeric columns are standardised and text columns one-hot encoded by a scikit-learn
ColumnTransformer fitted on the training split alone, so no statistic of the validation or
test rows leaks into training. The fitted transformer travels with the splits
(`Splits.preprocess`) into the run directory, and prediction transforms new rows with it.

With dataset.storage=disk (multiclass.datasets.storage) the transformed float32 features are
written once, a chunk at a time, into a cache keyed by the files and by everything the fit saw,
and the splits read their rows from it; the labels stay in memory."""

import hashlib
import logging
import pickle
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from multiclass.datasets.splits import Split, Splits, row_splits
from multiclass.datasets.storage import Cache, Inputs, cache_key, choose_storage
from multiclass.errors import UserError
from multiclass.settings import check_value

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("multiclass")

PARQUET_SUFFIXES = (".parquet", ".pq")
NUMERIC, TEXT = "numeric", "text"  # the names of the ColumnTransformer's two parts
# A column is numeric when at least this share of its present cells are numbers: the few others
# (a stray "?", "n/a ", a typo) are read as missing values, with a warning, not as categories.
MOSTLY_NUMBERS = 0.95
FILL_IN = "fill them in, or set dataset.impute=mean or dataset.impute=most_frequent"
TRAINED_WITHOUT_IMPUTE = "the model was trained without dataset.impute"
# storage=disk transforms this many bytes of (float64) features at a time into the cache
CHUNK_BYTES = 16 * 2**20


def table(
    path: str | None = None,
    target: str | None = None,
    features: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    impute: str | None = None,
    test_path: str | None = None,
    preprocess: Any = None,
    storage: str = "auto",
    cache_dir: str | None = None,
    **split_options: Any,
) -> Splits:
    """The rows of `path` (and of `test_path`, the test split, if given) as standardised and
    one-hot encoded features, the classes being `target`'s values in sorted order, held in
    memory or on disk (`storage`, `cache_dir`: multiclass.datasets.storage).
    `preprocess`: a run's fitted transform (its preprocess.pkl), applied instead of fitting
    one, so that a model tested on another file sees it transformed as its training rows were."""
    if path is None or target is None:
        raise UserError(
            "dataset=table needs dataset.path (a CSV or Parquet file) and dataset.target"
            " (the column that holds the class)"
        )
    check_value("dataset.impute", impute)  # by the key's rule: called from Python too
    paths = [Path(p).expanduser() for p in (path, test_path) if p is not None]
    if preprocess is None:
        frames = [read_frame(p) for p in paths]
        transformer = planned_transformer(frames[0], paths[0], target, features, numeric, impute)
    else:
        frames = [read_frame(p, column_parts(preprocess)[TEXT]) for p in paths]
        transformer = preprocess
    parts = column_parts(transformer)
    for frame, where in zip(frames, paths, strict=True):
        check_columns(frame, where, [target, *parts[NUMERIC], *parts[TEXT]])
    labels, class_names = class_labels(frames, paths, target)
    data = [typed(f, parts[NUMERIC], parts[TEXT], p) for f, p in zip(frames, paths, strict=True)]
    if not imputes(transformer):
        fix = FILL_IN if preprocess is None else TRAINED_WITHOUT_IMPUTE
        for features_of, where in zip(data, paths, strict=True):
            check_complete(features_of, where, fix)
    test_y = labels[1] if test_path is not None else None
    origin = f"dataset.target {target!r} in {paths[0]}"
    rows = row_splits(paths[0].stem, labels[0], class_names, test_y, origin, **split_options)
    keeping = Keeping(storage, cache_dir, tuple(paths), {"target": target, "impute": impute})
    return filled_splits(rows, data, transformer, fit=preprocess is None, keeping=keeping)


def planned_transformer(
    frame: "pd.DataFrame",
    path: Path,
    target: str,
    features: Sequence[str] | None,
    numeric: Sequence[str] | None,
    impute: str | None,
) -> Any:
    """The transformer (not yet fitted) for the training file's feature columns, each part
    decided from the file itself: numbers standardised, text one-hot encoded."""
    columns = feature_columns(frame, path, target, features)
    numbers = numeric_columns(frame, path, columns, numeric or [])
    return build_transformer(numbers, [c for c in columns if c not in numbers], impute)


@dataclass(frozen=True)
class Keeping:
    """Where a table's transformed features are kept (dataset.storage, dataset.cache_dir), and
    what keys their cache besides the fit: the files read and the options read them with."""

    storage: str
    cache_dir: str | None
    files: tuple[Path, ...]
    options: dict[str, Any]

    def cache(self, made: dict[str, Any]) -> Cache:
        """The cache of these files transformed as `made` (`made_of`) says."""
        decoding = {**self.options, **made, "versions": library_versions()}
        return Cache.under(self.cache_dir, cache_key("table", self.files, decoding))


def filled_splits(
    rows: Splits, data: list["pd.DataFrame"], transformer: Any, fit: bool, keeping: Keeping
) -> Splits:
    """Row-number splits filled with the transformed features of their rows, in memory or as
    rows of a cache (`keeping`); `fit`: fit the transformer first, on the training rows alone."""
    import pandas as pd

    every_row = pd.concat(data, ignore_index=True)
    if fit:
        transformer.fit(every_row.iloc[rows.train.x.numpy()])
    warn_unseen(transformer, every_row, rows.name)
    width = transformer.transform(every_row.iloc[:1]).shape[1]  # one-hot columns included
    x: Inputs
    if choose_storage(keeping.storage, len(every_row) * width * 4) == "disk":  # float32
        cache = keeping.cache(made_of(transformer, rows, fit))
        x = cached_features(transformer, every_row, width, cache)
        where = f"; on disk in {cache.folder}"
    else:
        x, where = transformed(transformer, every_row), ""
    parts = column_parts(transformer)
    log.info(
        "%s: %d rows; columns standardised: %d, one-hot encoded: %d; %d features, %s%s",
        rows.name,
        len(every_row),
        len(parts[NUMERIC]),
        len(parts[TEXT]),
        width,
        f"fitted on the {len(rows.train)} training rows" if fit else "by the run's saved transform",
        where,
    )
    filled = rows.map(lambda split: Split(x[split.x], split.y))
    return replace(filled, preprocess=transformer)


def made_of(transformer: Any, rows: Splits, fit: bool) -> dict[str, Any]:
    """What the transformed values depend on besides the files, for the cache key: the columns
    and how each is read (dataset.features, dataset.numeric), and where the statistics come
    from: the training rows fitted on (so dataset.seed, the fractions, classes and limit count
    where they change those rows), or a run's saved transform, by its bytes."""
    if fit:
        source = {"fitted_on": blake2b(rows.train.x.numpy().tobytes())}
    else:
        source = {"transform": blake2b(pickle.dumps(transformer, protocol=pickle.HIGHEST_PROTOCOL))}
    return {"columns": column_parts(transformer), **source}


def blake2b(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def library_versions() -> list[str]:
    """The versions of the libraries that parse and transform the values: another pandas or
    scikit-learn may read or scale a number differently, so it builds its own cache."""
    import pandas as pd
    import sklearn

    return [pd.__version__, sklearn.__version__, np.__version__]


def cached_features(
    transformer: Any, every_row: "pd.DataFrame", width: int, cache: Cache
) -> Inputs:
    """Every row's `width` features as rows of `cache`, transformed into it first unless it is
    there."""
    cached = cache.open()
    if cached is None:
        rows = transformed_rows(transformer, every_row, width)
        cached = cache.build((len(every_row), width), np.dtype(np.float32), rows)
    return cached.whole()


def transformed_rows(transformer: Any, frame: "pd.DataFrame", width: int) -> Iterator[np.ndarray]:
    """The rows of `frame` transformed, as float32, a chunk of CHUNK_BYTES at a time, so that the
    whole matrix is never in memory: the transform works row by row once fitted, so each row is
    what one whole transform gives."""
    step = max(1, CHUNK_BYTES // (8 * width))
    for start in range(0, len(frame), step):
        yield from transformer.transform(frame.iloc[start : start + step]).astype(np.float32)


def read_frame(path: Path, text_columns: Sequence[str] = ()) -> "pd.DataFrame":
    """A CSV or Parquet file (by its suffix) as a DataFrame; `text_columns` are read as text
    even where they look like numbers."""
    import pandas as pd

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        if parquet:
            require_pyarrow(path)
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str) or None)
    except (ValueError, OSError) as error:  # parser, encoding, Arrow and I/O errors alike
        reason = " ".join(str(error).split())[:200]
        kind = "Parquet" if parquet else "CSV"
        raise UserError(f"{path}: not a readable {kind} file ({reason})") from None
    if frame.empty:
        raise UserError(f"{path}: no rows")
    return frame


def require_pyarrow(path: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError(
            f"{path}: reading Parquet needs pyarrow: pip install 'multiclass[parquet]'"
        ) from None


def feature_columns(
    frame: "pd.DataFrame", path: Path, target: str, features: Sequence[str] | None
) -> list[str]:
    """The columns the model reads: `features`, or every column but the target."""
    if target not in frame.columns:
        raise UserError(
            f"dataset.target: no column {target!r} in {path}; its columns: {names(frame.columns)}"
        )
    chosen = [c for c in frame.columns if c != target] if features is None else list(features)
    check_columns(frame, path, chosen)
    if target in chosen:
        raise UserError(f"dataset.features lists the target column {target!r}")
    if not chosen:
        raise UserError(f"{path}: no feature columns besides the target {target!r}")
    return chosen


def check_columns(frame: "pd.DataFrame", where: Path | str, wanted: Sequence[str]) -> None:
    absent = [c for c in wanted if c not in frame.columns]
    if absent:
        raise UserError(f"{where}: no column {names(absent)}; its columns: {names(frame.columns)}")


def names(columns: Sequence[Any]) -> str:
    return ", ".join(str(c) for c in columns)


def numeric_columns(
    frame: "pd.DataFrame", path: Path, columns: list[str], numeric: Sequence[str]
) -> list[str]:
    """The numeric columns: those pandas read as numbers, and those whose present cells are
    mostly numbers (`MOSTLY_NUMBERS`), the others read as missing by `typed`. A column that
    `numeric` lists must be one of them."""
    from pandas.api.types import is_numeric_dtype

    unknown = [c for c in numeric if c not in columns]
    if unknown:
        raise UserError(
            f"dataset.numeric: {names(unknown)} is not a feature column ({names(columns)})"
        )
    chosen = []
    for column in columns:
        values = frame[column]
        if is_numeric_dtype(values) or mostly_numbers(values):
            chosen.append(column)
        elif column in numeric:
            bad = as_numbers(values)[1]
            raise UserError(
                f"{path}: column {column!r} in dataset.numeric holds text in {bad.sum()} of"
                f" {values.notna().sum()} cells (first: {first_cell(values, bad)}): more than"
                f" {1 - MOSTLY_NUMBERS:.0%} of them, too many to read as missing values"
            )
    return chosen


def as_numbers(values: "pd.Series") -> tuple["pd.Series", "pd.Series"]:
    """`values` as float64 (what is not a number: NaN), and which present cells are not numbers."""
    import pandas as pd

    converted = pd.to_numeric(values, errors="coerce").astype("float64")
    return converted, converted.isna() & values.notna()


def mostly_numbers(values: "pd.Series") -> bool:
    """Whether a column read as text holds numbers but for a few cells (`MOSTLY_NUMBERS`)."""
    from pandas.api.types import is_string_dtype

    present = int(values.notna().sum())
    if present == 0 or not (values.dtype == object or is_string_dtype(values.dtype)):
        return False
    return as_numbers(values)[1].sum() <= (1 - MOSTLY_NUMBERS) * present


def first_cell(values: "pd.Series", which: "pd.Series") -> str:
    """The first cell `which` marks, as 'value' in row N (the rows after the header, from 1)."""
    import numpy as np

    row = int(np.argmax(which.to_numpy()))
    return f"{values.iloc[row]!r} in row {row + 1}"


def class_labels(
    frames: list["pd.DataFrame"], paths: list[Path], target: str
) -> tuple[list[torch.Tensor], list[str]]:
    """Each frame's labels, indices into the class names: the training file's target values,
    sorted (numbers by value), as text."""
    for frame, path in zip(frames, paths, strict=True):
        unlabelled = int(frame[target].isna().sum())
        if unlabelled:
            raise UserError(f"{path}: {unlabelled} of {len(frame)} rows have no {target!r}")
    values = list(frames[0][target].unique())
    try:
        values.sort()
    except TypeError:  # numbers and text in one column
        values.sort(key=str)
    index = {value: i for i, value in enumerate(values)}
    labels = []
    for frame, path in zip(frames, paths, strict=True):
        mapped = frame[target].map(index)
        if mapped.isna().any():
            unseen = frame[target][mapped.isna()].unique()
            raise UserError(
                f"{path}: {target!r} values {names(unseen[:5])} are not in {paths[0]}'s classes"
            )
        labels.append(torch.tensor(mapped.to_numpy(dtype="int64")))
    return labels, [str(v) for v in values]


def typed(
    frame: "pd.DataFrame", numbers: list[str], texts: list[str], where: Path | str
) -> "pd.DataFrame":
    """The feature columns as the transformer takes them: numbers as float64, text as Python
    strings, anything missing as NaN. A cell of a numeric column that is not a number is
    missing too, and named in a warning: imputed or refused as missing values are."""
    import numpy as np
    import pandas as pd

    columns: dict[str, pd.Series] = {}
    for column in numbers:
        values = frame[column]
        columns[column], bad = as_numbers(values)
        if bad.any():
            log.warning(
                "warning: %s: column %r is numeric but for %d of %d cells (first: %s): read as"
                " missing values",
                where,
                column,
                bad.sum(),
                values.notna().sum(),
                first_cell(values, bad),
            )
    for column in texts:
        values = frame[column]
        text = pd.Series(np.nan, index=frame.index, dtype=object)
        present = values.notna()
        text[present] = values[present].astype(str).astype(object)
        columns[column] = text
    return pd.DataFrame(columns, index=frame.index)


def check_complete(features: "pd.DataFrame", where: Path | str, fix: str) -> None:
    """A one-line error naming the columns with missing values and how many rows have any."""
    missing = features.isna()
    counts = missing.sum()
    if counts.any():
        named = ", ".join(f"{c} ({n})" for c, n in counts[counts > 0].items())
        rows = int(missing.any(axis=1).sum())
        raise UserError(
            f"{where}: missing values in {named}; {rows} of {len(features)} rows affected: {fix}"
        )


def build_transformer(numbers: list[str], texts: list[str], impute: str | None) -> Any:
    """Standardise numbers and one-hot encode text (a category unseen in training encodes as
    all zeros), each part first imputed when `impute` is set (text by its most frequent)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    fill_numbers = [SimpleImputer(strategy=impute)] if impute else []
    fill_text = [SimpleImputer(strategy="most_frequent")] if impute else []
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    parts = [
        (NUMERIC, make_pipeline(*fill_numbers, StandardScaler()), numbers),
        (TEXT, make_pipeline(*fill_text, encoder), texts),
    ]
    return ColumnTransformer([part for part in parts if part[2]], sparse_threshold=0)


def column_parts(transformer: Any) -> dict[str, list[str]]:
    """A transformer's numeric and text columns, fitted or not."""
    parts: dict[str, list[str]] = {NUMERIC: [], TEXT: []}
    for name, _, columns in getattr(transformer, "transformers_", transformer.transformers):
        if name in parts:
            parts[name] = list(columns)
    return parts


def imputes(transformer: Any) -> bool:
    """Whether the transformer fills missing values (dataset.impute); if not, they are refused."""
    from sklearn.impute import SimpleImputer

    return any(isinstance(v, SimpleImputer) for v in transformer.get_params().values())


def encoded(transformer: Any, features: "pd.DataFrame", where: Path | str) -> torch.Tensor:
    """Features (from `typed`) transformed by a fitted transformer, as float32; text values it
    was not fitted on are named in a warning first."""
    warn_unseen(transformer, features, where)
    return transformed(transformer, features)


def transformed(transformer: Any, features: "pd.DataFrame") -> torch.Tensor:
    """Features (from `typed`) transformed by a fitted transformer, as float32."""
    return torch.from_numpy(transformer.transform(features)).float()


def warn_unseen(transformer: Any, features: "pd.DataFrame", where: Path | str) -> None:
    """A warning per text column holding values the training rows never had: the one-hot
    encoder (handle_unknown='ignore') encodes them as all zeros, as no category at all."""
    texts = column_parts(transformer)[TEXT]
    if not texts:
        return
    encoder = transformer.named_transformers_[TEXT][-1]
    for column, known in zip(texts, encoder.categories_, strict=True):
        values = features[column]
        unseen = values[values.notna() & ~values.isin(known)]
        if len(unseen):
            shown = unseen.unique()
            log.warning(
                "warning: %s: column %r holds values training never saw, in %d of %d rows (%s%s):"
                " one-hot encoded as all zeros, as no category",
                where,
                column,
                len(unseen),
                len(values),
                ", ".join(repr(v) for v in shown[:5]),
                f" and {len(shown) - 5} more" if len(shown) > 5 else "",
            )


def transform_rows(transformer: Any, frame: "pd.DataFrame", where: Path | str) -> torch.Tensor:
    """New rows (extra columns, such as the target, are ignored) as the model's inputs,
    transformed as the training rows were."""
    parts = column_parts(transformer)
    check_columns(frame, where, parts[NUMERIC] + parts[TEXT])
    features = typed(frame, parts[NUMERIC], parts[TEXT], where)
    if not imputes(transformer):
        check_complete(features, where, TRAINED_WITHOUT_IMPUTE)
    return encoded(transformer, features, where)


def read_rows(path: Path, transformer: Any) -> tuple[list[str], torch.Tensor]:
    """A CSV file of new rows, with a header of column names, as model inputs, each named
    path:line (the header is line 1)."""
    frame = read_frame(path, column_parts(transformer)[TEXT])
    x = transform_rows(transformer, frame, path)
    return [f"{path}:{line}" for line in range(2, len(frame) + 2)], x


def is_frame(x: Any) -> bool:
    """Whether `x` is a pandas DataFrame (without importing pandas where nobody has)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(x, pandas.DataFrame)
