"""multiclass-report on runs that Hydra did not sweep: loose run directories, a job killed
before its summary, several sweeps side by side, and the picture for each shape of sweep."""

import csv
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from multiclass.commands.report import main, report_sweep
from multiclass.comparing import sweep_figure
from multiclass.comparing.groups import group_report
from multiclass.comparing.runs import RunRecord
from multiclass.comparing.sweep import best_line, write_report
from multiclass.comparing.sweep_jobs import SweepReport, build_report
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET, run_cli

TINY = ["dataset.limit=200", "trainer.epochs=2"]
QUICK = ["dataset.limit=200", "trainer.epochs=1"]
FLOATS = ("best_val_acc", "test_acc", "test_loss")  # test_acc has no column if both runs tie


def read_rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def report(*args):
    with pytest.raises(SystemExit) as ended:
        main([str(arg) for arg in args])
    return ended.value.code


def around_table(out: str) -> list[str]:
    """What multiclass-report printed between `Best N of M` and `Best: `: the console table,
    with a line of what every run shares above it and one of the columns left out below."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Best ")) + 1
    return lines[start : next(i for i, line in enumerate(lines) if line.startswith("Best: "))]


def table(out: str) -> list[str]:
    """The console table alone: its header, then its rows."""
    return [line for line in around_table(out) if not line.startswith(("All ", "Left out: "))]


def test_loose_runs_get_a_report_whose_columns_are_the_values_that_differ(train, tmp_path, capsys):
    for depth, width in ((1, 8), (2, 8), (1, 16)):
        train(
            *TINY,
            f"model.depth={depth}",
            f"model.width={width}",
            run_dir=tmp_path / f"d{depth}w{width}",
        )
    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "d1w8", killed)
    (killed / "summary.json").unlink()  # as after a kill -9: config and metrics rows, no summary

    assert report(tmp_path, "--no-plot") == 0
    rows = read_rows(tmp_path / "sweep.csv")
    assert [(r["model.depth"], r["model.width"]) for r in rows] == [
        ("1", "16"),
        ("1", "8"),
        ("2", "8"),
        ("1", "8"),
    ]
    assert list(rows[0])[:4] == ["job", "model.depth", "model.width", "status"]
    assert [r["status"] for r in rows] == ["completed"] * 3 + ["unfinished"]
    metrics = read_rows(killed / "metrics.csv")
    assert float(rows[3]["best_val_acc"]) == max(float(m["val_acc"]) for m in metrics)
    assert rows[3]["test_acc"] == ""
    for row in rows[:3]:
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert float(row["test_acc"]) == summary["test_acc"]
        assert int(row["num_params"]) == summary["num_params"]
    ranked = (tmp_path / "sweep.md").read_text().splitlines()
    assert ranked[-1].startswith("| killed | 1 | 8 | unfinished |")  # no job number: its folder
    assert not (tmp_path / "sweep.png").exists()
    best = max(rows[:3], key=lambda row: float(row["best_val_acc"]))  # the first of any tie
    out = capsys.readouterr().out
    assert "Best 4 of 4 runs by best_val_acc:" in out.splitlines()
    assert f"Best: run {Path(best['run_dir']).name} ({best['run_dir']})," in out
    names = [line.split()[0] for line in table(out)]
    assert names[0] == "run" and sorted(names[1:]) == ["d1w16", "d1w8", "d2w8", "killed"]


def test_a_model_is_named_the_same_way_for_every_run(train, tmp_path):
    """A run of `multiclass-train model=cnn` (its .hydra/ names the override) beside runs
    without .hydra/: every model by its `_target_`'s last part and the values that differ
    between runs of that target; by the option's name where Hydra recorded every run's."""
    for name, model in (("cnn", "model=cnn"), ("linear", "model=linear"), ("mlp", "model.depth=1")):
        train(*QUICK, model, run_dir=tmp_path / name)
    (tmp_path / "cnn" / ".hydra").mkdir()
    (tmp_path / "cnn" / ".hydra" / "overrides.yaml").write_text("- model=cnn\n")

    def models() -> dict[str, str]:
        assert report(tmp_path, "--no-plot") == 0
        rows = read_rows(tmp_path / "sweep.csv")
        assert list(rows[0])[:3] == ["job", "model", "status"]  # its values have no columns
        return {Path(row["run_dir"]).name: row["model"] for row in rows}

    assert models() == {
        "cnn": "cnn",
        "linear": "mlp(hidden=[])",  # model=linear is multiclass.models.mlp without hidden layers
        "mlp": "mlp(depth=1, width=64, activation=relu, dropout=0)",
    }
    for name in ("cnn", "linear", "mlp"):
        choices = {"hydra": {"runtime": {"choices": {"model": name, "hydra/launcher": "basic"}}}}
        (tmp_path / name / ".hydra").mkdir(exist_ok=True)
        (tmp_path / name / ".hydra" / "hydra.yaml").write_text(json.dumps(choices))
    assert models() == {"cnn": "cnn", "linear": "linear", "mlp": "mlp"}


def test_the_console_table_fits_the_terminal_and_says_once_what_every_run_shares(
    train, tmp_path, capsys, monkeypatch
):
    differing = {
        "model.depth": (1, 2),
        "model.width": (8, 16),
        "model.activation": ("tanh", "relu"),
        "model.dropout": (0.1, 0.0),
        "optimizer.lr": (0.01, 0.001),
        "trainer.batch_size": (32, 64),
        "loss.label_smoothing": (0.1, 0.0),
        "dataset.val_fraction": (0.2, 0.1),
    }
    for run in (0, 1):
        overrides = [f"{key}={values[run]}" for key, values in differing.items()]
        train(*QUICK, *overrides, run_dir=tmp_path / f"run-{'ab'[run]}")
    monkeypatch.delenv("COLUMNS", raising=False)  # not a terminal: 100 characters
    for width in (100, 60):
        if width == 60:
            monkeypatch.setenv("COLUMNS", "60")
        assert report(tmp_path, "--no-plot") == 0
        out = capsys.readouterr().out
        lines = around_table(out)
        assert lines[0].startswith("All 2 runs: status completed")
        assert max(map(len, lines)) <= width
        header, *rows = (line.split() for line in table(out))
        assert header[0] == "run" and "best_val_acc" in header and "status" not in header
        assert sorted(row[0] for row in rows) == ["run-a", "run-b"]
    assert lines[-1].startswith("Left out: ")  # at 60 characters, not every column fits


def test_every_kind_of_figure_has_one_format(train, tmp_path, capsys):
    """Integers with thousands separators (not 8970 beside 13,130), floats to 4 decimals."""
    for depth in (2, 3):
        train(*QUICK, f"model.depth={depth}", run_dir=tmp_path / f"depth{depth}")
    assert report(tmp_path, "--no-plot") == 0
    header, *cells = (line.split() for line in table(capsys.readouterr().out))
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in cells}
    assert {name: row["num_params"] for name, row in rows.items()} == {
        "depth2": "8,970",
        "depth3": "13,130",
    }
    floats = [cell for row in rows.values() for name, cell in row.items() if name in FLOATS]
    assert len(floats) >= 4 and all(re.fullmatch(r"\d\.\d{4}", cell) for cell in floats), floats
    markdown = (tmp_path / "sweep.md").read_text()
    assert "| 8,970 |" in markdown and "| 13,130 |" in markdown


def test_several_sweeps_need_an_output_folder_and_a_missing_one_is_one_line(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    with pytest.raises(SystemExit) as ended:
        main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert ended.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert report(tmp_path / "a", tmp_path / "nowhere", "--out", tmp_path / "both") == 1
    assert report(tmp_path / "a") == 1  # no runs in it
    assert not (tmp_path / "a" / "sweep.csv").exists()


def drawn(monkeypatch, built, out_dir: Path):
    """write_report's files, and the left panel of the sweep.png it drew (of the jobs grouped
    over their seeds)."""
    figures, real_save = [], sweep_figure.save

    def kept(figure, path):
        figures.append(figure)
        real_save(figure, path)

    monkeypatch.setattr(sweep_figure, "save", kept)
    written, removed = write_report(group_report(built), out_dir)
    assert removed is None
    (figure,) = figures
    return written, figure.axes[0]


def score_of(run_dir: Path) -> float:
    return json.loads((run_dir / "summary.json").read_text())["best_val_acc"]


SHAPES = {
    "one-number": [("model.depth=1",), ("model.depth=2",)],
    "one-choice": [("model.activation=relu",), ("model.activation=tanh",)],
    "two-keys": [("model.depth=1", "model.width=8"), ("model.depth=2", "model.width=16")],
    "three-keys": [
        ("model.depth=1", "model.width=8", "model.activation=relu"),
        ("model.depth=2", "model.width=16", "model.activation=tanh"),
    ],
}


def dots(panel) -> tuple[list, list]:
    """The means the panel drew as dots with intervals: their x and y."""
    (means,) = panel.containers
    line = means.lines[0]
    return list(line.get_xdata()), list(line.get_ydata())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_of_sweep_gets_its_picture(train, tmp_path, monkeypatch, shape):
    """One swept number: a line through the means, each a dot with its interval; one swept
    choice or more than two keys: the groups as dots, best on top, labelled by what varies
    (no bars, whose length would mislead from an axis not at zero); two keys: a heatmap. Each
    drawn from the runs' own best_val_acc."""
    sweep = SHAPES[shape]
    for number, overrides in enumerate(sweep):
        train(*TINY, *overrides, run_dir=tmp_path / "runs" / str(number))
    scores = [score_of(tmp_path / "runs" / str(number)) for number in range(len(sweep))]
    built = build_report([tmp_path / "runs"])
    keys = [override.split("=")[0] for override in sweep[0]]
    # Shallowest first, and `dataset.seed` (`${seed}` in the config) not again beside `seed`.
    assert built.swept == sorted(keys, key=lambda key: key.count("."))
    written, panel = drawn(monkeypatch, built, tmp_path / "report")
    assert [path.name for path in written] == ["sweep.csv", "sweep.md", "sweep.html", "sweep.png"]
    assert written[-1].read_bytes().startswith(b"\x89PNG")

    assert not [patch for patch in panel.patches if isinstance(patch, Rectangle)]  # no bars
    if shape == "one-number":
        assert dots(panel) == ([1, 2], pytest.approx(scores))
        assert not panel.images
    elif shape in ("one-choice", "three-keys"):
        means, rows = dots(panel)
        assert rows == [0, 1] and means == sorted(means)  # the best on top: the last row
        labels = [label.get_text() for label in panel.get_yticklabels()]
        expected = {label_of(o): score for o, score in zip(sweep, scores, strict=True)}
        assert dict(zip(labels, means, strict=True)) == pytest.approx(expected)
        assert not panel.images
    else:
        (image,) = panel.images
        cells = image.get_array()
        assert cells.mask.tolist() == [[False, True], [True, False]]  # (1, 16), (2, 8): no job
        assert [cells[0, 0], cells[1, 1]] == pytest.approx(scores)


