"""The optimizer, with torch's fused kernel where the optimizer and the device have one: one
kernel per step instead of a loop over parameters (about a quarter off a small MLP's step on
a CPU). `optimizer.fused` or `optimizer.foreach` set in the config are taken as given."""

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch

PartialOptimizer = Callable[..., torch.optim.Optimizer]
Parameters = Iterable[torch.nn.Parameter] | list[dict[str, Any]]  # or parameter groups


def build_optimizer(
    make: PartialOptimizer, parameters: Parameters, device: torch.device
) -> torch.optim.Optimizer:
    """`make` is the `optimizer` group's partial; it gets `fused=True` where that works."""
    chosen = getattr(make, "keywords", {})
    if chosen.get("fused") is None and chosen.get("foreach") is None and has_fused(make, device):
        return make(parameters, fused=True)
    return make(parameters)


def has_fused(make: PartialOptimizer, device: torch.device) -> bool:
    """Whether a step with `fused=True` runs here; torch checks the device only at the first
    step, so try one on a throwaway parameter."""
    optimizer_class = getattr(make, "func", make)
    if "fused" not in inspect.signature(optimizer_class).parameters:
        return False
    probe = torch.nn.Parameter(torch.zeros(1, device=device))
    probe.grad = torch.zeros(1, device=device)
    try:
        make([probe], fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True
