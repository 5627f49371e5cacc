"""What the Slurm launcher (hydra_plugins.multiclass_slurm) makes of each job's end, from its
result and its run directory's summary.json: a job that failed on its config or data (status
`failed` or `diverged`) is said in one line as soon as its result comes; with
`sweep.fail_fast`, that failure, or the sweep root's fail_fast.json (which the failing job
writes: sweeps.fail_fast), stops the sweep: the launcher cancels the jobs still waiting, and
writes the record of each that had not started (`not started`), so the report lists it. With
`sweep.retries=N`, a job that ended for a reason not its own is submitted again, resuming its
run directory (`resume=<sweep dir>`, as multiclass-resume does), up to N times: one killed
outright (no result: SIGKILL, the out-of-memory killer, a failed node), or whose summary.json
says `interrupted` (a signal from outside: scancel, a time limit submitit did not requeue) or
`running` (killed before it could say more). A job that failed on its config or data, one
`completed` or `pruned`, and every job once fail-fast stopped the sweep, are not."""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multiclass.sweeps.fail_fast import FAILURES, stop_record, stopped_by
from multiclass.sweeps.job_record import run_dir, summary_of

log = logging.getLogger("multiclass")

NOT_ITS_OWN = ("interrupted", "running")  # statuses a retry resumes


def resumed(overrides: Sequence[str], sweep_dir: Path) -> list[str]:
    """A job's overrides that resume its run directory in `sweep_dir` (a `resume` it had,
    replaced)."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "resume"]
    return [*kept, f"resume={sweep_dir}"]


def why_retry(result: Any) -> str | None:
    """Why a job that returned `result` (None: no result) is worth a retry, or None."""
    if result is None:
        return "it ended without a result (killed outright, or its node failed)"
    summary = summary_of(result)
    status = summary.get("status")
    if status not in NOT_ITS_OWN:
        return None
    return summary.get("error") or f"it was killed, its summary.json says {status}"


class SweepWatch:
    """The launcher's watch over one sweep's jobs (multiclass.sweeps.slurm_queue.Watch)."""

    def __init__(self, sweep_dir: Path, fail_fast: bool) -> None:
        self.sweep_dir, self.fail_fast = sweep_dir, fail_fast
        self.numbers: dict[str, int] = {}  # each Slurm job's number in the sweep
        self.failure: str | None = None  # the first job seen to fail on its config or data
        self.failed: str | None = None  # its name (its directory below the sweep's)
        self.stopped = False  # fail-fast stopped the sweep: nothing is retried
        self.why_stopped: str | None = None  # as the jobs it kept from training say it
        self.cancelled: set[int] = set()  # the numbers of the jobs cancelled while waiting

    def name(self, result: Any) -> str:
        """A job as the sweep names it: its directory below the sweep's."""
        folder = run_dir(result)
        if folder is None:
            return "?"
        try:
            return str(folder.resolve().relative_to(self.sweep_dir.resolve()))
        except ValueError:
            return folder.name

    def ended(self, job: Any) -> None:
        try:
            result = job.results()[0]
        except Exception:  # submitit's record of an error: said once the sweep ends
            return
        summary = summary_of(result)
        status = summary.get("status")
        if status not in FAILURES:
            return
        error = " ".join(str(summary.get("error") or status).split())
        line = f"job {self.name(result)} {status}: {error}"
        if self.failure is None:
            self.failure, self.failed = line, self.name(result)
        if not self.fail_fast:
            log.error("error: %s (Slurm job %s); the sweep goes on", line, job.job_id)

    def submitted(self, jobs: Sequence[Any], numbers: Sequence[int]) -> None:
        """The Slurm jobs of these sweep jobs, for the lines that name them."""
        self.numbers.update({job.job_id: n for job, n in zip(jobs, numbers, strict=True)})

    def named(self, job_ids: Sequence[str]) -> str:
        numbers = ", ".join(str(self.numbers.get(job_id, "?")) for job_id in job_ids)
        return f"job(s) {numbers} (Slurm {', '.join(job_ids)})"

    def to_cancel(self, job_ids: Sequence[str]) -> list[str]:
        """The jobs to cancel, kept in mind: one that had not started leaves no record, which
        the launcher then writes for it (`not started`)."""
        cancel = [job_id for job_id in job_ids if str(self.numbers.get(job_id)) != self.failed]
        self.cancelled.update(self.numbers[job_id] for job_id in cancel if job_id in self.numbers)
        return cancel

    def stop(self) -> str | None:
        if not self.fail_fast:
            return None
        record = stop_record(self.sweep_dir)
        if record is not None:
            reason = f"{stopped_by(record)}: {record.get('error')}"
            self.failed, self.why_stopped = str(record.get("job")), stopped_by(record)
        elif self.failure is not None:
            reason = self.why_stopped = f"{self.failure} (sweep.fail_fast)"
        else:
            return None
        self.stopped = True
        return reason

    def to_retry(self, returned: Sequence[Any]) -> dict[int, str]:
        """The jobs (by their place in `returned`) to submit again, each with why; none once
        fail-fast stopped the sweep."""
        if self.stopped or self.stop():
            return {}
        found = {i: why_retry(result) for i, result in enumerate(returned)}
        return {i: why for i, why in found.items() if why is not None}
