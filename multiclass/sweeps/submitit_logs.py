"""Submitit's log lines in a sweep through hydra/launcher=slurm (or slurm_ddp, submitit_local),
each once. Submitit gives its logger two handlers of its own, stdout for every line and stderr
for warnings, and its lines reach Hydra's console handler through the root logger too: a
warning showed three times."""

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SubmititLogs(Callback):
    """Before a sweep launches through submitit: its lines through Hydra's handlers alone."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "submitit_folder" not in config.hydra.launcher:
            return
        import submitit  # noqa: F401  # its import configures its logger

        logger = logging.getLogger("submitit")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
