"""Submitit's log lines in a sweep through hydra/launcher=slurm (or slurm_ddp, submitit_local),
each once, and in submitit's own logs. Submitit gives its logger two handlers of its own,
stdout for every line and stderr for warnings, and its lines reach Hydra's handlers through the
root logger too: a warning showed three times, and in a job, the lines submitit logs once the
job's function returned (`Job completed successfully`, `Exiting after successful completion`,
said of a run that `scancel` interrupted too) ended the run's train.log."""

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def through_submitit(config: DictConfig) -> bool:
    return "submitit_folder" in config.hydra.launcher


class SubmititLogs(Callback):
    """Before a sweep launches through submitit: its lines through Hydra's handlers alone. In
    each of its jobs: submitit's lines through its own handlers alone, into the job's logs in
    .submitit/, and out of the run's train.log, which says how the run ended."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not through_submitit(config):
            return
        import submitit  # noqa: F401  # its import configures its logger

        logger = logging.getLogger("submitit")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if through_submitit(config):  # in the job's own process: submitit ran it
            logging.getLogger("submitit").propagate = False
