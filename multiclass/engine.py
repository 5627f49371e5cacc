"""The training loop. A split is a tensor already on the device, or rows on disk read batch
by batch in a background thread (multiclass.datasets.storage); a batch is a slice of a seeded
permutation, and loss and accuracy accumulate on the device, read once per epoch."""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from multiclass.class_metrics import balanced_scores
from multiclass.config import MONITORS, TrainerSettings
from multiclass.datasets import Split, Splits, as_float
from multiclass.datasets.augment import Augmentation
from multiclass.datasets.balance import epoch_order
from multiclass.datasets.storage import Inputs, Staging, training_batches
from multiclass.device.runtime import Runtime
from multiclass.errors import PeerLost, TrainingDiverged, TrainingInterrupted, UserError
from multiclass.heads import Head
from multiclass.schedulers import Interval, Schedule


@dataclass
class Shard:
    """This process's share of every batch when `size` processes train one run in data
    parallel (multiclass.lifecycle.distributed): each draws the same global batch from the
    shared seeded order and takes every `size`-th sample of it from its `rank` on, so that the
    global batch is still `trainer.batch_size`. One process (the default) takes every batch
    whole. A collective of the run that fails means that another process is gone: PeerLost,
    known by where it failed, not by the backend's words (which differ between versions)."""

    rank: int = 0
    size: int = 1
    peer_lost: bool = False  # a gradient reduction failed (average_gradients)

    def part(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch (indices or inputs)."""
        return rows if self.size == 1 else rows[self.rank :: self.size]

    def scaled(
        self, loss: torch.Tensor, outputs: torch.Tensor, mine: int, whole: int
    ) -> torch.Tensor:
        """The loss to back-propagate for `mine` of the `whole` samples one optimizer step
        takes (a batch, or the batches it accumulates over, of every process): the batch's
        mean loss weighed by mine / whole, times the processes, whose gradients
        DistributedDataParallel averages. The gradients summed over an accumulation group
        and averaged over the processes are then those of the group's mean loss, even when
        its last batch splits unevenly. A share left empty (a last batch smaller than the
        processes) gives zero gradients, through a graph whose backward DDP still waits for."""
        if self.size == 1 and mine == whole:
            return loss
        if mine == 0:
            return outputs.sum() * 0.0
        return loss * (mine * self.size / whole)

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over the processes: an epoch's loss and correct counts."""
        if self.size > 1:
            with peers_needed():
                torch.distributed.all_reduce(value)
        return value

    def gathered(self, value: torch.Tensor) -> torch.Tensor:
        """A one-value tensor of every process, as a (size,) tensor on the CPU, by rank: the
        sums of an epoch a stop interrupted, which each process continues from its own."""
        value = value.detach().reshape(1)
        if self.size == 1:
            return value.cpu()
        values = [torch.empty_like(value) for _ in range(self.size)]
        with peers_needed():
            torch.distributed.all_gather(values, value)
        return torch.cat(values).cpu()

    def average_gradients(
        self, state: object, bucket: torch.distributed.GradBucket
    ) -> torch.futures.Future[torch.Tensor]:
        """DistributedDataParallel's gradient averaging as its documented reference does it
        (torch's allreduce_hook: divide, then sum), registered as its communication hook so
        that a reduction which fails marks `peer_lost`, which `backward` then raises."""
        tensor = bucket.buffer().div_(self.size)

        def settled(reduced: torch.futures.Future) -> torch.Tensor:
            try:
                return reduced.value()[0]
            except Exception:
                self.peer_lost = True
                raise

        try:
            return torch.distributed.all_reduce(tensor, async_op=True).get_future().then(settled)
        except RuntimeError:
            self.peer_lost = True
            raise

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, whose gradient reduction, failed, is PeerLost."""
        try:
            loss.backward()
        except RuntimeError as failed:
            if self.peer_lost:
                raise PeerLost(" ".join(str(failed).split())[:200]) from failed
            raise


@contextmanager
def peers_needed() -> Iterator[None]:
    """Around a collective of the run: one fails only when another process is gone."""
    try:
        yield
    except RuntimeError as failed:
        raise PeerLost(" ".join(str(failed).split())[:200]) from failed


@dataclass(frozen=True)
class Task:
    """Everything a training step touches besides the data."""

    model: nn.Module
    criterion: nn.Module
    head: Head
    optimizer: torch.optim.Optimizer
    runtime: Runtime
    schedule: Schedule | None = None  # None: the optimizer's lr throughout
    augment: Augmentation | None = None  # of training batches; None: batches as stored
    frozen: tuple[nn.Module, ...] = ()  # kept in eval mode while training (a frozen backbone)
    scaler: torch.amp.GradScaler | None = None  # fp16's loss scaling; None: plain steps
    shard: Shard = field(default_factory=Shard)  # this process's share of each batch
    # The model outside its DistributedDataParallel wrapper, for evaluation, which every process
    # runs whole and alone (a wrapper's forward may synchronise buffers); None: `model` itself.
    unwrapped: nn.Module | None = None
    # trainer.ema's moving average of the weights, which evaluation then uses; None: off.
    average: torch.optim.swa_utils.AveragedModel | None = None
    # trainer.calibrate's temperature, fitted after training: evaluation's loss and
    # probabilities are those of the outputs it tempers (Head.tempered); 1.0: the model's own.
    temperature: float = 1.0

    @property
    def trained(self) -> nn.Module:
        """The model whose weights the optimizer steps, outside any wrapper."""
        return self.model if self.unwrapped is None else self.unwrapped

    @property
    def evaluated(self) -> nn.Module:
        """The model evaluation runs: the moving average of the weights, when kept."""
        return self.trained if self.average is None else self.average.module

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """(N, k) class probabilities of the model's `outputs`, tempered by `temperature`."""
        return self.head.probabilities(self.head.tempered(outputs, self.temperature))

    def backward(self, loss: torch.Tensor) -> None:
        """The gradients of `loss`, added to those already there; fp16's loss scaled."""
        self.shard.backward(loss if self.scaler is None else self.scaler.scale(loss))

    def step(self, listener: "Listener") -> None:
        """An optimizer step on the gradients, with the listener told before (the gradients,
        unscaled under fp16, are final there: clipping) and after (the new weights: a moving
        average); under fp16 the scaler skips a step whose gradients overflowed."""
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        listener.fire("on_before_optimizer_step")
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        listener.fire("on_after_optimizer_step")

    def step_schedule(self, interval: Interval) -> float:
        """The lr the last optimizer step used; then the scheduler steps, if it steps after
        each `interval` (batch or epoch)."""
        lr = self.optimizer.param_groups[0]["lr"]
        if self.schedule is not None and self.schedule.interval == interval:
            self.schedule.scheduler.step()
        return lr

    def accumulating(self, final: bool) -> AbstractContextManager:
        """Around the backward of a batch that is not the last of its optimizer step: data
        parallel processes keep its gradients to themselves (DDP's no_sync), and average the
        sum at the last one."""
        if final or not isinstance(self.model, nn.parallel.DistributedDataParallel):
            return nullcontext()
        return self.model.no_sync()


class Listener(Protocol):
    """What the loop tells of its progress (the run's callbacks, by event name), and whom it
    asks whether to stop, after each optimizer step. Events, with their arguments:
    on_epoch_start(epoch), on_train_batch_start(batch), on_before_backward(loss),
    on_after_backward, on_before_optimizer_step, on_after_optimizer_step,
    on_train_batch_end(batch, loss), on_validation_start, on_validation_end(evaluation),
    on_train_interrupted (a signal stops training at a safe point: last.pt's moment)."""

    def fire(self, event: str, *args: Any) -> None: ...

    def stop_requested(self) -> int | None:
        """The signal that asked the run to stop, or None; every process gets the same."""
        ...


@dataclass(frozen=True)
class Examples:
    """A split with its targets encoded once, as the loss wants them."""

    x: Inputs
    labels: torch.Tensor
    targets: torch.Tensor
    sampler: str = "shuffle"  # how training draws an epoch's order (dataset.sampler)

    @classmethod
    def of(cls, split: Split, head: Head, sampler: str = "shuffle") -> "Examples":
        return cls(split.x, split.y, head.encode(split.y), sampler)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class EpochMetrics:
    """One row of metrics.csv."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    val_macro_f1: float | None
    val_balanced_acc: float | None
    lr: float  # the lr of the epoch's last step (under a schedule, the next may differ)
    train_seconds: float
    epoch_seconds: float


@dataclass(frozen=True)
class EpochInProgress:
    """An epoch that a signal stopped after an optimizer step, as last.pt keeps it, so that a
    resume trains the rest of it as if it had never stopped: its sample order, how many of
    its batches were trained, each process's loss and correct sums over its samples so far
    ((processes,) tensors on the CPU), the lr of its last step and its seconds of training.
    The `order` generator's state at the stop, which draws the rest's augmentation seeds, is
    last.pt's own, with every weight and random state."""

    permutation: torch.Tensor
    batches: int
    loss_sum: torch.Tensor
    correct: torch.Tensor
    lr: float
    epoch: int = 0  # set by `fit`, which knows it
    seconds: float = 0.0

    def sums(self, shard: Shard, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's sums to go on from; a resume in another number of processes than
        saved them (device.processes) starts their totals on rank 0."""
        if len(self.loss_sum) == shard.size:
            loss_sum, correct = self.loss_sum[shard.rank], self.correct[shard.rank]
        elif shard.rank == 0:
            loss_sum, correct = self.loss_sum.sum(), self.correct.sum()
        else:
            loss_sum, correct = self.loss_sum[0] * 0, self.correct[0] * 0
        return loss_sum.clone().to(device), correct.clone().to(device)


class EpochStopped(TrainingInterrupted):
    """A signal stopped `train_epoch` after an optimizer step: the epoch as far as it went."""

    def __init__(self, signum: int, partial: EpochInProgress) -> None:
        super().__init__(signum)
        self.partial = partial


@dataclass
class Progress:
    """Where training stands after `epoch` epochs, and as far as a stop left the next
    (`partial`): what last.pt saves and a resume restores, so that a resumed run draws the
    same batches and ends with the same weights."""

    order: torch.Generator  # the batch order; its state moves on with every epoch
    history: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    monitor: str = "val_acc"  # the row's figure that makes an epoch the best (MONITORS)
    partial: EpochInProgress | None = None  # epoch + 1 as far as a stop left it

    @property
    def epoch(self) -> int:
        return len(self.history)

    @property
    def best_val_acc(self) -> float | None:
        """The val_acc of best_epoch."""
        return None if self.best_epoch is None else self.history[self.best_epoch - 1].val_acc

    @property
    def best_score(self) -> float | None:
        """The monitor's figure at best_epoch."""
        if self.best_epoch is None:
            return None
        return getattr(self.history[self.best_epoch - 1], self.monitor)

    def record(self, row: EpochMetrics, min_delta: float = 0.0) -> bool:
        """Add an epoch's row; True when its `monitor` figure is the best so far: above the
        best by more than `min_delta` (below it, for a figure minimised)."""
        self.history.append(row)
        score = getattr(row, self.monitor)
        if score is None or math.isnan(score) or not self.beats(score, min_delta):
            return False
        self.best_epoch = row.epoch
        return True

    def beats(self, score: float, min_delta: float) -> bool:
        best = self.best_score
        if best is None:
            return True
        if MONITORS[self.monitor] == "min":
            return score < best - min_delta
        return score > best + min_delta

    def patience_spent(self, patience: int | None) -> bool:
        """Early stopping: `patience` epochs have passed without a better validation score."""
        if patience is None or self.best_epoch is None:
            return False
        return self.epoch - self.best_epoch >= patience


@dataclass(frozen=True)
class Evaluation:
    loss: float
    acc: float
    macro_f1: float  # over every class of the data set (multiclass.class_metrics)
    balanced_acc: float  # the mean recall of the classes present
    predictions: torch.Tensor  # class indices, on the CPU
    # The model's float outputs (untempered) and each class's probability by the head's rule,
    # tempered by the task's temperature (N, k), on the CPU: what calibration, out-of-fold
    # predictions and error analysis read.
    outputs: torch.Tensor
    probabilities: torch.Tensor


def fit(
    task: Task,
    splits: Splits,
    settings: TrainerSettings,
    progress: Progress,
    on_epoch_end: Callable[[EpochMetrics, bool], None],
    listener: Listener,
) -> None:
    """Train from `progress` up to `settings.epochs`, validating after each epoch and telling
    `on_epoch_end` the row and whether it is the best; stops early when that sets
    `progress.stopped_early`, with TrainingDiverged when the loss is no longer finite or
    passes `divergence_bound`, and with TrainingInterrupted after the optimizer step or the
    epoch's record at which the listener asks it to stop (telling it on_train_interrupted
    first; stopped mid-epoch, with the epoch as far as it went in `progress.partial`). A
    `progress.partial` to begin with is trained on from where it stopped."""
    train = Examples.of(splits.train, task.head, splits.sampler)
    val = None if splits.val is None else Examples.of(splits.val, task.head)
    bound = divergence_bound(task.criterion, task.head, train.targets, settings.divergence_factor)
    steps = batches_per_epoch(len(train), settings)
    done = 0 if progress.partial is None else progress.partial.batches
    bar = tqdm(
        total=max(0, (settings.epochs - progress.epoch) * steps - done),
        unit="step",
        desc="train",
        disable=None if settings.progress else True,
    )
    with bar, logging_redirect_tqdm():
        for epoch in range(progress.epoch + 1, settings.epochs + 1):
            listener.fire("on_epoch_start", epoch)  # progress.partial: a resumed epoch's start
            resumed, progress.partial = progress.partial, None
            started = time.perf_counter() - (0.0 if resumed is None else resumed.seconds)
            try:
                train_loss, train_acc, lr = train_epoch(
                    task, train, settings, progress.order, bar.update, listener, resumed
                )
            except EpochStopped as stopped:
                seconds = time.perf_counter() - started
                progress.partial = replace(stopped.partial, epoch=epoch, seconds=seconds)
                interrupted(listener, stopped.signum)
            task.step_schedule("epoch")
            trained = time.perf_counter()
            checked = None if val is None else validate(task, val, settings, listener)
            metrics = EpochMetrics(
                epoch=epoch,
                train_loss=train_loss,
                train_acc=train_acc,
                val_loss=None if checked is None else checked.loss,
                val_acc=None if checked is None else checked.acc,
                val_macro_f1=None if checked is None else checked.macro_f1,
                val_balanced_acc=None if checked is None else checked.balanced_acc,
                lr=lr,
                train_seconds=trained - started,
                epoch_seconds=time.perf_counter() - started,
            )
            improved = progress.record(metrics, settings.early_stopping.min_delta)
            on_epoch_end(metrics, improved)  # the callbacks; early stopping sets stopped_early
            bar.set_postfix(loss=f"{train_loss:.4f}", acc=f"{train_acc:.4f}", refresh=False)
            for loss in (metrics.train_loss, metrics.val_loss):
                if loss is not None and not math.isfinite(loss):
                    raise TrainingDiverged(epoch, loss)
            if train_loss > bound:
                raise TrainingDiverged(epoch, train_loss, bound)
            if progress.stopped_early:
                break
            signum = listener.stop_requested()
            if signum is not None:
                interrupted(listener, signum)


def stop_if_asked(listener: Listener) -> None:
    """A safe point: the run's record is whole here, so a requested stop happens here."""
    signum = listener.stop_requested()
    if signum is not None:
        raise TrainingInterrupted(signum)


def interrupted(listener: Listener, signum: int) -> NoReturn:
    """A stop during training: the listener is told (last.pt is written), then it ends."""
    listener.fire("on_train_interrupted")
    raise TrainingInterrupted(signum)


def validate(
    task: Task, val: Examples, settings: TrainerSettings, listener: Listener
) -> "Evaluation":
    listener.fire("on_validation_start")
    checked = evaluate(task, val, settings.eval_batch_size)
    listener.fire("on_validation_end", checked)
    return checked


def divergence_bound(
    criterion: nn.Module, head: Head, targets: torch.Tensor, factor: float | None
) -> float:
    """The train loss past which a run has diverged: `factor` times the loss of outputs that
    favour no class (ln k for k-class cross entropy, ln 2 a unit for BCE); inf when off.

    Why this reference: a network starts near it and a healthy run stays within a few times
    it, while a too-high lr sends the loss up by orders of magnitude, then back down to a loss
    that is finite but useless (lr 1e6 on digits: 4e20 in epoch 1, 6e5 by epoch 5, at chance
    accuracy). The first epoch's own loss is no reference: the blow-up happens inside it.
    BCE's loss, which torch caps at 100 a unit, never passes 1000 x ln 2."""
    if factor is None:
        return math.inf
    with torch.no_grad():
        logits = torch.zeros(len(targets), head.width, device=targets.device)
        return factor * criterion(head.output_layer()(logits), targets).item()


def samples_per_epoch(num_samples: int, settings: TrainerSettings) -> int:
    """How many training samples an epoch sees: all, or only whole batches with drop_last."""
    if not settings.drop_last:
        return num_samples
    if settings.batch_size > num_samples:
        raise UserError(
            f"trainer.batch_size={settings.batch_size} with drop_last leaves no batch of the"
            f" {num_samples} training samples"
        )
    return num_samples - num_samples % settings.batch_size


def batches_per_epoch(num_samples: int, settings: TrainerSettings) -> int:
    """How many training batches an epoch takes."""
    return math.ceil(samples_per_epoch(num_samples, settings) / settings.batch_size)


def optimizer_steps_per_epoch(num_samples: int, settings: TrainerSettings) -> int:
    """How many optimizer steps an epoch takes: one per trainer.accumulate_grad_batches
    batches, and one for the batches left at its end."""
    return math.ceil(batches_per_epoch(num_samples, settings) / settings.accumulate_grad_batches)


def model_inputs(task: Task, stored: torch.Tensor) -> torch.Tensor:
    """A batch as stored (uint8 images, float tables) as the model takes it."""
    return task.runtime.layout(as_float(stored))


def train_epoch(
    task: Task,
    data: Examples,
    settings: TrainerSettings,
    order: torch.Generator,
    advance: Callable[[], object],
    listener: Listener,
    resumed: EpochInProgress | None = None,
) -> tuple[float, float, float]:
    """One pass over a seeded order (a permutation, or dataset.sampler=balanced's draws of as
    many samples: datasets.balance); returns mean loss and accuracy over the samples seen
    and the lr of its last step. Batches are gathered with `index_select`: on MNIST's uint8
    images it takes a tenth of the time of `x[batch]`. An
    augmented batch's seed is drawn from `order` too, so that last.pt's state resumes it. With
    trainer.accumulate_grad_batches=k, each k batches (and those left at the end) make one
    optimizer step on the gradient of their mean loss.

    The listener is asked after each optimizer step whether to stop: EpochStopped, with the
    epoch as far as it went, which `resumed` then continues (`order` as it was at the stop)."""
    task.model.train()
    for module in task.frozen:
        module.eval()
    device, shard = data.labels.device, task.shard
    if resumed is None:
        permutation = epoch_order(data.labels, data.sampler, order).to(device)
        start, lr = 0, task.optimizer.param_groups[0]["lr"]
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
    else:
        permutation = resumed.permutation.to(device)
        start, lr = resumed.batches, resumed.lr
        loss_sum, correct = resumed.sums(shard, device)
    seen = samples_per_epoch(len(data), settings)
    batches = [
        permutation[offset : offset + settings.batch_size]
        for offset in range(0, seen, settings.batch_size)
    ]
    groups = step_groups(batches, settings.accumulate_grad_batches)[start:]
    batches = batches[start:]
    # An augmented batch is augmented whole, then shared: the same samples as in one process.
    read = batches if task.augment is not None else [shard.part(batch) for batch in batches]
    for done, batch, inputs, (first, final, whole) in zip(
        range(start + 1, start + len(batches) + 1),
        batches,
        training_batches(data.x, read, device),
        groups,
        strict=True,
    ):
        listener.fire("on_train_batch_start", batch)
        if task.augment is not None:
            inputs = shard.part(task.augment(inputs, augment_seed(order)))
        mine = shard.part(batch)
        if first:
            task.optimizer.zero_grad(set_to_none=True)
        with task.accumulating(final):
            with task.runtime.autocast():
                outputs = task.model(model_inputs(task, inputs))
            loss = task.criterion(outputs.float(), data.targets.index_select(0, mine))
            listener.fire("on_before_backward", loss)
            task.backward(shard.scaled(loss, outputs, len(mine), whole))
        listener.fire("on_after_backward")
        if final:
            task.step(listener)
            lr = task.step_schedule("batch")
        if len(mine):  # an empty share's mean loss is NaN
            loss_sum += loss.detach() * len(mine)
        correct += (task.head.predict(outputs.detach()) == data.labels.index_select(0, mine)).sum()
        listener.fire("on_train_batch_end", batch, loss)
        advance()
        if final and (signum := listener.stop_requested()) is not None:
            gathered = shard.gathered(loss_sum), shard.gathered(correct)
            raise EpochStopped(signum, EpochInProgress(permutation.cpu(), done, *gathered, lr))
    loss_sum, correct = shard.total(loss_sum), shard.total(correct)
    return loss_sum.item() / seen, correct.item() / seen, lr


def augment_seed(order: torch.Generator) -> int:
    """An augmented batch's seed: drawn from the batch order's generator, after its epoch's
    permutation, so that the order's state alone resumes augmentation too."""
    return int(torch.randint(2**62, (), generator=order))


def seeded_order(
    seed: int,
    data: Examples,
    settings: TrainerSettings,
    augmented: bool,
    epochs: int,
    partial_batches: int | None = None,
) -> tuple[torch.Generator, torch.Tensor | None]:
    """The batch order's generator as `train_epoch` leaves it in a run seeded `seed`, after
    `epochs` whole epochs and `partial_batches` of the next (with that epoch's permutation),
    drawn again from the seed. Why: a resume checks last.pt's saved state against it (each
    epoch draws its permutation, and a seed an augmented batch, from this generator alone),
    so that the order does not rest on one saved state being right."""
    order = torch.Generator().manual_seed(seed)
    per_epoch = batches_per_epoch(len(data), settings)
    permutation = None
    for batches in [per_epoch] * epochs + ([] if partial_batches is None else [partial_batches]):
        permutation = epoch_order(data.labels, data.sampler, order)
        for _ in range(batches if augmented else 0):
            augment_seed(order)
    return order, None if partial_batches is None else permutation


def step_groups(batches: list[torch.Tensor], accumulate: int) -> list[tuple[bool, bool, int]]:
    """For each batch: whether it begins an optimizer step's group, whether it ends it, and how
    many samples the group holds (of every process): k batches a step, the rest at the end."""
    groups = []
    for start in range(0, len(batches), accumulate):
        members = batches[start : start + accumulate]
        whole = sum(len(batch) for batch in members)
        groups += [(i == 0, i == len(members) - 1, whole) for i in range(len(members))]
    return groups


@torch.no_grad()
def evaluate(task: Task, data: Examples, batch_size: int) -> Evaluation:
    """Mean loss, accuracy, macro F1, balanced accuracy, the predicted classes and the
    probabilities of `data`, in batches of `batch_size`."""
    outputs = all_outputs(task, data.x, batch_size)
    # The loss of all outputs at once: a class-weighted loss is a mean by the weights, which
    # per-batch means weighed by their sizes would not give (it moved with the batch size).
    # A temperature changes the loss and the probabilities; the predictions are the model's.
    loss = task.criterion(task.head.tempered(outputs, task.temperature), data.targets)
    predicted = task.head.predict(outputs)
    correct = (predicted == data.labels).sum()
    predicted = predicted.cpu()
    labels = data.labels.cpu().numpy()
    macro_f1, balanced_acc = balanced_scores(labels, predicted.numpy(), task.head.num_classes)
    return Evaluation(
        loss=loss.item(),
        acc=correct.item() / len(data),
        macro_f1=macro_f1,
        balanced_acc=balanced_acc,
        predictions=predicted,
        outputs=outputs.cpu(),
        probabilities=task.probabilities(outputs).cpu(),
    )


@torch.no_grad()
def predict(task: Task, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted class indices of the inputs `x`, on the CPU."""
    x = x.to(task.runtime.device)
    return task.head.predict(all_outputs(task, x, batch_size)).cpu()


def all_outputs(task: Task, x: Inputs, batch_size: int) -> torch.Tensor:
    """The model's float outputs on all of `x` (callers disable grad), copied into one tensor
    made at the first batch. Why not each batch's outputs kept and joined at the end: kept,
    they landed in the blocks the batch before had freed, so that malloc (keep_freed_memory)
    could not reuse those for the next batch and grew its heap by a batch's inputs again."""
    outputs = torch.empty(0)
    for batch, out in batched_outputs(task, x, batch_size):
        if batch.start == 0:
            outputs = out.new_empty((len(x), *out.shape[1:]))
        outputs[batch] = out
    return outputs


def batched_outputs(task: Task, x: Inputs, batch_size: int) -> Iterator[tuple[slice, torch.Tensor]]:
    """The model's float outputs on `x` in eval mode, batch by batch (callers disable grad).
    Each batch is read and converted into the same buffers (`Staging`), so a pass holds one
    batch of inputs and only the outputs of the others."""
    model = task.evaluated
    model.eval()
    staging = Staging(x, batch_size, task.runtime.device, task.runtime.channels_last)
    for start in range(0, len(x), batch_size):
        batch = slice(start, start + batch_size)
        inputs = staging.batch(x, batch)
        with task.runtime.autocast():
            yield batch, model(model_inputs(task, inputs)).float()
