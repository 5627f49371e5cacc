"""The command line as a user runs it: a few subprocess runs, each checking a whole behaviour."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from subprocess import DEVNULL, PIPE
from types import SimpleNamespace

import pytest
import torch
import yaml

from multiclass.commands.rerun import main as rerun_main
from multiclass.records.artifacts import lock_run_dir
from tests.conftest import CPU, QUIET, RUN_FILES, cli, read_summary, run_cli

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
    command = [sys.executable, "-m", "multiclass", "dataset.limit=200", "trainer.epochs=2", CPU]
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


# 180 single-sample steps an epoch: slow enough to kill the sweep inside job 1.
SLOW_SWEEP = [
    "-m", "model.depth=1,2", "model.width=8,16", "dataset.limit=200", "trainer.batch_size=1",
    "trainer.epochs=3", "plots=false", "trainer.progress=false", CPU,
]  # fmt: skip
MLFLOW = find_spec("mlflow") is not None


@pytest.fixture(scope="module")
def resumed_sweep(tmp_path_factory) -> SimpleNamespace:
    """A depth x width sweep under outputs/, killed (SIGKILL) once job 1 saved a last.pt: job 0
    completed, job 1 cut short, jobs 2 and 3 never started; then `multiclass-resume SWEEP_DIR`.
    Tracked in MLflow where it is installed."""
    cwd = tmp_path_factory.mktemp("sweep")
    store = f"sqlite:///{cwd / 'mlflow.db'}"
    tracking = ["logger=mlflow", f"logger.tracking_uri={store}"] if MLFLOW else []
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "multiclass", *SLOW_SWEEP, *tracking]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=DEVNULL, stderr=DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if list(cwd.glob("outputs/*/*/1/last.pt")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the sweep ended before it was killed"
    (sweep_dir,) = (path.parent.parent for path in cwd.glob("outputs/*/*/1/last.pt"))
    killed = {
        "jobs": sorted(path.name for path in sweep_dir.iterdir() if path.is_dir()),
        "statuses": [read_summary(sweep_dir / job)["status"] for job in ("0", "1")],
        "saved_epoch": torch.load(sweep_dir / "1" / "last.pt", weights_only=True)["epoch"],
        "job_0": (sweep_dir / "0" / "summary.json").read_bytes(),
    }
    script = Path(sys.executable).parent / "multiclass-resume"
    resumed = subprocess.run(
        [script, str(sweep_dir)], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    return SimpleNamespace(cwd=cwd, sweep_dir=sweep_dir, store=store, resumed=resumed, **killed)


def test_a_killed_sweep_resumes_skipping_done_jobs_resuming_the_cut_one_starting_the_rest(
    resumed_sweep, tmp_path
):
    sweep = resumed_sweep
    assert sweep.sweep_dir.parent.parent == sweep.cwd / "outputs"
    assert sweep.jobs == ["0", "1"] and sweep.statuses == ["completed", "running"]
    assert 1 <= sweep.saved_epoch < 3  # job 1 was cut short, with epochs left to train
    assert sweep.resumed.returncode == 0, sweep.resumed.stderr

    dirs = run_dirs(sweep.cwd)
    assert dirs == [sweep.sweep_dir / str(job) for job in range(4)]
    assert (dirs[0] / "summary.json").read_bytes() == sweep.job_0  # completed: left alone
    summaries = [read_summary(run_dir) for run_dir in dirs]
    assert [s["status"] for s in summaries] == ["completed"] * 4
    assert [s["epochs"] for s in summaries] == [3] * 4
    assert [s.get("resumed_at") for s in summaries[1:]] == [[sweep.saved_epoch], None, None]
    combos = [
        (config["model"]["depth"], config["model"]["width"])
        for config in (yaml.safe_load((d / "config.yaml").read_text()) for d in dirs)
    ]
    assert combos == [(1, 8), (1, 16), (2, 8), (2, 16)]
    with open(sweep.sweep_dir / "sweep.csv") as file:
        assert [row["status"] for row in csv.DictReader(file)] == ["completed"] * 4

    # The resumed job has the weights and metrics of the job run straight through.
    with pytest.raises(SystemExit) as rerun:
        rerun_main([str(dirs[1]), "--out", str(tmp_path / "rerun")])
    assert rerun.value.code == 0


@pytest.mark.skipif(not MLFLOW, reason="needs the [mlflow] extra")
def test_the_sweep_is_one_mlflow_experiment_and_the_resumed_job_goes_on_in_its_run(
    resumed_sweep,
):
    from mlflow import MlflowClient

    sweep = resumed_sweep
    client = MlflowClient(sweep.store)
    experiment = client.get_experiment_by_name(str(sweep.sweep_dir.relative_to(sweep.cwd)))
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        job = Path(run.data.tags["multiclass.run_dir"])
        assert f"model.width={run.data.params['model.width']}" in run.info.run_name
        assert run.data.metrics["test_acc"] == pytest.approx(read_summary(job)["test_acc"])
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")]
        assert steps == [1, 2, 3], job  # job 1's epochs, before and after the kill, in one run


def test_bad_input_exits_1_and_a_diverged_run_2_each_with_one_line(tmp_path):
    """Two commands side by side: a class the data set lacks, and SGD at lr 1e30."""
    commands = {
        "bad": ("dataset.classes=[0,42]", "hydra.run.dir=bad"),
        "diverged": (
            "dataset.limit=100", "trainer.epochs=3", "optimizer=sgd", "optimizer.lr=1e30", *QUIET,
            "hydra.run.dir=diverged",
        ),
    }  # fmt: skip
    started = {}
    for name, args in commands.items():
        command, env = cli(*args)
        started[name] = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=PIPE, stderr=PIPE, text=True
        )
    statuses, errors = {}, {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        assert "Traceback" not in err + out, name
        statuses[name] = process.returncode
        (errors[name],) = [line for line in err.splitlines() if "error" in line.lower()]
    assert statuses == {"bad": 1, "diverged": 2}
    assert "no class 42" in errors["bad"]
    assert read_summary(tmp_path / "bad")["status"] == "failed"
    assert errors["diverged"].endswith(
        "[ERROR] error: loss became nan at epoch 1: lower optimizer.lr or check the data"
    )
    summary = read_summary(tmp_path / "diverged")
    assert summary["status"] == "diverged" and summary["epochs"] == 1


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