def label_of(overrides: tuple[str, ...]) -> str:
    """`activation=relu depth=1`: a group by the last part of each key, shallowest first."""
    pairs = sorted((o.split("=") for o in overrides), key=lambda pair: pair[0].count("."))
    return " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in pairs)


GRID = [(1, 8), (1, 16), (2, 8), (2, 16)]


def test_two_sweeps_of_one_grid_report_together_each_cell_the_mean_of_its_completed_jobs(
    train, tmp_path, monkeypatch, capsys
):
    """The same depth x width sweep run twice (with seed 0, then 1, which their overrides do
    not say): --out takes both; the heatmap's cell is the mean of the cell's completed jobs,
    a killed job's best so far left out."""
    for sweep, seed in (("monday", 0), ("tuesday", 1)):
        for job, (depth, width) in enumerate(GRID):
            run_dir = tmp_path / sweep / str(job)
            overrides = [f"model.depth={depth}", f"model.width={width}"]
            train(f"seed={seed}", *TINY, *overrides, run_dir=run_dir)
            (run_dir / ".hydra").mkdir()
            listed = "".join(f"- {override}\n" for override in overrides)
            (run_dir / ".hydra" / "overrides.yaml").write_text(listed)
    scores = {
        cell: [score_of(tmp_path / sweep / str(job)) for sweep in ("monday", "tuesday")]
        for job, cell in enumerate(GRID)
    }
    assert any(len(set(values)) > 1 for values in scores.values())  # a mean, not a copy
    killed = tmp_path / "tuesday" / "3"
    (killed / "summary.json").unlink()  # as after a kill -9 in its last epoch
    scores[(2, 16)].pop()
    killed_score = max(float(row["val_acc"]) for row in read_rows(killed / "metrics.csv"))
    assert killed_score != scores[(2, 16)][0]  # leaving it out shows

    out = tmp_path / "both"
    assert report(tmp_path / "monday", tmp_path / "tuesday", "--no-plot", "--out", out) == 0
    rows = read_rows(out / "sweep.csv")
    assert list(rows[0])[:4] == ["job", "model.depth", "model.width", "status"]
    assert [Path(row["run_dir"]).relative_to(tmp_path).as_posix() for row in rows] == [
        f"{sweep}/{job}" for sweep in ("monday", "tuesday") for job in range(4)
    ]
    assert [row["status"] for row in rows] == ["completed"] * 7 + ["unfinished"]
    markdown = (out / "sweep.md").read_text().splitlines()
    assert markdown[0] == "# Sweep report: 8 runs (7 completed, 1 unfinished)"
    assert markdown[-1].startswith("| tuesday/3 | 2 | 16 | unfinished |")
    assert "Best 4 of 4 groups over seed by best_val_acc:" in capsys.readouterr().out.splitlines()

    built = build_report([tmp_path / "monday", tmp_path / "tuesday"])
    _, panel = drawn(monkeypatch, built, tmp_path / "picture")
    cells = panel.images[0].get_array()
    for (row, col), cell in zip([(0, 0), (0, 1), (1, 0), (1, 1)], GRID, strict=True):
        assert cells[row, col] == pytest.approx(np.mean(scores[cell])), cell
    texts = {text.get_position(): text.get_text() for text in panel.texts}
    assert texts[(1, 1)] == f"{np.mean(scores[(2, 16)]):.4f}\n(1 of 2)"  # the killed job counted


