"""multiclass-report on runs that Hydra did not sweep: loose run directories, a job killed
before its summary, several sweeps side by side, and the picture for each shape of sweep."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from multiclass.commands.report import main
from multiclass.reporting.sweep import write_report
from multiclass.reporting.sweep_figure import scores_by
from multiclass.reporting.sweep_jobs import build_report

TINY = ["dataset.limit=200", "trainer.epochs=2"]


def read_rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def report(*args):
    with pytest.raises(SystemExit) as ended:
        main([str(arg) for arg in args])
    return ended.value.code


def test_loose_runs_get_a_report_whose_columns_are_the_values_that_differ(train, tmp_path):
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
    assert ranked[-1].startswith("| - | 1 | 8 | unfinished |")
    assert not (tmp_path / "sweep.png").exists()


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
