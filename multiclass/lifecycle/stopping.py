"""Ctrl-C and SIGTERM (what `kill` and a cluster's scheduler send before they kill) as a
request to stop, as Lightning's signal handling does: the handler only notes the signal, and
the training loop stops at its next safe point (after an optimizer step's update, after an
epoch's record), where what the run wrote is whole; it ends as `interrupted`, with its
summary.json and last.pt. The processes of a data parallel run agree at each safe point (one
collective), so that every rank stops at the same one. Once the loop has taken the request, a
second signal changes nothing; before it has (a step that hangs), a second Ctrl-C stops at
once, as Ctrl-C does in Python. A signal that came after the last safe point takes effect
once the run has finished its record."""

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from multiclass.lifecycle.distributed import Processes

log = logging.getLogger("multiclass")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """The signal that asked the run to stop, while its handlers are installed."""

    def __init__(self, processes: Processes | None = None) -> None:
        self.signum: int | None = None
        self.taken = False  # the loop stopped on it: the run is finishing its record
        self.processes = processes or Processes()  # several: they agree at each safe point

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            name = signal.Signals(signum).name
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
        previous = {signum: signal.signal(signum, self.handle) for signum in SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.signum is not None and not self.taken:
            signal.raise_signal(self.signum)  # as it would have been, now that the record is whole

    def agreed(self) -> int | None:
        """At a safe point: the signal that asked any process of the run to stop, or None."""
        signum = self.processes.agree_to_stop(self.signum)
        if signum is not None:
            self.signum, self.taken = signum, True
        return signum
