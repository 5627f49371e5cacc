"""The learning-rate range test (Leslie Smith's, fastai's `lr_find`): train the run's own
model from its initial weights with an lr that grows exponentially each optimizer step, from
`start` to `end`, record the loss of each step, stop when the smoothed loss diverges, and
read an lr off the fall of the smoothed loss (fastai's valley, and its steep).

The steps are the run's (engine.train_epoch: its batches, augmentation, accumulation, gradient
clipping, fp16), with a listener that sets each step's lr and records its loss. The test
changes nothing it was given: the weights, the optimizer's state and the scaler's are put
back afterwards (as fastai saves and loads the model around it), torch's global generators
are forked, and batches come from a generator of its own, seeded like the run's order."""

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from multiclass.callbacks import Callbacks, RunState
from multiclass.callbacks.training import GradientClipping, step_callbacks
from multiclass.config import TrainerSettings
from multiclass.engine import Examples, Task, train_epoch
from multiclass.errors import UserError
from multiclass.lifecycle.build import Built
from multiclass.records.artifacts import write_csv
from multiclass.reporting.plots import new_figure, save

SMOOTHING = 0.98  # the exponential moving average of the loss (fastai's beta), debiased
DIVERGED = 4.0  # the test stops when the smoothed loss passes this many times its best
FELL = 0.95  # the loss fell if its smoothed minimum is below this share of where it started


@dataclass(frozen=True)
class Span:
    """The lrs tried: `steps` optimizer steps from `start` to `end`, each `end / start` to
    the 1 / (steps - 1) times the one before."""

    start: float = 1e-7
    end: float = 10.0
    steps: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.start < self.end:
            raise UserError(f"--start {self.start:g} and --end {self.end:g}: need 0 < start < end")
        if self.steps < 10:
            raise UserError(f"--steps {self.steps}: the test needs 10 steps or more")

    def lr(self, step: int) -> float:
        return self.start * (self.end / self.start) ** (step / (self.steps - 1))


@dataclass(frozen=True)
class Curve:
    """What the test recorded: the lr and mean training loss of each optimizer step, the
    loss smoothed, and whether it stopped because the smoothed loss diverged."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    diverged: bool

    def rows(self) -> list[dict[str, Any]]:
        """lr_find.csv's rows."""
        return [
            {"step": i + 1, "lr": lr, "loss": loss, "smoothed_loss": smooth}
            for i, (lr, loss, smooth) in enumerate(
                zip(self.lrs, self.losses, self.smoothed, strict=True)
            )
        ]


@dataclass(frozen=True)
class Suggestion:
    """Two readings of the smoothed curve, as indices into it. `valley` (fastai's default):
    halfway along the longest fall of the loss, before the minimum, where training is fast
    and still stable. `steep`: where the loss falls fastest against log lr (noisier)."""

    curve: Curve
    valley: int
    steep: int


def override_value(lr: float) -> str:
    """An lr as the printed override gives it: two digits, 3.2e-03."""
    return f"{lr:.1e}"


class RangeEnded(Exception):
    """The test took its last step, or its smoothed loss diverged: out of train_epoch."""


