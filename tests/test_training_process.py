"""The command line's training process: Ctrl-C, log lines, what crosses back to the command line,
and what a launcher that pickles the task gets."""

import json
import pickle
import signal
import subprocess
import sys
import time

import pytest

from multiclass.commands.train import trains_here
from multiclass.lifecycle.training_process import TrainingProcess, training_process
from tests.conftest import family, gone


def test_ctrl_c_stops_the_run_as_interrupted_and_every_line_is_written_once(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["trainer.progress=false", "dataset.limit=200", "trainer.batch_size=1"]
    overrides += [f"hydra.run.dir={run_dir}", "trainer.epochs=1000"]
    command = [sys.executable, "-m", "multiclass", *overrides]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 1):
        assert time.monotonic() < deadline and process.poll() is None, "no epoch came"
        time.sleep(0.01)
    started = family(process.pid)  # the training process and the painter's helpers
    process.send_signal(signal.SIGINT)  # to the command line alone, as `kill -INT` does
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs"] >= 1
    logged = (run_dir / "train.log").read_text().splitlines()
    console = [line for line in stderr.splitlines() if line.startswith("[")]
    assert console == logged  # each line once on the console, once in train.log
    assert sum("epoch 1/1000" in line for line in logged) == 1
    assert logged[-1].endswith("[ERROR] error: interrupted by the user")
    assert len(started) == 3 and gone(started)


def test_the_outcome_needs_no_torch_to_read(train):
    outcome = train("dataset.limit=100", "trainer.epochs=1")
    assert outcome.status == "completed"
    read = "import pickle, sys; pickle.load(sys.stdin.buffer); print('torch' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", read], input=pickle.dumps(outcome), capture_output=True, check=True
    )
    assert loaded.stdout == b"False\n"  # the command line reads it and never imports torch


def test_a_launcher_that_pickles_the_task_gets_a_training_process_not_started():
    copy = pickle.loads(pickle.dumps(training_process))
    assert copy is training_process and not copy.running
    assert not TrainingProcess().start()  # torch is imported in this process: no fork after it


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"trainer.epochs=1"}, True),
        ({"-m", "seed=0,1", "hydra/launcher=basic"}, True),
        ({"-m", "seed=0,1", "hydra/launcher=joblib"}, False),  # its workers train
        ({"-m", "hydra/launcher=ray_local", "plots=false"}, False),
        ({"--cfg", "job"}, False),  # prints, trains nothing
    ],
)
def test_the_command_line_starts_its_training_process_only_where_runs_train(arguments, expected):
    assert trains_here(arguments) is expected
