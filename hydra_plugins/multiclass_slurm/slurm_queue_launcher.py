"""The launcher of hydra/launcher=slurm and slurm_ddp: hydra-submitit-launcher's Slurm launcher,
whose jobs' results come from multiclass.sweeps.slurm_queue, which follows the jobs through
squeue where sacct fails. Hydra instantiates launchers only from `hydra_plugins`, and imports
this module at every start: it imports nothing heavy, and defines the launcher only where the
[cluster] extra is installed.

A job that Slurm is about to end at its time limit, or preempts, gets SIGUSR2 ahead of it
(`signal_delay_s`); the run stops at its next safe point with its record whole
(multiclass.lifecycle.stopping), then submitit's handler calls `checkpoint` here and requeues
the job, whose new start resumes the run (`resume=<sweep dir>`). After the array's results:
`sweep.retries` submits again the jobs that ended for a reason not their own, and
`sweep.fail_fast` cancels the sweep's other jobs once one failed on its config or data, and
records those that had not started as `not started` (multiclass.sweeps.slurm_jobs).

It builds on Hydra's public Launcher API (`launch`) and on the plugin's public parts: its
`params` and `config`, its `__call__`, which runs a job on the node (the argument order is
pinned by tests/test_dependencies.py), and submitit's checkpoint protocol (`checkpoint`)."""

import logging
import os
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

if find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    class SlurmQueueLauncher(SlurmLauncher):
        """Submits the sweep as one Slurm job array and waits for it as slurm_queue does. A
        job that ended without a result returns None, as a run that did not complete does:
        the sweep's report then says how far it got."""

        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            from multiclass.sweeps import slurm_queue
            from multiclass.sweeps.slurm_jobs import SweepWatch

            executor = self.executor()
            sweep_dir = self.sweep_dir()
            log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
            calls = []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                state = Singleton.get_state()
                calls.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
            fail_fast = OmegaConf.select(self.config, "sweep.fail_fast", default=False)
            watch = SweepWatch(sweep_dir, bool(fail_fast))
            jobs = executor.map_array(self, *zip(*calls, strict=True))
            watch.submitted(jobs, [call[2] for call in calls])
            accounted = slurm_queue.accounting(jobs)
            returned = slurm_queue.results(jobs, watch=watch, accounted=accounted)
            retries = OmegaConf.select(self.config, "sweep.retries", default=0) or 0
            for attempt in range(1, retries + 1):
                again = watch.to_retry(returned)
                for i, why in again.items():
                    log.warning("retry %d of %d: job %d, as %s", attempt, retries, calls[i][2], why)
                if not again:
                    break
                resumed = [self.resumed(calls[i], sweep_dir) for i in again]
                jobs = executor.map_array(self, *zip(*resumed, strict=True))
                watch.submitted(jobs, [call[2] for call in resumed])
                results = slurm_queue.results(jobs, watch=watch, accounted=accounted)
                for i, result in zip(again, results, strict=True):
                    returned[i] = result
            for call, result in zip(calls, returned, strict=True):
                if result is None and call[2] in watch.cancelled:
                    self.not_started(call[0], call[2], sweep_dir, str(watch.why_stopped))
            return [
                JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
                if result is None
                else result
                for result, overrides in zip(returned, job_overrides, strict=True)
            ]

        def not_started(self, overrides: list[str], number: int, sweep_dir: Path, why: str) -> None:
            """The record of a job cancelled before it started (it could write none): its
            directory, claimed as its own start would have (sweeps.numbering), with what a
            job that fail-fast kept from training leaves, so that the report lists it."""
            from multiclass.sweeps.fail_fast import write_not_started
            from multiclass.sweeps.numbering import job_number

            run_dir = sweep_dir / str(job_number(sweep_dir, number, overrides))
            if (run_dir / "config.yaml").exists():  # it started after all
                return
            config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            write_not_started(run_dir, config, why)

        def checkpoint(self, *args: Any) -> Any:
            """What submitit requeues once SIGUSR2 stopped the run (a time limit, a
            preemption): this job again, resuming its run directory rather than starting over
            (the plugin's own resubmits the same overrides)."""
            from submitit.helpers import DelayedSubmission

            return DelayedSubmission(self, *self.resumed(args, self.config.hydra.sweep.dir))

        @staticmethod
        def resumed(call: Sequence[Any], sweep_dir: Any) -> tuple[Any, ...]:
            """A job's call (`__call__`'s arguments) that resumes its run in `sweep_dir`."""
            from multiclass.sweeps.slurm_jobs import resumed

            overrides, *rest = call
            return (resumed(overrides, Path(str(sweep_dir)).absolute()), *rest)

        def executor(self) -> Any:
            """submitit's Slurm executor with the config's parameters: its generic ones by
            name (timeout_min, mem_gb, ...), every other one as Slurm's."""
            import submitit

            params = dict(self.params)
            folder = params.pop("submitit_folder")
            timeouts = {f"slurm_{k}": params.pop(k) for k in ["max_num_timeout"] if k in params}
            executor = submitit.AutoExecutor(folder=folder, cluster="slurm", **timeouts)
            generic = set(OmegaConf.structured(BaseQueueConf).keys())
            executor.update_parameters(
                **{key if key in generic else f"slurm_{key}": v for key, v in params.items()}
            )
            return executor

        def sweep_dir(self) -> Path:
            """The sweep's directory, made (with hydra.sweep.mode where it is set)."""
            sweep = self.config.hydra.sweep
            path = Path(str(sweep.dir))
            path.mkdir(parents=True, exist_ok=True)
            if "mode" in sweep:
                os.chmod(path, mode=int(str(sweep.mode), 8))
            return path
