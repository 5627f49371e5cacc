"""Slurm jobs watched through `squeue` where `sacct` fails: a submitit executor plugin
("slurmqueue", registered under the `submitit` entry point group in pyproject.toml) that
hydra/launcher=slurm and slurm_ddp use through their launcher in hydra_plugins.multiclass_slurm.

Submitit learns that a job ended from its result file, or else from `sacct`. On a cluster that
keeps no job accounting, sacct fails at every poll: submitit warned each time, sacct printed its
own line each time, and a job killed outright (SIGKILL, out of memory, a lost node), which
writes no result file, was never seen to end: the sweep waited for ever. Here sacct is asked
once; where it fails, that is said in one line and the jobs' states come from squeue, where a
job the queue no longer lists has ended. A job that ended without a result gives None, said in
a line, so that the sweep goes on, waits for the others and reports it."""

import logging
import subprocess
import typing as tp

from submitit.core.utils import DelayedSubmission, UncompletedJobError
from submitit.slurm.slurm import SlurmExecutor, SlurmInfoWatcher, SlurmJob

from multiclass.lifecycle.artifacts import shown_path

log = logging.getLogger("multiclass")

NO_ACCOUNTING = (
    "sacct failed (this cluster keeps no job accounting, or sacct cannot reach it): the jobs'"
    " states come from squeue instead, and a job it no longer lists has ended"
)
# squeue's columns, named as sacct's so that one parser reads both.
SQUEUE = ["squeue", "--me", "--array", "--states=all", "--noheader", "--format=%i|%T|%N"]
SQUEUE_HEADER = "JobID|State|NodeList"
NOT_LISTED = "NOT_LISTED"  # a state of our own: ended, and squeue no longer knows how


class QueueWatcher(SlurmInfoWatcher):
    """Polls sacct as submitit does while it answers, else squeue. (It implements the
    watcher's two hooks, `_make_command` and `read_info`, as submitit's own Slurm one does.)"""

    def __init__(self, delay_s: int) -> None:
        super().__init__(delay_s)
        self.accounting: bool | None = None  # unknown until the first poll
        self.polled: set[str] = set()  # the jobs squeue was last asked about

    def _make_command(self) -> list[str] | None:
        sacct = super()._make_command()
        if sacct is None or self.answers(sacct):
            return sacct
        self.polled = self._registered - self._finished
        return SQUEUE

    def answers(self, sacct: list[str]) -> bool:
        """Whether sacct works here, learnt from one call whose output is kept to itself."""
        if self.accounting is None:
            try:
                self.accounting = subprocess.run(sacct, capture_output=True).returncode == 0
            except OSError:  # no sacct at all
                self.accounting = False
            if not self.accounting:
                log.warning("warning: %s", NO_ACCOUNTING)
        return self.accounting

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        if self.accounting:
            return super().read_info(string)
        text = string.decode() if isinstance(string, bytes) else string
        listed = super().read_info(f"{SQUEUE_HEADER}\n{text}")
        ended = {job: {"JobID": job, "State": NOT_LISTED} for job in self.polled - set(listed)}
        return {**listed, **ended}


class SlurmQueueJob(SlurmJob):
    """A Slurm job whose state the `QueueWatcher` follows; its result is None when it ended
    without one."""

    watcher = QueueWatcher(delay_s=600)

    def results(self) -> list[tp.Any]:
        try:
            return super().results()
        except UncompletedJobError:
            log.error(
                "error: Slurm job %s ended (%s) without a result: it was killed outright, or"
                " its node failed; its log: %s",
                self.job_id,
                self.state,
                shown_path(self.paths.stderr),
            )
            return [None]


class SlurmQueueExecutor(SlurmExecutor):
    """submitit's Slurm executor, with jobs of the class above (arrays included, which
    submitit's builds as its own SlurmJob)."""

    job_class = SlurmQueueJob

    def _internal_process_submissions(
        self, delayed_submissions: list[DelayedSubmission]
    ) -> list[SlurmQueueJob]:
        jobs = super()._internal_process_submissions(delayed_submissions)
        return [
            job
            if isinstance(job, SlurmQueueJob)
            else SlurmQueueJob(folder=self.folder, job_id=job.job_id, tasks=range(job.num_tasks))
            for job in jobs
        ]
