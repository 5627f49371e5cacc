"""The launcher of hydra/launcher=slurm and slurm_ddp: hydra-submitit-launcher's Slurm launcher
on the `slurmqueue` submitit executor (multiclass.sweeps.slurm_queue), which follows the jobs
through squeue where sacct fails. Hydra instantiates launchers only from `hydra_plugins`, and
imports this module at every start: it imports nothing heavy, and defines the launcher only
where the [cluster] extra is installed."""

from collections.abc import Sequence
from importlib.util import find_spec

from hydra.core.utils import JobReturn, JobStatus

if find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    class SlurmQueueLauncher(SlurmLauncher):
        """Hydra's Slurm launcher (its subclasses name their executor in `_EXECUTOR`). A job
        that ended without a result returns None, as a run that did not complete does: the
        sweep's report then says how far it got."""

        _EXECUTOR = "slurmqueue"

        def launch(
            self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
        ) -> Sequence[JobReturn]:
            returns = super().launch(job_overrides, initial_job_idx)
            return [
                JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
                if returned is None
                else returned
                for returned, overrides in zip(returns, job_overrides, strict=True)
            ]