def test_objective_and_top_rank_the_runs_and_choose_how_many_are_shown(
    train, tmp_path, capsys, caplog
):
    for depth in (1, 2, 3):
        train(*QUICK, f"model.depth={depth}", run_dir=tmp_path / f"depth{depth}")
    summaries = {
        f"depth{depth}": json.loads((tmp_path / f"depth{depth}" / "summary.json").read_text())
        for depth in (1, 2, 3)
    }

    def ranked_by(objective: str, top: int, lowest_first: bool) -> list[str]:
        assert report(tmp_path, "--no-plot", "--objective", objective, "--top", top) == 0
        out = capsys.readouterr().out
        assert f"Best {top} of 3 runs by {objective}:" in out.splitlines()
        expected = sorted(summaries, key=lambda name: summaries[name][objective])
        expected = expected if lowest_first else expected[::-1]
        shown = [line.split()[0] for line in table(out)[1:]]
        assert shown == expected[:top]
        markdown = (tmp_path / f"sweep-by-{objective}.md").read_text()
        order = "lowest" if lowest_first else "highest"
        assert f"Ranked by `{objective}`, {order} first;" in markdown
        ranked_rows = [line.split()[1] for line in markdown.splitlines() if "| depth" in line]
        assert ranked_rows == expected
        return shown

    assert len(set(summary["test_loss"] for summary in summaries.values())) == 3
    ranked_by("test_loss", 2, lowest_first=True)  # a loss: the lowest is best
    assert ranked_by("num_params", 1, lowest_first=False) == ["depth3"]

    with caplog.at_level(logging.ERROR, logger="multiclass"):
        assert report(tmp_path, "--no-plot", "--objective", "nope") == 1
    assert caplog.messages[-1].startswith(
        "error: no sweep report: --objective nope is no figure of a run; the figures:"
    )


