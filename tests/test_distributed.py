"""Data parallel training on the CPU (gloo): two processes started by torchrun, or by
`device.processes=2`, train the weights one process trains with the same global batch, write
one run directory, and resume. The runs are started once for the module: each process start
costs seconds of imports."""

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from multiclass.lifecycle.run import Outcome
from tests.conftest import QUIET, read_summary, run_cli

# 72 training samples in global batches of 71: each splits 36/35 over the two processes, and
# the last batch, of 1 sample, leaves rank 1 an empty share. SGD steps by the gradient itself,
# so a wrongly weighted share would show in the weights (Adam would mostly normalise it away).
ARGS = (
    "dataset=blobs",
    "optimizer=sgd",
    "optimizer.lr=0.1",
    "trainer.epochs=3",
    "trainer.batch_size=71",
    "trainer.drop_last=false",
    "callbacks=minimal",
    *QUIET,
)
TIMEOUT = 120


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m multiclass <args>` in `cwd`."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return subprocess.run(
        [*command, "--nproc_per_node=2", "-m", "multiclass", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of runs of one config: a torchrun run in Hydra's default run directory, one of
    `device.processes=2`, and a copy of that one resumed for a fourth epoch."""
    made = {name: tmp_path_factory.mktemp(name) for name in ("torchrun", "processes", "resumed")}
    done = torchrun(*ARGS, cwd=made["torchrun"])
    assert done.returncode == 0, done.stderr
    done = run_cli("device.processes=2", *ARGS, "hydra.run.dir=run", cwd=made["processes"])
    assert done.returncode == 0, done.stderr
    shutil.copytree(made["processes"] / "run", made["resumed"] / "run")
    # Its saved config's device.processes=2 starts the processes again.
    done = run_cli("resume=run", "trainer.epochs=4", cwd=made["resumed"])
    assert done.returncode == 0, done.stderr
    return made


def run_dirs(folder: Path) -> list[Path]:
    """The run directories written under `folder`: those with a summary.json."""
    return sorted(path.parent for path in folder.rglob("summary.json"))


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_two_processes_train_the_weights_of_one(
    runs: dict[str, Path], train: Callable[..., Outcome], tmp_path: Path
) -> None:
    one = tmp_path / "one"
    assert train(*ARGS, run_dir=one).status == "completed"
    (ddp,) = run_dirs(runs["torchrun"])
    mine, theirs = weights(ddp), weights(one)
    assert mine.keys() == theirs.keys()
    for name, tensor in mine.items():
        assert torch.allclose(tensor, theirs[name], rtol=0, atol=1e-5), name
    # The epoch's figures are the whole split's: the processes' sums, added up.
    for row, alone in zip(metrics(ddp), metrics(one), strict=True):
        for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert float(row[column]) == pytest.approx(float(alone[column]), abs=1e-6)


def test_two_data_parallel_runs_of_one_config_are_the_same(runs: dict[str, Path]) -> None:
    # Started two ways, torchrun and device.processes=2: the same processes, the same digest.
    (first,) = run_dirs(runs["torchrun"])
    (second,) = run_dirs(runs["processes"])
    assert read_summary(first)["weights_sha256"] == read_summary(second)["weights_sha256"]


def test_rank_0_alone_writes_one_run_directory(runs: dict[str, Path]) -> None:
    # Each process ran Hydra, whose default directory holds the time to the microsecond.
    (run_dir,) = run_dirs(runs["torchrun"])
    assert [path.name for path in (runs["torchrun"] / "outputs").glob("*/*")] == [run_dir.name]
    assert [row["epoch"] for row in metrics(run_dir)] == ["1", "2", "3"]
    summary = read_summary(run_dir)
    assert (summary["status"], summary["processes"], summary["epochs"]) == ("completed", 2, 3)
    log = (run_dir / "train.log").read_text()
    assert log.count("epoch 3/3") == 1
    assert sorted(path.name for path in run_dir.glob(".hydra/*")) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]


def test_device_processes_trains_as_torchrun(runs: dict[str, Path]) -> None:
    (launched,) = run_dirs(runs["processes"])
    assert launched == runs["processes"] / "run"
    (started,) = run_dirs(runs["torchrun"])
    mine, theirs = weights(launched), weights(started)
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in mine.items())
    assert read_summary(launched)["processes"] == 2
    assert (launched / "train.log").read_text().count("epoch 3/3") == 1


def test_a_data_parallel_run_resumes_in_its_processes(
    runs: dict[str, Path], train: Callable[..., Outcome], tmp_path: Path
) -> None:
    (resumed,) = run_dirs(runs["resumed"])
    summary = read_summary(resumed)
    assert (summary["status"], summary["resumed_at"], summary["processes"]) == ("completed", [3], 2)
    assert [row["epoch"] for row in metrics(resumed)] == ["1", "2", "3", "4"]
    one = tmp_path / "one"
    assert train(*ARGS, "trainer.epochs=4", run_dir=one).status == "completed"
    theirs = weights(one)
    for name, tensor in weights(resumed).items():
        assert torch.allclose(tensor, theirs[name], rtol=0, atol=1e-5), name
