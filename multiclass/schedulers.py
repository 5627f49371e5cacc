"""The learning-rate schedule: the `scheduler` group's partial of `schedule`, which names torch's
scheduler (`lr_scheduler`) and when the engine steps it (`interval`: after every batch or every
epoch), completed with the optimizer and the run's length; its other keys are torch's.
`scheduler: null` (`scheduler=none`, the default) is no schedule at all, so such a run trains
exactly as it did before schedules existed."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import LRScheduler

from multiclass.errors import UserError
from multiclass.settings import check_value

Interval = Literal["batch", "epoch"]
# torch's names for a schedule's length in steps: left null in the config, they get the run's.
RUN_LENGTH = ("T_max", "total_steps", "total_iters")


@dataclass(frozen=True)
class Schedule:
    """A torch lr scheduler and the interval after which it steps."""

    scheduler: LRScheduler
    interval: Interval


SCHEDULE = "multiclass.schedulers.schedule"  # the `_target_` of the scheduler group's options


def build_schedule(
    node: DictConfig | None,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batches_per_epoch: int,
) -> Schedule | None:
    """The configured schedule of `optimizer`, or None without one: the `scheduler` group's
    partial of `schedule`, completed with the optimizer and the run's length."""
    if node is None:
        return None
    make = instantiate(current_form(OmegaConf.to_container(node, resolve=True)))
    return make(optimizer, epochs, batches_per_epoch)


def current_form(settings: dict[str, Any]) -> dict[str, Any]:
    """A scheduler node as its options are written now. A config saved before (a resumed or
    rerun run's) named torch's class as its `_target_`, with `interval` among torch's
    arguments: the same schedule, read as `schedule`'s partial."""
    if settings.get("_target_") == SCHEDULE:
        return settings
    torch_class = settings.pop("_target_", None)
    settings.pop("_partial_", None)
    return {"_target_": SCHEDULE, "_partial_": True, "lr_scheduler": torch_class, **settings}


def schedule(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batches_per_epoch: int,
    lr_scheduler: str,
    interval: Interval,
    **options: Any,
) -> Schedule:
    """torch's `lr_scheduler` (a dotted name) of `optimizer` with its `options`, stepped after
    every `interval`. A RUN_LENGTH option left null gets the number of steps the scheduler
    takes in the run: `epochs`, or `epochs * batches_per_epoch` per batch."""
    check_value("scheduler.interval", interval)  # called from Python too, not only by a config
    length = epochs * (batches_per_epoch if interval == "batch" else 1)
    for key in RUN_LENGTH:
        if key in options and options[key] is None:
            options[key] = length
    groups = optimizer.param_groups
    if isinstance(options.get("max_lr"), int | float) and len(groups) > 1:
        # one max_lr a group, in the groups' own ratio (a backbone's lower lr stays lower)
        options["max_lr"] = [options["max_lr"] * g["lr"] / groups[0]["lr"] for g in groups]
    make = instantiate({"_target_": lr_scheduler, "_partial_": True, "_convert_": "all", **options})
    return Schedule(checked(make, lr_scheduler, options, optimizer), interval)


def checked(
    make: Callable[..., LRScheduler],
    name: str,
    options: dict[str, Any],
    optimizer: torch.optim.Optimizer,
) -> LRScheduler:
    """`make(optimizer)`, once a copy on a throwaway optimizer has taken a step: torch accepts
    some bad values (StepLR's step_size=0) and fails only as it steps, after a whole epoch."""
    try:
        groups = [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": group["lr"]}
            for group in optimizer.param_groups
        ]
        probe = torch.optim.SGD(groups, lr=optimizer.param_groups[0]["lr"], momentum=0.9)
        trial = make(probe)
        probe.step()  # before the scheduler's, as torch expects
        trial.step()
        return make(optimizer)
    except Exception as error:
        keys = ", ".join(f"scheduler.{k}={v!r}" for k, v in options.items())
        detail = " ".join(str(error).split())
        raise UserError(
            f"cannot use the scheduler {name} ({keys}): {type(error).__name__}: {detail}"
        ) from error


def scheduler_name(node: DictConfig) -> str:
    """torch's class a scheduler node names, written now or as a config saved before."""
    return current_form(OmegaConf.to_container(node))["lr_scheduler"]


def spans_the_run(node: DictConfig | None) -> bool:
    """Whether the schedule's length is the run's (a RUN_LENGTH argument left null): then the
    run's length cannot change once it has started without bending the schedule mid-way."""
    return node is not None and any(key in node and node[key] is None for key in RUN_LENGTH)
