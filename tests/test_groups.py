"""Jobs grouped over their seeds: the estimates of each group and the tests between groups,
against SciPy's and hand computations on made-up records; then multiclass-report on a sweep of
real runs."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from multiclass.commands.report import main
from multiclass.comparing.group_tables import interval_text
from multiclass.comparing.groups import Estimate, compared, grouped
from multiclass.comparing.runs import RunRecord
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET


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


# A sweep of model.width=8,16 x seed=0,1,2, as multiclass-train -m leaves it: each job's
# run directory with Hydra's overrides.yaml.
WIDTHS, SEEDS = (8, 16), (0, 1, 2)
LEARNS = ("dataset.limit=300", "trainer.epochs=3", "optimizer.lr=0.01")  # above chance, quick


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    for job, (width, seed) in enumerate((w, s) for w in WIDTHS for s in SEEDS):
        run_dir = root / str(job)
        overrides = [f"model.width={width}", f"seed={seed}"]
        execute(compose_config(*QUIET, *LEARNS, *overrides), run_dir)
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return root


def report(*args: object) -> int:
    with pytest.raises(SystemExit) as ended:
        main([str(arg) for arg in args])
    return int(ended.value.code)


def scores(root: Path, width: int, figure: str = "best_val_acc") -> list[float]:
    """`figure` of the completed jobs of `width`, in seed order."""
    jobs = [root / str(WIDTHS.index(width) * len(SEEDS) + index) for index in range(len(SEEDS))]
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    return [s[figure] for s in summaries if s["status"] == "completed"]


def group_rows(markdown: str) -> dict[str, str]:
    """sweep.md's group rows by their width."""
    section = markdown.split("## Groups")[1].split("## Jobs")[0].splitlines()
    rows = [line for line in section if line.startswith("|")][2:]  # below header and rule
    return {row.split(" | ")[0].strip("| "): row for row in rows}


def interval_cell(values: list[float]) -> str:
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sd / len(values) ** 0.5)
    return f"{len(values)} of 3 | {mean:.4f} ± {sd:.4f} [{low:.4f}, {high:.4f}] |"


def test_a_sweep_over_seeds_is_reported_by_group_with_intervals_and_a_paired_test(
    sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert report(sweep_dir, "--out", tmp_path, "--no-plot") == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "Best 2 of 2 groups over seed by best_val_acc:"
    )
    wide, narrow = scores(sweep_dir, 16), scores(sweep_dir, 8)
    assert np.mean(narrow) < np.mean(wide)  # the wider learns faster: it ranks first
    rows = group_rows((tmp_path / "sweep.md").read_text())
    assert list(rows) == ["16", "8"]
    assert interval_cell(wide) in rows["16"] and interval_cell(narrow) in rows["8"]
    paired = stats.ttest_rel(wide, narrow)  # seed by seed
    assert f"{paired.pvalue:.4f} paired t" in rows["8"]


def test_an_unfinished_job_is_counted_and_left_out_and_unpaired_seeds_are_compared_by_welch(
    sweep_dir, tmp_path, capsys
) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_dir, copy)
    summary = copy / "5" / "summary.json"  # width 16, seed 2: killed before it ended
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "running"}))
    assert report(copy, "--no-plot") == 0
    wide, narrow = scores(copy, 16), scores(copy, 8)
    assert (len(wide), len(narrow)) == (2, 3)
    markdown = (copy / "sweep.md").read_text()
    rows = group_rows(markdown)
    assert interval_cell(wide) in rows["16"]  # 2 of 3
    welch = stats.ttest_ind(wide, narrow, equal_var=False)  # seeds 0, 1 against 0, 1, 2
    assert f"{welch.pvalue:.4f} Welch t" in rows["8"]
    assert "| 5 | 16 | 2 | killed |" in markdown


def test_jobs_are_ranked_one_by_one_with_jobs(sweep_dir, tmp_path, capsys) -> None:
    assert report(sweep_dir, "--out", tmp_path, "--no-plot", "--jobs") == 0
    assert capsys.readouterr().out.splitlines()[0] == "Best 5 of 6 jobs by best_val_acc:"
    assert "## Groups" not in (tmp_path / "sweep.md").read_text()


def test_a_group_of_one_seed_has_no_interval_and_no_test(sweep_dir, tmp_path, capsys) -> None:
    lonely = tmp_path / "runs"
    shutil.copytree(sweep_dir, lonely, ignore=shutil.ignore_patterns("[1-2]", "*.lock"))
    assert report(lonely, "--no-plot") == 0  # width 8 with seed 0 alone; width 16 with 0, 1
    lines = capsys.readouterr().out.splitlines()
    (row,) = [line for line in lines if line.lstrip().startswith("8 ")]
    assert "none (1 run)" in row and "untested (1 run)" in row
    assert "[" not in row.split("none (1 run)")[0]  # no interval of zero width


def test_a_key_no_job_varies_and_a_sweep_where_none_completed_are_one_line(
    sweep_dir, tmp_path, capsys, caplog
) -> None:
    assert report(sweep_dir, "--out", tmp_path, "--over", "model.depth") == 1
    assert caplog.messages == [
        "error: no sweep report: --over model.depth: no job varies it;"
        " the keys that vary: model.width, seed"
    ]
    assert not (tmp_path / "sweep.md").exists()
    failed = tmp_path / "failed"
    for job in ("0", "1"):
        shutil.copytree(sweep_dir / job, failed / job)
        summary = failed / job / "summary.json"
        summary.write_text(json.dumps({"status": "failed", "error": "ValueError: boom"}))
    caplog.clear()
    assert report(failed, "--no-plot") == 1
    printed = capsys.readouterr().out.splitlines()
    assert "jobs 0, 1 failed: ValueError: boom" in printed
    assert "No group has a completed job with a best_val_acc." in printed
    assert not caplog.messages


def test_runs_that_all_give_one_figure_have_no_interval_of_zero_width() -> None:
    """num_params, or a figure every seed reached alike: said so, not `[x, x]`."""
    same = Estimate.of([0.9, 0.9, 0.9], 3)
    assert same.sd == 0 and interval_text(same) == "none (every run the same)"
    assert interval_text(Estimate.of([0.9], 1)) == "none (1 run)"
    spread = Estimate.of([0.9, 0.8], 2)
    assert interval_text(spread) == f"[{spread.low:,.4f}, {spread.high:,.4f}]"
