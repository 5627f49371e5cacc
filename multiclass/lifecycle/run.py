"""One run, start to finish, in the process that called it: build the components from the
config, train, test, and let the callbacks fill the run directory. `execute` adds what a
command line needs: a status, an exit code and a one-line error that never loses what the
run already wrote. Under data parallel training (lifecycle.distributed) every process runs
this; rank 0 alone writes, tests and calls the callbacks but those every rank needs."""

import logging
import signal
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from multiclass.callbacks import RunState, build_callbacks
from multiclass.config import trainer_settings
from multiclass.engine import (
    EpochMetrics,
    Examples,
    Progress,
    Task,
    evaluate,
    fit,
    samples_per_epoch,
    stop_if_asked,
)
from multiclass.errors import (
    FailedIn,
    PeerLost,
    TrainingDiverged,
    TrainingInterrupted,
    UserError,
    full_tracebacks,
    is_user_error,
    one_line,
)
from multiclass.lifecycle import distributed
from multiclass.lifecycle.artifacts import (
    lock_run_dir,
    read_csv_rows,
    read_json,
    shown_path,
    weights_sha256,
    write_atomic,
    write_json,
)
from multiclass.lifecycle.build import build
from multiclass.lifecycle.outcome import Outcome, new_summary, write_summary
from multiclass.lifecycle.provenance import command_line, git_state, versions
from multiclass.lifecycle.resume import LAST, already_complete, restore, resumed_config
from multiclass.lifecycle.stopping import StopSignals
from multiclass.validation import check_config

log = logging.getLogger("multiclass")


