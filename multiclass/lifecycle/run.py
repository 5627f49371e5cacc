"""One run, start to finish: build the components from the config, train, test, and fill the
run directory. `execute` adds what a command line needs: a status, an exit code and a one-line
error that never loses what the run already wrote."""

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from multiclass.config import TrainerSettings, check_seed, trainer_settings
from multiclass.datasets import Splits
from multiclass.engine import (
    EpochMetrics,
    Evaluation,
    Examples,
    Progress,
    Task,
    batches_per_epoch,
    evaluate,
    fit,
    predict,
    samples_per_epoch,
)
from multiclass.errors import TrainingDiverged, UserError, describe_os_error
from multiclass.heads import build_loss
from multiclass.lifecycle.artifacts import (
    MetricsLog,
    lock_run_dir,
    weights_sha256,
    write_atomic,
    write_json,
)
from multiclass.lifecycle.checkpoint import save_checkpoint
from multiclass.lifecycle.outcome import Outcome
from multiclass.lifecycle.preprocess import save_preprocess
from multiclass.lifecycle.provenance import command_line, git_state, versions
from multiclass.lifecycle.resume import (
    LAST,
    already_complete,
    restore,
    resumed_config,
    save_last,
)
from multiclass.lifecycle.runtime import seed_everything
from multiclass.models import build_classifier
from multiclass.optimizers import build_optimizer
from multiclass.reporting import layer_rows, layers, plots
from multiclass.reporting.painter import painter
from multiclass.schedulers import build_schedule
from multiclass.tracking import Tracker, open_tracker

log = logging.getLogger("multiclass")

# summary.json's fields in the order a reader wants them; null until the run gets that far.
SUMMARY_FIELDS = (
    "status",
    "test_acc",
    "test_loss",
    "test_error",
    "best_val_acc",
    "best_epoch",
    "epochs",
    "stopped_early",
    "tested",
    "tested_epoch",
    "resumed_at",
    "train_loss",
    "train_acc",
    "num_params",
    "train_time_s",
    "samples_per_s",
    "device",
    "num_threads",
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
)


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
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = lock_run_dir(run_dir)
    except UserError as busy:  # another process writes there: leave its files alone
        log.error("error: %s", busy)
        return Outcome("failed", {"status": "failed", "error": str(busy)})
    with lock:
        return run_locked(cfg, run_dir)


def run_locked(cfg: DictConfig, run_dir: Path) -> Outcome:
    """`execute` once `run_dir` is this process's alone."""
    summary: dict[str, Any] = dict.fromkeys(SUMMARY_FIELDS)
    error = None
    tracker = Tracker()
    try:
        write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        tracker = open_tracker(cfg)
        train_and_test(cfg, run_dir, summary, tracker)
        status = "completed"
    except TrainingDiverged as diverged:
        status, error = "diverged", str(diverged)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
    except Exception as failure:
        status, error = "failed", one_line(failure)
        if not is_user_error(failure) and os.environ.get("HYDRA_FULL_ERROR") == "1":
            finish(run_dir, summary, status, error, tracker)
            raise
    status = finish(run_dir, summary, status, error, tracker)
    return Outcome(status, summary)


def finish(
    run_dir: Path, summary: dict[str, Any], status: str, error: str | None, tracker: Tracker
) -> str:
    """Write summary.json and log the error, if any, then tell the tracker, which gets the
    finished folder; returns the status, which cannot be `completed` when summary.json itself
    is not written (a full disk): the one line says so."""
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
    if tracker.reads_run_dir:  # it copies the folder: the pictures must be there first
        painter.wait()  # failures are reported where the command line reports them
    tracker.finish(summary, run_dir)
    return status


def is_user_error(error: BaseException) -> bool:
    return isinstance(error, UserError) or isinstance(error.__cause__, UserError)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line; an instantiation error names what it was building."""
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        cause = error.__cause__
        if isinstance(cause, UserError):
            return str(cause)
        target = str(error).splitlines()[0].removeprefix("Error in call to target ").rstrip(":")
        error = type(cause)(f"cannot build {target}: {cause}")
    if isinstance(error, OSError) and error.filename:  # e.g. no space left on device: <path>
        return describe_os_error(error)
    text = " ".join(str(error).split())
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"


@dataclass(frozen=True)
class Built:
    """What a run builds from its config, and how it saves the model's weights."""

    cfg: DictConfig
    splits: Splits
    model: nn.Module  # as built (the task may hold a compiled wrapper of it)
    task: Task

    # preprocess.pkl's record per folder: the transform never changes during a run, so it is
    # written once, not with every best.pt.
    preprocess_saved: dict[Path, dict[str, str]] = field(default_factory=dict, repr=False)

    def save_model(self, path: Path) -> None:
        """The weights, and a table's fitted transform beside them (its digest in the file)."""
        splits = self.splits
        if path.parent not in self.preprocess_saved:
            self.preprocess_saved[path.parent] = save_preprocess(path.parent, splits.preprocess)
        saved_with = self.preprocess_saved[path.parent]
        save_checkpoint(
            path,
            self.model,
            self.cfg.model,
            self.cfg.loss,
            splits.input_shape,
            splits.class_names,
            **saved_with,
        )


