"""The command line: `multiclass-train [overrides]` and `python -m multiclass [overrides]`,
one Hydra app over conf/train.yaml. Each run trains in this process, as Hydra's launcher calls
`train`; a single run exits with its status's code; a sweep runs every job, then exits
non-zero if any job did not complete. With `device.processes=N` this process trains nothing:
it starts N that train the run in data parallel and waits for them, as under
`torchrun --nproc_per_node=N -m multiclass` (lifecycle.distributed)."""

import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from multiclass.commands.exits import exit_on_error
from multiclass.config import CONFIG_DIR  # importing it stores `settings` and two resolvers
from multiclass.device import openmp
from multiclass.errors import UserError
from multiclass.records.artifacts import (
    LOCK,
    lock_run_dir,
    processes_to_restart,
    shown_path,
    writable_folder,
)
from multiclass.sweeps import numbering  # noqa: F401  # the resolver of hydra.sweep.subdir
from multiclass.sweeps.fail_fast import SweepJob, forget, stop_account, stop_record
from multiclass.validation import check_config, check_sweep

if TYPE_CHECKING:
    from multiclass.records.outcome import Outcome

log = logging.getLogger("multiclass")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train(cfg: DictConfig) -> float | None:
    """Train one configuration into Hydra's output directory: Hydra composed it, the Run
    builds, fits and tests it. Returns the sweep objective, the best epoch's figure of
    `trainer.monitor` (best_val_acc by default), None for a run that did not complete (a
    search records it as a failed trial)."""
    from multiclass.lifecycle import distributed  # torch: not for --help, --cfg or bad input
    from multiclass.lifecycle.run import execute
    from multiclass.sweeps.pruning import trial_pruning  # a search trial's epochs reported

    logging.raiseExceptions = False  # a train.log on a full disk: the one line, no tracebacks
    job = Job.of_hydra()
    sweep = job.in_sweep(cfg)
    why_not = sweep.why_not_start() if sweep and one_task() else None
    if why_not:  # another job failed, with sweep.fail_fast: its .hydra/ and this line alone
        log.warning("not started: %s", why_not)
        return None
    tasks = distributed.SlurmTasks.join()  # a Slurm job's task trains its share of the run
    processes = job.processes(cfg)
    if processes > 1 and "WORLD_SIZE" not in os.environ:  # this process only starts those
        sys.exit(job.launch_processes(processes))  # that train the run, and waits for them
    pruning = trial_pruning(HydraConfig.get(), distributed.Processes.current().size)
    stop_asked = sweep.stop_source() if sweep else None
    leader = distributed.Processes.current().leader  # before the tasks leave their group
    outcome = execute(cfg, job.run_dir, job.overrides, pruning, stop_asked)
    tasks.leave(outcome.summary)
    if sweep and leader:
        sweep.ended(outcome.status, outcome.summary.get("error"))
    return job.ended(outcome)


@dataclass(frozen=True)
class Job:
    """Hydra's job: its run directory, the command line's overrides, whether it is one of a
    sweep, and that sweep's root."""

    run_dir: Path
    overrides: list[str]
    sweeping: bool
    sweep_dir: Path | None = None

    @classmethod
    def of_hydra(cls) -> "Job":
        hydra_cfg = HydraConfig.get()
        overrides = list(hydra_cfg.overrides.task)
        sweeping = hydra_cfg.mode != RunMode.RUN
        sweep_dir = Path(hydra_cfg.sweep.dir) if sweeping else None
        return cls(Path(hydra_cfg.runtime.output_dir), overrides, sweeping, sweep_dir)

    def in_sweep(self, cfg: DictConfig) -> SweepJob | None:
        """This job as one of its sweep's (sweep.fail_fast, the line of its failure); None for
        a single run."""
        if self.sweep_dir is None:
            return None
        fail_fast = bool(OmegaConf.select(cfg, "sweep.fail_fast", default=False))
        return SweepJob.of(self.sweep_dir, self.run_dir, fail_fast)

    def processes(self, cfg: DictConfig) -> int:
        """How many processes train the run: `device.processes`, which a resume takes from
        the processes that trained the run unless the command line gives it."""
        configured = cfg.device.get("processes", 1)
        if cfg.get("resume") and (self.run_dir / "config.yaml").is_file():
            return exit_on_error(
                lambda d: processes_to_restart(d, self.overrides, configured), self.run_dir
            )
        return configured

    def launch_processes(self, processes: int) -> int:
        """Start `processes` processes that train this job's run in its run directory; their
        exit status."""
        if self.sweeping:
            log.error("error: device.processes > 1 trains a single run, not a sweep (-m)")
            return 1
        from multiclass.lifecycle.distributed import launch

        run_dir = self.run_dir
        log.info("training with %d processes (data parallel) -> %s", processes, shown_path(run_dir))
        argv = ["-m", "multiclass", *sys.argv[1:], f"hydra.run.dir={run_dir}"]
        return launch(processes, argv, run_dir)

    def ended(self, outcome: "Outcome") -> float | None:
        """A single run exits with its status's code; a sweep goes on to its next job (a
        failed one is in the sweep's report), unless this one was interrupted here."""
        if (not self.sweeping or stops_the_sweep(outcome)) and outcome.exit_code:
            sys.exit(outcome.exit_code)
        if outcome.status != "completed":
            return None
        summary = outcome.summary  # a run from before trainer.monitor has best_val_acc alone
        return summary["best_score"] if "best_score" in summary else summary.get("best_val_acc")