def execute(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> Outcome:
    """Run `cfg` into `run_dir` and always leave a summary.json that says how it ended. With
    `resume` set, continue what `run_dir` holds (`overrides`: the command line's, which may
    change only how long it trains), or leave a completed run as it is."""
    if cfg.get("resume"):
        try:
            cfg = resumed_config(cfg, run_dir, overrides)
        except UserError as refused:  # nothing written: the run keeps what it has
            log.error("error: %s", refused)
            return Outcome("failed", {"status": "failed", "error": str(refused)})
        done = already_complete(run_dir, cfg.trainer.epochs)
        if done:
            log.info("%s completed %s epochs already: nothing to resume", run_dir, done["epochs"])
            return Outcome("completed", done)
    try:
        check_config(cfg)
    except UserError as bad:  # before anything is written: no run directory for a typo
        log.error("error: %s", bad)
        return Outcome("failed", {"status": "failed", "error": str(bad)})
    if distributed.rank() > 0:  # trains in step with rank 0, which writes the run directory
        with StopSignals().installed() as stop:
            return run_locked(cfg, run_dir, stop, leader=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = lock_run_dir(run_dir)
    except UserError as busy:  # another process writes there: leave its files alone
        log.error("error: %s", busy)
        return Outcome("failed", {"status": "failed", "error": str(busy)})
    with lock, StopSignals().installed() as stop:
        return run_locked(cfg, run_dir, stop)


def run_locked(cfg: DictConfig, run_dir: Path, stop: StopSignals, leader: bool = True) -> Outcome:
    """`execute` once `run_dir` is this process's alone. A fresh run records itself at once; a
    resume only once it has restored last.pt, so that a resume that fails or is refused before
    that leaves the run's files as they were. Not the `leader` (a data parallel rank > 0): the
    same training, without a file, a progress bar, the test or the recording callbacks. `stop`
    holds a signal that asked the run to stop, which training takes at its next safe point."""
    summary = new_summary()
    resuming = bool(cfg.get("resume")) and (run_dir / "config.yaml").exists()
    run = None
    error, signum = None, None
    try:
        if not resuming and leader:
            begin(cfg, run_dir, summary)
        settings = trainer_settings(cfg)
        callbacks = build_callbacks(cfg, settings)
        if not leader:
            settings, callbacks = replace(settings, progress=False), callbacks.every_rank()
        run = RunState(cfg, run_dir, settings, summary, callbacks, leader=leader)
        run.recording = not resuming
        train_and_test(run, stop)
        status = "completed"
    except TrainingDiverged as diverged:
        status, error = "diverged", str(diverged)
    except (TrainingInterrupted, KeyboardInterrupt) as interrupt:  # the second: Ctrl-C twice
        signum = getattr(interrupt, "signum", signal.SIGINT)
        how = "by the user" if signum == signal.SIGINT else f"by {signal.Signals(signum).name}"
        status, error = "interrupted", f"interrupted {how}"
    except Exception as failure:
        status, error = "failed", one_line(failure)
        if isinstance(raised(failure), PeerLost):  # another process of the run ended first
            error = distributed.PEER_FAILED
        distributed.end_if_orphaned()  # its launcher was SIGKILLed: nothing more is written
        if not is_user_error(failure) and full_tracebacks():
            if leader:
                finish(run, run_dir, summary, status, error, resuming)
            raise  # Python's own traceback, down to the line that failed
    if leader:
        status = finish(run, run_dir, summary, status, error, resuming)
    elif status == "failed":  # rank 0 says the rest, once
        log.error("error: %s", error)
    undrawn = tuple(run.undrawn) if run else ()
    return Outcome(status, summary, undrawn, signum)


def raised(failure: Exception) -> BaseException:
    """The error itself, where a callback's or a component's name was put in front of it."""
    return failure.__cause__ if isinstance(failure, FailedIn) and failure.__cause__ else failure


def begin(cfg: DictConfig, run_dir: Path, summary: dict) -> None:
    """config.yaml, and a summary.json that says `running`: a run killed without a chance to
    write its own (SIGKILL, the out-of-memory killer) is still known for what it was."""
    write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json(run_dir / "summary.json", {**summary, "status": "running"})


def finish(
    run: RunState | None,
    run_dir: Path,
    summary: dict,
    status: str,
    error: str | None,
    resuming: bool,
) -> str:
    """summary.json, then `on_run_end` (a tracker copies the finished folder); a resume that
    ended before it restored last.pt only says why, and leaves the run's record alone."""
    if resuming and not (run and run.recording):
        summary.update(status=status, error=error)
        log.error("error: %s", error)
        return status
    status = write_summary(run_dir, summary, status, error)
    if run is not None:
        run.callbacks.end(run)
    return status


class RunListener:
    """What the training loop tells the run: each event to its callbacks, and, at each safe
    point, whether a signal asked it to stop (all processes agreeing)."""

    def __init__(self, run: RunState, stop: StopSignals) -> None:
        self.run, self.stop = run, stop

    def fire(self, event: str, task: Task, *args: Any) -> None:
        self.run.callbacks.fire(event, self.run, *args)

    def stop_requested(self) -> int | None:
        return self.stop.agreed()


def train_and_test(run: RunState, stop: StopSignals) -> None:
    """Build dataset, loss, model, optimizer and schedule; train; test; save model.pt."""
    run.callbacks.fire("on_run_start", run)
    restoring = not run.recording and (run.run_dir / LAST).exists()  # last.pt: every weight
    run.built = build(run.cfg, run.settings, run.summary, restoring)
    run.progress = start(run)
    samples = samples_per_epoch(len(run.built.splits.train), run.settings)
    running = RunningSummary(run, samples)
    run.callbacks.fire("on_fit_start", run)

    def on_epoch_end(row: EpochMetrics, improved: bool) -> None:
        try:  # a callback that fails does so once every callback has recorded the epoch
            run.callbacks.fire("on_epoch_end", run, row, improved)
        finally:
            running.summarise()
            if run.settings.reports(row.epoch):
                described = describe_epoch(row, run.settings.monitor)
                log.info("epoch %d/%d  %s", row.epoch, run.settings.epochs, described)

    listener = RunListener(run, stop)
    stop_if_asked(listener)  # a signal while the run was built
    fit(run.built.task, run.built.splits, run.settings, run.progress, on_epoch_end, listener)
    run.callbacks.fire("on_fit_end", run)
    stop_if_asked(listener)  # a signal since the last epoch's record: no test
    if not run.leader:
        return
    if run.progress.stopped_early:
        log.info(
            "stopped early after epoch %d: no better %s since epoch %d",
            run.progress.epoch,
            run.progress.monitor,
            run.progress.best_epoch,
        )
    test_and_save(run)


def start(run: RunState) -> Progress:
    """A fresh start, or with `resume` set, where the run stopped: its last.pt restored, and
    only then its config.yaml and a `running` summary.json written."""
    monitor = run.settings.monitor
    fresh = Progress(order=torch.Generator().manual_seed(run.cfg.seed), monitor=monitor)
    if run.recording:
        return fresh
    last = run.run_dir / LAST
    status = (read_json(run.run_dir / "summary.json") or {}).get("status")  # how it stopped
    if last.exists():
        progress = restore(last, run.built.model, run.built.task, monitor)
        run.summary["resumed_at"] = [progress.epoch]
        log.info(
            "resuming after epoch %d from %s%s", progress.epoch, shown_path(last), killed(status)
        )
    else:
        progress = fresh
        start_over(run.run_dir, status)
    if run.leader:
        begin(run.cfg, run.run_dir, run.summary)
    run.recording = True
    return progress


def killed(status: str | None) -> str:
    """What a run left `running` says: it was killed with no chance to record it."""
    if status != "running":
        return ""
    return (
        " (it was killed without warning: SIGKILL, which the out-of-memory killer sends, or a"
        " crash; `dmesg` or the scheduler's log says which)"
    )


def start_over(run_dir: Path, status: str | None) -> None:
    """A run without last.pt can only start again from epoch 1: said in a line, and refused
    for a completed run, whose results it would replace."""
    epochs = len(read_csv_rows(run_dir / "metrics.csv"))
    if status == "completed":
        raise UserError(
            f"cannot resume {run_dir}: it completed {epochs} epoch(s) but there is no {LAST} to"
            f" go on from; `multiclass-rerun {run_dir}` trains the run again from the start"
        )
    if epochs:
        log.warning(
            "warning: %s stopped before it saved its first %s: the %d epoch(s) in metrics.csv"
            " are trained again from epoch 1",
            run_dir,
            LAST,
            epochs,
        )
    else:
        log.info("%s finished no epoch before it stopped: starting it from epoch 1", run_dir)


def test_and_save(run: RunState) -> None:
    """Test the weights `trainer.test_on` names, save them as model.pt, tell the callbacks."""
    built, progress, summary = run.built, run.progress, run.summary
    tested_epoch = progress.epoch
    if run.settings.test_on == "best" and progress.best_epoch is not None:
        best = run.run_dir / "best.pt"
        if not best.exists():
            raise UserError("trainer.test_on=best needs best.pt: keep callbacks.checkpoints")
        content = torch.load(best, map_location="cpu", weights_only=True)
        built.result.load_state_dict(content["state_dict"])
        tested_epoch = progress.best_epoch
    splits = built.splits
    run.callbacks.fire("on_test_start", run)
    test = Examples.of(splits.test, built.task.head)
    tested = evaluate(built.task, test, run.settings.eval_batch_size)
    summary.update(test_acc=tested.acc, test_loss=tested.loss, test_error=1 - tested.acc)
    summary.update(test_macro_f1=tested.macro_f1, test_balanced_acc=tested.balanced_acc)
    summary.update(tested="best" if tested_epoch != progress.epoch else "last")
    summary["tested_epoch"] = tested_epoch
    built.save_model(run.run_dir / "model.pt")
    summary["weights_sha256"] = weights_sha256(built.result)
    run.callbacks.fire("on_test_end", run, tested)
    commit, dirty = git_state()
    summary.update(versions=versions(), git_commit=commit, git_dirty=dirty, command=command_line())
    log.info(
        "test_acc %.4f  test_loss %.4f  (%s, %d samples)  -> %s",
        tested.acc,
        tested.loss,
        splits.evaluated_on,
        len(splits.test),
        shown_path(run.run_dir),
    )


class RunningSummary:
    """The summary's running figures after each epoch: epochs, the last losses, the best
    epoch by the monitored figure, and the training time as a running total (runs can have
    10,000 epochs)."""

    def __init__(self, run: RunState, samples_per_epoch: int) -> None:
        self.run = run
        self.samples_per_epoch = samples_per_epoch
        self.seconds, self.timed_epochs = 0.0, 0
        self.summarise()

    def summarise(self) -> None:
        progress = self.run.progress
        history = progress.history
        if len(history) != self.timed_epochs:
            self.seconds += sum(row.train_seconds for row in history[self.timed_epochs :])
            self.timed_epochs = len(history)
        last = history[-1] if history else None
        self.run.summary.update(
            epochs=len(history),
            train_loss=last.train_loss if last else None,
            train_acc=last.train_acc if last else None,
            train_time_s=self.seconds,
            samples_per_s=len(history) * self.samples_per_epoch / self.seconds if last else None,
            best_val_acc=progress.best_val_acc,
            best_epoch=progress.best_epoch,
            monitor=progress.monitor,
            best_score=progress.best_score,
            stopped_early=progress.stopped_early,
        )


def describe_epoch(row: EpochMetrics, monitor: str = "val_acc") -> str:
    """The epoch's log line: losses and accuracies, and the monitored figure if it is another."""
    text = f"train_loss {row.train_loss:.4f}  train_acc {row.train_acc:.4f}"
    if row.val_acc is not None:
        text += f"  val_loss {row.val_loss:.4f}  val_acc {row.val_acc:.4f}"
        if monitor not in ("val_loss", "val_acc"):
            text += f"  {monitor} {getattr(row, monitor):.4f}"
    return f"{text}  ({row.epoch_seconds:.2f} s)"
