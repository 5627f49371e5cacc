"""Label-issue candidates by confident learning: cleanlab's `find_label_issues`, the library
made for it (the optional extra `analysis`), ranked by self-confidence, the probability the
model gives the given label, least first. Its guarantees hold for out-of-fold probabilities;
`source.Subject.ranking` says what the probabilities at hand are."""

import math
import warnings
from dataclasses import dataclass

import numpy as np

from multiclass.records.predictions import Predictions

INSTALL = "pip install 'multiclass[analysis]'"


@dataclass(frozen=True)
class Ranking:
    """The rows cleanlab flags, the likeliest label issue first; or why there are none."""

    rows: np.ndarray | None
    why_none: str | None = None


def rank_label_issues(predictions: Predictions) -> Ranking:
    """cleanlab's ranking of `predictions`; without cleanlab, or where it refuses these
    probabilities, no ranking and one line why (the rest of an analysis stands without it)."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return Ranking(None, f"no label issues: cleanlab is not installed: {INSTALL}")
    try:
        with warnings.catch_warnings():  # its notes on small classes go to the page instead
            warnings.simplefilter("ignore")
            rows = find_label_issues(
                predictions.labels,
                predictions.probabilities,
                return_indices_ranked_by="self_confidence",
                n_jobs=1,  # no worker processes: the machine is shared, the sets are small
            )
    except (ValueError, AssertionError) as error:  # e.g. a class that no sample is labelled
        return Ranking(None, f"no label issues: cleanlab refused these predictions: {error}")
    return Ranking(np.asarray(rows, dtype=np.int64))


def recall_at(ranked: np.ndarray, wrong: np.ndarray, total: int, share: float = 0.02) -> float:
    """The share of the known wrong labels (`wrong`, rows) found among the first `share` of
    `total` rows of the ranking: how a ranking is checked on labels flipped on purpose."""
    top = ranked[: math.ceil(share * total)]
    return len(np.intersect1d(top, wrong)) / len(wrong)
