"""Hard failures: each is one line, a non-zero exit, and leaves what a run wrote whole: an output
folder that cannot be written, corrupt IDX files, a full disk, a seed out of range, a loss
that explodes, two runs in one directory."""

import dataclasses
import errno
import json
import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from multiclass.commands.train import OutputCheck
from multiclass.config import compose_config
from multiclass.datasets import images
from multiclass.datasets.synthetic import write_idx_dataset
from multiclass.engine import EpochMetrics, divergence_bound
from multiclass.errors import UserError
from multiclass.heads import build_loss
from multiclass.lifecycle.run import execute
from multiclass.records import artifacts
from multiclass.records.artifacts import LOCK, MetricsLog, lock_run_dir
from multiclass.validation import check_config
from tests.conftest import QUIET, run_cli

TINY = ["dataset.limit=300", "trainer.epochs=3"]


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# 1. An output folder that cannot be created or written.


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_an_output_folder_that_cannot_be_created_is_one_line_and_exit_1(where, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    folder = tmp_path / "afile" / "x" if where == "under_a_file" else Path("/proc/x")
    config = OmegaConf.create({"hydra": {"run": {"dir": str(folder)}}})
    with pytest.raises(SystemExit) as stopped:
        OutputCheck().on_run_start(config)
    assert stopped.value.code == 1
    reason = "not a directory" if where == "under_a_file" else "no such file or directory"
    expected = f"error: cannot write the output folder {folder} (hydra.run.dir): {reason}\n"
    assert capsys.readouterr().err == expected


def test_a_sweep_into_a_folder_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    result = run_cli("-m", "hydra.sweep.dir=afile/x", "seed=0,1", *QUIET, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "error: cannot write the output folder afile/x (hydra.sweep.dir): not a directory\n"
    )
    assert (tmp_path / "afile").read_text() == "not a folder"


# 2. A truncated or corrupt IDX file.


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    write_idx_dataset(tmp_path / "MNIST" / "raw", num_train=40, num_test=10)
    return tmp_path


@pytest.mark.parametrize("download", [False, True])
def test_a_truncated_idx_file_is_named_with_its_sizes(mnist_root, download):
    images_file = mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:20_000])
    with pytest.raises(UserError) as failure:
        images.mnist(root=str(mnist_root), download=download)
    message = str(failure.value)
    assert message.startswith(
        f"{images_file} is truncated: 20,000 bytes where its header declares 40x28x28 values"
        " (31,376 bytes): delete it and "
    )
    again = "run again to download it" if download else "set dataset.download=true"
    assert again in message and "download" not in message.split(":")[0]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "is empty"), (b"<html>404</html>", "is not an IDX file of bytes (it starts 3c68746d)")],
)
def test_a_file_that_is_no_idx_file_is_named(mnist_root, content, problem):
    labels = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(content)
    with pytest.raises(UserError) as failure:
        images.mnist(root=str(mnist_root), download=False)
    assert str(failure.value).startswith(f"{labels} {problem}: delete it and set dataset.download")


def test_a_longer_idx_file_than_its_header_says_is_corrupt(mnist_root):
    labels = mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(UserError, match="is corrupt: 49 bytes where its header declares 40 values"):
        images.mnist(root=str(mnist_root), download=False)


# 3. A disk that fills during a run.


def full_disk_at(monkeypatch, name: str, write: int, stays_full: bool) -> None:
    """The `write`-th write_atomic of `name` fails with ENOSPC once its temporary file is
    written; with `stays_full`, every write after it fails too."""
    real_replace, count = os.replace, 0

    def replace(source, destination):
        nonlocal count
        count += Path(destination).name == name
        failing = count == write and Path(destination).name == name
        if failing or (stays_full and count >= write):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        real_replace(source, destination)

    monkeypatch.setattr(artifacts.os, "replace", replace)


