"""Each layer's health as training goes: seed 000 explains in prose why the first layers of a
deep sigmoid network barely learn (every sigmoid multiplies the gradient by at most 0.25);
layers.csv and layers.png show it, or its absence, for any run.

After each epoch that the log reports (every `trainer.log_every`, by default every epoch, and
the last) and once before the first (epoch 0), a probe runs the model on one fixed batch of
training samples and records, per layer in the order the network runs them:

- Linear and Conv layers: `grad_norm`, the L2 norm of the loss's gradient with respect to the
  layer's weight on that batch, and `weight_norm`, the L2 norm of the weight;
- activations (Sigmoid, Tanh, ReLU, LeakyReLU, GELU): `act_mean` and `act_std` of the outputs,
  `saturated`, the fraction of sigmoid outputs below 0.01 or above 0.99 (tanh: |output| above
  0.99), where the derivative is under 0.01 and the gradient all but stops, and `dead`, the
  fraction of ReLU units (channels, for convolutions) that output zero for every sample.

The probe leaves training exactly as it was: the model runs in eval mode (no dropout, so no
random numbers are drawn), gradients come from `torch.autograd.grad` (no `.grad` is touched, the
optimizer never sees them), and its forward hooks exist only while it runs.
"""

import math
from pathlib import Path

import torch
from torch import nn

from multiclass.datasets import Split
from multiclass.datasets.storage import gather
from multiclass.engine import Task, model_inputs
from multiclass.records.artifacts import MetricsLog
from multiclass.reporting.layer_rows import (
    LAYERS_CSV,
    PROBE_SAMPLES,
    STATISTICS,
    LayerRow,
    read_rows,
)

SATURATION = 0.01  # a sigmoid output this close to 0 or 1, a tanh output this close to +-1
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ACTIVATIONS = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.GELU)


def layer_name(position: int, module: nn.Module) -> str:
    """Position and kind, with the shape where there is one: '1 Linear 784-256', '2 Sigmoid'."""
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{position} {kind} {module.in_features}-{module.out_features}"
    if isinstance(module, WEIGHTED):
        size = "x".join(str(k) for k in module.kernel_size)
        return f"{position} {kind} {module.in_channels}-{module.out_channels} {size}"
    return f"{position} {kind}"


class LayerProbe:
    """Measures every layer of `model` on the first PROBE_SAMPLES samples of `train`."""

    def __init__(self, task: Task, model: nn.Module, train: Split) -> None:
        self.task = task
        self.model = model  # as built: hooks on a compiled wrapper would make it recompile
        self.inputs = gather(train.x, slice(PROBE_SAMPLES)).to(task.runtime.device)
        self.targets = task.head.encode(train.y[:PROBE_SAMPLES])
        self.layers = [m for m in model.modules() if isinstance(m, WEIGHTED + ACTIVATIONS)]
        self.names = [layer_name(i, m) for i, m in enumerate(self.layers, start=1)]

    def __call__(self, epoch: int) -> list[LayerRow]:
        table = self.measure().tolist()  # one read from the device for the whole table
        return [
            LayerRow(epoch, position, name, *(None if math.isnan(v) else v for v in values))
            for position, (name, values) in enumerate(zip(self.names, table, strict=True), 1)
        ]

    def measure(self) -> torch.Tensor:
        """A (layers, STATISTICS) table; NaN where a statistic does not apply."""
        outputs: dict[nn.Module, torch.Tensor] = {}
        hooks = [
            m.register_forward_hook(lambda module, _, out: outputs.__setitem__(module, out))
            for m in self.layers
            if isinstance(m, ACTIVATIONS)
        ]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad():
                logits = self.model(model_inputs(self.task, self.inputs)).float()
                loss = self.task.criterion(logits, self.targets)
                weights = [m.weight for m in self.layers if isinstance(m, WEIGHTED)]
                trained = [w for w in weights if w.requires_grad]  # not a frozen backbone's
                found = torch.autograd.grad(loss, trained, allow_unused=True) if trained else ()
                by_weight = dict(zip(map(id, trained), found, strict=True))
                grads = iter([by_weight.get(id(w)) for w in weights])
        finally:
            for hook in hooks:
                hook.remove()
            self.model.train(was_training)
        rows = [
            weight_statistics(m.weight, next(grads))
            if isinstance(m, WEIGHTED)
            else activation_statistics(m, outputs[m])
            for m in self.layers
        ]
        return torch.stack(rows) if rows else torch.empty(0, len(STATISTICS))


def weight_statistics(weight: torch.Tensor, grad: torch.Tensor | None) -> torch.Tensor:
    nan = torch.full((4,), math.nan, device=weight.device)
    grad_norm = grad.norm() if grad is not None else weight.new_zeros(())
    return torch.cat([torch.stack([grad_norm, weight.detach().norm()]).float(), nan])


def activation_statistics(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    y = output.detach().float()
    nan = y.new_tensor(math.nan)
    saturated, dead = nan, nan
    if isinstance(module, nn.Sigmoid):
        saturated = ((y < SATURATION) | (y > 1 - SATURATION)).float().mean()
    elif isinstance(module, nn.Tanh):
        saturated = (y.abs() > 1 - SATURATION).float().mean()
    elif isinstance(module, nn.ReLU):
        units = y.reshape(1, -1) if y.dim() < 2 else y.movedim(1, 0).flatten(1)
        dead = 1 - (units > 0).any(dim=1).float().mean()
    return torch.stack([nan, nan, y.mean(), y.std(correction=0), saturated, dead])


class LayerStats:
    """layers.csv of a run: an epoch's rows in one write, before its last.pt (so a killed run's
    file holds every epoch last.pt has). A resumed run keeps the rows of the epochs it resumes
    after and drops any later ones (written before a kill that came ahead of last.pt); a fresh
    run starts with epoch 0."""

    def __init__(self, run_dir: Path, probe: LayerProbe, resumed_epoch: int) -> None:
        self.probe = probe
        self.log = MetricsLog(run_dir / LAYERS_CSV)
        start = read_rows(self.log.path, resumed_epoch) if resumed_epoch else probe(0)
        self.log.rewrite(start)
        self.first_rows = start

    def __call__(self, epoch: int) -> list[LayerRow]:
        rows = self.probe(epoch)
        self.log.extend(rows)
        return rows
