"""multiclass-report --compare: two real runs side by side (the keys that differ, the figures,
per-class F1, one picture of both learning curves, no other file touched), two groups by a
KEY=VALUE filter each (checked against SciPy on fixed figures), and each bad input refused in
one line with exit status 1."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from scipy import stats

from multiclass.commands.report import main, report_sweep
from multiclass.comparing import comparison_figure
from multiclass.comparing.sweep_jobs import format_figure
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET, files_of, read_summary

TINY = ["dataset.limit=100", "trainer.epochs=2", "callbacks=minimal"]
WIDTHS, SEEDS = (8, 16), (0, 1)
FIGURES = ("best_val_acc", "test_acc", "test_loss", "test_macro_f1", "num_params", "train_time_s")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Four real runs, model.width x seed, and their sweep report (sweep.csv, sweep.md)."""
    root = tmp_path_factory.mktemp("sweep")
    for width in WIDTHS:
        for seed in SEEDS:
            cfg = compose_config(*QUIET, *TINY, f"model.width={width}", f"seed={seed}")
            assert execute(cfg, root / f"w{width}s{seed}").status == "completed"
    assert report_sweep([root], root, plots=False) is not None
    return root


def compare(capsys, *args) -> tuple[int, str, str]:
    """multiclass-report in-process: exit status, stdout, stderr."""
    with pytest.raises(SystemExit) as ended:
        main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return ended.value.code, out, err


