"""multiclass-bench's PyTorch Lightning contestant, set up as Lightning's docs advise for data
in memory: a LightningModule around the bench's model, Adam from `configure_optimizers`, a
DataLoader over a TensorDataset (shuffled, no worker processes), a one-epoch Trainer on the CPU
with logger, checkpoints, progress bar and model summary off, and no validation loop.

Its `seconds` is the training epoch alone, as for the other contestants: a Callback's
`on_train_epoch_start` to `on_train_epoch_end` (the DataLoader's iterator is made in between,
as in the other loops); `fit_seconds` is the whole `trainer.fit`, Lightning's set-up and
tear-down included. Imported only in the worker that runs it: it needs pytorch-lightning.
"""

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from multiclass.bench.workloads import (
    LEARNING_RATE,
    Workload,
    accuracy_on_test_set,
    build_model,
    mnist_tensors,
)


class Classifier(pl.LightningModule):
    """The bench's model, its loss and optimizer, as a LightningModule."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.loss_function = torch.nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss_function(self.model(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=LEARNING_RATE)


class EpochTimer(pl.Callback):
    """Seconds of the training epoch, without the Trainer's set-up around it."""

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.started


def run_lightning(workload: Workload, root: Path) -> dict[str, Any]:
    # Lightning logs which accelerators it found at every fit: not part of the report.
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    x, y = mnist_tensors(workload, root)
    torch.manual_seed(0)
    module = Classifier(build_model(workload.model))
    loader = DataLoader(
        TensorDataset(x, y), batch_size=workload.batch_size, shuffle=True, num_workers=0
    )
    timer = EpochTimer()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    started = time.perf_counter()
    trainer.fit(module, loader)
    fit_seconds = time.perf_counter() - started
    return {
        "seconds": timer.seconds,
        "fit_seconds": fit_seconds,
        "test_acc": accuracy_on_test_set(module.model, workload, root),
    }
