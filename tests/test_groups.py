"""Jobs grouped over their seeds: the estimates of each group and the tests between groups,
against SciPy's and hand computations on made-up records."""

import math
from pathlib import Path

import pytest
from scipy import stats

from multiclass.reporting.groups import Estimate, compared, grouped
from multiclass.reporting.runs import RunRecord


def record(width: int, seed: int, acc: float | None, status: str = "completed") -> RunRecord:
    config = {"model.width": width, "seed": seed}
    summary = {"status": status, "test_acc": acc}
    path = Path(f"w{width}-s{seed}")
    return RunRecord(
        path, None, {"model.width": str(width), "seed": str(seed)}, config, summary, []
    )


WIDE = [0.91, 0.93, 0.92]
NARROW = [0.85, 0.88, 0.84]


def sweep(failed_narrow: bool = False) -> list[RunRecord]:
    records = [record(128, seed, acc) for seed, acc in enumerate(WIDE)]
    records += [record(32, seed, acc) for seed, acc in enumerate(NARROW)]
    if failed_narrow:
        records[-1] = record(32, 2, 0.5, status="interrupted")  # its figures are not final
    return records


def test_jobs_that_differ_only_in_seed_are_one_group_with_a_t_interval() -> None:
    wide, narrow = grouped(sweep(), ["model.width", "seed"])
    assert wide.values == (("model.width", "128"),) and len(wide.records) == 3
    estimate = wide.estimate("test_acc")
    mean, sd = sum(WIDE) / 3, stats.tstd(WIDE)
    low, high = stats.t.interval(0.95, 2, loc=mean, scale=sd / math.sqrt(3))
    assert (estimate.n, estimate.total) == (3, 3)
    assert estimate.mean == pytest.approx(mean) and estimate.sd == pytest.approx(sd)
    assert (estimate.low, estimate.high) == (pytest.approx(low), pytest.approx(high))
    assert narrow.estimate("test_acc").mean == pytest.approx(sum(NARROW) / 3)


def test_unfinished_runs_are_counted_and_left_out_of_the_figures() -> None:
    _, narrow = grouped(sweep(failed_narrow=True), ["model.width", "seed"])
    estimate = narrow.estimate("test_acc")
    assert (estimate.n, estimate.total) == (2, 3)
    assert estimate.mean == pytest.approx(sum(NARROW[:2]) / 2)
    assert Estimate.of([0.9], 1).sd is None  # one run: no spread, no interval


def test_groups_that_ran_the_same_seeds_are_compared_pairwise() -> None:
    wide, narrow = grouped(sweep(), ["model.width", "seed"])
    difference = compared(wide, narrow, "test_acc")
    assert difference.test == "paired t"
    assert difference.p == pytest.approx(stats.ttest_rel(WIDE, NARROW).pvalue)
    assert difference.mean == pytest.approx((sum(WIDE) - sum(NARROW)) / 3)
    assert difference.low < difference.mean < difference.high
    assert difference.distinct  # 0.07 apart, seeds within 0.02: not noise


def test_groups_of_other_seeds_are_compared_by_welch_and_noise_is_not_distinct() -> None:
    wide = grouped(sweep(), ["model.width", "seed"])[0]
    close = [record(64, seed, acc) for seed, acc in zip((7, 8, 9), (0.92, 0.91, 0.93), strict=True)]
    (other,) = grouped(close, ["model.width", "seed"])
    difference = compared(wide, other, "test_acc")
    welch = stats.ttest_ind(WIDE, [0.92, 0.91, 0.93], equal_var=False)
    assert difference.test == "Welch t" and difference.p == pytest.approx(welch.pvalue)
    assert not difference.distinct