def table(out: str, title: str) -> list[list[str]]:
    """The rows (header first) of the console table under `title`, cells split at the gaps."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    rows = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as file:
        return list(csv.DictReader(file))


def by_name(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in rows[1:]}


def signed(value: float, integral: bool) -> str:
    return f"{value:+,.0f}" if integral else f"{value:+,.4f}"


def test_two_runs_side_by_side_with_the_keys_that_differ_figures_and_classes(sweep, capsys):
    before = files_of(sweep)
    a, b = sweep / "w8s0", sweep / "w16s1"
    status, out, err = compare(capsys, "--compare", a, b)
    assert (status, err) == (0, "")
    assert by_name(table(out, "Config that differs")) == {
        "seed": ["0", "1"],
        "model.width": ["8", "16"],
    }
    figures = by_name(table(out, "Figures"))
    first, second = read_summary(a), read_summary(b)
    assert list(figures) == list(FIGURES)
    for name in FIGURES:
        integral = isinstance(first[name], int)
        change = signed(second[name] - first[name], integral)
        assert figures[name] == [format_figure(first[name]), format_figure(second[name]), change]
    classes = by_name(table(out, "Per-class test F1"))
    f1 = [
        {row["class"]: float(row["f1"]) for row in csv_rows(run / "per_class.csv")}
        for run in (a, b)
    ]
    assert list(classes) == list(f1[0])
    for name, (mine, theirs, change) in classes.items():
        assert (mine, theirs) == (f"{f1[0][name]:.4f}", f"{f1[1][name]:.4f}")
        assert change == f"{f1[1][name] - f1[0][name]:+.4f}"
    written = {"compare-w8s0-vs-w16s1.md", "compare-w8s0-vs-w16s1.png"}
    assert f"Written: {', '.join(sorted(str(sweep / n) for n in written))}" in out
    after = files_of(sweep)
    assert set(after) - set(before) == written  # sweep.md and every run's files untouched
    assert {name: after[name] for name in before} == before
    markdown = (sweep / "compare-w8s0-vs-w16s1.md").read_text()
    assert "| model.width | 8 | 16 |" in markdown and "| seed | 0 | 1 |" in markdown


def test_only_the_keys_that_differ_even_where_neither_run_typed_them(sweep, tmp_path, capsys):
    """Runs made apart whose typed overrides agree: their configs still show the width."""
    for name in ("w8s0", "w16s0"):
        shutil.copytree(sweep / name, tmp_path / name)
        (tmp_path / name / ".hydra").mkdir()
        overrides = ["trainer.epochs=2", f"hydra.run.dir={name}"]
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    status, out, _ = compare(capsys, "--compare", tmp_path / "w8s0", tmp_path / "w16s0")
    assert status == 0
    assert table(out, "Config that differs")[1:] == [["model.width", "8", "16"]]


def test_the_picture_has_both_runs_curves_labelled(sweep, tmp_path, capsys, monkeypatch):
    drawn = {}
    monkeypatch.setattr(comparison_figure, "save", lambda figure, path: drawn.update(f=figure))
    status, _, _ = compare(capsys, "--compare", sweep / "w8s0", sweep / "w16s0", "--out", tmp_path)
    assert status == 0
    for ax, column in zip(drawn["f"].axes, ("val_acc", "val_loss"), strict=True):
        labels = [line.get_label() for line in ax.lines]
        assert labels == ["A: w8s0", "B: w16s0"]
        assert list(ax.get_xticks()) == [1, 2]  # an epoch a tick, no fractions
        for line, run in zip(ax.lines, ("w8s0", "w16s0"), strict=True):
            rows = csv_rows(sweep / run / "metrics.csv")
            assert list(line.get_ydata()) == [float(row[column]) for row in rows]


def test_two_groups_of_real_jobs_with_their_curves(sweep, capsys, monkeypatch):
    drawn = {}
    monkeypatch.setattr(comparison_figure, "save", lambda figure, path: drawn.update(f=figure))
    status, out, err = compare(capsys, sweep, "--compare", "model.width=8", "width=16")
    assert (status, err) == (0, "")
    assert "A: model.width=8, 2 jobs (2 completed)" in out
    assert table(out, "Config that differs")[1:] == [["model.width", "8", "16"]]
    assert "Both sides ran: seed 0, 1" in out.splitlines()
    narrow, wide = (read_summary(sweep / f"w{width}s0")["num_params"] for width in WIDTHS)
    figures = by_name(table(out, "Figures"))
    assert figures["num_params"] == [f"{narrow:,} (every run)", f"{wide:,} (every run)"]
    differences = by_name(table(out, "B - A"))
    assert differences["test_acc"][-1] == "paired t"
    assert differences["num_params"] == [f"{wide - narrow:+,}", "-", "-", "no spread to test"]
    (val_acc, _) = drawn["f"].axes
    assert len(val_acc.lines) == 6  # each job thin, each side's mean
    assert [line.get_label() for line in val_acc.lines if not line.get_label().startswith("_")] == [
        "A: model.width=8 (mean of 2)",
        "B: model.width=16 (mean of 2)",
    ]


def fake_run(path: Path, width: int, seed: int, acc: float, data: str = "digits") -> None:
    """A run directory with only what a comparison reads: its config and its summary."""
    path.mkdir(parents=True)
    config = {"dataset": {"_target_": f"multiclass.datasets.tables.{data}"}, "seed": seed}
    config["model"] = {"width": width}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    summary = {"status": "completed", "test_acc": acc, "num_classes": 10}
    (path / "summary.json").write_text(json.dumps(summary))


WIDE, NARROW = [0.91, 0.93, 0.92], [0.85, 0.88, 0.84]


def estimate(values: list[float]) -> str:
    mean, sd = stats.tmean(values), stats.tstd(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return f"{mean:.4f} ± {sd:.4f} [{low:.4f}, {high:.4f}]"


@pytest.mark.parametrize("seeds", [(0, 1, 2), (3, 4, 5)], ids=["paired", "welch"])
def test_two_groups_against_scipy(tmp_path, capsys, seeds):
    for seed, acc in enumerate(NARROW):
        fake_run(tmp_path / f"n{seed}", 32, seed, acc)
    for seed, acc in zip(seeds, WIDE, strict=True):
        fake_run(tmp_path / f"w{seed}", 128, seed, acc)
    status, out, _ = compare(capsys, tmp_path, "--compare", "model.width=32", "model.width=128")
    assert status == 0
    assert by_name(table(out, "Figures"))["test_acc"] == [estimate(NARROW), estimate(WIDE)]
    if seeds == (0, 1, 2):
        test = stats.ttest_rel(WIDE, NARROW)
        name = "paired t"
    else:
        test = stats.ttest_ind(WIDE, NARROW, equal_var=False)
        name = "Welch t"
    low, high = test.confidence_interval(0.95)
    change = sum(WIDE) / 3 - sum(NARROW) / 3
    interval = f"[{low:+.4f}, {high:+.4f}]"
    assert by_name(table(out, "B - A"))["test_acc"] == [
        f"{change:+.4f}",
        interval,
        f"{test.pvalue:.3g}",
        name,
    ]


def test_a_side_of_one_run_says_it_has_no_interval_nor_test(tmp_path, capsys):
    for seed, acc in enumerate(NARROW):
        fake_run(tmp_path / f"n{seed}", 32, seed, acc)
    fake_run(tmp_path / "w0", 128, 0, WIDE[0])
    status, out, _ = compare(capsys, tmp_path, "--compare", "model.width=32", "model.width=128")
    assert status == 0
    alone = f"{WIDE[0]:.4f} (one run: no interval)"
    assert by_name(table(out, "Figures"))["test_acc"] == [estimate(NARROW), alone]
    change = f"{WIDE[0] - sum(NARROW) / 3:+.4f}"
    assert by_name(table(out, "B - A"))["test_acc"] == [change, "-", "-", "too few runs to test"]


@pytest.fixture(scope="module")
def bad_runs(sweep, tmp_path_factory) -> Path:
    """Beside the sweep: a run on other data, one without metrics, a folder that is no run,
    and two jobs that never trained."""
    bad = tmp_path_factory.mktemp("bad")
    shutil.copytree(sweep / "w8s0", bad / "moons")
    config = yaml.safe_load((bad / "moons" / "config.yaml").read_text())
    config["dataset"]["_target_"] = "multiclass.datasets.tables.moons"
    (bad / "moons" / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(sweep / "w8s0", bad / "empty")
    (bad / "empty" / "summary.json").unlink()
    (bad / "empty" / "metrics.csv").unlink()
    (bad / "nothing").mkdir()
    for width in (1, 2):  # jobs refused before their first epoch: a config, no metrics
        fake_run(bad / "refused" / str(width), width, 0, 0.0)
        (bad / "refused" / str(width) / "summary.json").unlink()
    return bad


BAD = {
    "other data": (["--compare", "{sweep}/w8s0", "{bad}/moons"], "ran on different data sets"),
    "no metrics": (["--compare", "{sweep}/w8s0", "{bad}/empty"], "has no metrics"),
    "no run": (["--compare", "{bad}/nothing", "{sweep}/w8s0"], "is no run directory"),
    "a sweep": (["--compare", "{sweep}", "{sweep}/w8s0"], "it holds 4 runs"),
    "absent": (["--compare", "{bad}/absent", "{sweep}/w8s0"], "no such directory"),
    "same run": (["--compare", "{sweep}/w8s0", "{sweep}/w8s0"], "one run on both sides"),
    "no match": (["{sweep}", "--compare", "model.width=48", "seed=0"], "its values: 8, 16"),
    "same jobs": (["{sweep}", "--compare", "model.width=8", "width=8"], "the same jobs"),
    "shared jobs": (["{sweep}", "--compare", "model.width=8", "seed=0"], "shared jobs"),
    "unfinished": (["{bad}/refused", "--compare", "width=1", "width=2"], "has metrics"),
    "no key": (["{sweep}", "--compare", "depth=1", "seed=0"], "no job has the key depth"),
    "one value": (["--compare", "{sweep}/w8s0"], "takes two values, got 1"),
    "three": (["--compare", "{sweep}/w8s0", "{sweep}/w8s1", "{sweep}/w16s0"], "got 3"),
    "no path": (["--compare", "seed=0", "seed=1"], "name it"),
    "mixed": (["--compare", "{sweep}/w8s0", "seed=1"], "not one of each"),
    "path and runs": (["{sweep}", "--compare", "{sweep}/w8s0", "{sweep}/w8s1"], "takes no PATH"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_1(sweep, bad_runs, capsys, case):
    args, said = BAD[case]
    before = files_of(sweep), files_of(bad_runs)
    status, out, err = compare(capsys, *(a.format(sweep=sweep, bad=bad_runs) for a in args))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert said in err, err
    assert (files_of(sweep), files_of(bad_runs)) == before


@pytest.mark.parametrize("flag", [["--jobs"], ["--over", "seed"], ["--top", "3"]])
def test_a_ranking_option_with_compare_is_refused_not_ignored(sweep, capsys, flag):
    with pytest.raises(SystemExit) as ended:
        main(["--compare", str(sweep / "w8s0"), str(sweep / "w8s1"), *flag])
    assert ended.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(f"{flag[0]} ranks a sweep's report; --compare shows two sides")
    )