def stops_the_sweep(outcome: "Outcome") -> bool:
    """A sweep in this process stops at Ctrl-C or SIGTERM. A job that a cluster's launcher
    (submitit: Slurm, or local) runs on its own ends as interrupted, and the sweep goes on to
    report it: `scancel` (or a time limit) stopped that job alone. Submitit records what the
    job returned, and waits for that record (without Slurm's accounting, for it alone). A job
    that another's failure stopped (sweep.fail_fast: no signal) is reported with the rest."""
    interrupted = outcome.status == "interrupted" and outcome.signal is not None
    return interrupted and "SUBMITIT_EXECUTOR" not in os.environ


def one_task() -> bool:
    """Whether this job is one process: the tasks of a Slurm job (hydra/launcher=slurm_ddp)
    would not all see the fail-fast record at once, so they train, and stop together at
    their first safe point."""
    return "SUBMITIT_EXECUTOR" not in os.environ or os.environ.get("SLURM_NTASKS", "1") == "1"


def main() -> None:
    """The console script's entry point. A process torchrun started (WORLD_SIZE in its
    environment) first joins the others of its run, which agree on one run directory: Hydra
    reads it from the command line, so it is appended there."""
    openmp.set_wait_policy()  # before torch loads OpenMP, which reads it once
    from multiclass.sweeps.pruning import check_pruner_has_search

    exit_on_error(check_pruner_has_search, sys.argv[1:])  # one line, not Hydra's several
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        train()
        return
    from multiclass.lifecycle import distributed

    sys.argv += exit_on_error(distributed.join, sys.argv[1:])
    try:
        train()
    except SystemExit as ended:  # Hydra's app exits with the run's status
        distributed.leave(ended.code if isinstance(ended.code, int) else int(bool(ended.code)))
    except BaseException:  # HYDRA_FULL_ERROR=1: Python's own traceback, then the exit
        traceback.print_exc()
        distributed.leave(1)
    distributed.leave(0)


class SweepReport(Callback):
    """When a sweep ends: its report at the sweep root (sweep.csv, sweep.md, sweep.png), the
    best five jobs on the console, and exit status 1 if any job did not complete (unless told
    not to: a search expects some failed trials)."""

    def __init__(self, fail_on_unfinished: bool = True) -> None:
        self.fail_on_unfinished = fail_on_unfinished

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """An earlier sweep's fail-fast record in the same folder is not this sweep's."""
        forget(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from multiclass.commands.report import report_sweep
        from multiclass.comparing.runs import find_runs

        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir() and not find_runs([sweep_dir]):  # no job ran: a complete search
            log.info("no job ran in %s: no sweep report", sweep_dir)
            return
        report = report_sweep([sweep_dir], sweep_dir, plots=config.get("plots", True))
        if report is None:  # no job wrote under the sweep dir: nothing to show for the sweep
            sys.exit(1)
        stopped = stop_record(sweep_dir)
        if stopped:  # sweep.fail_fast: the job that failed, why, and the jobs it stopped
            jobs = [(str(r.path.relative_to(sweep_dir)), r.status) for r in report.records]
            log.error("error: %s", stop_account(stopped, jobs))
            sys.exit(1)
        unfinished = [r for r in report.records if r.status not in ("completed", "pruned")]
        if unfinished and self.fail_on_unfinished:
            names = ", ".join(f"{r.path.relative_to(sweep_dir)} ({r.status})" for r in unfinished)
            log.error("error: %d job(s) did not complete: %s", len(unfinished), names)
            sys.exit(1)
        undrawn = [record for record in report.records if record.summary.get("undrawn")]
        if undrawn:
            log.error("error: pictures of %d job(s) were not drawn (above)", len(undrawn))
            sys.exit(1)


class OutputCheck(Callback):
    """Before Hydra creates the run (or sweep) directory and writes its .hydra/ there: a folder
    that cannot be created or written, or a run directory another run is writing to, is one
    line and exit status 1, not Hydra's traceback or a second run's files in the first's; nor
    a `resume` of a folder that holds no run, which would be left behind empty."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_error(check_config, config)  # a bad value: one line, and no folder made
        if config.get("resume"):
            exit_on_error(check_resumable, Path(config.hydra.run.dir))
        if os.environ.get("RANK", "0") == "0":  # a data parallel rank > 0 writes nothing there
            exit_on_error(check_run_dir, Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_error(check_sweep, config)  # e.g. device.processes > 1: no folder made
        exit_on_error(check_sweep_dir, Path(config.hydra.sweep.dir))


def check_resumable(run_dir: Path) -> None:
    if not (run_dir / "config.yaml").is_file():
        why = "it stopped before its run began" if (run_dir / ".hydra").is_dir() else ""
        raise UserError(
            f"nothing to resume: {run_dir} is not a run directory"
            + (f" ({why}: run its command again)" if why else "")
        )


def check_sweep_dir(sweep_dir: Path) -> None:
    """Writable, and no job of it running: Hydra would rewrite a running job's .hydra/ before
    that job's lock could refuse the second sweep."""
    writable_folder(sweep_dir, "hydra.sweep.dir")
    for lock in sorted(sweep_dir.glob(f"*/{LOCK}")):
        try:
            lock_run_dir(lock.parent).close()
        except UserError:
            raise UserError(
                f"{sweep_dir} is in use: its job {lock.parent.name} is running; wait until it"
                " ends, or choose another hydra.sweep.dir"
            ) from None


def check_run_dir(run_dir: Path) -> None:
    """Writable and free: the lock is only tried here; the run takes it when it starts."""
    writable_folder(run_dir, "hydra.run.dir")
    lock_run_dir(run_dir).close()
