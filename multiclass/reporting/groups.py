"""Jobs grouped over their seeds, as a scientist compares experiments: the jobs whose configs
differ only in `seed` (and in any key the user names) are one group, with its number of runs,
mean, standard deviation and a 95% interval of each figure (Student's t); and the best group
against each other, the difference of their means with its interval and a test of whether it
is larger than the seeds' noise. Reruns are bit-identical, so the seed is the only noise.

The tests (SciPy's, which scikit-learn brings): where two groups ran the same seeds, a paired
t-test on the per-seed differences (the seeds' shared luck cancels); otherwise Welch's t-test,
which does not assume equal variances. Both assume the figures vary about normally across
seeds; with 3 to 5 seeds a test can only see differences a few standard deviations wide."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from multiclass.reporting.runs import RunRecord

OVER = ("seed",)  # what a group is taken over unless told more: dataset.seed is ${seed}
CONFIDENCE = 0.95
DISTINCT_AT = 0.05  # a p-value below it: distinguishable from the best


@dataclass(frozen=True)
class Estimate:
    """A figure over a group's finished runs: `n` of `total`, mean, sample standard deviation
    and a `CONFIDENCE` interval of the mean (Student's t); one run has no spread or interval."""

    n: int
    total: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: Sequence[float], total: int) -> "Estimate":
        n = len(values)
        if n == 0:
            return cls(0, total, None, None, None, None)
        mean = math.fsum(values) / n
        if n == 1:
            return cls(1, total, mean, None, None, None)
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        half = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
        return cls(n, total, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Group:
    """Jobs whose configs differ only in the keys of `over`: `values`, the swept keys' values
    they share (key, value as shown)."""

    values: tuple[tuple[str, str], ...]
    records: tuple[RunRecord, ...]

    @property
    def finished(self) -> list[RunRecord]:
        """The completed runs: failed and unfinished ones are counted, not averaged."""
        return [record for record in self.records if record.status == "completed"]

    def figures(self, figure: str) -> dict[object, float]:
        """`figure` of each finished run, by its seed (or its path, where it has none)."""
        found = {}
        for record in self.finished:
            value = record.summary.get(figure)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[record.config.get("seed", record.path)] = float(value)
        return found

    def estimate(self, figure: str) -> Estimate:
        return Estimate.of(list(self.figures(figure).values()), len(self.records))


def grouped(
    records: Sequence[RunRecord], swept: Sequence[str], over: Sequence[str] = OVER
) -> list[Group]:
    """The jobs in groups by their values of the `swept` keys less those of `over`, in the
    order of their first job."""
    kept = [key for key in swept if key not in over]
    groups: dict[tuple[tuple[str, str], ...], list[RunRecord]] = {}
    for record in records:
        values = tuple((key, str(record.value(key))) for key in kept)
        groups.setdefault(values, []).append(record)
    return [Group(values, tuple(members)) for values, members in groups.items()]


@dataclass(frozen=True)
class Difference:
    """The best group's mean minus another's, with its interval, the test's p-value and its
    name (`paired t` over the seeds both ran, or `Welch t`); None where a group has too few
    runs to test (fewer than 2 each, or 2 pairs)."""

    mean: float
    low: float | None
    high: float | None
    p: float | None
    test: str | None

    @property
    def distinct(self) -> bool:
        """Whether the difference is larger than the seeds' noise, at DISTINCT_AT."""
        return self.p is not None and self.p < DISTINCT_AT


def compared(best: Group, other: Group, figure: str) -> Difference | None:
    """The difference of `figure` between `best` and `other`: paired where every seed of
    either ran in both, else Welch's."""
    mine, theirs = best.figures(figure), other.figures(figure)
    if not mine or not theirs:
        return None
    mean = math.fsum(mine.values()) / len(mine) - math.fsum(theirs.values()) / len(theirs)
    if mine.keys() == theirs.keys() and len(mine) >= 2:
        pairs = [mine[seed] - theirs[seed] for seed in mine]
        spread = Estimate.of(pairs, len(pairs))
        if spread.sd == 0:  # the same differences on every seed: no noise to test against
            return Difference(mean, mean, mean, 0.0 if mean else 1.0, "paired t")
        p = stats.ttest_rel(list(mine.values()), [theirs[seed] for seed in mine]).pvalue
        return Difference(mean, spread.low, spread.high, float(p), "paired t")
    if len(mine) < 2 or len(theirs) < 2:
        return Difference(mean, None, None, None, None)
    welch = stats.ttest_ind(list(mine.values()), list(theirs.values()), equal_var=False)
    low, high = welch.confidence_interval(CONFIDENCE)
    return Difference(mean, float(low), float(high), float(welch.pvalue), "Welch t")
