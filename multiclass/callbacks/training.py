"""What the trainer's step options do, as callbacks on the step's events: clip the gradients
(trainer.gradient_clip_norm, trainer.gradient_clip_value) and keep a moving average of the
weights (trainer.ema). The run adds them from its settings, not from the callbacks list: every
process of a data parallel run calls them, as each steps its own copy of the weights."""

import torch

from multiclass.callbacks import Callback, RunState
from multiclass.config import TrainerSettings


class GradientClipping(Callback):
    """Each gradient element into [-value, value], then the gradients' global 2-norm down to
    `norm` (torch's clip_grad_value_ and clip_grad_norm_), before the optimizer steps."""

    every_rank = True
    order = -100  # before any other callback sees the step's gradients

    def __init__(self, norm: float | None, value: float | None) -> None:
        self.norm, self.value = norm, value

    def on_before_optimizer_step(self, run: RunState) -> None:
        parameters = [p for p in run.built.task.trained.parameters() if p.grad is not None]
        if self.value is not None:
            torch.nn.utils.clip_grad_value_(parameters, self.value)
        if self.norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, self.norm)


class WeightAveraging(Callback):
    """After each optimizer step, the moving average (built with the task, so that evaluation,
    best.pt, model.pt and last.pt have it) takes in the new weights."""

    every_rank = True

    def on_after_optimizer_step(self, run: RunState) -> None:
        task = run.built.task
        task.average.update_parameters(task.trained)


def step_callbacks(settings: TrainerSettings) -> list[Callback]:
    """The callbacks the trainer's step options ask for; none by default."""
    callbacks: list[Callback] = []
    if settings.gradient_clip_norm is not None or settings.gradient_clip_value is not None:
        callbacks.append(
            GradientClipping(settings.gradient_clip_norm, settings.gradient_clip_value)
        )
    if settings.ema is not None:
        callbacks.append(WeightAveraging())
    return callbacks