def build(cfg: DictConfig, settings: TrainerSettings, summary: dict[str, Any]) -> Built:
    """Device, data, loss, model (seeded), optimizer and lr schedule, as the config says."""
    runtime = instantiate(cfg.device)
    summary.update(seed=cfg.seed, device=str(runtime.device), num_threads=torch.get_num_threads())
    splits: Splits = instantiate(cfg.dataset).to(runtime.device)
    summary.update(describe_data(splits))
    criterion, head = build_loss(cfg.loss, splits.num_classes)
    seed_everything(cfg.seed)
    model = runtime.place(build_classifier(cfg.model, splits.input_shape, head))
    optimizer = build_optimizer(instantiate(cfg.optimizer), model.parameters(), runtime.device)
    batches = batches_per_epoch(len(splits.train), settings)
    schedule = build_schedule(cfg.get("scheduler"), optimizer, settings.epochs, batches)
    summary["num_params"] = sum(p.numel() for p in model.parameters())
    task = Task(runtime.compiled(model), criterion, head, optimizer, runtime, schedule)
    return Built(cfg, splits, model, task)


def start(cfg: DictConfig, run_dir: Path, built: Built, summary: dict[str, Any]) -> Progress:
    """A fresh start, or with `resume` set and a last.pt there, where that run stopped."""
    last = run_dir / LAST
    if not (cfg.get("resume") and last.exists()):
        return Progress(order=torch.Generator().manual_seed(cfg.seed))
    progress = restore(last, built.model, built.task)
    summary["resumed_at"] = [*(summary.get("resumed_at") or []), progress.epoch]
    log.info("resuming after epoch %d from %s", progress.epoch, last)
    return progress


def train_and_test(
    cfg: DictConfig, run_dir: Path, summary: dict[str, Any], tracker: Tracker
) -> None:
    """Build dataset, loss, model, optimizer and schedule; train; test; write every artefact."""
    check_seed(cfg.seed)
    settings = trainer_settings(cfg)
    built = build(cfg, settings, summary)
    progress = start(cfg, run_dir, built, summary)
    tracker.start(cfg, run_dir, progress.epoch)
    samples = samples_per_epoch(len(built.splits.train), settings)
    recorder = EpochRecorder(run_dir, summary, settings, samples, built, progress, tracker)
    fit(built.task, built.splits, settings, progress, recorder)
    if progress.stopped_early:
        log.info(
            "stopped early after epoch %d: no better val_acc since epoch %d",
            progress.epoch,
            progress.best_epoch,
        )
    test_and_save(run_dir, built, settings, progress, summary)


def test_and_save(
    run_dir: Path, built: Built, settings: TrainerSettings, progress: Progress, summary: dict
) -> None:
    """Test the weights `trainer.test_on` names, save them as model.pt, draw the pictures."""
    tested_epoch = progress.epoch
    if settings.test_on == "best" and progress.best_epoch is not None:
        content = torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
        built.model.load_state_dict(content["state_dict"])
        tested_epoch = progress.best_epoch
    splits, head = built.splits, built.task.head
    tested = evaluate(built.task, Examples.of(splits.test, head), settings.eval_batch_size)
    summary.update(test_acc=tested.acc, test_loss=tested.loss, test_error=1 - tested.acc)
    summary.update(tested="best" if tested_epoch != progress.epoch else "last")
    summary["tested_epoch"] = tested_epoch
    built.save_model(run_dir / "model.pt")
    summary["weights_sha256"] = weights_sha256(built.model)
    if built.cfg.plots:
        draw(run_dir, built.task, splits, progress.history, tested, settings.eval_batch_size)
        if settings.layer_stats:
            painter.draw(layer_rows.LAYERS_PNG, layer_rows.draw, run_dir)
    commit, dirty = git_state()
    summary.update(versions=versions(), git_commit=commit, git_dirty=dirty, command=command_line())
    log.info(
        "test_acc %.4f  test_loss %.4f  (%s, %d samples)  -> %s",
        tested.acc,
        tested.loss,
        splits.evaluated_on,
        len(splits.test),
        run_dir,
    )


def describe_data(splits: Splits) -> dict[str, Any]:
    sizes = {
        "train": len(splits.train),
        "val": 0 if splits.val is None else len(splits.val),
        "test": len(splits.test),
    }
    return {
        "dataset": splits.name,
        "num_classes": splits.num_classes,
        "input_shape": list(splits.input_shape),
        "split_sizes": sizes,
        "evaluated_on": splits.evaluated_on,
    }