class Recorder:
    """The listener train_epoch tells of each step: it sets the lr of every parameter group
    before the optimizer steps (each group keeps its share of optimizer.lr: a fine-tuned
    backbone's factor), records the step's loss (its batches' mean), and ends the test."""

    def __init__(self, task: Task, span: Span, base_lr: float, clip: Callable[[], None]) -> None:
        self.task, self.span, self.clip = task, span, clip
        groups = task.optimizer.param_groups
        self.factors = [group.get("initial_lr", group["lr"]) / base_lr for group in groups]
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.batch_size, self.loss_sum, self.samples = 0, 0.0, 0
        self.diverged = False

    def fire(self, event: str, *args: Any) -> None:
        if event == "on_train_batch_start":
            self.batch_size = len(args[0])
        elif event == "on_before_backward":  # the batch's mean loss: weighed by its size
            self.loss_sum += args[0].item() * self.batch_size
            self.samples += self.batch_size
        elif event == "on_before_optimizer_step":
            self.set_lr(self.span.lr(len(self.lrs)))
            self.clip()
        elif event == "on_after_optimizer_step":
            self.record()

    def stop_requested(self) -> int | None:
        return None  # no signal stops it at a safe point: Ctrl-C ends the command

    def set_lr(self, lr: float) -> None:
        for group, factor in zip(self.task.optimizer.param_groups, self.factors, strict=True):
            group["lr"] = lr * factor

    def record(self) -> None:
        """The step's lr and loss; the test ends after its last step or once it diverged."""
        self.lrs.append(self.span.lr(len(self.lrs)))
        self.losses.append(self.loss_sum / self.samples)
        self.loss_sum, self.samples = 0.0, 0
        self.smoothed = smoothed(self.losses)
        best = min(self.smoothed)
        latest = self.smoothed[-1]
        self.diverged = not math.isfinite(latest) or latest > DIVERGED * best
        if self.diverged or len(self.lrs) == self.span.steps:
            raise RangeEnded

    def curve(self) -> Curve:
        return Curve(self.lrs, self.losses, self.smoothed, self.diverged)


