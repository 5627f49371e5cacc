"""Where a run's pictures are drawn. The command line's training process starts two helper
processes before it imports torch: they import matplotlib while it imports torch, and draw a
sweep job's pictures while the next job trains. Everywhere else (a run started from Python,
a launcher's worker process) the pictures are drawn in place, as they are asked for.

The functions handed over take plain data (numpy arrays, lists, paths) and import no torch,
so a helper stays light."""

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

HELPERS = 2  # this machine's two cores: a run's four pictures in two rounds
NICENESS = 10


class Painter:
    """Draws pictures in helper processes once `start` has made them, else at once."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.pending: list[tuple[str, Future]] = []
        self.failures: list[str] = []  # pictures that failed, not yet reported

    def start(self, helpers: int = HELPERS, method: str = "fork") -> bool:
        """Start the helpers; not after torch is imported (a fork would copy its thread pools
        mid-state) nor where the start method does not exist. True when they run."""
        if self.pool is not None:
            return True
        if not can_start(method):
            return False
        context = multiprocessing.get_context(method)
        self.pool = ProcessPoolExecutor(helpers, mp_context=context, initializer=prepare_helper)
        self.pool.submit(int)  # a fork pool starts all its processes at the first task
        return True

    def draw(self, name: str, function: Callable[..., None], *args: Any) -> None:
        """Draw the picture `name` with `function(*args)`: in a helper, or now."""
        if self.pool is None:
            function(*args)
        else:
            self.pending.append((name, self.pool.submit(function, *args)))

    def wait(self) -> None:
        """Wait for every picture handed out, keeping a line for each that failed."""
        while self.pending:
            name, future = self.pending.pop(0)
            error = future.exception()
            if error is not None:
                self.failures.append(f"{name} not drawn: {type(error).__name__}: {error}")

    def stop(self) -> None:
        """Wait for the pictures, then end the helpers (a process joins its children as it
        ends: a helper waiting for work would keep it waiting)."""
        self.wait()
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def undrawn(self) -> list[str]:
        """`wait`, then the lines of the pictures that failed since the last call."""
        self.wait()
        failures, self.failures = self.failures, []
        return failures


def can_start(method: str) -> bool:
    """Whether processes can start by `method` here: it exists, and it is not a fork after
    torch is imported (the child would copy torch's thread pools mid-state)."""
    if "torch" in sys.modules and method == "fork":
        return False
    return method in multiprocessing.get_all_start_methods()


def prepare_helper() -> None:
    """A helper ignores Ctrl-C (the command line handles it and waits for the helper), runs at
    a low priority (it takes only the CPU time the run leaves: on two cores the run's torch
    import and Hydra's composition are busy when the helpers start) and draws a throwaway
    figure with what the run's pictures use (text, a legend, a log axis, PNG): matplotlib's
    first use is its slowest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with_parent()
    os.nice(NICENESS)
    from multiclass.reporting.layer_rows import log_scale
    from multiclass.reporting.plots import new_figure, render

    figure, (ax,) = new_figure(2, 2)
    ax.plot([1, 2], [0.1, 10], label="warm-up")
    log_scale(ax)  # layers.png's log axis, labelled as it labels it
    ax.set_title("warm-up")
    ax.legend()
    render(figure)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def end_with_parent() -> None:
    """Ask Linux to end this helper when the command line dies, even by SIGKILL, which leaves
    no chance to shut the helpers down; elsewhere a helper ends when its queue closes."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


painter = Painter()  # the process's one painter
