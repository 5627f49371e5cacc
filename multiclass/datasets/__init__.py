"""Data sets as in-memory tensors split into train, validation and test.

`splits` holds what every data set shares (class subsets, limits, seeded splits); `tables`
and `images` each load their sources and hand them to `make_splits`. Your own data:
`table_file` (a CSV or Parquet file, standardised and one-hot encoded with statistics of the
training split) and `image_folder` (torchvision's ImageFolder layout, decoded once to uint8)
decide the splits over row numbers first (`row_splits`), then fill them in.
"""

from multiclass.datasets.splits import Source, Split, Splits, make_splits
from multiclass.datasets.storage import as_float

__all__ = ["Source", "Split", "Splits", "as_float", "make_splits"]
