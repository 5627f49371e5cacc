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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from scipy import stats

from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep_jobs import SweepReport, format_value, swept_keys
from multiclass.errors import UserError

OVER = ("seed",)  # what a group is taken over unless told more: dataset.seed is ${seed}
# Grouped over too wherever it varies: a k-fold sweep's folds are its samples, as seeds are.
FOLD = "dataset.fold"
FIGURES = ("test_acc", "test_loss", "test_macro_f1")  # shown beside the objective
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
    """Jobs whose configs differ only in the keys of `over`: `values`, the other swept keys'
    values they share (key, value as the report shows it)."""

    values: tuple[tuple[str, str], ...]
    records: tuple[RunRecord, ...]
    over: tuple[str, ...] = OVER

    @property
    def label(self) -> str:
        """`width=32 depth=2`: the group by its values (the last part of each key)."""
        parts = [f"{key.rsplit('.', 1)[-1]}={value}" for key, value in self.values]
        return " ".join(parts) or "all runs"

    @property
    def seeds(self) -> set[tuple[str, ...]]:
        """The values of `over` its jobs ran with."""
        return {tuple(str(record.value(key)) for key in self.over) for record in self.records}

    @property
    def finished(self) -> list[RunRecord]:
        """The completed runs: failed and unfinished ones are counted, not averaged."""
        return [record for record in self.records if record.status == "completed"]

    def figures(self, figure: str) -> dict[tuple, float]:
        """`figure` of each finished run, by its values of `over` (its seed), which pair it with
        the run of another group that shares them."""
        found = {}
        for record in self.finished:
            value = record.summary.get(figure)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[tuple(str(record.value(key)) for key in self.over)] = float(value)
        return found

    def estimate(self, figure: str) -> Estimate:
        return Estimate.of(list(self.figures(figure).values()), len(self.records))

    def class_f1(self) -> dict[str, Estimate]:
        """Each class's test F1 over the finished runs that wrote per_class.csv."""
        rows = [record.class_f1 for record in self.finished if record.class_f1]
        classes = dict.fromkeys(name for row in rows for name in row)
        return {
            name: Estimate.of([row[name] for row in rows if name in row], len(self.records))
            for name in classes
        }


def grouped(
    records: Sequence[RunRecord],
    swept: Sequence[str],
    over: Sequence[str] = OVER,
    shown: Callable[[RunRecord, str], object] | None = None,
) -> list[Group]:
    """The jobs in groups by their values of the `swept` keys less those of `over`, in the
    order of their first job; `shown` gives a key's value as the report shows it (a config
    group by its name), by default as configured."""
    kept = [key for key in swept if key not in over]
    show = shown or (lambda record, key: record.value(key))
    groups: dict[tuple[tuple[str, str], ...], list[RunRecord]] = {}
    for record in records:
        values = tuple((key, format_value(show(record, key))) for key in kept)
        groups.setdefault(values, []).append(record)
    return [Group(values, tuple(members), tuple(over)) for values, members in groups.items()]


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
    with warnings.catch_warnings():  # SciPy's warning of nearly equal figures: p says it
        warnings.simplefilter("ignore", RuntimeWarning)
        return tested(mine, theirs, mean)


def tested(mine: dict[tuple, float], theirs: dict[tuple, float], mean: float) -> Difference:
    """The difference `mean` of two groups' figures (by seed) with its interval and test."""
    if mine.keys() == theirs.keys() and len(mine) >= 2:
        pairs = [mine[seed] - theirs[seed] for seed in mine]
        spread = Estimate.of(pairs, len(pairs))
        if spread.sd == 0:  # the same differences on every seed: no noise to test against
            return Difference(mean, None, None, 0.0 if mean else 1.0, "paired t")
        p = stats.ttest_rel(list(mine.values()), [theirs[seed] for seed in mine]).pvalue
        return Difference(mean, spread.low, spread.high, float(p), "paired t")
    if len(mine) < 2 or len(theirs) < 2:
        return Difference(mean, None, None, None, None)
    welch = stats.ttest_ind(list(mine.values()), list(theirs.values()), equal_var=False)
    low, high = welch.confidence_interval(CONFIDENCE)
    return Difference(mean, float(low), float(high), float(welch.pvalue), "Welch t")


@dataclass(frozen=True)
class GroupReport:
    """A sweep's jobs in groups over `over`, ranked by the mean of the objective, best first
    (groups without a finished run last), each against the best."""

    report: SweepReport
    over: tuple[str, ...]
    groups: list[Group]

    @property
    def figures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([self.report.objective, *FIGURES]))

    @property
    def collapses(self) -> bool:
        """Whether some group holds jobs of several seeds (else its groups are its jobs, or
        copies of one job, which are no sample of the seeds' noise)."""
        return any(len(group.seeds) > 1 for group in self.groups)

    @property
    def explanation(self) -> str:
        """What a group's figures are."""
        return (
            f"{len(self.groups)} groups of jobs that differ only in {', '.join(self.over)}: each"
            " figure's mean ± sd over the group's completed jobs (failed and unfinished ones"
            f" count in `runs`, not in the mean) and its {CONFIDENCE:.0%} interval (Student's t)."
        )

    @property
    def best(self) -> Group | None:
        first = self.groups[0] if self.groups else None
        return first if first and first.estimate(self.report.objective).n else None

    def difference(self, group: Group) -> Difference | None:
        """The best group's objective less `group`'s; None for the best itself."""
        if self.best is None or group is self.best:
            return None
        return compared(self.best, group, self.report.objective)

    @cached_property
    def assumption(self) -> str:
        """The one line that says what the tests assume."""
        seeds = "seeds and folds" if FOLD in self.over else "seeds"
        return (
            f"Each group against the best by {self.report.objective}: a paired t-test where both"
            f" completed the same {seeds}, else Welch's t-test; both assume the figure varies"
            f" about normally across {seeds}; * marks a group not distinguishable from the best"
            f" at {DISTINCT_AT}."
        )


def group_report(report: SweepReport, over: Sequence[str] = OVER) -> GroupReport:
    """`report`'s jobs grouped over the keys of `over` (seed, and any a user names) and over
    `dataset.fold` where it varies (a k-fold sweep: mean and interval across the folds), by
    every other key that varies, typed or not; a key named that no job varies is refused, the
    seed, grouped over by default, is not."""
    varied = swept_keys(report.records, whole_config=True)
    still = [key for key in over if key not in varied and key not in OVER]
    if still:
        named = ", ".join(varied) or "none"
        raise UserError(f"--over {still[0]}: no job varies it; the keys that vary: {named}")
    if FOLD in varied and FOLD not in over:
        over = (*over, FOLD)
    groups = grouped(report.records, varied, over, report.value)
    sign = 1 if report.minimize else -1

    def order(group: Group) -> tuple:
        mean = group.estimate(report.objective).mean
        return (mean is None, 0.0 if mean is None else sign * mean)

    return GroupReport(report, tuple(over), sorted(groups, key=order))
