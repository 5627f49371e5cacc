"""The command line as a user runs it: a few subprocess runs, each checking a whole behaviour."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from multiclass.commands.rerun import main as rerun_main
from multiclass.lifecycle.artifacts import lock_run_dir
from tests.conftest import RUN_FILES, run_cli

CLI_FILES = (
    *RUN_FILES,
    "train.log",
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
    ".hydra/hydra.yaml",
)


def run_dirs(cwd):
    return sorted(path.parent for path in (cwd / "outputs").rglob("summary.json"))


def test_two_runs_started_together_each_fill_their_own_directory(tmp_path):
    command = [sys.executable, "-m", "multiclass", "dataset.limit=300", "trainer.epochs=2"]
    runs = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    for code, stderr in results:
        assert code == 0, stderr

    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2
    for run_dir in dirs:
        assert run_dir.parent.parent == tmp_path / "outputs"
        for name in CLI_FILES:
            assert (run_dir / name).stat().st_size > 0, name
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        log_lines = (run_dir / "train.log").read_text().splitlines()
        assert [line for line in log_lines if "] epoch " in line][1].count("epoch 2/2") == 1


def test_a_sweep_over_depth_and_width_runs_every_job_under_outputs(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(
        "-m",
        "model.depth=1,2",
        "model.width=8,16",
        "dataset.limit=200",
        "trainer.epochs=1",
        "plots=false",
        "logger=mlflow",
        f"logger.tracking_uri={store}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 4 and len({d.parent for d in dirs}) == 1
    combos = set()
    for run_dir in dirs:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        combos.add((config["model"]["depth"], config["model"]["width"]))
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert combos == {(1, 8), (1, 16), (2, 8), (2, 16)}

    # Any job of a sweep reruns to the same weights and metrics.
    with pytest.raises(SystemExit) as rerun:
        rerun_main([str(dirs[1]), "--out", str(tmp_path / "rerun")])
    assert rerun.value.code == 0

    # Resuming the sweep skips the completed jobs and resumes one that was cut short.
    (dirs[2] / "summary.json").unlink()
    untouched = (dirs[0] / "summary.json").read_bytes()
    script = Path(sys.executable).parent / "multiclass-resume"
    resumed = subprocess.run(
        [script, str(dirs[0].parent)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (dirs[0] / "summary.json").read_bytes() == untouched
    summary = json.loads((dirs[2] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_at"] == [1]

    # The sweep is one MLflow experiment, named after its folder, with every job's metrics;
    # the resumed job went on in its own MLflow run.
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(str(dirs[0].parent.relative_to(tmp_path)))
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        job = Path(run.data.tags["multiclass.run_dir"])
        assert f"model.width={run.data.params['model.width']}" in run.info.run_name
        assert run.data.metrics["test_acc"] == pytest.approx(
            json.loads((job / "summary.json").read_text())["test_acc"]
        )
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == [1]


def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path):
    result = run_cli("dataset.classes=[0,42]", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "no class 42" in errors[0]
    (run_dir,) = run_dirs(tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"


def test_a_sweep_with_a_failed_job_reports_every_job_then_fails(tmp_path):
    # batch 4096 with drop_last leaves no batch of 200 samples: one job of four fails.
    result = run_cli(
        "-m",
        "trainer.batch_size=8,4096",
        "trainer.drop_last=false,true",
        "dataset.limit=200",
        "trainer.epochs=2",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "1 job(s) did not complete: 3 (failed)" in result.stderr
    (sweep_dir,) = {d.parent for d in run_dirs(tmp_path)}
    for name in ("sweep.csv", "sweep.md", "sweep.png"):
        assert (sweep_dir / name).stat().st_size > 0, name
    for run_dir in run_dirs(tmp_path):  # pictures drawn by helpers while the next job trained
        completed = json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        for name in ("curves.png", "confusion_matrix.png", "predictions.png", "layers.png"):
            assert (run_dir / name).exists() == completed, (run_dir, name)

    with open(sweep_dir / "sweep.csv") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0])[:6] == [
        "job",
        "trainer.batch_size",
        "trainer.drop_last",
        "status",
        "error",
        "test_acc",
    ]
    assert [(r["job"], r["trainer.batch_size"], r["trainer.drop_last"]) for r in rows] == [
        ("0", "8", "False"),
        ("1", "8", "True"),
        ("2", "4096", "False"),
        ("3", "4096", "True"),
    ]
    assert [r["status"] for r in rows] == ["completed"] * 3 + ["failed"]
    assert "leaves no batch" in rows[3]["error"] and rows[3]["test_acc"] == ""
    for row in rows[:3]:
        assert 0 <= float(row["test_acc"]) <= 1 and int(row["num_params"]) > 0
        assert int(row["best_epoch"]) in (1, 2)
    table = (sweep_dir / "sweep.md").read_text().splitlines()
    assert table[0] == "# Sweep report: 4 jobs (3 completed, 1 failed)"
    assert table[-1].startswith("| 3 | 4096 | True | failed: ")

    best = max(rows[:3], key=lambda r: (float(r["best_val_acc"]), -int(r["job"])))
    console = result.stdout.splitlines()
    assert console[0] == "Best 4 of 4 jobs by best_val_acc:"
    assert console[2].split()[:2] == [best["job"], best["trainer.batch_size"]]


def test_unknown_keys_get_hydras_message_and_no_traceback(tmp_path):
    result = run_cli("trainer.epoch=3", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Could not override 'trainer.epoch'" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_the_console_script_runs_the_same_app():
    script = Path(sys.executable).parent / "multiclass-train"
    result = subprocess.run(
        [script, "model=cnn", "--cfg", "job"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["model"]["_target_"] == "multiclass.models.cnn"


def test_a_sweep_into_a_folder_whose_job_is_running_is_refused_before_it_writes(tmp_path):
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "0" / ".hydra").mkdir(parents=True)
    hydra_record = sweep_dir / "0" / ".hydra" / "config.yaml"
    hydra_record.write_text("the running job's own\n")
    with lock_run_dir(sweep_dir / "0"):  # as its running job holds it
        result = run_cli("-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {sweep_dir} is in use: its job 0 is running; wait until it ends, or choose"
        " another hydra.sweep.dir"
    )
    assert hydra_record.read_text() == "the running job's own\n"
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["0"]