def whole_rows(run_dir: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert {len(row) for row in rows} == {len(dataclasses.fields(EpochMetrics))}
    return rows


def test_a_disk_that_stays_full_fails_the_run_in_one_line_keeping_whole_files(
    train, tmp_path, monkeypatch, caplog
):
    run_dir = tmp_path / "run"
    full_disk_at(monkeypatch, "last.pt", write=3, stays_full=True)
    outcome = train(*TINY, run_dir=run_dir)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.summary["error"] == (
        f"no space left on device: {run_dir / 'last.pt'};"
        f" no space left on device: {run_dir / 'summary.json'}"
    )
    assert error_lines(caplog) == [f"error: {outcome.summary['error']}"]
    assert not list(run_dir.glob(".*.tmp"))
    # the record written at the start is whole, and still says the run never ended well
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 2
    assert torch.load(run_dir / "best.pt", weights_only=True)["state_dict"]
    assert len(whole_rows(run_dir)) == 1 + 3  # the header and every epoch trained


def test_a_run_the_disk_stopped_says_so_and_resumes_once_there_is_room(
    train, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        full_disk_at(patch, "last.pt", write=2, stays_full=False)
        outcome = train(*TINY, run_dir=run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == outcome.status == "failed"
    assert summary["error"] == f"no space left on device: {run_dir / 'last.pt'}"
    assert not list(run_dir.glob(".*.tmp"))
    resumed = execute(compose_config(*QUIET, *TINY, f"resume={run_dir}"), run_dir)
    assert resumed.status == "completed" and resumed.summary["resumed_at"] == [1]
    straight = train(*TINY, run_dir=tmp_path / "straight")
    assert resumed.summary["weights_sha256"] == straight.summary["weights_sha256"]


def test_an_append_the_disk_cut_short_is_cut_back(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.csv")
    log.rewrite([epoch_row(1)])
    before = log.path.read_bytes()
    real_open = open

    class HalfWrites:
        """A file whose writes stop half way, as write(2) does when the disk fills."""

        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            return self.file.write(data[: len(data) // 2])

    monkeypatch.setattr(artifacts, "open", HalfWrites, raising=False)
    with pytest.raises(OSError) as failure:
        log.append(epoch_row(2))
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(log.path)
    assert log.path.read_bytes() == before


def epoch_row(epoch: int) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch,
        train_loss=0.5,
        train_acc=0.9,
        val_loss=None,
        val_acc=None,
        val_macro_f1=None,
        val_balanced_acc=None,
        lr=0.001,
        train_seconds=0.1,
        epoch_seconds=0.1,
    )


# 4. A seed outside what numpy and scikit-learn take.


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_out_of_range_is_refused_before_anything_runs(seed, train, tmp_path, caplog):
    outcome = train(f"seed={seed}", run_dir=tmp_path / "run")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    message = f"seed must be an integer >= 0 and <= 4294967295, got {seed}"
    assert error_lines(caplog) == [f"error: {message}"]
    assert not (tmp_path / "run").exists()


def test_the_seeds_at_both_ends_of_the_range_are_taken():
    check_config(compose_config("seed=0"))
    check_config(compose_config(f"seed={2**32 - 1}"))
    with pytest.raises(UserError, match=r"^seed must be an integer >= 0 and <= 4294967295, got"):
        check_config(compose_config(f"seed={2**32}"))


# 5. A loss that grows by orders of magnitude without becoming infinite.


def test_a_loss_that_explodes_is_diverged_and_keeps_what_was_written(train, tmp_path, caplog):
    run_dir = tmp_path / "run"
    outcome = train(*TINY, "optimizer.lr=1e6", run_dir=run_dir)
    assert (outcome.status, outcome.exit_code) == ("diverged", 2)
    (error,) = error_lines(caplog)
    assert error.startswith("error: train loss ") and "at epoch 1: lower optimizer.lr" in error
    assert "(trainer.divergence_factor times the loss of chance-level outputs)" in error
    assert math.isfinite(outcome.summary["train_loss"])
    assert outcome.summary["train_loss"] > 1000 * math.log(10)
    assert len(whole_rows(run_dir)) == 2 and (run_dir / "last.pt").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs"] == 1


def test_the_divergence_rule_can_be_turned_off(train, tmp_path):
    outcome = train(*TINY, "optimizer.lr=1e6", "trainer.divergence_factor=null")
    assert outcome.status == "completed"
    refused = train(*TINY, "trainer.divergence_factor=1")
    assert refused.status == "failed"
    assert refused.summary["error"] == (
        "trainer.divergence_factor must be a number > 1, or null, got 1"
    )


@pytest.mark.parametrize(
    ("loss", "chance"),
    [
        ("cross_entropy", math.log(3)),
        ("nll", math.log(3)),
        ("bce", math.log(2)),
        ("bce_with_logits", math.log(2)),
    ],
)
def test_the_bound_is_the_factor_times_the_loss_of_outputs_that_favour_no_class(loss, chance):
    criterion, head = build_loss(compose_config(f"loss={loss}").loss, 3)
    targets = head.encode(torch.tensor([0, 1, 2, 2, 1]))
    assert divergence_bound(criterion, head, targets, 1000) == pytest.approx(1000 * chance)
    assert divergence_bound(criterion, head, targets, None) == math.inf


# 6. Two runs writing to one run directory.


def hold_lock_elsewhere(run_dir: Path) -> subprocess.Popen:
    """Another process that holds `run_dir`'s lock until it is killed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    script = (
        "import fcntl, sys, time\n"
        f"lock = open({str(run_dir / LOCK)!r}, 'ab')\n"
        "fcntl.flock(lock, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_run_in_a_busy_directory_is_refused_until_the_first_dies(train, tmp_path, caplog):
    run_dir = tmp_path / "run"
    holder = hold_lock_elsewhere(run_dir)
    (run_dir / "metrics.csv").write_text("the first run's\n")
    before = snapshot(run_dir)
    try:
        refused = train(*TINY, run_dir=run_dir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (refused.status, refused.exit_code) == ("failed", 1)
    assert error_lines(caplog) == [
        f"error: {run_dir} is in use by another run: wait until it ends, or choose another"
        " directory (hydra.run.dir)"
    ]
    assert snapshot(run_dir) == before
    assert train(*TINY, run_dir=run_dir).status == "completed"  # the killed holder's lock is gone


def test_the_command_line_refuses_a_busy_run_dir_before_hydra_writes_there(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_run_dir(run_dir):
        result = run_cli(f"hydra.run.dir={run_dir}", *QUIET, *TINY, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {run_dir} is in use by another run: wait until it ends, or choose another"
        " directory (hydra.run.dir)\n"
    )
    assert [p.name for p in run_dir.iterdir()] == [LOCK]


# 7. A value that passes its rule but that torch refuses when the component is built or used.

DIGITS = ["dataset=digits", "dataset.limit=100", "trainer.epochs=1"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            ["loss.weight=[1.0,2.0]"],
            "cannot build loss (loss.weight=[1.0, 2.0]): RuntimeError: weight tensor should be"
            " defined either for all 10 classes or no classes but got weight tensor of shape: [2]",
        ),
        (
            ["loss=bce_with_logits", "loss.pos_weight=[1.0,2.0]", "dataset.classes=[0,1]"],
            "cannot build loss (torch.nn.BCEWithLogitsLoss, loss.pos_weight=[1.0, 2.0]):"
            " RuntimeError: output with shape [2, 1] doesn't match the broadcast shape [2, 2]",
        ),
        (
            ["+optimizer.foo=1"],
            "cannot build optimizer (optimizer.foo=1): TypeError: Adam.__init__() got an"
            " unexpected keyword argument 'foo'",
        ),
        (
            ["+model.foo=1"],
            "cannot build model (model.foo=1): TypeError: mlp() got an unexpected keyword"
            " argument 'foo'",
        ),
        (
            ["+dataset.foo=1"],
            "cannot build dataset (dataset.foo=1): TypeError: make_splits() got an unexpected"
            " keyword argument 'foo'",
        ),
        (
            ["+device.foo=1"],
            "cannot build device (device.foo=1): TypeError: prepare() got an unexpected keyword"
            " argument 'foo'",
        ),
    ],
)
def test_a_value_torch_refuses_names_its_key(overrides, error, train, tmp_path, caplog):
    outcome = train(*DIGITS, *overrides, run_dir=tmp_path / "run")
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert outcome.summary["error"] == error
    assert error_lines(caplog) == [f"error: {error}"]
