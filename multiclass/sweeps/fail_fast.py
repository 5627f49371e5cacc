"""A sweep's fail-fast record (`sweep.fail_fast=true`): the first job that fails on its config
or data (status `failed` or `diverged`) writes `fail_fast.json` at the sweep root, {"job": its
directory's name, "error": its one-line error}, once: the first writer wins, and no later job
overwrites it. The rest of the sweep reads it: a job that starts after it exists does not
train (it logs one `not started:` line, which the sweep report reads as its status), a running
one ends `interrupted` at its next safe point, the Slurm launcher cancels what is left (and
writes the `not started` record of a job it cancelled before it started), the search asks for
no more trials. A new sweep into the same folder forgets an earlier sweep's record as it
starts (commands.train.SweepReport).

Without fail_fast, a job that fails still says so in one line as it ends, naming itself: the
sweep goes on, and its report comes at the end."""

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from multiclass.records.artifacts import read_json

log = logging.getLogger(__name__)

RECORD = "fail_fast.json"
NOT_STARTED = "not started"  # the report's status of a job the record kept from training
FAILURES = ("failed", "diverged")  # a job's own failure: its config or data, not a signal
LOOK_EVERY_S = 1.0  # a running job looks for the record at most this often (a stat on NFS costs)


def record_failure(sweep_dir: Path, job: str, error: str) -> bool:
    """Write the record unless a job wrote it first; True if this call wrote it. Whole or not
    at all: written beside it, then hard-linked to its name, which fails where one exists."""
    content = json.dumps({"job": job, "error": error}) + "\n"
    temporary = sweep_dir / f".{RECORD}.{uuid.uuid4().hex}.tmp"
    temporary.write_text(content)
    try:
        os.link(temporary, sweep_dir / RECORD)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: created only where there is none
        with contextlib.suppress(FileExistsError), open(sweep_dir / RECORD, "x") as file:
            file.write(content)
            return True
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def stop_record(sweep_dir: Path) -> dict[str, Any] | None:
    """The sweep's record, or None while no job has failed (or fail_fast is off)."""
    return read_json(sweep_dir / RECORD)


def forget(sweep_dir: Path) -> None:
    """An earlier sweep's record, removed as a new sweep into the same folder starts: else it
    would stop the new one's jobs before they train."""
    (sweep_dir / RECORD).unlink(missing_ok=True)


def write_not_started(run_dir: Path, config: DictConfig, why: str) -> None:
    """What a job that the record kept from training leaves, written for one that never
    started (the Slurm launcher cancelled it while it waited): Hydra's record of its config,
    as its own start would have written it, and the `not started:` line the report reads."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    task = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    OmegaConf.save(task, hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": config.hydra}), hydra_dir / "hydra.yaml")
    with open(run_dir / "train.log", "a") as log_file:
        log_file.write(f"not started: {why}\n")


def stopped_by(record: dict[str, Any]) -> str:
    """Why the rest of the sweep stops, as the jobs it stops say it."""
    return f"job {record.get('job')} failed (sweep.fail_fast)"


class RecordWatch:
    """A running job's stop source (lifecycle.stopping.StopSignals asks it at each safe point):
    why the job should stop, once the record exists. It looks at most every LOOK_EVERY_S, so
    that a step costs no file system call."""

    def __init__(self, sweep_dir: Path, every_s: float = LOOK_EVERY_S) -> None:
        self.sweep_dir, self.every_s = sweep_dir, every_s
        self.looked = -every_s

    def __call__(self) -> str | None:
        now = time.monotonic()
        if now - self.looked < self.every_s:
            return None
        self.looked = now
        record = stop_record(self.sweep_dir)
        return stopped_by(record) if record else None


@dataclass(frozen=True)
class SweepJob:
    """One job of a sweep, as fail-fast sees it: its sweep's root, its name there (its
    directory's path below the root: `3`), and whether sweep.fail_fast is on."""

    sweep_dir: Path
    name: str
    fail_fast: bool

    @classmethod
    def of(cls, sweep_dir: Path, run_dir: Path, fail_fast: bool) -> "SweepJob":
        try:
            name = str(run_dir.resolve().relative_to(sweep_dir.resolve()))
        except ValueError:  # a hydra.sweep.subdir outside the sweep's folder
            name = run_dir.name
        return cls(sweep_dir, name, fail_fast)

    def why_not_start(self) -> str | None:
        """Why this job must not train: another job failed and stopped the sweep."""
        record = stop_record(self.sweep_dir) if self.fail_fast else None
        return stopped_by(record) if record else None

    def stop_source(self) -> RecordWatch | None:
        """What stops this job while it trains, once another job failed; None without
        fail_fast."""
        return RecordWatch(self.sweep_dir) if self.fail_fast else None

    def ended(self, status: str, error: str | None) -> None:
        """A job that failed on its config or data says so in one line, naming itself, as it
        ends; with fail_fast, the first one's record stops the sweep."""
        if status not in FAILURES:
            return
        error = " ".join(str(error or status).split())
        if not self.fail_fast:
            log.error("job %s %s: %s; the sweep goes on", self.name, status, error)
        elif record_failure(self.sweep_dir, self.name, error):
            log.error("job %s %s: %s; sweep.fail_fast stops the sweep", self.name, status, error)
        else:
            first = stopped_by(stop_record(self.sweep_dir) or {})
            log.error(
                "job %s %s: %s; the sweep was stopping already: %s", self.name, status, error, first
            )


def stop_account(record: dict[str, Any], jobs: Sequence[tuple[str, str]]) -> str:
    """The sweep report's line for a sweep that fail-fast stopped: the job that failed and
    why, and the jobs (name, status) that did not start or were interrupted."""
    failed = f"job {record.get('job')} failed: {record.get('error')}"
    stopped = []
    for status in (NOT_STARTED, "interrupted"):
        names = [name for name, has in jobs if has == status]
        if names:
            stopped.append(f"{len(names)} {status} ({', '.join(names)})")
    return f"sweep.fail_fast stopped the sweep: {failed}; " + (
        ", ".join(stopped) if stopped else "no other job was stopped"
    )
