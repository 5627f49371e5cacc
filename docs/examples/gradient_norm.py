"""A step callback of your own: the gradients' global norm in the log every few optimizer steps."""

import logging

import torch

from multiclass.callbacks import Callback, RunState

log = logging.getLogger("multiclass")


class GradientNorm(Callback):
    """Logs the global 2-norm of the gradients the optimizer is about to step on, every `every`
    steps. At order 0 it sees them after trainer.gradient_clip_norm (order -100) clipped them;
    an order below -100 sees them as the backward passes left them."""

    def __init__(self, every: int = 100, order: int = 0) -> None:
        self.every, self.order = every, order
        self.steps = 0  # optimizer steps this process has taken

    def on_before_optimizer_step(self, run: RunState) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            model = run.built.task.trained
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads)
            log.info("step %d  gradient norm %.4f", self.steps, norm)