class EpochRecorder:
    """Called as each epoch ends: a metrics.csv row (and the layers.csv rows), the running
    summary, best.pt when the epoch is the best so far, last.pt always (in that order: a kill
    between them loses nothing a resume needs), and a log line."""

    def __init__(
        self,
        run_dir: Path,
        summary: dict[str, Any],
        settings: TrainerSettings,
        samples_per_epoch: int,
        built: Built,
        progress: Progress,
        tracker: Tracker,
    ) -> None:
        self.run_dir = run_dir
        self.metrics = MetricsLog(run_dir / "metrics.csv")
        self.metrics.rewrite(progress.history)  # a resumed run's rows as last.pt saved them
        self.tracker = tracker
        self.layer_stats: layers.LayerStats | None = None
        if settings.layer_stats:
            probe = layers.LayerProbe(built.task, built.model, built.splits.train)
            self.layer_stats = layers.LayerStats(run_dir, probe, progress.epoch)
            if not progress.epoch:
                tracker.log_layers(0, self.layer_stats.first_rows)
        self.summary = summary
        self.settings = settings
        self.samples_per_epoch = samples_per_epoch
        self.built = built
        self.progress = progress
        self.last_saved = time.monotonic()
        self.train_time, self.timed_epochs = 0.0, 0
        self.summarise()

    def checkpoint_due(self, epoch: int) -> bool:
        """Every epoch by default; with `checkpoint_every_s`, once that long has passed, and
        always after the last (or an early-stopping) epoch."""
        interval = self.settings.checkpoint_every_s
        final = epoch == self.settings.epochs or self.progress.stopped_early
        return final or time.monotonic() - self.last_saved >= interval

    def __call__(self, row: EpochMetrics, improved: bool) -> None:
        self.metrics.append(row)
        self.tracker.log_epoch(row)
        if self.layer_stats and self.reported(row.epoch):
            self.tracker.log_layers(row.epoch, self.layer_stats(row.epoch))
        self.summarise()
        if improved:
            self.built.save_model(self.run_dir / "best.pt")
        if self.checkpoint_due(row.epoch):
            save_last(self.run_dir / LAST, self.built.model, self.built.task, self.progress)
            self.last_saved = time.monotonic()
        if self.reported(row.epoch):
            log.info("epoch %d/%d  %s", row.epoch, self.settings.epochs, describe_epoch(row))

    def reported(self, epoch: int) -> bool:
        """Every `log_every` epochs and the last: a log line and the layers.csv rows (a probe
        costs about 2 ms, as much as a whole epoch of the seeds' XOR and toy runs)."""
        return epoch % self.settings.log_every == 0 or epoch == self.settings.epochs

    def summarise(self) -> None:
        history, progress = self.progress.history, self.progress
        if len(history) != self.timed_epochs:  # a running total: runs can have 10,000 epochs
            self.train_time += sum(row.train_seconds for row in history[self.timed_epochs :])
            self.timed_epochs = len(history)
        train_time = self.train_time
        self.summary.update(
            epochs=len(history),
            train_loss=history[-1].train_loss if history else None,
            train_acc=history[-1].train_acc if history else None,
            train_time_s=train_time,
            samples_per_s=len(history) * self.samples_per_epoch / train_time if history else None,
            best_val_acc=progress.best_val_acc,
            best_epoch=progress.best_epoch,
            stopped_early=progress.stopped_early,
        )


def describe_epoch(row: EpochMetrics) -> str:
    text = f"train_loss {row.train_loss:.4f}  train_acc {row.train_acc:.4f}"
    if row.val_acc is not None:
        text += f"  val_loss {row.val_loss:.4f}  val_acc {row.val_acc:.4f}"
    return f"{text}  ({row.epoch_seconds:.2f} s)"


def draw(
    run_dir: Path,
    task: Task,
    splits: Splits,
    history: list[EpochMetrics],
    tested: Evaluation,
    batch_size: int,
) -> None:
    """The run's pictures; which ones depends on the shape of the inputs. The painter draws
    them from plain data, in a helper process where the command line started one."""
    labels = splits.test.y.cpu().numpy()
    predictions = tested.predictions.numpy()
    rows = [dataclasses.asdict(row) for row in history]
    painter.draw("curves.png", plots.curves, rows, run_dir / "curves.png")
    title = f"{splits.name}, {splits.evaluated_on} set: accuracy {tested.acc:.4f}"
    painter.draw(
        "confusion_matrix.png",
        plots.confusion_matrix,
        labels,
        predictions,
        splits.class_names,
        title,
        run_dir / "confusion_matrix.png",
    )
    if splits.input_shape == (2,):  # the model's predictions over the plane, drawn there
        points = splits.train.x.cpu().numpy()
        x0, x1 = plots.plane(points)
        response = predict(task, torch.from_numpy(plots.plane_points(x0, x1)), batch_size)
        painter.draw(
            "decision_boundary.png",
            plots.decision_boundary,
            points,
            splits.train.y.cpu().numpy(),
            x0,
            x1,
            response.numpy(),
            splits.class_names,
            run_dir / "decision_boundary.png",
        )
    if len(splits.input_shape) == 3:
        chosen = plots.grid_choice(labels, predictions)
        painter.draw(
            "predictions.png",
            plots.prediction_grid,
            splits.test.x[torch.as_tensor(chosen, device=splits.test.x.device)].cpu().numpy(),
            chosen,
            labels,
            predictions,
            splits.class_names,
            run_dir / "predictions.png",
        )
