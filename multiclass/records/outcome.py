"""How a run ended: its status, the exit code that status gives, and summary.json, the record
of the run that is written however it ends (null fields: the run did not get that far)."""

import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multiclass.errors import describe_os_error
from multiclass.records.artifacts import write_json

log = logging.getLogger("multiclass")

# `pruned`: a search's pruner stopped the trial; its record is whole, and it is not a failure.
EXIT_CODES = {
    "completed": 0,
    "pruned": 0,
    "failed": 1,
    "diverged": 2,
    "interrupted": 128 + signal.SIGINT,
}

# summary.json's fields in the order a reader wants them; null until the run gets that far.
SUMMARY_FIELDS = (
    "status",
    "test_acc",
    "test_loss",
    "test_error",
    "test_macro_f1",
    "test_balanced_acc",
    "best_val_acc",
    "best_epoch",
    "monitor",
    "best_score",
    "epochs",
    "stopped_early",
    "tested",
    "tested_epoch",
    "resumed_at",
    "tries",  # starts of the run: 1, and one more at each resume (records.tries)
    "requeues",  # of those restarts, Slurm requeues after a time limit or a preemption
    "slurm_job",  # the Slurm job (id, restarts) that started it last
    "train_loss",
    "train_acc",
    "num_params",
    "train_time_s",
    "samples_per_s",
    "device",
    "num_threads",
    "processes",
    "seed",
    "weights_sha256",
    "dataset",
    "num_classes",
    "input_shape",
    "split_sizes",
    "evaluated_on",
    "versions",
    "git_commit",
    "git_dirty",
    "command",
    "undrawn",  # the pictures that failed, a line each: the results stand, the command exits 1
)


@dataclass(frozen=True)
class Outcome:
    """A run's status and summary; `undrawn`: the pictures that failed (the run's results
    stand, but the command exits 1); `signal`: the signal that interrupted it, if any."""

    status: str
    summary: dict[str, Any]
    undrawn: tuple[str, ...] = ()
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """The shell's convention for a run a signal ended (130 Ctrl-C, 143 SIGTERM)."""
        if self.status == "interrupted" and self.signal is not None:
            return 128 + self.signal
        return EXIT_CODES[self.status] or (1 if self.undrawn else 0)


def new_summary() -> dict[str, Any]:
    return dict.fromkeys(SUMMARY_FIELDS)


def write_summary(run_dir: Path, summary: dict[str, Any], status: str, error: str | None) -> str:
    """Write summary.json and log the error, if any; returns the status, which cannot be
    `completed` when summary.json itself is not written (a full disk): the one line says so."""
    summary["status"] = status
    if error:
        summary["error"] = error
    try:
        write_json(run_dir / "summary.json", summary)
    except OSError as unwritten:
        error = "; ".join(filter(None, [error, describe_os_error(unwritten)]))
        status = "failed" if status == "completed" else status
        summary.update(status=status, error=error)  # what the caller reports, unwritten
    if error:
        log.error("error: %s", error)
    return status
