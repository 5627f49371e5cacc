"""multiclass-bench's fastai contestant, set up as fastai's docs advise for tensors in memory:
`DataLoaders.from_dsets` over a TensorDataset (fastai's TfmdDL: shuffled, every batch kept,
no worker processes, on the CPU), a `Learner` with fastai's flattened cross entropy and its
Adam, `learn.fit(1, lr)` without progress bar or logging.

fastai always runs a validation pass after the training one; the other contestants have none,
so a callback skips it (fastai's CancelValidException) and the validation DataLoaders is a
single image that is never read. fastai's Adam takes torch's defaults here (beta2 0.999, eps
1e-8, no weight decay; fastai's own are 0.99, 1e-5 and 0.01 decoupled), so that every
contestant computes the same update.

Its `seconds` is the training pass alone, as for the other contestants: a callback's
`before_epoch` to `after_train`; `fit_seconds` is the whole `learn.fit`, the optimizer's
creation included. Imported only in the worker that runs it: it needs fastai.
"""

import random
import time
from functools import partial
from pathlib import Path
from typing import Any

import fastai.callback.progress  # noqa: F401  fastai's progress bar, which no_bar() takes away
import torch
from fastai.callback.core import Callback, CancelValidException
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.optimizer import Adam
from torch.utils.data import TensorDataset

from multiclass.bench.workloads import (
    LEARNING_RATE,
    Workload,
    accuracy_on_test_set,
    build_model,
    mnist_tensors,
)


class TrainOnly(Callback):
    """Times the training pass of each epoch and skips the validation pass after it."""

    def before_epoch(self) -> None:
        self.started = time.perf_counter()

    def after_train(self) -> None:
        self.seconds = time.perf_counter() - self.started

    def before_validate(self) -> None:
        raise CancelValidException


def run_fastai(workload: Workload, root: Path) -> dict[str, Any]:
    x, y = mnist_tensors(workload, root)
    torch.manual_seed(0)
    random.seed(0)  # fastai's DataLoader shuffles with python's random
    dls = DataLoaders.from_dsets(
        TensorDataset(x, y),
        TensorDataset(x[:1], y[:1]),
        bs=workload.batch_size,
        drop_last=False,  # from_dsets drops the train set's last partial batch by default
        num_workers=0,
        device=torch.device("cpu"),
    )
    timer = TrainOnly()
    learn = Learner(
        dls,
        build_model(workload.model),
        loss_func=CrossEntropyLossFlat(),
        opt_func=partial(Adam, sqr_mom=0.999, eps=1e-8, wd=0.0),
        cbs=[timer],
    )
    started = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, lr=LEARNING_RATE)
    fit_seconds = time.perf_counter() - started
    return {
        "seconds": timer.seconds,
        "fit_seconds": fit_seconds,
        "test_acc": accuracy_on_test_set(learn.model, workload, root),
    }