def smoothed(losses: list[float]) -> list[float]:
    """fastai's smoothing of the losses: an exponential moving average (SMOOTHING), debiased
    (divided by the sum of its weights), so that its first value is the first loss."""
    average, values = 0.0, []
    for n, loss in enumerate(losses, start=1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        values.append(average / (1 - SMOOTHING**n))
    return values


def range_test(built: Built, settings: TrainerSettings, span: Span, seed: int) -> Curve:
    """Run the test on `built`'s model (from its initial weights) and put everything back.
    The run's lr schedule and weight average take no part: the test sets every lr itself."""
    task = replace(built.task, schedule=None, average=None)
    splits = built.splits
    train = Examples.of(splits.train, task.head, splits.sampler)
    base_lr = built.cfg.optimizer.get("lr") or task.optimizer.param_groups[0]["lr"]
    recorder = Recorder(task, span, base_lr, clipping(built, settings))
    order = torch.Generator().manual_seed(seed)  # the run's own order is made afresh by the run
    bar = tqdm(
        total=span.steps * settings.accumulate_grad_batches,
        unit="step",
        desc="lr-find",
        disable=None if settings.progress else True,
    )
    with restored(task), bar, logging_redirect_tqdm():
        try:
            while True:
                train_epoch(task, train, settings, order, bar.update, recorder)
        except RangeEnded:
            pass
    return recorder.curve()


def clipping(built: Built, settings: TrainerSettings) -> Callable[[], None]:
    """trainer.gradient_clip_norm / _value's callback, as the run calls it before each step."""
    clip = [c for c in step_callbacks(settings) if isinstance(c, GradientClipping)]
    state = RunState(built.cfg, Path(), settings, {}, Callbacks(clip), built=built)
    return lambda: state.callbacks.fire("on_before_optimizer_step", state)


@contextmanager
def restored(task: Task) -> Iterator[None]:
    """The trained weights, the optimizer's state and lrs and the scaler's state as they were
    before, and torch's global generators untouched (dropout draws from them)."""
    model_state = copy.deepcopy(task.trained.state_dict())
    optimizer_state = copy.deepcopy(task.optimizer.state_dict())
    scaler_state = None if task.scaler is None else copy.deepcopy(task.scaler.state_dict())
    device = task.runtime.device
    forked = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            yield
    finally:
        task.trained.load_state_dict(model_state)
        task.optimizer.load_state_dict(optimizer_state)
        task.optimizer.zero_grad(set_to_none=True)
        if scaler_state is not None:
            task.scaler.load_state_dict(scaler_state)


def suggest(curve: Curve) -> Suggestion:
    """The valley and steepest-descent readings of the smoothed curve, as fastai reads it:
    leaving out its first tenth (the average still settling) and its last five steps (the
    divergence), and anything after a loss that is not finite. A curve whose loss never fell
    (its smoothed minimum above FELL times where it started) is a UserError."""
    end = next((i for i, v in enumerate(curve.smoothed) if not math.isfinite(v)), None)
    end = len(curve.smoothed) if end is None else end
    first, last = len(curve.lrs) // 10, end - 5 if curve.diverged else end
    losses = curve.smoothed[first:last]
    if len(losses) < 3 or min(losses) > FELL * losses[0]:
        raise UserError(never_fell(curve, first))
    return Suggestion(curve, first + valley(losses), first + steep(curve.lrs[first:last], losses))


def never_fell(curve: Curve, first: int) -> str:
    start, stop = curve.lrs[0], curve.lrs[-1]
    began = curve.smoothed[min(first, len(curve.smoothed) - 1)]
    best = min(curve.smoothed[first:] or curve.smoothed)
    how = (
        f"it diverged after {len(curve.lrs)} steps: lower --start"
        if curve.diverged
        else f"its smoothed value went from {began:.4g} to {best:.4g} at best: raise --end"
    )
    return f"the loss never fell between lr {start:.2g} and {stop:.2g}: {how}"


def valley(losses: list[float]) -> int:
    """fastai's valley: the longest sequence of ever lower losses (its steps need not follow
    one another) ends at step `last`, `length` steps long; the valley is the `length` steps
    up to `last`, and the reading lies halfway along it. Counted back from its end by its
    length, not from the sequence's first step: the noise of a flat start (a few ever lower
    values far apart) would stretch it to the lowest lrs."""
    length = [1] * len(losses)
    for i in range(1, len(losses)):
        for j in range(i):
            if losses[i] < losses[j]:
                length[i] = max(length[i], length[j] + 1)
    last = length.index(max(length))
    return last - length[last] // 2


def steep(lrs: list[float], losses: list[float]) -> int:
    """Where the loss falls fastest against log lr: the step before the steepest slope."""
    slopes = [
        (losses[i + 1] - losses[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(len(losses) - 1)
    ]
    return min(range(len(slopes)), key=slopes.__getitem__)


def write_outputs(suggestion: Suggestion, out_dir: Path) -> None:
    """lr_find.csv (every step) and lr_find.png (loss against lr, log x, the readings marked)."""
    curve = suggestion.curve
    write_csv(out_dir / "lr_find.csv", curve.rows())
    figure, (ax,) = new_figure(7, 4.5, margins={"left": 0.1, "right": 0.97, "bottom": 0.12})
    ax.plot(curve.lrs, curve.losses, color="0.75", linewidth=0.8, label="loss of the step")
    ax.plot(curve.lrs, curve.smoothed, color="C0", label="smoothed")
    for index, name, color in (
        (suggestion.valley, "valley", "C3"),
        (suggestion.steep, "steep", "C2"),
    ):
        lr = curve.lrs[index]
        ax.plot(lr, curve.smoothed[index], "o", color=color, label=f"{name}: {override_value(lr)}")
    ax.set_xscale("log")
    ax.set_ylim(*loss_range(curve, suggestion.valley))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"lr range test: optimizer.lr={override_value(curve.lrs[suggestion.valley])}")
    ax.legend(loc="upper left")
    save(figure, out_dir / "lr_find.png")


def loss_range(curve: Curve, valley: int) -> tuple[float, float]:
    """The plot's loss axis: down to the lowest loss of a step before the smoothed minimum (the
    smoothed curve lags the steps' own), up to half as much again as the start's, so that the
    divergence runs off it."""
    finite = [v for v in curve.smoothed if math.isfinite(v)]
    lowest = curve.smoothed.index(min(finite))
    bottom = min(v for v in [*finite, *curve.losses[: lowest + 1]] if math.isfinite(v))
    return bottom * 0.9, max(finite[: valley + 1]) * 1.5


def report_lines(suggestion: Suggestion, span: Span) -> list[str]:
    """What the command prints: how far the test went, and the two readings as overrides."""
    curve = suggestion.curve
    why = "stopped early: the loss diverged" if curve.diverged else "stopped at the last step"
    return [
        f"lr range test: {len(curve.lrs)} steps, lr {span.start:.2g} to {curve.lrs[-1]:.2g}"
        f" ({why})",
        f"suggested (valley): optimizer.lr={override_value(curve.lrs[suggestion.valley])}",
        f"steepest descent:   optimizer.lr={override_value(curve.lrs[suggestion.steep])}",
    ]
