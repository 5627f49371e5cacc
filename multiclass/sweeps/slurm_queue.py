"""The results of a sweep's Slurm jobs, followed through `squeue` where `sacct` fails:
hydra/launcher=slurm and slurm_ddp (hydra_plugins.multiclass_slurm) wait for their jobs here.

Submitit learns that a job ended from its result file, or else from `sacct`. On a cluster that
keeps no job accounting, sacct fails at every poll: submitit warned each time, sacct printed its
own line each time, and a job killed outright (SIGKILL, out of memory, a lost node), which
writes no result file, was never seen to end: the sweep waited for ever. Here sacct is asked
once; where it fails, that is said in one line and the jobs' states come from squeue, where a
job the queue no longer lists has ended. A job that ended without a result gives None, said in
a line, so that the sweep goes on, waits for the others and reports it.

While it waits, a `Watch` (the launcher's: multiclass.sweeps.slurm_jobs) hears of each job whose
result came, and may stop the sweep (sweep.fail_fast): the jobs still waiting are then cancelled
with scancel (a running one gets SIGTERM and ends `interrupted`), and the wait goes on until
each has ended.

Only submitit's public API: a job's `job_id`, `paths` and `results()`, and the Slurm watcher's
`read_info` as the parser of sacct's table (squeue's columns are named as sacct's)."""

import logging
import subprocess
import time
from collections.abc import Sequence
from typing import Any, Protocol

from submitit import SlurmJob
from submitit.core.utils import UncompletedJobError
from submitit.slurm.slurm import SlurmInfoWatcher

from multiclass.records.artifacts import shown_path

log = logging.getLogger("multiclass")

NO_ACCOUNTING = (
    "sacct failed (this cluster keeps no job accounting, or sacct cannot reach it): the jobs'"
    " states come from squeue instead, and a job it no longer lists has ended"
)
SQUEUE = ["squeue", "--me", "--array", "--states=all", "--noheader", "--format=%i|%T|%N"]
SQUEUE_HEADER = "JobID|State|NodeList"
NOT_LISTED = "NOT_LISTED"  # a state of our own: ended, and squeue no longer knows how
# Slurm's states of a job that will not run again (squeue(1), JOB STATE CODES). Any other, one
# a later Slurm adds included, counts as running until the queue no longer lists the job.
ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "TIMEOUT",
}
POLL_MAX_S = 60.0  # squeue is asked 0, 2, 4, 8 ... s after the submission, then every minute
# How long a job's result file may take to show here after the job ended (a shared file
# system's cache), as long as submitit itself waits for it.
GRACE_S = 15.0


class Watch(Protocol):
    """What the launcher makes of its jobs while it waits for them."""

    def ended(self, job: SlurmJob) -> None:
        """`job`'s result file is there."""

    def stop(self) -> str | None:
        """Why the sweep's other jobs are to be cancelled now, or None."""

    def named(self, job_ids: Sequence[str]) -> str:
        """Slurm jobs as the sweep names them."""

    def to_cancel(self, job_ids: Sequence[str]) -> list[str]:
        """Of the jobs still waiting, those to cancel once `stop` said why: not the one that
        failed, which is writing its result."""


def results(
    jobs: Sequence[SlurmJob],
    grace_s: float = GRACE_S,
    watch: Watch | None = None,
    accounted: bool | None = None,
) -> list[Any]:
    """Each job's result, as `job.results()[0]`; None, said in a line, for a job that ended
    without one (not said for one the `watch` had cancelled before it started). `accounted`:
    whether sacct answers, where the caller asked already."""
    accounted = accounting(jobs) if accounted is None else accounted
    if accounted and watch is None:
        return [result_of(job, None) for job in jobs]
    waited = QueueWatch(jobs, grace_s, watch)
    states = waited.wait()
    return [
        result_of(job, None if accounted else states.get(job.job_id, NOT_LISTED), waited.cancelled)
        for job in jobs
    ]


