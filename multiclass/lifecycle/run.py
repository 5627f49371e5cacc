"""One run, start to finish: build the components from the config, train, test, and fill the
run directory. `execute` adds what a command line needs: a status, an exit code and a one-line
error that never loses what the run already wrote."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from multiclass.config import TrainerSettings, trainer_settings
from multiclass.datasets import Splits
from multiclass.engine import (
    EpochMetrics,
    Evaluation,
    Examples,
    Task,
    evaluate,
    fit,
    predict,
    samples_per_epoch,
)
from multiclass.errors import TrainingDiverged, UserError
from multiclass.heads import build_loss
from multiclass.lifecycle.artifacts import MetricsLog, weights_sha256, write_atomic, write_json
from multiclass.lifecycle.checkpoint import save_checkpoint
from multiclass.lifecycle.provenance import git_commit, versions
from multiclass.lifecycle.runtime import seed_everything
from multiclass.models import build_classifier
from multiclass.optimizers import build_optimizer
from multiclass.reporting import plots

log = logging.getLogger("multiclass")

EXIT_CODES = {"completed": 0, "failed": 1, "diverged": 2, "interrupted": 130}

# summary.json's fields in the order a reader wants them; null until the run gets that far.
SUMMARY_FIELDS = (
    "status",
    "test_acc",
    "test_loss",
    "test_error",
    "best_val_acc",
    "best_epoch",
    "epochs",
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
)


@dataclass(frozen=True)
class Outcome:
    status: str
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def execute(cfg: DictConfig, run_dir: Path) -> Outcome:
    """Run `cfg` into `run_dir` and always leave a summary.json that says how it ended."""
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = dict.fromkeys(SUMMARY_FIELDS)
    error = None
    try:
        write_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        train_and_test(cfg, run_dir, summary)
        status = "completed"
    except TrainingDiverged as diverged:
        status, error = "diverged", str(diverged)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
    except Exception as failure:
        status, error = "failed", one_line(failure)
        if not is_user_error(failure) and os.environ.get("HYDRA_FULL_ERROR") == "1":
            finish(run_dir, summary, status, error)
            raise
    finish(run_dir, summary, status, error)
    return Outcome(status, summary)


def finish(run_dir: Path, summary: dict[str, Any], status: str, error: str | None) -> None:
    summary["status"] = status
    if error:
        summary["error"] = error
        log.error("error: %s", error)
    write_json(run_dir / "summary.json", summary)


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
    text = " ".join(str(error).split())
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}"


def train_and_test(cfg: DictConfig, run_dir: Path, summary: dict[str, Any]) -> None:
    """Build dataset, loss, model and optimizer; train; test; write every artefact."""
    settings = trainer_settings(cfg)
    runtime = instantiate(cfg.device)
    summary.update(seed=cfg.seed, device=str(runtime.device), num_threads=torch.get_num_threads())
    splits: Splits = instantiate(cfg.dataset).to(runtime.device)
    summary.update(describe_data(splits))
    criterion, head = build_loss(cfg.loss, splits.num_classes)
    seed_everything(cfg.seed)
    model = runtime.place(build_classifier(cfg.model, splits.input_shape, head))
    optimizer = build_optimizer(instantiate(cfg.optimizer), model.parameters(), runtime.device)
    task = Task(runtime.compiled(model), criterion, head, optimizer, runtime)
    summary["num_params"] = sum(p.numel() for p in model.parameters())

    samples = samples_per_epoch(len(splits.train), settings)
    recorder = EpochRecorder(run_dir / "metrics.csv", summary, settings, samples)
    history = fit(task, splits, settings, cfg.seed, recorder)
    tested = evaluate(task, Examples.of(splits.test, head), settings.eval_batch_size)
    summary.update(test_acc=tested.acc, test_loss=tested.loss, test_error=1 - tested.acc)
    save_checkpoint(
        run_dir / "model.pt", model, cfg.model, cfg.loss, splits.input_shape, splits.class_names
    )
    summary["weights_sha256"] = weights_sha256(model)
    if cfg.plots:
        draw(run_dir, task, splits, history, tested, settings.eval_batch_size)
    summary.update(versions=versions(), git_commit=git_commit())
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
    """Called as each epoch ends: a metrics.csv row, a log line, and the running summary."""

    def __init__(
        self, path: Path, summary: dict[str, Any], settings: TrainerSettings, samples_per_epoch: int
    ) -> None:
        self.metrics = MetricsLog(path)
        self.summary = summary
        self.epochs = settings.epochs
        self.log_every = settings.log_every
        self.samples_per_epoch = samples_per_epoch
        summary.update(epochs=0, train_time_s=0.0)

    def __call__(self, row: EpochMetrics) -> None:
        self.metrics.append(row)
        summary = self.summary
        summary.update(epochs=row.epoch, train_loss=row.train_loss, train_acc=row.train_acc)
        summary["train_time_s"] += row.train_seconds
        summary["samples_per_s"] = row.epoch * self.samples_per_epoch / summary["train_time_s"]
        best = summary["best_val_acc"]
        if row.val_acc is not None and (best is None or row.val_acc > best):
            summary.update(best_val_acc=row.val_acc, best_epoch=row.epoch)
        if row.epoch % self.log_every == 0 or row.epoch == self.epochs:
            log.info("epoch %d/%d  %s", row.epoch, self.epochs, describe_epoch(row))


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
    """The run's pictures; which ones depends on the shape of the inputs."""
    labels = splits.test.y.cpu().numpy()
    predictions = tested.predictions.numpy()
    plots.curves(history, run_dir / "curves.png")
    title = f"{splits.name}, {splits.evaluated_on} set: accuracy {tested.acc:.4f}"
    plots.confusion_matrix(
        labels, predictions, splits.class_names, title, run_dir / "confusion_matrix.png"
    )
    if splits.input_shape == (2,):
        plots.decision_boundary(
            splits.train.x.cpu().numpy(),
            splits.train.y.cpu().numpy(),
            lambda grid: predict(task, torch.from_numpy(grid), batch_size).numpy(),
            splits.class_names,
            run_dir / "decision_boundary.png",
        )
    if len(splits.input_shape) == 3:
        plots.prediction_grid(
            splits.test.x.cpu().numpy(),
            labels,
            predictions,
            splits.class_names,
            run_dir / "predictions.png",
        )
