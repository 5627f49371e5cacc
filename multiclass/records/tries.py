"""How many times a run was started, and how many of those starts were Slurm requeues: the
summary.json keys `tries` (1, then one more at each resume) and `requeues` (the restarts that
were the same Slurm job started again, after a time limit or a preemption that submitit
requeued). A start is a requeue where the run's previous start was the same Slurm job
(SLURM_JOB_ID, which an array task has of its own) and Slurm's SLURM_RESTART_COUNT has grown
since; a new job (a sweep's retry, multiclass-resume) is not. `slurm_job` keeps the job and
its restart count that started the run last, for the next start to compare with."""

import os
from collections.abc import Mapping
from typing import Any


def slurm_start() -> dict[str, Any] | None:
    """The Slurm job this process runs in, and how often Slurm restarted it; None off Slurm."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    return {"id": job, "restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0)}


def started(previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """`tries`, `requeues` and `slurm_job` of a run that starts now: afresh where `previous` is
    None, else resuming the run whose summary.json that is."""
    now = slurm_start()
    if previous is None:
        return {"tries": 1, "requeues": 0, "slurm_job": now}
    before = previous.get("slurm_job")
    requeued = (
        now is not None
        and isinstance(before, Mapping)
        and before.get("id") == now["id"]
        and now["restarts"] > (before.get("restarts") or 0)
    )
    return {
        "tries": (previous.get("tries") or 1) + 1,
        "requeues": (previous.get("requeues") or 0) + int(requeued),
        "slurm_job": now,
    }
