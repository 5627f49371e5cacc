"""Ctrl-C and SIGTERM (what `kill` and a cluster's scheduler send before they kill) as a
request to stop, as Lightning's signal handling does: the handler only notes the signal, and
the training loop stops at its next safe point (after an optimizer step's update, after an
epoch's record), where what the run wrote is whole; it ends as `interrupted`, with its
summary.json and last.pt. The processes of a data parallel run agree at each safe point (one
collective), so that every rank stops at the same one. Once the loop has taken the request, a
second signal changes nothing; before it has (a step that hangs), a second Ctrl-C stops at
once, as Ctrl-C does in Python. A signal that came after the last safe point takes effect
once the run has finished its record.

On Slurm, SIGUSR2 is the warning that `sbatch --signal=USR2@S` sends S seconds before the
job's time limit, and at a preemption where PreemptParameters=send_user_signal: submitit
installs its handler for it before the run (it calls the launcher's `checkpoint` and requeues
the job). While the run trains, SIGUSR2 is a stop like SIGTERM; once the run's record is whole
(summary.json `interrupted`, last.pt), the handler it replaced runs and requeues the job, which
then resumes the run (one that comes once training has ended is not passed on: the run ends
on its own, before the limit). Where no handler was installed before the run, SIGUSR2 is left
alone."""

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from multiclass.lifecycle.distributed import Processes

log = logging.getLogger("multiclass")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REQUEUE = signal.SIGUSR2  # Slurm's warning before a time limit or at a preemption (submitit's)


class StopSignals:
    """The signal that asked the run to stop, while its handlers are installed."""

    def __init__(
        self, processes: Processes | None = None, asked: Callable[[], str | None] | None = None
    ) -> None:
        self.signum: int | None = None
        self.taken = False  # the loop stopped on it: the run is finishing its record
        self.processes = processes or Processes()  # several: they agree at each safe point
        self.asked = asked  # a stop without a signal: why (a sweep's fail-fast record), or None
        self.reason: str | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            name = signal.Signals(signum).name
            if signum == REQUEUE:
                name += f" ({TIME_LIMIT_OR_PREEMPTION}: the job is requeued once the run stopped)"
            log.warning("%s: stopping after this step (Ctrl-C again stops at once)", name)
        elif signum == signal.SIGINT and not self.taken:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator["StopSignals"]:
        """The handlers for the block (only the main thread may set them: elsewhere, signals
        keep their handlers); then the previous ones, and a signal that no safe point took."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self.handle) for signum in watched()}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.signum is not None and self.passed_on():
            signal.raise_signal(self.signum)  # as it would have been, now that the record is whole

    def passed_on(self) -> bool:
        """Whether the signal goes on to the handler the block replaced: one that no safe point
        took; SIGUSR2 only where training stopped on it (the requeued job resumes the run),
        for one that came once training had ended finds the run ending on its own."""
        return self.taken if self.signum == REQUEUE else not self.taken

    def agreed(self) -> int | None:
        """At a safe point: the signal that asked any process of the run to stop, or None. A
        stop `asked` without a signal is taken as SIGTERM would be, its `reason` kept."""
        if self.signum is None and self.asked is not None and (reason := self.asked()):
            self.signum, self.reason = signal.SIGTERM, reason
        signum = self.processes.agree_to_stop(self.signum)
        if signum is not None:
            self.signum, self.taken = signum, True
        return signum


TIME_LIMIT_OR_PREEMPTION = "Slurm's time limit is near, or the job was preempted"


def watched() -> tuple[int, ...]:
    """The signals a run takes as a request to stop: SIGUSR2 only where a handler of the
    process's (submitit's, which requeues the Slurm job) awaits it once the run stopped."""
    return (*SIGNALS, REQUEUE) if callable(signal.getsignal(REQUEUE)) else SIGNALS


def stopped_how(signum: int) -> str:
    """What ended a run that a signal stopped, as its error says it."""
    if signum == signal.SIGINT:
        return "by the user"
    if signum == REQUEUE:
        return f"by SIGUSR2 ({TIME_LIMIT_OR_PREEMPTION})"
    return f"by {signal.Signals(signum).name}"
