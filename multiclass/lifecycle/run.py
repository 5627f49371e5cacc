"""One run, start to finish, in the process that called it (`Run`): build the components from
the config, train, test, and let the callbacks fill the run directory; with what a command
line needs: a status, an exit code and a one-line error that never loses what the run
already wrote. Under data parallel training (lifecycle.distributed) every process runs it;
rank 0 alone writes, tests and calls the callbacks but those every rank needs."""

import logging
import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from multiclass.callbacks import Callback, Callbacks, RunState, build_callbacks
from multiclass.callbacks.training import step_callbacks
from multiclass.config import TrainerSettings, trainer_settings
from multiclass.engine import (
    EpochMetrics,
    Examples,
    Progress,
    evaluate,
    fit,
    samples_per_epoch,
    seeded_order,
    stop_if_asked,
)
from multiclass.errors import (
    FailedIn,
    PeerLost,
    TrainingDiverged,
    TrainingInterrupted,
    TrialPruned,
    UserError,
    full_tracebacks,
    is_user_error,
    one_line,
)
from multiclass.lifecycle import distributed
from multiclass.lifecycle.build import build
from multiclass.lifecycle.calibrate import calibrated, check_calibratable, record_calibration
from multiclass.lifecycle.distributed import Processes
from multiclass.lifecycle.resume import already_complete, resumed_config
from multiclass.lifecycle.stopping import StopSignals, stopped_how
from multiclass.records.artifacts import (
    lock_run_dir,
    read_csv_rows,
    read_json,
    shown_path,
    weights_sha256,
    write_atomic,
    write_json,
)
from multiclass.records.last_checkpoint import LAST, restore
from multiclass.records.outcome import Outcome, new_summary, write_summary
from multiclass.records.provenance import command_line, git_state, versions
from multiclass.records.tries import started
from multiclass.validation import check_config

log = logging.getLogger("multiclass")


def execute(
    cfg: DictConfig,
    run_dir: Path,
    overrides: Sequence[str] = (),
    callbacks: Sequence[Callback] = (),
    stop_asked: Callable[[], str | None] | None = None,
) -> Outcome:
    """Run `cfg` into `run_dir` and always leave a summary.json that says how it ended. With
    `resume` set, continue what `run_dir` holds (`overrides`: the command line's, which may
    change only how long it trains), or leave a completed run as it is. `callbacks`: those
    the command adds to the config's, which its config.yaml does not name (a search trial's
    pruning). `stop_asked`: why the run should stop at its next safe point, without a signal
    (a sweep's fail-fast record), or None."""
    return Run(cfg, run_dir, overrides, callbacks, stop_asked).execute()


