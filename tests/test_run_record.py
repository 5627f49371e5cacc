"""A run's record is one unit per epoch: whatever a callback raises, at whichever event,
summary.json, metrics.csv, last.pt and the log's `epoch N/M` lines name the same last epoch,
the error line names the callback and the event, and a resume of a run that failed in an
epoch ends with the uninterrupted run's weights."""

import csv
import logging
import re
from pathlib import Path

import pytest
import torch

from multiclass.callbacks import Callback
from multiclass.config import compose_config
from multiclass.lifecycle.run import execute
from tests.conftest import QUIET, read_summary

EPOCHS = 4
RUN = ["dataset=blobs", f"trainer.epochs={EPOCHS}", "trainer.log_every=1"]
BOOM = f"+callbacks.boom._target_={__name__}.Boom"
# (event, epoch): the events of every epoch fail at its first and at a middle one, the others
# once; what the record then holds is `done` epochs.
FAILURES = [
    ("on_run_start", None, 0),
    ("on_fit_start", None, 0),
    ("on_epoch_end", 1, 1),
    ("on_epoch_end", 3, 3),
    ("on_layer_stats", 1, 1),
    ("on_layer_stats", 3, 3),
    ("on_test_end", None, EPOCHS),
]


class Boom(Callback):
    """Raises ValueError("boom") in `event` (at `epoch`, for the events of an epoch), in a run
    that was not resumed: its resume goes on as the uninterrupted run."""

    def __init__(self, event: str, epoch: int | None = None) -> None:
        self.event, self.epoch = event, epoch

    def explode(self, run, event: str, epoch: int | None = None) -> None:
        if (event, epoch) == (self.event, self.epoch) and not run.summary.get("resumed_at"):
            raise ValueError("boom")

    def on_run_start(self, run) -> None:
        self.explode(run, "on_run_start")

    def on_fit_start(self, run) -> None:
        self.explode(run, "on_fit_start")

    def on_epoch_end(self, run, row, improved) -> None:
        self.explode(run, "on_epoch_end", row.epoch)

    def on_layer_stats(self, run, epoch, rows) -> None:
        self.explode(run, "on_layer_stats", epoch)

    def on_test_end(self, run, tested) -> None:
        self.explode(run, "on_test_end")


def boom(event: str, epoch: int | None) -> list[str]:
    at = [] if epoch is None else [f"+callbacks.boom.epoch={epoch}"]
    return [BOOM, f"+callbacks.boom.event={event}", *at]


def logged_epochs(lines: list[str]) -> list[int]:
    """The N of each `epoch N/M` line, as train.log holds them."""
    return [int(found[1]) for line in lines if (found := re.search(r"\bepoch (\d+)/\d+ ", line))]


def recorded_epochs(run_dir: Path, lines: list[str]) -> dict[str, int]:
    """The last epoch that each part of the run's record names (0: none)."""
    summary = read_summary(run_dir)
    metrics = run_dir / "metrics.csv"
    rows = list(csv.DictReader(metrics.open())) if metrics.exists() else []
    last = run_dir / "last.pt"
    saved = torch.load(last, weights_only=True)["epoch"] if last.exists() else 0
    logged = logged_epochs(lines)
    return {
        "summary": summary.get("epochs") or 0,
        "metrics.csv": len(rows),
        "last.pt": saved,
        "log": logged[-1] if logged else 0,
    }


def best_epoch_of(run_dir: Path) -> int | None:
    """The first epoch with the highest val_acc in metrics.csv (the monitor's rule)."""
    metrics = run_dir / "metrics.csv"
    rows = list(csv.DictReader(metrics.open())) if metrics.exists() else []
    if not rows:
        return None
    return max(rows, key=lambda row: (float(row["val_acc"]), -int(row["epoch"])))["epoch"]


def resume(run_dir: Path):
    cfg = compose_config(*QUIET, f"resume={run_dir}")
    return execute(cfg, run_dir, [f"resume={run_dir}"])


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    """The uninterrupted run, its Boom listed but never raising."""
    run_dir = tmp_path_factory.mktemp("straight")
    outcome = execute(compose_config(*QUIET, *RUN, *boom("never", None)), run_dir)
    assert outcome.status == "completed"
    return outcome.summary


@pytest.mark.parametrize(("event", "epoch", "done"), FAILURES)
def test_a_callback_that_raises_leaves_a_record_that_agrees_and_resumes(
    event, epoch, done, train, tmp_path, caplog, straight
):
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="multiclass"):
        failed = train(*RUN, *boom(event, epoch), run_dir=run_dir)
    error = f"callback Boom failed in {event}: ValueError: boom"
    assert (failed.status, failed.summary["error"]) == ("failed", error)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"error: {error}"
    ]
    summary = read_summary(run_dir)
    assert (summary["status"], summary["error"]) == ("failed", error)
    record = recorded_epochs(run_dir, caplog.messages)
    assert record == dict.fromkeys(record, done)
    assert str(summary["best_epoch"]) == str(best_epoch_of(run_dir))
    if not done:
        return
    resumed = resume(run_dir)
    assert (resumed.status, resumed.summary["resumed_at"]) == ("completed", [done])
    assert resumed.summary["weights_sha256"] == straight["weights_sha256"]
