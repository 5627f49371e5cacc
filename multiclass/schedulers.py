"""The learning-rate schedule: the `scheduler` group's partial, completed with the optimizer and
the run's length, and when the engine steps it (after every batch or after every epoch).
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

Interval = Literal["batch", "epoch"]
INTERVALS = ("batch", "epoch")
# torch's names for a schedule's length in steps: left null in the config, they get the run's.
RUN_LENGTH = ("T_max", "total_steps", "total_iters")


@dataclass(frozen=True)
class Schedule:
    """A torch lr scheduler and the interval after which it steps."""

    scheduler: LRScheduler
    interval: Interval


def build_schedule(
    node: DictConfig | None,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batches_per_epoch: int,
) -> Schedule | None:
    """The configured schedule of `optimizer`, or None without one. `interval` is ours and is
    popped before instantiating; a RUN_LENGTH argument left null gets the number of steps the
    scheduler takes in the run: `epochs`, or `epochs * batches_per_epoch` per batch."""
    if node is None:
        return None
    settings: dict[str, Any] = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
    interval = settings.pop("interval", None)
    if interval not in INTERVALS:
        raise UserError(f"scheduler.interval must be batch or epoch, got {interval!r}")
    length = epochs * (batches_per_epoch if interval == "batch" else 1)
    for key in RUN_LENGTH:
        if key in settings and settings[key] is None:
            settings[key] = length
    groups = optimizer.param_groups
    if isinstance(settings.get("max_lr"), int | float) and len(groups) > 1:
        # one max_lr a group, in the groups' own ratio (a backbone's lower lr stays lower)
        settings["max_lr"] = [settings["max_lr"] * g["lr"] / groups[0]["lr"] for g in groups]
        settings["_convert_"] = "all"  # a list, not Hydra's ListConfig, which torch cannot divide
    return Schedule(checked(instantiate(settings), settings, optimizer), interval)


def checked(
    make: Callable[..., LRScheduler], settings: dict[str, Any], optimizer: torch.optim.Optimizer
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
        keys = ", ".join(
            f"scheduler.{k}={v!r}" for k, v in settings.items() if not k.startswith("_")
        )
        detail = " ".join(str(error).split())
        raise UserError(
            f"cannot use the scheduler {settings['_target_']} ({keys}):"
            f" {type(error).__name__}: {detail}"
        ) from error


def spans_the_run(node: DictConfig | None) -> bool:
    """Whether the schedule's length is the run's (a RUN_LENGTH argument left null): then the
    run's length cannot change once it has started without bending the schedule mid-way."""
    return node is not None and any(key in node and node[key] is None for key in RUN_LENGTH)
