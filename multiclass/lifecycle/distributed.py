"""Data parallel training: one run trained by several processes, each on its share of every
batch, their gradients averaged by DistributedDataParallel (torch.distributed: gloo on the
CPU, nccl on CUDA, one GPU a process).

torchrun starts the processes (`torchrun --nproc_per_node=2 -m multiclass ...`), or
`device.processes=N` does, through torch's elastic launcher. Every process runs the Hydra app,
so before Hydra composes they join the process group and take rank 0's run directory as an
explicit `hydra.run.dir` override: Hydra's default directory holds the time to the
microsecond, which would differ between processes. Rank 0 alone writes the run directory;
the other ranks train in step with it, log only their errors and write nothing.
Every rank evaluates the whole validation split, so they see the same figures and stop early
at the same epoch."""

import logging
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime

import torch
import torch.distributed as dist
from torch import nn

from multiclass.engine import Shard
from multiclass.errors import UserError

log = logging.getLogger("multiclass")

# The run directory conf/train.yaml's hydra.run.dir gives a fresh run, as rank 0 names it for
# every rank: a resume, or a hydra.run.dir of the command line, already names one for all.
RUN_DIR = "outputs/%Y-%m-%d/%H-%M-%S-%f"
NAMES_RUN_DIR = ("hydra.run.dir=", "resume=")
# What a rank other than 0 adds to its Hydra overrides: no .hydra/ and no train.log of its own.
QUIET_RANK = ("hydra.output_subdir=null", "hydra/job_logging=stdout")


def started_by_launcher() -> bool:
    """Whether torchrun (or torch's elastic launcher) started this process, whatever the number
    of processes: such a process never launches others."""
    return "WORLD_SIZE" in os.environ


def world_size() -> int:
    """How many processes train the run, as the launcher's environment says (1 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def join(argv: Sequence[str]) -> list[str]:
    """Join the other processes of the run (torchrun's environment: RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT) and return the Hydra overrides that give every
    rank rank 0's run directory, and ranks other than 0 no files of their own."""
    if "-m" in argv or "--multirun" in argv:
        raise UserError("a sweep (-m) cannot run under torchrun: start each run on its own")
    if torch.cuda.is_available():  # nccl wants each process on its own GPU first
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    rank = dist.get_rank()
    overrides = []
    if not any(arg.startswith(NAMES_RUN_DIR) for arg in argv):
        chosen = [datetime.now().strftime(RUN_DIR) if rank == 0 else None]
        dist.broadcast_object_list(chosen, src=0)
        overrides.append(f"hydra.run.dir={chosen[0]}")
    if rank > 0:
        overrides.extend(QUIET_RANK)
        log.setLevel(logging.ERROR)  # rank 0's lines are the run's; errors from any rank
    return overrides


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process's rank in the run: 0, the one that writes, without data parallelism."""
    return dist.get_rank() if dist.is_initialized() else 0


def shard() -> Shard:
    """This process's share of every batch."""
    if not dist.is_initialized():
        return Shard()
    return Shard(dist.get_rank(), dist.get_world_size())


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model in DistributedDataParallel when several processes train it (which also
    copies rank 0's initial weights to every rank), else the model itself."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return model
    if device.type == "cuda":
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def launch(processes: int, argv: Sequence[str]) -> int:
    """Train `python -m multiclass <argv>` in `processes` processes on this machine through
    torch's elastic launcher, as `torchrun --standalone` would, and wait: the exit status of
    the run (that of the first rank that failed). Each process computes on one thread unless
    device.num_threads says otherwise: they share the cores. SIGTERM or Ctrl-C here is passed
    on to every rank, which ends the run as interrupted."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ["OMP_NUM_THREADS"] = "1"  # this process only launches; its children inherit it
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "multiclass", *argv)
    except ChildFailedError as failed:
        _, first = failed.get_first_failure()
        return 128 - first.exitcode if first.exitcode < 0 else first.exitcode
    except SignalException as stopped:
        return 128 + signal.Signals(stopped.sigval).value
    return 0
