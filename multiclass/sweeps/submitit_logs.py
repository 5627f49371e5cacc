"""Submitit's log lines in a sweep through hydra/launcher=slurm (or slurm_ddp, submitit_local),
each once. Submitit gives its logger two handlers of its own, stdout for every line and stderr
for warnings, and its lines reach Hydra's console handler through the root logger too: a
warning showed three times. And on a cluster without accounting, where `sacct` fails, it
warned at every poll of the jobs' states."""

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SACCT_FAILED = "Bypassing sacct error"
NO_ACCOUNTING = (
    "sacct failed (this cluster keeps no job accounting, or sacct cannot reach it): a job is seen"
    " to end by the result file it writes, and one killed outright (SIGKILL, out of memory) is"
    " not; if the sweep waits on a job squeue no longer lists, stop it with Ctrl-C and continue"
    " it with multiclass-resume"
)


class SubmititLogs(Callback):
    """Before a sweep launches through submitit: its lines through Hydra's handlers alone, and
    its failed `sacct` polls as one line."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "submitit" not in str(config.hydra.launcher.get("_target_", "")):
            return
        import submitit  # noqa: F401  # its import configures its logger

        logger = logging.getLogger("submitit")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addFilter(FirstSacctFailure())


class FirstSacctFailure(logging.Filter):
    """Lets the first failed `sacct` poll through, said as what it means; drops the others."""

    def __init__(self) -> None:
        super().__init__()
        self.told = False

    def filter(self, record: logging.LogRecord) -> bool:
        if SACCT_FAILED not in record.getMessage():
            return True
        if self.told:
            return False
        self.told = True
        record.msg, record.args = NO_ACCOUNTING, ()
        return True
