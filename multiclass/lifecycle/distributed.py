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
at the same epoch.

Across machines, each runs torchrun with the same --nnodes, --master_addr and --master_port and
its own --node_rank (docs/examples/slurm-ddp.sbatch); the processes of all machines make one run,
and rank 0 (node 0's first process) alone writes its directory.

Ending: SIGTERM or Ctrl-C to the launcher reaches every rank, which ends the run as
`interrupted`. A launcher killed outright (SIGKILL, the out-of-memory killer) passes nothing on,
and its ranks would train on without it: each rank watches its launcher, and ends itself with
SIGKILL once it is gone, so that the run stops as a one-process run killed so does. When another
process of the run fails, a rank says so rather than gloo's "Connection closed by peer". A rank
killed by a signal (SIGKILL, as the out-of-memory killer sends) can say nothing: the launcher of
`device.processes`, which sees how each process ended, records it in train.log and summary.json
(`killed`, and which rank, by which signal)."""

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import torch
import torch.distributed as dist
from torch import nn

from multiclass.engine import Shard, peers_needed
from multiclass.errors import UserError
from multiclass.records.artifacts import read_json, shown_path, write_json

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

log = logging.getLogger("multiclass")

# The run directory conf/train.yaml's hydra.run.dir gives a fresh run, as rank 0 names it for
# every rank: a resume, or a hydra.run.dir of the command line, already names one for all.
RUN_DIR = "outputs/%Y-%m-%d/%H-%M-%S-%f"
NAMES_RUN_DIR = ("hydra.run.dir=", "resume=")
# What a rank other than 0 adds to its Hydra overrides: no .hydra/ and no train.log of its own.
QUIET_RANK = ("hydra.output_subdir=null", "hydra/job_logging=stdout")
# What a process says of the run when another of it failed (a collective of the run failed:
# PeerLost): the backend's own words for it name no process and no cause, and the process that
# failed logged its own error as it ended.
PEER_FAILED = (
    "another process of the run failed (see its error, or the launcher's line on how it ended)"
)
# How often a rank looks for its launcher (torch's elastic agent): a parent process id that
# changed means that it was killed outright, and the rank ends as it did.
WATCH_S = 0.05
# Why a signal may have ended a rank, as the launcher says it; any other: KILLED_BY_ANOTHER.
KILLED_BY = {signal.SIGKILL: "the out-of-memory killer sends it; `dmesg` says whether it did"}
KILLED_BY_ANOTHER = "a crash, or a signal from outside the run"
# torch's elastic agent logs the process it takes for the first to fail, the one whose failure
# it saw in the earliest second: where two ended in the same second, a survivor that failed
# on the other's end could be named. Its line is left out; the launcher says which rank it was.
TORCH_BLAME = ("torch.distributed.elastic.multiprocessing.api", "failed (exitcode")


def join(argv: Sequence[str]) -> list[str]:
    """Join the other processes of the run and return the Hydra overrides that give every
    rank rank 0's run directory, and ranks other than 0 no files of their own."""
    if "-m" in argv or "--multirun" in argv:
        raise UserError("a sweep (-m) cannot run under torchrun: start each run on its own")
    rank = join_group()
    overrides = []
    if not any(arg.startswith(NAMES_RUN_DIR) for arg in argv):
        chosen = [datetime.now().strftime(RUN_DIR) if rank == 0 else None]
        dist.broadcast_object_list(chosen, src=0)
        overrides.append(f"hydra.run.dir={chosen[0]}")
    if rank > 0:
        overrides.extend(QUIET_RANK)
    return overrides


def join_group() -> int:
    """Join the other processes of the run (torchrun's environment: RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT); this process's rank. Ranks other than 0 log only
    their errors: rank 0's lines are the run's."""
    watch_launcher()
    if torch.cuda.is_available():  # nccl wants each process on its own GPU first (a task that
        # Slurm shows one GPU sees it as its only one)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    rank = dist.get_rank()
    if rank > 0:
        log.setLevel(logging.ERROR)
    return rank


class SlurmTasks:
    """In a job of Hydra's submitit launcher (hydra/launcher=slurm_ddp: nodes x tasks_per_node
    tasks, srun starting each), the job's tasks as the ranks of one run. Each task runs the
    same sweep job, in the same run directory; the rendezvous comes from Slurm's variables
    through submitit's TorchDistributedEnvironment: the job's first node, a port drawn from
    the job id, each task's global and local rank."""

    def __init__(self, joined: bool) -> None:
        self.joined = joined

    @classmethod
    def join(cls) -> "SlurmTasks":
        """Join the job's other tasks, where this process is one of several tasks of a job."""
        if "SUBMITIT_EXECUTOR" not in os.environ:
            return cls(joined=False)
        import submitit
        from submitit.helpers import TorchDistributedEnvironment

        if submitit.JobEnvironment().num_tasks == 1:
            return cls(joined=False)
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        if join_group() > 0:  # Hydra gave this task, too, the run's train.log: rank 0's alone
            root = logging.getLogger()
            for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
                root.removeHandler(handler)
                handler.close()
        return cls(joined=True)

    def leave(self, summary: Mapping[str, object]) -> None:
        """End this task's part in the process group once every rank has ended the run (a
        rank that destroys its group while another still tests aborts, as gloo does), for
        the task goes on to write its result. Left as it is when another rank is gone (the
        run's `summary` says so): nothing would answer the barrier."""
        if not self.joined or summary.get("error") == PEER_FAILED:
            return
        dist.barrier()
        dist.destroy_process_group()


class LauncherWatch(threading.Thread):
    """Under torch's elastic agent (torchrun, device.processes), ends this process with SIGKILL
    as soon as the agent, its parent, is gone. The agent passes SIGTERM and Ctrl-C on to its
    ranks, but nothing can pass on its own SIGKILL, and the ranks run in sessions of their own:
    without this they would train on and write the run to its end, holding its lock against a
    resume. It looks between any two steps."""

    def __init__(self) -> None:
        super().__init__(name="multiclass-launcher-watch", daemon=True)
        self.launcher_pid = os.getppid()

    def run(self) -> None:
        while not self.orphaned():
            time.sleep(WATCH_S)
        self.end_with_launcher()

    def orphaned(self) -> bool:
        return os.getppid() != self.launcher_pid

    def end_with_launcher(self) -> None:
        """One line on stderr (not through the log: rank 0's goes to train.log, and nothing
        more is written into the run), then SIGKILL: what the launcher got, no handler runs."""
        try:
            sys.stderr.write(
                f"error: rank {os.environ.get('RANK', '?')}: its launcher (pid"
                f" {self.launcher_pid}) was killed: ending with it, as killed (resume the run"
                " from its last.pt)\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError):  # nobody reads stderr any more
            pass
        os.kill(os.getpid(), signal.SIGKILL)


def watch_launcher() -> None:
    """Start this process's LauncherWatch, where torch's elastic agent started it
    (TORCHELASTIC_RUN_ID is set) and none watches yet."""
    if "TORCHELASTIC_RUN_ID" in os.environ and launcher_watch() is None:
        LauncherWatch().start()


def launcher_watch() -> LauncherWatch | None:
    """This process's LauncherWatch, if it has one: the thread is where its state lives."""
    return next((t for t in threading.enumerate() if isinstance(t, LauncherWatch)), None)


def leave(code: int) -> NoReturn:
    """Exit with `code` at once, the process group left as it is: gloo aborts a process
    (SIGABRT, "terminate called without an active exception") that destroys its group, or has
    it torn down at exit, while a peer still works or is gone, at random as the peer's exit
    races the teardown. By now rank 0 has written the run's record, and no rank needs another."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass(frozen=True)
class Processes:
    """This process's place among those that train one run, and what they do together: one
    object for the run to ask, as accelerate's state is; what it knows, torch.distributed's
    process group and the launcher watch's thread hold, so it keeps no state of its own.
    Without data parallelism: rank 0 of 1, the one that writes."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> "Processes":
        if not dist.is_initialized():
            return cls()
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def leader(self) -> bool:
        """Whether this process writes the run directory, tests, and says the run's lines."""
        return self.rank == 0

    @property
    def together(self) -> bool:
        """Whether several processes train the run, and so must agree where to stop."""
        return self.size > 1

    def shard(self) -> Shard:
        """This process's share of every batch."""
        return Shard(self.rank, self.size)

    def wrap(self, model: nn.Module, device: torch.device, shard: Shard) -> nn.Module:
        """The model in DistributedDataParallel when several processes train it (which also
        copies rank 0's initial weights to every rank), its gradients averaged through
        `shard`, which tells a failed reduction; else the model itself."""
        if not self.together:
            return model
        ids = [device.index] if device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        wrapped.register_comm_hook(None, shard.average_gradients)
        return wrapped

    def agree_to_stop(self, signum: int | None) -> int | None:
        """The signal that asked any process of the run to stop (`signum`: this one's), the
        same on every rank: one collective, at the same safe point of every rank, so that
        all stop there together. A rank whose peer is gone gets PeerLost."""
        if not self.together:
            return signum
        flag = torch.tensor([signum or 0], dtype=torch.int64)
        with peers_needed():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None

    def end_if_orphaned(self) -> None:
        """End this process now if its launcher is gone: called before a rank records a
        failure, which may only be that of another rank that ended with the launcher (the
        watch of this one has not looked yet); the kernel had given every rank its new
        parent by then."""
        watch = launcher_watch()
        if watch is not None and watch.orphaned():
            watch.end_with_launcher()


def launch(processes: int, argv: Sequence[str], run_dir: Path) -> int:
    """Run `python <argv>` (`-m multiclass ...`, `-m multiclass.commands.rerun ...`) in
    `processes` processes on this machine through torch's elastic launcher, as
    `torchrun --standalone` would, and wait: the exit status of the run (that of the rank
    that ended it). Each process computes on one thread unless device.num_threads says
    otherwise: they share the cores. SIGTERM or Ctrl-C here is passed on to every rank, which
    ends the run as interrupted; a rank killed by a signal is recorded in `run_dir`."""
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
    logging.getLogger(TORCH_BLAME[0]).addFilter(not_torch_blame)
    started = time.time()
    try:
        elastic_launch(config, sys.executable)(*argv)
    except ChildFailedError as failed:
        rank, first = first_to_fail(failed.failures)
        if first.exitcode >= 0:  # the rank logged its own error (or another's end) as it ended
            return first.exitcode
        record_killed(run_dir, rank, -first.exitcode, started)
        return 128 - first.exitcode
    except SignalException as stopped:
        return 128 + signal.Signals(stopped.sigval).value
    return 0


def not_torch_blame(record: logging.LogRecord) -> bool:
    """Every line of torch's launcher but its own guess of the process that failed first."""
    return not str(record.msg).startswith(TORCH_BLAME[1])


def first_to_fail(failures: Mapping[int, "ProcessFailure"]) -> tuple[int, "ProcessFailure"]:
    """The rank whose end ended the run, and how it ended: one that a signal other than SIGTERM
    ended (it could say nothing; the others failed on its absence); else one that ended with
    its own exit status (it logged its own error), the one torch saw fail first; else one that
    SIGTERM ended. SIGTERM comes last because it is how torch's launcher stops the survivors
    once a rank failed: a survivor still exiting (its record already written, its handlers
    gone) dies of it, and is not the cause."""

    def order(item: tuple[int, "ProcessFailure"]) -> tuple[bool, bool, int]:
        exitcode = item[1].exitcode
        return exitcode == -signal.SIGTERM, exitcode >= 0, item[1].timestamp

    return min(failures.items(), key=order)


def record_killed(run_dir: Path, rank: int, signum: int, since: float) -> None:
    """Say in one line (in train.log through the log, as the launcher's lines go there) and in
    summary.json, as `killed`, that a signal ended rank `rank`. Only a summary.json written
    since the launch (`since`) is the run's record of it: a resume that ended before it
    restored last.pt leaves the run's own alone."""
    error = killed_by(rank, signum, run_dir)
    log.error("error: %s", error)
    summary_path = run_dir / "summary.json"
    summary = read_json(summary_path)
    if summary is None or summary_path.stat().st_mtime < since:
        return
    with contextlib.suppress(OSError):  # a full disk: the line said it, rank 0's record stays
        write_json(summary_path, {**summary, "status": "killed", "error": error})


def killed_by(rank: int, signum: int, run_dir: Path) -> str:
    """'rank 1 was killed by SIGKILL (the out-of-memory killer sends it; ...); ...'."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    why = KILLED_BY.get(signum, KILLED_BY_ANOTHER)
    return (
        f"rank {rank} was killed by {name} ({why}), and the launcher stopped the run's other"
        f" processes: `multiclass-resume {shown_path(run_dir)}` continues it"
    )
