"""multiclass-report on runs that Hydra did not sweep: loose run directories, a job killed
before its summary, several sweeps side by side, and the picture for each shape of sweep."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from multiclass.commands.report import main
from multiclass.reporting.sweep import write_report
from multiclass.reporting.sweep_figure import scores_by
from multiclass.reporting.sweep_jobs import build_report

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


@pytest.mark.parametrize(
    "sweep",
    [
        [("model.depth=1",), ("model.depth=2",)],
        [("model.depth=1", "model.width=8"), ("model.depth=2", "model.width=16")],
        [
            ("model.depth=1", "model.width=8", "seed=1"),
            ("model.depth=2", "model.width=16", "seed=2"),
        ],
        [("model.activation=relu",), ("model.activation=tanh",)],
    ],
    ids=["one-number", "two-keys", "three-keys", "one-choice"],
)
def test_every_shape_of_sweep_gets_its_picture(train, tmp_path, sweep):
    for number, overrides in enumerate(sweep):
        train(*TINY, *overrides, run_dir=tmp_path / "runs" / str(number))
    built = build_report([tmp_path / "runs"])
    assert set(built.swept) == {override.split("=")[0] for override in sweep[0]}
    written = write_report(built, tmp_path / "report")
    assert [path.name for path in written] == ["sweep.csv", "sweep.md", "sweep.png"]
    assert written[-1].read_bytes().startswith(b"\x89PNG")


def test_the_heatmap_cells_are_means_of_the_completed_jobs(train, tmp_path):
    for number, (depth, seed) in enumerate(((1, 0), (1, 1), (2, 0))):
        train(*TINY, f"model.depth={depth}", f"seed={seed}", run_dir=tmp_path / str(number))
    built = build_report([tmp_path])
    assert built.swept == ["seed", "model.depth"]  # shallowest first; dataset.seed repeats seed
    groups = scores_by(built, "model.depth")
    accs = {r.job: r.summary["best_val_acc"] for r in built.records}
    assert groups == {(1,): [accs[0], accs[1]], (2,): [accs[2]]}
