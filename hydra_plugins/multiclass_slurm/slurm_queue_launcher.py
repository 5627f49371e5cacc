"""The launcher of hydra/launcher=slurm and slurm_ddp: hydra-submitit-launcher's Slurm launcher,
whose jobs' results come from multiclass.sweeps.slurm_queue, which follows the jobs through
squeue where sacct fails. Hydra instantiates launchers only from `hydra_plugins`, and imports
this module at every start: it imports nothing heavy, and defines the launcher only where the
[cluster] extra is installed.

It builds on Hydra's public Launcher API (`launch`) and on the plugin's public parts: its
`params` and `config`, and its `__call__`, which runs a job on the node (the argument order is
pinned by tests/test_dependencies.py)."""

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

            executor = self.executor()
            sweep_dir = self.sweep_dir()
            log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
            calls = []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                state = Singleton.get_state()
                calls.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
            returned = slurm_queue.results(executor.map_array(self, *zip(*calls, strict=True)))
            return [
                JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
                if result is None
                else result
                for result, overrides in zip(returned, job_overrides, strict=True)
            ]

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
