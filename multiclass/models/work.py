"""How much arithmetic a model's forward pass does: the multiply-adds of its linear and
convolution layers, which are what a CPU's threads share. The run chooses its thread count from
it (multiclass.device.runtime.threads_for_step). Counted with forward hooks on one blank
sample, not torch's FlopCounterMode, whose first use costs about 2 s of imports."""

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def multiply_adds_per_sample(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of `model`'s linear and convolution layers for one sample, counted in
    eval mode without gradients, so that no weight, statistic or random state changes."""
    counted: list[int] = []

    def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        counted.append(layer_multiply_adds(module, output))

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, *CONVOLUTIONS))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return sum(counted)


def layer_multiply_adds(layer: nn.Module, output: torch.Tensor) -> int:
    """A linear layer: each output takes in_features; a convolution: each output takes its
    group's input channels times the kernel's size."""
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    assert isinstance(layer, CONVOLUTIONS)
    kernel = prod(layer.kernel_size)  # type: ignore[arg-type]
    return output.numel() * layer.in_channels // layer.groups * kernel
