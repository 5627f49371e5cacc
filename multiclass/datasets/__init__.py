"""Data sets as in-memory tensors split into train, validation and test.

`splits` holds what every data set shares (class subsets, limits, seeded splits); `tables`
and `images` each load their sources and hand them to `make_splits`.
"""

from multiclass.datasets.splits import Source, Split, Splits, as_float, make_splits

__all__ = ["Source", "Split", "Splits", "as_float", "make_splits"]