def markdown_rows(path: Path) -> list[dict[str, str]]:
    """sweep.md's table as rows, in its order (ranked), each by its header's names."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("| ")]
    header, *rows = ([cell.strip() for cell in line.strip("|").split(" | ")] for line in lines)
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_a_report_by_another_objective_is_written_beside_the_sweeps_own(train, tmp_path, capsys):
    """--objective writes sweep-by-<objective>.csv, .md and .png beside the sweep's own report,
    which stays byte for byte as the sweep wrote it, and says where; the three agree, and with
    --no-plot no picture is left under that name (an older one is removed, and said so)."""
    sweep = tmp_path / "sweep"
    for job, depth in enumerate((1, 2, 3)):
        train(*QUICK, f"model.depth={depth}", run_dir=sweep / str(job))
    assert report_sweep([sweep], sweep) is not None  # the sweep's own, as it writes it at its end
    own = {name: (sweep / name).read_bytes() for name in ("sweep.csv", "sweep.md", "sweep.png")}
    own["sweep.html"] = (sweep / "sweep.html").read_bytes()
    by_loss = [sweep / f"sweep-by-test_loss.{ext}" for ext in ("csv", "md", "html", "png")]
    capsys.readouterr()

    assert report(sweep, "--objective", "test_loss") == 0
    assert f"Report: {', '.join(map(str, by_loss))}" in capsys.readouterr().out.splitlines()
    assert by_loss[3].read_bytes().startswith(b"\x89PNG")
    assert report(sweep, "--objective", "test_loss", "--no-plot") == 0
    out = capsys.readouterr().out.splitlines()
    assert f"Report: {by_loss[0]}, {by_loss[1]}, {by_loss[2]}" in out
    assert any(line.startswith(f"Removed {by_loss[3]}: ") for line in out)
    assert not by_loss[3].exists()
    assert {name: (sweep / name).read_bytes() for name in own} == own

    rows = sorted(read_rows(by_loss[0]), key=lambda row: float(row["test_loss"]))
    assert len({row["test_loss"] for row in rows}) == 3  # a ranking to compare
    assert "Ranked by `test_loss`, lowest first;" in by_loss[1].read_text()
    assert [(row["job"], row["test_loss"]) for row in markdown_rows(by_loss[1])] == [
        (Path(row["run_dir"]).name, f"{float(row['test_loss']):.4f}") for row in rows
    ]


def resume(run_dir: Path, *overrides: str) -> None:
    """multiclass-resume RUN_DIR, in-process."""
    cfg = compose_config(*QUIET, f"resume={run_dir}", *overrides)
    assert execute(cfg, run_dir, [f"resume={run_dir}", *overrides]).status == "completed"


def test_loose_runs_are_compared_by_what_they_trained_not_by_how_they_ran(train, tmp_path, capsys):
    """Loose runs that differ in how they were shown, recorded and resumed (progress, plots,
    log_every, a patience that stopped none of them, resume) are compared by what they trained
    alone, with the sweep report's figures; early stopping's settings where they stopped one."""
    runs = tmp_path / "runs"
    train(*TINY, run_dir=runs / "base")
    shown = ["trainer.progress=true", "plots=true", "trainer.log_every=2"]
    train(
        *TINY, "model.depth=3", *shown, "trainer.early_stopping.patience=5", run_dir=runs / "deep"
    )
    train(*QUICK, run_dir=runs / "resumed")
    resume(runs / "resumed", "trainer.epochs=2")

    assert report(runs, "--no-plot") == 0
    out = capsys.readouterr().out
    assert build_report([runs]).swept == ["model.depth"]
    assert list(read_rows(runs / "sweep.csv")[0])[:3] == ["job", "model.depth", "status"]
    best = next(line for line in out.splitlines() if line.startswith("Best: "))
    assert re.fullmatch(r"Best: run \w+ \(.+\), best_val_acc [\d.]+, with model.depth=\d", best)
    header = table(out)[0].split()
    assert header[:2] == ["run", "depth"]
    figures = header + around_table(out)[0].replace(",", " ").split()  # the table, or said once
    assert {"test_acc", "test_loss", "num_params"} <= set(figures), out

    stopping = ["trainer.early_stopping.patience=1", "trainer.early_stopping.min_delta=1"]
    stopped = train("dataset.limit=200", "trainer.epochs=3", *stopping, run_dir=runs / "stopped")
    assert stopped.summary["stopped_early"] is True
    assert {"trainer.early_stopping.patience", "trainer.early_stopping.min_delta"} <= set(
        build_report([runs]).swept
    )


def test_a_job_the_config_checks_refused_is_reported_failed_with_its_reason(tmp_path):
    """A job refused before it wrote its config or summary (model.width=0) leaves Hydra's
    .hydra/ and the one error line of its train.log: the report says `failed` and that line in
    the console, sweep.csv and sweep.md, and reads its values as its peers' (no column for a
    key typed alike for every job)."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m", "model.width=8,0", *QUICK, "plots=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    reason = "model.width must be an integer >= 1, got 0"
    assert result.returncode == 1, result.stderr
    assert not (sweep / "1" / "summary.json").exists()  # what it says is in its log alone
    assert "1 job(s) did not complete: 1 (failed)" in result.stderr
    rows = read_rows(sweep / "sweep.csv")
    assert list(rows[0])[:4] == ["job", "model.width", "status", "error"]
    assert [(row["model.width"], row["status"], row["error"]) for row in rows] == [
        ("8", "completed", ""),
        ("0", "failed", reason),
    ]
    markdown = (sweep / "sweep.md").read_text().splitlines()
    assert markdown[-1].startswith(f"| 1 | 0 | failed: {reason} | - |")
    console = result.stdout.splitlines()
    assert console[-4].split()[:3] == ["1", "0", "failed"]  # the table's last row
    assert console[-3] == f"job 1 failed: {reason}"  # then why, whole, before `Best: `


OBJECTIVE = "best_val_acc"


def test_the_best_line_names_only_the_keys_the_best_run_sets():
    """A CNN has no depth: its best line does not say `model.depth=-`."""

    def run(name: str, depth: int | None, score: float) -> RunRecord:
        config = {"model.depth": depth, "optimizer.lr": 0.01}
        summary = {"status": "completed", "best_val_acc": score}
        return RunRecord(Path(name), None, {}, config, summary, [])

    built = SweepReport(
        [run("cnn", None, 0.9), run("mlp", 2, 0.8)], ["model.depth"], "best_val_acc"
    )
    assert best_line(built) == "Best: run cnn (cnn), best_val_acc 0.9000"
    built = SweepReport(
        [run("cnn", None, 0.7), run("mlp", 2, 0.8)], ["model.depth"], "best_val_acc"
    )
    assert best_line(built) == "Best: run mlp (mlp), best_val_acc 0.8000, with `model.depth=2`"
