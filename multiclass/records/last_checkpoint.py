"""last.pt: what a killed run needs to go on as if it had never stopped (model, optimizer, lr
scheduler, loss scaler, the weights' moving average, every random generator, the batch order
and the progress so far), written whole after every epoch and read back with
`weights_only=True`. A run a signal stops mid-epoch writes it at that step, with the epoch as
far as it went (`in_progress`: engine.EpochInProgress), which a resume trains on from there."""

import dataclasses
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from multiclass.engine import EpochInProgress, EpochMetrics, Progress, Task
from multiclass.errors import UserError
from multiclass.records.artifacts import read_csv_rows, shown_path, write_atomic

LAST = "last.pt"


def save_last(path: Path, model: nn.Module, task: Task, progress: Progress) -> None:
    content = {
        "epoch": progress.epoch,
        "model": model.state_dict(),
        "optimizer": task.optimizer.state_dict(),
        "scheduler": None if task.schedule is None else task.schedule.scheduler.state_dict(),
        "scaler": None if task.scaler is None else task.scaler.state_dict(),
        "average": None if task.average is None else task.average.state_dict(),
        "random": random_states(),
        "order": progress.order.get_state(),
        "best_epoch": progress.best_epoch,  # its figures are in metrics.csv's rows
        "stopped_early": progress.stopped_early,
        "monitor": progress.monitor,
        "in_progress": None if progress.partial is None else dataclasses.asdict(progress.partial),
    }
    buffer = io.BytesIO()
    torch.save(content, buffer)
    write_atomic(path, buffer.getvalue())


def restore(
    path: Path,
    model: nn.Module,
    task: Task,
    monitor: str = "val_acc",
    samples: int | None = None,
    epochs: int | None = None,
) -> Progress:
    """Load last.pt into `model`, the optimizer and the scheduler of `task`, reset every
    generator; the progress saved, with the epochs' rows from metrics.csv (written before
    last.pt, so it has them all). `monitor`: the config's trainer.monitor, which must be the
    one last.pt's best epoch was chosen by (a last.pt from before trainer.monitor: val_acc).
    `samples`: the training split's size, which an epoch in progress must have been drawn
    from; `epochs`: trainer.epochs, which it must not be past."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, overwritten, or not a checkpoint at all
        raise UserError(
            f"cannot resume from {shown_path(path)}: not a readable checkpoint, damaged or"
            f" truncated ({type(error).__name__})"
        ) from None
    try:
        model.load_state_dict(content["model"])
        task.optimizer.load_state_dict(content["optimizer"])
        if task.schedule is not None:
            task.schedule.scheduler.load_state_dict(content["scheduler"])
        if task.scaler is not None and content.get("scaler"):
            task.scaler.load_state_dict(content["scaler"])
        if task.average is not None:
            task.average.load_state_dict(content["average"])
    except Exception as error:  # of another model or optimizer
        raise UserError(
            f"cannot resume from {shown_path(path)}: {' '.join(str(error).split())[:200]}"
        ) from None
    saved_monitor = content.get("monitor", "val_acc")
    if saved_monitor != monitor:
        raise UserError(
            f"cannot resume from {shown_path(path)}: its best epoch was chosen by"
            f" {saved_monitor}, not by trainer.monitor={monitor}"
        )
    partial = epoch_in_progress(path, content, samples, epochs)
    set_random_states(content["random"])
    order = torch.Generator()
    order.set_state(content["order"])
    return Progress(
        order=order,
        history=read_history(path.with_name("metrics.csv"), content["epoch"]),
        best_epoch=content["best_epoch"],
        stopped_early=content["stopped_early"],
        monitor=monitor,
        partial=partial,
    )


def epoch_in_progress(
    path: Path, content: dict[str, Any], samples: int | None, epochs: int | None
) -> EpochInProgress | None:
    """last.pt's epoch in progress (None in one written at an epoch's end, or before there
    was one), checked against the epochs completed and the training split's size."""
    saved = content.get("in_progress")
    if saved is None:
        return None
    try:
        partial = EpochInProgress(**saved)
        problem = misfit(partial, content["epoch"], samples, epochs)
    except Exception as error:  # not the fields, or not of their types
        problem = f"{type(error).__name__}: {' '.join(str(error).split())[:120]}"
    if problem:
        raise UserError(f"cannot resume from {shown_path(path)}: its epoch in progress {problem}")
    return partial


def misfit(
    partial: EpochInProgress, completed: int, samples: int | None, epochs: int | None
) -> str | None:
    """What keeps an epoch in progress from going on after `completed` epochs on `samples`
    training samples in a run of `epochs`, or None."""
    order = partial.permutation
    if partial.epoch != completed + 1:
        return f"is epoch {partial.epoch}, not the one after the {completed} completed"
    if order.dim() != 1 or order.dtype != torch.int64 or partial.batches < 1:
        return "is damaged: no order of samples"
    if epochs is not None and partial.epoch > epochs:
        return f"is epoch {partial.epoch}, past trainer.epochs={epochs}"
    if samples is not None and (len(order) != samples or int(order.max()) >= samples):
        return f"draws from {len(order)} samples, not from this run's {samples}"
    if partial.loss_sum.dim() != 1 or partial.loss_sum.shape != partial.correct.shape:
        return "is damaged: no sums of its processes"
    return None


def read_history(path: Path, epochs: int) -> list[EpochMetrics]:
    """The first `epochs` rows of metrics.csv as the run recorded them (floats round-trip); a
    column it does not have (val_macro_f1 in a run from before it) is left empty."""
    rows = read_csv_rows(path)[:epochs]
    if len(rows) < epochs:
        raise UserError(f"cannot resume: {path} has {len(rows)} rows, last.pt {epochs} epochs")
    fields = {field.name: field.type for field in dataclasses.fields(EpochMetrics)}
    return [
        EpochMetrics(**{k: parse(row.get(k) or "", kind) for k, kind in fields.items()})
        for row in rows
    ]


def parse(text: str, kind: Any) -> Any:
    if text == "":
        return None
    return int(text) if kind in (int, "int") else float(text)


def random_states() -> dict[str, Any]:
    """Python's, numpy's and torch's generators (every CUDA device's too), as plain data."""
    _, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "python": python_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def python_state() -> list[Any]:
    """Python's generator state with its 625 words as one tensor: pickled 40 times faster."""
    version, internal, gauss = random.getstate()
    return [version, torch.tensor(internal, dtype=torch.int64), gauss]


def set_random_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    numpy = states["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