class Run:
    """One run, its story in order: `execute` checks the config and takes the run directory,
    then `build`, `fit` and `test`, and `finish` records how it ended. Its state says what
    differs between runs: `resuming` (it continues what run_dir holds, and writes nothing
    until it has restored last.pt: `recording`), `leader` (the process that writes; a data
    parallel rank > 0 trains in step with it, without files, a progress bar or the test),
    `stop` (a signal that asked it to stop, which training takes at its next safe point), and
    `state`, what its callbacks see."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        overrides: Sequence[str] = (),
        callbacks: Sequence[Callback] = (),
        stop_asked: Callable[[], str | None] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.overrides = cfg, run_dir, overrides
        self.added = list(callbacks)
        self.processes = Processes.current()
        self.leader = self.processes.leader
        self.resuming = bool(cfg.get("resume")) and (run_dir / "config.yaml").exists()
        self.recording = not self.resuming
        self.stop = StopSignals(self.processes, stop_asked)
        self.summary = new_summary()
        self.state: RunState | None = None

    def execute(self) -> Outcome:
        """The run, or why it did not start: a resume refused or already complete, a bad
        value, a run directory another process writes to (each before anything is written)."""
        try:
            if self.cfg.get("resume"):
                self.cfg = resumed_config(self.cfg, self.run_dir, self.overrides)
                done = already_complete(self.run_dir, self.cfg.trainer.epochs)
                if done:
                    epochs = done["epochs"]
                    log.info(
                        "%s completed %s epochs already: nothing to resume", self.run_dir, epochs
                    )
                    return Outcome("completed", done)
            check_config(self.cfg)
            lock = self.lock()
        except UserError as refused:  # nothing written: the run directory keeps what it has
            log.error("error: %s", refused)
            return Outcome("failed", {"status": "failed", "error": str(refused)})
        with lock, self.stop.installed():
            return self.run()

    def lock(self) -> AbstractContextManager:
        """The run directory, this process's alone while it runs (the leader's: the other
        ranks write nothing there)."""
        if not self.leader:
            return nullcontext()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return lock_run_dir(self.run_dir)

    def run(self) -> Outcome:
        """Build, fit and test, and the record of how it ended, whatever ended it."""
        error, signum = None, None
        try:
            if self.recording and self.leader:
                self.begin()
            self.state = self.callbacks_state()
            self.build()
            self.fit()
            if self.leader:
                self.test()
            status = "completed"
        except TrainingDiverged as diverged:
            status, error = "diverged", str(diverged)
        except (TrainingInterrupted, KeyboardInterrupt) as interrupt:  # the second: Ctrl-C twice
            signum = getattr(interrupt, "signum", signal.SIGINT)
            status, error = "interrupted", f"interrupted {stopped_how(signum)}"
            if self.stop.reason:  # no signal: e.g. another job's failure stopped the sweep
                signum, error = None, f"interrupted as {self.stop.reason}"
        except TrialPruned as pruned:  # not a failure: the search tells its study so
            status = "pruned"
            log.info("%s", pruned)
        except Exception as failure:
            status, error = "failed", one_line(failure)
            if isinstance(raised(failure), PeerLost):  # another process of the run ended first
                error = distributed.PEER_FAILED
            self.processes.end_if_orphaned()  # its launcher was SIGKILLed: nothing is written
            if not is_user_error(failure) and full_tracebacks():
                if self.leader:
                    self.finish(status, error)
                raise  # Python's own traceback, down to the line that failed
        status = self.finish(status, error)
        undrawn = tuple(self.state.undrawn) if self.state else ()
        return Outcome(status, self.summary, undrawn, signum)

    def callbacks_state(self) -> RunState:
        """What the callbacks see of the run, with the callbacks its config lists and those
        its step options ask for (on a rank > 0: those every rank needs)."""
        settings = trainer_settings(self.cfg)
        callbacks = Callbacks(build_callbacks(self.cfg) + step_callbacks(settings) + self.added)
        if not self.leader:
            settings, callbacks = replace(settings, progress=False), callbacks.every_rank()
        return RunState(self.cfg, self.run_dir, settings, self.summary, callbacks)

    def begin(self) -> None:
        """config.yaml, and a summary.json that says `running`: a run killed without a chance
        to write its own (SIGKILL, the out-of-memory killer) is still known for what it was;
        with this start counted (tries, and requeues: records.tries)."""
        previous = (read_json(self.run_dir / "summary.json") or {}) if self.resuming else None
        self.summary.update(started(previous))
        write_atomic(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.cfg, resolve=True))
        write_json(self.run_dir / "summary.json", {**self.summary, "status": "running"})
        self.recording = True

    def build(self) -> None:
        """Dataset, loss, model, optimizer and schedule, then where training starts: afresh,
        or where a resumed run stopped (its last.pt holds every weight, so the model's own
        weights file is not read)."""
        state = self.state
        state.callbacks.fire("on_run_start", state)
        restoring = self.resuming and (self.run_dir / LAST).exists()
        state.built = build(self.cfg, state.settings, self.summary, self.processes, restoring)
        check_calibratable(state.settings, state.built.splits)
        state.progress = self.start()

    def start(self) -> Progress:
        """A fresh start, or with `resume` set, where the run stopped: its last.pt restored,
        and only then its config.yaml and a `running` summary.json written."""
        state = self.state
        monitor = state.settings.monitor
        fresh = Progress(order=torch.Generator().manual_seed(self.cfg.seed), monitor=monitor)
        if not self.resuming:
            return fresh
        last = self.run_dir / LAST
        status = (read_json(self.run_dir / "summary.json") or {}).get("status")  # how it stopped
        if last.exists():
            built = state.built
            samples = len(built.splits.train)
            epochs = state.settings.epochs
            progress = restore(last, built.model, built.task, monitor, samples, epochs)
            self.summary["resumed_at"] = [progress.epoch]  # the epochs completed
            log.info(
                "resuming %s from %s%s", resumed_where(progress), shown_path(last), killed(status)
            )
            train = Examples.of(built.splits.train, built.task.head, built.splits.sampler)
            augmented = built.task.augment is not None
            keep_seeded_order(progress, self.cfg.seed, train, state.settings, augmented)
        else:
            progress = fresh
            start_over(self.run_dir, status)
        if self.leader:
            self.begin()
        self.recording = True
        return progress

    def fit(self) -> None:
        """Train up to trainer.epochs, the callbacks recording each epoch; stopped at a safe
        point by a signal, early by early stopping, or by a diverging loss."""
        state = self.state
        samples = samples_per_epoch(len(state.built.splits.train), state.settings)
        running = RunningSummary(state, samples)
        state.callbacks.fire("on_fit_start", state)

        def on_epoch_end(row: EpochMetrics, improved: bool) -> None:
            try:  # a callback that fails does so once every callback has recorded the epoch
                state.callbacks.fire("on_epoch_end", state, row, improved)
            finally:
                running.summarise()
                if state.settings.reports(row.epoch):
                    described = describe_epoch(row, state.settings.monitor)
                    log.info("epoch %d/%d  %s", row.epoch, state.settings.epochs, described)

        listener = RunListener(state, self.stop)
        stop_if_asked(listener)  # a signal while the run was built
        built = state.built
        fit(built.task, built.splits, state.settings, state.progress, on_epoch_end, listener)
        state.callbacks.fire("on_fit_end", state)
        stop_if_asked(listener)  # a signal since the last epoch's record: no test
        progress = state.progress
        if progress.stopped_early and self.leader:
            log.info(
                "stopped early after epoch %d: no better %s since epoch %d",
                progress.epoch,
                progress.monitor,
                progress.best_epoch,
            )

    def test(self) -> None:
        """Test the weights `trainer.test_on` names (with trainer.calibrate, tempered by the
        temperature fitted for them), save them as model.pt, tell the callbacks."""
        state = self.state
        built, progress, summary = state.built, state.progress, self.summary
        tested_epoch = progress.epoch
        if state.settings.test_on == "best" and progress.best_epoch is not None:
            best = self.run_dir / "best.pt"
            if not best.exists():
                raise UserError("trainer.test_on=best needs best.pt: keep callbacks.checkpoints")
            content = torch.load(best, map_location="cpu", weights_only=True)
            built.result.load_state_dict(content["state_dict"])
            tested_epoch = progress.best_epoch
        splits = built.splits
        built = state.built = calibrated(built, state.settings, summary)  # the tested weights'
        state.callbacks.fire("on_test_start", state)
        test = Examples.of(splits.test, built.task.head)
        tested = evaluate(built.task, test, state.settings.eval_batch_size)
        record_calibration(summary, tested, test, built, state.settings)
        summary.update(test_acc=tested.acc, test_loss=tested.loss, test_error=1 - tested.acc)
        summary.update(test_macro_f1=tested.macro_f1, test_balanced_acc=tested.balanced_acc)
        summary.update(tested="best" if tested_epoch != progress.epoch else "last")
        summary["tested_epoch"] = tested_epoch
        built.save_model(self.run_dir / "model.pt")
        summary["weights_sha256"] = weights_sha256(built.result)
        state.callbacks.fire("on_test_end", state, tested)
        commit, dirty = git_state()
        summary.update(versions=versions(), git_commit=commit, git_dirty=dirty)
        summary["command"] = command_line()
        log.info(
            "test_acc %.4f  test_loss %.4f  (%s, %d samples)  -> %s",
            tested.acc,
            tested.loss,
            splits.evaluated_on,
            len(splits.test),
            shown_path(self.run_dir),
        )

    def finish(self, status: str, error: str | None) -> str:
        """summary.json, then `on_run_end` (a tracker copies the finished folder); a resume
        that ended before it restored last.pt only says why, and leaves the run's record
        alone; a rank > 0 says only its own failure (rank 0 says the rest, once)."""
        if not self.leader:
            if status == "failed":
                log.error("error: %s", error)
            return status
        if not self.recording:
            self.summary.update(status=status, error=error)
            log.error("error: %s", error)
            return status
        status = write_summary(self.run_dir, self.summary, status, error)
        if self.state is not None:
            self.state.callbacks.end(self.state)
        return status


def raised(failure: Exception) -> BaseException:
    """The error itself, where a callback's or a component's name was put in front of it."""
    return failure.__cause__ if isinstance(failure, FailedIn) and failure.__cause__ else failure


class RunListener:
    """What the training loop tells the run: each event to its callbacks, and, at each safe
    point, whether a signal asked it to stop (all processes agreeing)."""

    def __init__(self, state: RunState, stop: StopSignals) -> None:
        self.state, self.stop = state, stop

    def fire(self, event: str, *args: Any) -> None:
        self.state.callbacks.fire(event, self.state, *args)

    def stop_requested(self) -> int | None:
        return self.stop.agreed()


def resumed_where(progress: Progress) -> str:
    """Where a resume goes on: after an epoch, or in one that a stop left part-way."""
    partial = progress.partial
    if partial is None:
        return f"after epoch {progress.epoch}"
    return f"after batch {partial.batches} of epoch {partial.epoch}"


def keep_seeded_order(
    progress: Progress, seed: int, train: Examples, settings: TrainerSettings, augmented: bool
) -> None:
    """Check the batch order a resume restored (the generator's state, and an epoch in
    progress's permutation) against the one the run's seed draws for as far as it got
    (engine.seeded_order); where they differ, say so and go on in the seed's. Why: a run
    requeued on Slurm once trained on in another order than its uninterrupted twin, with no
    cause found (docs/sweeps.md); an order drawn afresh from the seed cannot be one a saved
    state got wrong."""
    partial = progress.partial
    batches = None if partial is None else partial.batches
    order, permutation = seeded_order(seed, train, settings, augmented, progress.epoch, batches)
    same = torch.equal(order.get_state(), progress.order.get_state())
    if partial is not None and not torch.equal(permutation, partial.permutation):
        same, progress.partial = False, replace(partial, permutation=permutation)
    if not same:
        log.warning(
            "warning: the batch order in last.pt is not the one seed %d draws %s: training"
            " goes on in the seed's order",
            seed,
            resumed_where(progress),
        )
        progress.order = order


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