def accounting(jobs: Sequence[SlurmJob]) -> bool:
    """Whether sacct answers here: asked once about the jobs, its output kept to itself."""
    ids = sorted({job.job_id.split("_")[0] for job in jobs})
    command = ["sacct", "--parsable2", "-o", "JobID,State", "-j", ",".join(ids)]
    try:
        answers = subprocess.run(command, capture_output=True).returncode == 0
    except OSError:  # no sacct at all
        answers = False
    if not answers:
        log.warning("warning: %s", NO_ACCOUNTING)
    return answers


def result_of(job: SlurmJob, state: str | None, cancelled: Sequence[str] = ()) -> Any:
    """The job's result, or None for one that ended without it. `state` is how squeue last
    showed the job; None where sacct answers, and submitit's own wait then tells."""
    if state is None or job.paths.result_pickle.exists():
        try:
            return job.results()[0]
        except UncompletedJobError:
            state = state or job.state
    if job.job_id in cancelled:  # said as the sweep cancelled it
        return None
    log.error(
        "error: Slurm job %s ended (%s) without a result: it was killed outright, or its node"
        " failed; its log: %s",
        job.job_id,
        state,
        shown_path(job.paths.stderr),
    )
    return None


class QueueWatch:
    """Waits for jobs, each until its result file is there or squeue shows that it ended
    (`grace_s` before, for a result file that is late to show)."""

    def __init__(self, jobs: Sequence[SlurmJob], grace_s: float, watch: Watch | None = None):
        self.waiting = {job.job_id: job for job in jobs}
        self.grace_s, self.watch = grace_s, watch
        self.cancelled: list[str] = []  # the jobs the watch stopped, cancelled while waiting
        self.states: dict[str, str] = {}  # each job's as squeue last showed it
        self.ended_at: dict[str, float] = {}
        self.start = self.next_poll = time.monotonic()

    def wait(self) -> dict[str, str]:
        """Returns once every job is done: each job's state, as squeue last showed it."""
        while self.waiting:
            now = time.monotonic()
            if now >= self.next_poll:
                self.poll(now)
            for job in [job for job in self.waiting.values() if self.done(job, now)]:
                del self.waiting[job.job_id]
                if self.watch is not None and job.paths.result_pickle.exists():
                    self.watch.ended(job)
            self.stop_if_asked()
            if self.waiting:
                time.sleep(1)
        return self.states

    def stop_if_asked(self) -> None:
        """Cancel the jobs still waiting, once, where the watch says why."""
        if self.cancelled or not self.waiting or self.watch is None:
            return
        reason = self.watch.stop()
        if reason is None:
            return
        self.cancelled = self.watch.to_cancel(list(self.waiting))
        if not self.cancelled:
            return
        log.error("error: %s: cancelling %s", reason, self.watch.named(self.cancelled))
        subprocess.run(["scancel", *self.cancelled], capture_output=True)
        self.next_poll = time.monotonic()  # the queue shows them ended soon

    def done(self, job: SlurmJob, now: float) -> bool:
        if job.paths.result_pickle.exists():
            return True
        ended = self.ended_at.get(job.job_id)
        return ended is not None and now - ended >= self.grace_s

    def poll(self, now: float) -> None:
        listed = queue_states()
        self.next_poll = now + min(POLL_MAX_S, max(2.0, (now - self.start) / 2))
        if listed is None:  # squeue failed this time: nothing learnt
            return
        for job_id in self.waiting:
            state = self.states[job_id] = listed.get(job_id, NOT_LISTED)
            if state in ENDED or state == NOT_LISTED:
                self.ended_at.setdefault(job_id, now)
            else:  # still queued or running (again, where it was requeued)
                self.ended_at.pop(job_id, None)


def queue_states() -> dict[str, str] | None:
    """Each job of this user's that squeue lists, with its state (an array's tasks one by
    one); None where squeue fails."""
    try:
        done = subprocess.run(SQUEUE, capture_output=True, text=True)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    table = SlurmInfoWatcher().read_info(f"{SQUEUE_HEADER}\n{done.stdout}")
    return {job_id: info["State"] for job_id, info in table.items()}
